"""dev/hf_bert.py: the mapping between Hugging Face BERT weights and wellread's parameter
tensors (model/bert.cpp ParamLayout). Used by the reference-fixture scripts and by
dev/import_hf.py / dev/export_hf.py. The one place that knows both naming schemes.

wellread stacks the encoder layers ([L, ...]) and fuses query, key and value into one
[3C, C] matrix per layer (rows: query, then key, then value). HF names here are those of the
task models (BertForMaskedLM, BertForSequenceClassification, ...), with the "bert." prefix; a bare
BertModel's names lack it (dev/import_hf.py adds it before mapping)."""
import numpy as np

LAYER_TENSORS = {  # ours -> HF names under bert.encoder.layer.{l}.
    "layers.attn_out_w": ["attention.output.dense.weight"],
    "layers.attn_out_b": ["attention.output.dense.bias"],
    "layers.ln1_w": ["attention.output.LayerNorm.weight"],
    "layers.ln1_b": ["attention.output.LayerNorm.bias"],
    "layers.ffn_in_w": ["intermediate.dense.weight"],
    "layers.ffn_in_b": ["intermediate.dense.bias"],
    "layers.ffn_out_w": ["output.dense.weight"],
    "layers.ffn_out_b": ["output.dense.bias"],
    "layers.ln2_w": ["output.LayerNorm.weight"],
    "layers.ln2_b": ["output.LayerNorm.bias"],
    "layers.qkv_w": ["attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight"],
    "layers.qkv_b": ["attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias"],
}
EMBEDDING_TENSORS = {
    "embeddings.word": "bert.embeddings.word_embeddings.weight",
    "embeddings.position": "bert.embeddings.position_embeddings.weight",
    "embeddings.token_type": "bert.embeddings.token_type_embeddings.weight",
    "embeddings.ln_w": "bert.embeddings.LayerNorm.weight",
    "embeddings.ln_b": "bert.embeddings.LayerNorm.bias",
}
MLM_HEAD_TENSORS = {  # BertForMaskedLM / BertForPreTraining; the decoder weight is tied to embeddings.word
    "mlm_head.dense_w": "cls.predictions.transform.dense.weight",
    "mlm_head.dense_b": "cls.predictions.transform.dense.bias",
    "mlm_head.ln_w": "cls.predictions.transform.LayerNorm.weight",
    "mlm_head.ln_b": "cls.predictions.transform.LayerNorm.bias",
    "mlm_head.bias": "cls.predictions.bias",
}
POOLER_TENSORS = {  # BertModel (add_pooling_layer), BertForPreTraining, BertForSequenceClassification
    "pooler.dense_w": "bert.pooler.dense.weight",
    "pooler.dense_b": "bert.pooler.dense.bias",
}
CLASSIFIER_TENSORS = {  # BertForSequenceClassification
    "classifier.w": "classifier.weight",
    "classifier.b": "classifier.bias",
}
HEADS = {"mlm_head": MLM_HEAD_TENSORS, "pooler": POOLER_TENSORS, "classifier": CLASSIFIER_TENSORS}
GLOBAL_TENSORS = {**EMBEDDING_TENSORS, **MLM_HEAD_TENSORS}  # BertForMaskedLM's tensors outside the layers
TIED_DECODER_WEIGHT = "cls.predictions.decoder.weight"  # == bert.embeddings.word_embeddings.weight
TIED_DECODER_BIAS = "cls.predictions.decoder.bias"      # == cls.predictions.bias


def layer_hf_name(l, part):
    return f"bert.encoder.layer.{l}.{part}"


def to_ours(named, num_layers, heads=("mlm_head",)):
    """named: dict HF name -> array (weights or gradients); heads: which of HEADS to take besides
    the embeddings and layers. Returns dict ours -> float32 array."""
    tables = [EMBEDDING_TENSORS] + [HEADS[h] for h in heads]
    out = {k: np.asarray(named[v], dtype=np.float32) for table in tables for k, v in table.items()}
    for ours, hf_parts in LAYER_TENSORS.items():
        per_layer = [np.concatenate([np.asarray(named[layer_hf_name(l, p)], dtype=np.float32) for p in hf_parts])
                     for l in range(num_layers)]
        out[ours] = np.stack(per_layer)
    return out


