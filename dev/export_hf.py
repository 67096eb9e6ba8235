#!/usr/bin/env python3
"""dev/export_hf.py: converts a wellread checkpoint (docs/checkpoints.md) and its vocabulary into
a Hugging Face folder that `transformers` loads with from_pretrained (the importer is
dev/import_hf.py; export then import gives the same checkpoint, byte for byte).

    python3 dev/export_hf.py CHECKPOINT OUT_DIR [--vocab VOCAB] [--task TASK_JSON]

  kind 1 (MLM model)  -> BertForMaskedLM: bert.* (no pooler) + cls.predictions.*, the decoder tied
                         to the word embeddings. A pooler the checkpoint holds as extra tensors
                         (imported from BertModel / BertForPreTraining) is written as bert.pooler.*:
                         BertForMaskedLM ignores it (transformers reports it as unexpected), while
                         BertModel.from_pretrained on the same folder uses it.
  kind 2 (classifier) -> BertForSequenceClassification; id2label from task.json (default: the
                         task.json beside the checkpoint; LABEL_i without one); 1 output is regression.
Written: config.json, model.safetensors, vocab.txt (copied), tokenizer_config.json and
special_tokens_map.json (uncased WordPiece, as wellread's tokenizer). The vocabulary's
fingerprint must be the checkpoint's.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_bert  # noqa: E402
import import_hf  # noqa: E402  (the checkpoint reader and the vocabulary fingerprint)


def float32_decimal(x):
    """The shortest decimal that reads back as the same float32 (1e-12, not 9.99999996e-13), so a
    re-import stores the identical bits."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-")) if x != 0 else 0.0


def read_task(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def hf_config(ck, labels, regression):
    c = ck["config"]
    out = {
        "architectures": ["BertForSequenceClassification" if ck["kind"] == import_hf.KIND_CLASSIFIER else "BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": c["vocab_size"], "hidden_size": c["hidden"], "num_hidden_layers": c["num_layers"],
        "num_attention_heads": c["num_heads"], "intermediate_size": c["ffn"], "hidden_act": "gelu",
        "hidden_dropout_prob": float32_decimal(c["hidden_dropout"]),
        "attention_probs_dropout_prob": float32_decimal(c["attention_dropout"]),
        "max_position_embeddings": c["max_positions"], "type_vocab_size": c["type_vocab"],
        "layer_norm_eps": float32_decimal(c["layer_norm_eps"]), "pad_token_id": c["pad_id"],
        "initializer_range": 0.02, "tie_word_embeddings": True, "is_decoder": False,
    }
    if ck["kind"] == import_hf.KIND_CLASSIFIER:
        out["id2label"] = {str(i): name for i, name in enumerate(labels)}
        out["label2id"] = {name: i for i, name in enumerate(labels)}
        out["problem_type"] = "regression" if regression else "single_label_classification"
    return out


def export_hf(checkpoint, out_dir, vocab=None, task=None, log=print):
    """Writes the HF folder; returns the HF config dict."""
    ck = import_hf.read_checkpoint(checkpoint)
    here = os.path.dirname(os.path.abspath(checkpoint))
    vocab = vocab or os.path.join(here, "vocab.txt")
    tokens = import_hf.read_vocab(vocab)
    if import_hf.vocab_fingerprint(tokens) != ck["fingerprint"]:
        raise import_hf.ImportRefused(f"{vocab}: fingerprint {import_hf.vocab_fingerprint(tokens):016x}, but {checkpoint} "
                                      f"was made with {ck['fingerprint']:016x}: another vocabulary")
    c, tensors = ck["config"], dict(ck["tensors"])
    labels, regression = None, False
    if ck["kind"] == import_hf.KIND_CLASSIFIER:
        task = task or os.path.join(here, "task.json")
        K = ck["num_labels"]
        if os.path.exists(task):
            t = read_task(task)
            labels, regression = t["labels"], t["label_kind"] == "regression"
            if len(labels) != K:
                raise import_hf.ImportRefused(f"{task}: {len(labels)} labels, but {checkpoint} has {K} outputs")
        else:
            labels, regression = [f"LABEL_{i}" for i in range(K)], K == 1
            log(f"  no {task}: labels named LABEL_0..LABEL_{K - 1}")
        heads = ["pooler", "classifier"]
    else:
        heads = ["mlm_head"] + (["pooler"] if all(n in tensors for n in hf_bert.POOLER_TENSORS) else [])
    layout = hf_bert.param_layout(c, ck["num_labels"])
    for name, shape in layout:
        if name not in tensors or tuple(tensors[name].shape) != tuple(shape):
            raise import_hf.ImportRefused(f"{checkpoint}: tensor {name} missing or not of shape {list(shape)}")
    known = {n for n, _ in layout} | {n for h in heads for n in hf_bert.HEADS[h]}
    for name in sorted(set(tensors) - known):
        log(f"  {checkpoint}: extra tensor {name} is not exported (no Hugging Face counterpart)")

    # The decoder is tied (not written): save_pretrained leaves tied weights out the same way.
    weights = hf_bert.to_hf(tensors, c["num_layers"], heads=heads, tie_decoder=False)
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    config = hf_config(ck, labels, regression)

    from safetensors.numpy import save_file
    os.makedirs(out_dir, exist_ok=True)
    save_file(weights, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    if os.path.abspath(vocab) != os.path.abspath(os.path.join(out_dir, "vocab.txt")):
        shutil.copyfile(vocab, os.path.join(out_dir, "vocab.txt"))
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "tokenize_chinese_chars": True,
                        "strip_accents": None, "model_max_length": c["max_positions"], **specials}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump(specials, f, indent=2)
        f.write("\n")
    log(f"{out_dir}: {config['architectures'][0]} from {checkpoint} ({sum(v.size for v in weights.values())} parameters"
        + (", with the pooler" if "pooler" in heads and ck["kind"] == import_hf.KIND_MLM else "") + ")")
    return config


def main(argv=None):
    p = argparse.ArgumentParser(description="wellread checkpoint -> Hugging Face folder (from_pretrained)")
    p.add_argument("checkpoint", help="a wellread checkpoint (.bin)")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("--vocab", help="vocab.txt (default: beside the checkpoint)")
    p.add_argument("--task", help="task.json of a classifier (default: beside the checkpoint)")
    a = p.parse_args(argv)
    try:
        export_hf(a.checkpoint, a.out_dir, a.vocab, a.task)
    except (import_hf.ImportRefused, ValueError) as e:
        sys.exit(f"export_hf: {e}")


if __name__ == "__main__":
    main()
