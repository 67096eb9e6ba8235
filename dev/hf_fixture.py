#!/usr/bin/env python3
"""dev/hf_fixture.py: writes the Hugging Face import fixture that tests/test_hf_import.cpp reads
(so `make test` checks the import mapping and the forward pass without Python).

Small randomly initialized HF models (L2, H32, NH4, F64, P 24, V 99: a made-up vocabulary)
are saved as HF folders under a temporary folder and imported with dev/import_hf.py into
tests/fixtures/hf/:
  cls.bin              BertForSequenceClassification, 3 labels (neg, neutral, pos) -> kind 2
  mlm.bin              BertForMaskedLM                                              -> kind 1
  encoder.bin          a bare BertModel (names without "bert.")  -> kind 1, fresh MLM head, pooler as extras
  cls_roundtrip.bin    cls.bin exported by dev/export_hf.py and imported again (identical bytes)
  mlm_roundtrip.bin    the same for mlm.bin
  vocab.txt, task.json (cls.bin's labels, as finetune reads them)
  expected.bin         WRTENSOR: the batch (input_ids, token_types, lengths with padding and a
                       sentence pair; masked_positions / masked_targets for the MLM head) and what
                       transformers computes in float64 from the same float32 weights:
                       {cls,mlm,encoder}.hidden [B,T,C] (every position; the test compares the
                       valid ones), {cls,encoder}.pooled [B,C], cls.logits [B,K], mlm.logits [M,V].
Checked here, with assertions: each export loads with from_pretrained as the right class with no
missing or unexpected weights and equal parameters; export then import gives identical files
(also for the bare encoder); BertForPreTraining and pytorch_model.bin imports; refusals of
unsupported configs. Run: python3 dev/hf_fixture.py
"""
import json
import os
import sys
import tempfile

import numpy as np
import torch
from transformers import (BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel,
                          logging as hf_logging)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_hf  # noqa: E402
import hf_bert  # noqa: E402
import import_hf  # noqa: E402
import tensor_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf")

L, C, NH, F, P = 2, 32, 4, 64, 24
LABELS = ["neg", "neutral", "pos"]
B, T = 4, 12
LENGTHS = [12, 9, 6, 3]
PAIR_ROW, PAIR_SPLIT = 1, 4  # row 1: [CLS] a a a [SEP] b b b [SEP], token type 1 from position 4
WORDS = ("the a an and or but not no very quite movie film story plot actor actress scene music score ending "
         "good great fine bad awful boring dull funny sad long short slow fast dark bright warm cold new old "
         "is was are were be been it this that what who why how when where here there i you we they he she "
         "love hate like saw watch watched see seen make made").split()
PIECES = ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##y", "##ness", "##ful", "##less", "##able", "##ment"]
PUNCT = [".", ",", "!", "?", "'", "-", ":", ";", "(", ")"]


def make_vocab():
    tokens = import_hf.SPECIAL_TOKENS + PUNCT + WORDS + PIECES
    assert len(tokens) == len(set(tokens))
    return tokens


def hf_config(V):
    return BertConfig(vocab_size=V, hidden_size=C, num_hidden_layers=L, num_attention_heads=NH, intermediate_size=F,
                      max_position_embeddings=P, type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.1,
                      attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12, pad_token_id=0, initializer_range=0.2,
                      id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})


def random_model(cls, config, seed):
    """A HF model with random weights (std 0.2, so attention is far from uniform) and non-trivial
    LayerNorm and bias values."""
    torch.manual_seed(seed)
    model = cls(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def save_hf(model, folder, vocab_tokens):
    model.save_pretrained(folder)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab_tokens) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True}, f)


def make_batch(V, seed=7):
    g = np.random.default_rng(seed)
    ids = np.zeros((B, T), np.int32)  # [PAD] = 0
    types = np.zeros((B, T), np.int32)
    for b, n in enumerate(LENGTHS):
        ids[b, :n] = g.integers(5, V, n)
        ids[b, 0], ids[b, n - 1] = 2, 3  # [CLS] ... [SEP]
    ids[PAIR_ROW, PAIR_SPLIT] = 3  # the pair's first [SEP]
    types[PAIR_ROW, PAIR_SPLIT + 1:LENGTHS[PAIR_ROW]] = 1
    # the MLM head at a few valid positions (flat b*T + t), one of them [MASK]
    positions = np.array([0 * T + 3, 1 * T + 6, 2 * T + 1, 3 * T + 1], np.int32)
    ids.reshape(-1)[positions[0]] = 4
    targets = g.integers(5, V, len(positions)).astype(np.int32)
    return ids, types, np.array(LENGTHS, np.int32), positions, targets