def to_hf(ours, num_layers, heads=None, tie_decoder=True):
    """The inverse of to_ours: dict ours -> array to dict HF name -> array. heads: which of HEADS
    to write (default: those present in `ours`). tie_decoder: also write the decoder weight and
    bias that HF ties to the word embeddings and the MLM bias (when the MLM head is written)."""
    if heads is None:
        heads = [h for h, table in HEADS.items() if all(k in ours for k in table)]
    tables = [EMBEDDING_TENSORS] + [HEADS[h] for h in heads]
    out = {v: ours[k] for table in tables for k, v in table.items()}
    for name, hf_parts in LAYER_TENSORS.items():
        for l in range(num_layers):
            pieces = np.split(ours[name][l], len(hf_parts))
            for p, piece in zip(hf_parts, pieces):
                out[layer_hf_name(l, p)] = np.ascontiguousarray(piece)
    if tie_decoder and "mlm_head" in heads:
        out[TIED_DECODER_WEIGHT] = ours["embeddings.word"]
        out[TIED_DECODER_BIAS] = ours["mlm_head.bias"]
    return out


def param_layout(config, num_labels):
    """ParamLayout (model/bert.cpp) in Python: [(name, shape)] in buffer order. config: dict with
    the BertConfig field names of the checkpoint (num_layers, hidden, ffn, vocab_size, ...)."""
    L, C, F, V = config["num_layers"], config["hidden"], config["ffn"], config["vocab_size"]
    layout = [("embeddings.word", (V, C)), ("embeddings.position", (config["max_positions"], C)),
              ("embeddings.token_type", (config["type_vocab"], C)), ("embeddings.ln_w", (C,)), ("embeddings.ln_b", (C,)),
              ("layers.qkv_w", (L, 3 * C, C)), ("layers.qkv_b", (L, 3 * C)), ("layers.attn_out_w", (L, C, C)),
              ("layers.attn_out_b", (L, C)), ("layers.ln1_w", (L, C)), ("layers.ln1_b", (L, C)),
              ("layers.ffn_in_w", (L, F, C)), ("layers.ffn_in_b", (L, F)), ("layers.ffn_out_w", (L, C, F)),
              ("layers.ffn_out_b", (L, C)), ("layers.ln2_w", (L, C)), ("layers.ln2_b", (L, C))]
    if num_labels == 0:
        layout += [("mlm_head.dense_w", (C, C)), ("mlm_head.dense_b", (C,)), ("mlm_head.ln_w", (C,)),
                   ("mlm_head.ln_b", (C,)), ("mlm_head.bias", (V,))]
    else:
        layout += [("pooler.dense_w", (C, C)), ("pooler.dense_b", (C,)), ("classifier.w", (num_labels, C)),
                   ("classifier.b", (num_labels,))]
    return layout


def extra_shapes(config):
    """Tensors a checkpoint may hold beyond its layout, with their shapes: the pooler of an MLM
    checkpoint imported from BertModel / BertForPreTraining (finetune takes it over)."""
    C = config["hidden"]
    return {"pooler.dense_w": (C, C), "pooler.dense_b": (C,)}


def decays(ours_name):
    """AdamW weight decay as model/bert.cpp: embeddings and matrices yes; biases and LayerNorm no."""
    last = ours_name.split(".")[-1]
    if ours_name.startswith("embeddings."):
        return last in ("word", "position", "token_type")
    return last == "w" or (last.endswith("_w") and not last.startswith("ln"))


def is_embedding(ours_name):
    """Counted as embedding parameters (the checkpoint table's flag bit 1), as model/bert.cpp."""
    return ours_name.startswith("embeddings.")
