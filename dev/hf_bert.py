"""dev/hf_bert.py: the mapping between Hugging Face BERT weights and wellread's parameter
tensors (model/bert.cpp ParamLayout). Used by the reference-fixture script and by import/export.

wellread stacks the encoder layers ([L, ...]) and fuses query, key and value into one
[3C, C] matrix per layer (rows: query, then key, then value)."""
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
GLOBAL_TENSORS = {
    "embeddings.word": "bert.embeddings.word_embeddings.weight",
    "embeddings.position": "bert.embeddings.position_embeddings.weight",
    "embeddings.token_type": "bert.embeddings.token_type_embeddings.weight",
    "embeddings.ln_w": "bert.embeddings.LayerNorm.weight",
    "embeddings.ln_b": "bert.embeddings.LayerNorm.bias",
    "mlm_head.dense_w": "cls.predictions.transform.dense.weight",
    "mlm_head.dense_b": "cls.predictions.transform.dense.bias",
    "mlm_head.ln_w": "cls.predictions.transform.LayerNorm.weight",
    "mlm_head.ln_b": "cls.predictions.transform.LayerNorm.bias",
    "mlm_head.bias": "cls.predictions.bias",
}


def to_ours(named, num_layers):
    """named: dict HF name -> array (weights or gradients). Returns dict ours -> float32 array."""
    out = {k: np.asarray(named[v], dtype=np.float32) for k, v in GLOBAL_TENSORS.items()}
    for ours, hf_parts in LAYER_TENSORS.items():
        per_layer = [np.concatenate([np.asarray(named[f"bert.encoder.layer.{l}.{p}"], dtype=np.float32) for p in hf_parts])
                     for l in range(num_layers)]
        out[ours] = np.stack(per_layer)
    return out


def to_hf(ours, num_layers):
    """The inverse of to_ours: dict ours -> array to dict HF name -> array (decoder weight tied)."""
    out = {v: ours[k] for k, v in GLOBAL_TENSORS.items()}
    for name, hf_parts in LAYER_TENSORS.items():
        for l in range(num_layers):
            pieces = np.split(ours[name][l], len(hf_parts))
            for p, piece in zip(hf_parts, pieces):
                out[f"bert.encoder.layer.{l}.{p}"] = piece
    out["cls.predictions.decoder.weight"] = ours["embeddings.word"]
    out["cls.predictions.decoder.bias"] = ours["mlm_head.bias"]
    return out


def decays(ours_name):
    """AdamW weight decay as model/bert.cpp: embeddings and matrices yes; biases and LayerNorm no."""
    last = ours_name.split(".")[-1]
    if ours_name.startswith("embeddings."):
        return last in ("word", "position", "token_type")
    return last.endswith("_w") and not last.startswith("ln")