def reference(folder, cls, ids, types, lengths):
    """The float32 weights as saved, run by transformers in float64 (eager attention)."""
    model = cls.from_pretrained(folder, attn_implementation="eager").double().eval()
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    with torch.no_grad():
        kwargs = dict(input_ids=torch.tensor(ids, dtype=torch.long), token_type_ids=torch.tensor(types, dtype=torch.long),
                      attention_mask=torch.tensor(mask), output_hidden_states=True)
        return model, model(**kwargs)


def check_export(checkpoint, cls, original, export_dir, log):
    """Exports, loads with from_pretrained as `cls` (no missing / unexpected / mismatched
    weights, every parameter equal to the original model's), re-imports; returns the re-import."""
    export_hf.export_hf(checkpoint, export_dir, log=log)
    loaded, info = cls.from_pretrained(export_dir, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"} if isinstance(info, dict) else {}
    assert not problems, f"{export_dir} as {cls.__name__}: {problems}"
    ref = dict(original.named_parameters())
    for name, p in loaded.named_parameters():
        assert torch.equal(p, ref[name]), f"{export_dir}: {name} differs from the original model"
    return loaded


def expect_refusal(folder, edit, what, log):
    """import_hf must refuse the folder after `edit(config)`; the message mentions `what`."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        original = f.read()
    config = json.loads(original)
    edit(config)
    with open(path, "w") as f:
        json.dump(config, f)
    try:
        import_hf.convert(folder)
        raise AssertionError(f"import_hf accepted a config with {what}")
    except import_hf.ImportRefused as e:
        assert what in str(e), f"refusal '{e}' should mention '{what}'"
        log(f"  refused as expected: {e}")
    finally:
        with open(path, "w") as f:
            f.write(original)


def main():
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)
    log = print
    vocab = make_vocab()
    V = len(vocab)
    config = hf_config(V)
    ids, types, lengths, positions, targets = make_batch(V)
    os.makedirs(OUT, exist_ok=True)
    expected = {"input_ids": ids, "token_types": types, "lengths": lengths, "masked_positions": positions,
                "masked_targets": targets}

    with tempfile.TemporaryDirectory(prefix="wellread_hf_") as tmp:
        hf = {name: os.path.join(tmp, name) for name in ("cls", "mlm", "encoder", "pretraining", "cls_pt")}
        models = {"cls": random_model(BertForSequenceClassification, config, 1), "mlm": random_model(BertForMaskedLM, config, 2),
                  "encoder": random_model(BertModel, config, 3), "pretraining": random_model(BertForPreTraining, config, 4)}
        for name, model in models.items():
            save_hf(model, hf[name], vocab)

        # The fixture's checkpoints, through the importer.
        import_hf.import_hf(hf["cls"], OUT, "cls.bin", pairs=True, max_len=P, log=log)
        import_hf.import_hf(hf["mlm"], OUT, "mlm.bin", log=log)
        import_hf.import_hf(hf["encoder"], OUT, "encoder.bin", log=log)

        # Expected outputs, transformers in float64.
        model, out = reference(hf["cls"], BertForSequenceClassification, ids, types, lengths)
        hidden = out.hidden_states[-1]
        expected["cls.hidden"] = hidden.numpy()
        with torch.no_grad():
            expected["cls.pooled"] = model.bert.pooler(hidden).numpy()
        expected["cls.logits"] = out.logits.numpy()
        model, out = reference(hf["mlm"], BertForMaskedLM, ids, types, lengths)
        expected["mlm.hidden"] = out.hidden_states[-1].numpy()
        expected["mlm.logits"] = out.logits.reshape(B * T, V)[torch.tensor(positions, dtype=torch.long)].numpy()
        model, out = reference(hf["encoder"], BertModel, ids, types, lengths)
        expected["encoder.hidden"] = out.last_hidden_state.numpy()
        expected["encoder.pooled"] = out.pooler_output.numpy()
        tensor_file.save(os.path.join(OUT, "expected.bin"), expected)

        # Export then import: from_pretrained loads the export exactly; the re-import is the same file.
        for name, cls in (("cls", BertForSequenceClassification), ("mlm", BertForMaskedLM)):
            check_export(os.path.join(OUT, f"{name}.bin"), cls, models[name], os.path.join(tmp, f"export_{name}"), log)
            import_hf.import_hf(os.path.join(tmp, f"export_{name}"), OUT, f"{name}_roundtrip.bin", pairs=name == "cls",
                                max_len=P if name == "cls" else 0, log=log)
            with open(os.path.join(OUT, f"{name}.bin"), "rb") as a, open(os.path.join(OUT, f"{name}_roundtrip.bin"), "rb") as b:
                assert a.read() == b.read(), f"{name}: export then import changed the checkpoint"
        # The bare encoder: the export holds the pooler, which BertModel takes and BertForMaskedLM ignores.
        export_hf.export_hf(os.path.join(OUT, "encoder.bin"), os.path.join(tmp, "export_encoder"), log=log)
        loaded, info = BertModel.from_pretrained(os.path.join(tmp, "export_encoder"), output_loading_info=True)
        assert not info["missing_keys"], info
        ref = dict(models["encoder"].named_parameters())
        assert all(torch.equal(p, ref[n]) for n, p in loaded.named_parameters())
        import_hf.import_hf(os.path.join(tmp, "export_encoder"), tmp, "encoder_roundtrip.bin", log=log)
        with open(os.path.join(OUT, "encoder.bin"), "rb") as a, open(os.path.join(tmp, "encoder_roundtrip.bin"), "rb") as b:
            assert a.read() == b.read(), "encoder: export then import changed the checkpoint"

        # BertForPreTraining: kind 1, the MLM head and the pooler kept, the NSP head dropped.
        r = import_hf.import_hf(hf["pretraining"], tmp, "pretraining.bin", log=log)
        ck = import_hf.read_checkpoint(os.path.join(tmp, "pretraining.bin"))
        assert ck["kind"] == import_hf.KIND_MLM and list(ck["tensors"])[-2:] == ["pooler.dense_w", "pooler.dense_b"]
        want = hf_bert.to_ours({k: v.detach().numpy() for k, v in models["pretraining"].named_parameters()}, L,
                               heads=("mlm_head", "pooler"))
        assert all(np.array_equal(ck["tensors"][k], v) for k, v in want.items()), "BertForPreTraining weights differ"
        assert r["arch"] == "BertForPreTraining"
        # pytorch_model.bin instead of safetensors: the same checkpoint.
        os.makedirs(hf["cls_pt"])
        torch.save(models["cls"].state_dict(), os.path.join(hf["cls_pt"], "pytorch_model.bin"))
        for f in ("config.json", "vocab.txt", "tokenizer_config.json"):
            with open(os.path.join(hf["cls"], f), "rb") as src, open(os.path.join(hf["cls_pt"], f), "wb") as dst:
                dst.write(src.read())
        import_hf.import_hf(hf["cls_pt"], tmp, "cls_pt.bin", pairs=True, max_len=P, log=log)
        with open(os.path.join(OUT, "cls.bin"), "rb") as a, open(os.path.join(tmp, "cls_pt.bin"), "rb") as b:
            assert a.read() == b.read(), "pytorch_model.bin import differs from the safetensors one"
        # Refusals.
        expect_refusal(hf["mlm"], lambda c: c.update(hidden_act="gelu_new"), "hidden_act", log)
        expect_refusal(hf["mlm"], lambda c: c.update(position_embedding_type="relative_key"), "position_embedding_type", log)
        expect_refusal(hf["mlm"], lambda c: c.update(is_decoder=True), "is_decoder", log)
        expect_refusal(hf["cls"], lambda c: c.update(problem_type="multi_label_classification"), "multi_label", log)
        expect_refusal(hf["cls"], lambda c: c.update(architectures=["BertForTokenClassification"]), "not supported", log)

        # The C++ model in float32 against this float64 reference is checked by tests/test_hf_import.cpp;
        # transformers' own float32 forward is printed for scale.
        model32 = BertForSequenceClassification.from_pretrained(hf["cls"], attn_implementation="eager").eval()
        mask = torch.tensor((np.arange(T)[None, :] < lengths[:, None]).astype(np.int64))
        with torch.no_grad():
            h32 = model32(input_ids=torch.tensor(ids, dtype=torch.long), token_type_ids=torch.tensor(types, dtype=torch.long),
                          attention_mask=mask, output_hidden_states=True).hidden_states[-1].numpy()
        valid = mask.numpy().astype(bool)
        ref = expected["cls.hidden"][valid]
        log(f"transformers float32 vs float64, cls hidden at valid positions: rel err "
            f"{np.linalg.norm(h32[valid] - ref) / np.linalg.norm(ref):.2e}")

    sizes = {f: os.path.getsize(os.path.join(OUT, f)) for f in sorted(os.listdir(OUT))}
    log(f"wrote {OUT}: " + ", ".join(f"{f} {s}" for f, s in sizes.items()) + f"; total {sum(sizes.values())} bytes")


if __name__ == "__main__":
    main()
