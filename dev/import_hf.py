#!/usr/bin/env python3
"""dev/import_hf.py: converts a Hugging Face BERT checkpoint into a wellread checkpoint and
vocabulary (docs/checkpoints.md; the exporter is dev/export_hf.py).

    python3 dev/import_hf.py HF_DIR OUT_DIR [--name model.bin] [--pairs] [--max-len N]

HF_DIR holds config.json, the weights (model.safetensors, a sharded model.safetensors.index.json,
or pytorch_model.bin) and vocab.txt. What is written to OUT_DIR:
  BertForSequenceClassification -> NAME, a kind-2 checkpoint (pooler + classifier over the
                                   config's labels; 1 label or problem_type "regression" is
                                   regression), and task.json with the label names (id2label)
                                   in finetune's format (--pairs, --max-len fill in the rest).
  BertForMaskedLM               -> NAME, a kind-1 checkpoint (encoder + MLM head).
  BertForPreTraining            -> kind 1; the pooler is kept as extra tensors (finetune takes
                                   it over), the next-sentence head is dropped.
  BertModel                     -> kind 1 with a FRESHLY INITIALIZED MLM head (normal(0, 0.02),
                                   LayerNorm 1/0, biases 0; said loudly), the pooler kept as
                                   extra tensors. Fine-tuning only uses the encoder and pooler.
  vocab.txt                     -> copied byte for byte; its fingerprint goes into the checkpoint.
The architecture comes from config "architectures", checked against the weight names (from
those alone when absent); a bare BertModel's weights without the "bert." prefix are handled.
Configurations the C++ model cannot reproduce exactly are refused with the reason: other
position embeddings, activations other than exact GELU, decoders, untied MLM decoders, cased
vocabularies (unless --allow-cased), multi-label classification.

Bad input is refused as the C++ programs refuse it, with one line on stderr naming the file and
the problem, and exit status 1:
    import_hf.py: HF_DIR/config.json: num_attention_heads is 0, must be an integer in 1..65536
config.json's sizes are held to the checkpoint's limits (docs/checkpoints.md), and the heads
must divide the hidden size; weight files that cannot be read, tensors that are missing, of
another shape than the config implies, not floating point or not finite are refused the same way.

This file also holds the Python reader and writer of the checkpoint format (write_checkpoint,
read_checkpoint) and the vocabulary fingerprint, which dev/export_hf.py and dev/hf_fixture.py use.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_bert  # noqa: E402

# ---------------------------------------------------------------------------------------------
# The checkpoint format (docs/checkpoints.md, model/checkpoint.cpp) and its checksum
# (docs/formats.md, data/shards.cpp Checksum).

CHECKPOINT_MAGIC = b"WRCHKPNT"
CHECKPOINT_VERSION = 1
KIND_MLM, KIND_CLASSIFIER = 1, 2
HEADER_BYTES, CONFIG_BYTES = 64, 64
MAX_LABELS = 1 << 16
# The largest size BertConfig::validate accepts for each field (model/bert.h, docs/checkpoints.md).
MAX_SIZES = dict(num_layers=1024, hidden=65536, num_heads=65536, ffn=262144, vocab_size=1 << 24, max_positions=1 << 20,
                 type_vocab=1024)
CONFIG_FIELDS = [  # the config block, in order: (name, struct code)
    ("num_layers", "i"), ("hidden", "i"), ("num_heads", "i"), ("ffn", "i"), ("vocab_size", "i"),
    ("max_positions", "i"), ("type_vocab", "i"), ("pad_id", "i"),
    ("layer_norm_eps", "f"), ("hidden_dropout", "f"), ("attention_dropout", "f"),
]
FLAG_WEIGHT_DECAY, FLAG_EMBEDDING = 1, 2
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def checksum(data, seed=_GOLDEN):
    """wellread's 64-bit checksum of a byte string (docs/formats.md): over 8-byte little-endian
    words, state = rotl64(state ^ word, 31) * 0x9e3779b97f4a7c15, the last partial word
    zero-padded, then the byte length mixed in as one more word."""
    data = memoryview(data).cast("B")
    n = len(data)
    full = n - n % 8
    state = seed
    for word in np.frombuffer(data[:full], dtype="<u8").tolist():
        h = state ^ word
        state = ((((h << 31) & _MASK64) | (h >> 33)) * _GOLDEN) & _MASK64
    tail = [int.from_bytes(bytes(data[full:]).ljust(8, b"\0"), "little")] if n % 8 else []
    for word in tail + [n]:
        h = state ^ word
        state = ((((h << 31) & _MASK64) | (h >> 33)) * _GOLDEN) & _MASK64
    return state


def file_checksum(file_bytes):
    """The value a file of the project's binary formats stores at bytes 56..63: the checksum of
    the header's first 56 bytes, seeded with the checksum of everything after the header."""
    return checksum(file_bytes[:56], seed=checksum(memoryview(file_bytes)[HEADER_BYTES:]))


def fnv1a64(data, h=0xCBF29CE484222325):
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & _MASK64
    return h


def read_vocab(path):
    """vocab.txt as common/util.h and data/tokenizer.cpp read it: one token a line (bytes), a
    '\\r' before the '\\n' dropped, no empty token after a final newline. Checks what the C++
    Tokenizer requires (no empty or duplicate tokens, valid UTF-8, the five special tokens)."""
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        nl = len(data) if nl < 0 else nl
        token = data[pos:nl]
        if token.endswith(b"\r"):
            token = token[:-1]
        tokens.append(token)
        pos = nl + 1
    seen = {}
    for i, t in enumerate(tokens):
        if not t:
            raise ImportRefused(f"{path}: line {i + 1}: empty token")
        try:
            t.decode("utf-8")
        except UnicodeDecodeError:
            raise ImportRefused(f"{path}: line {i + 1}: token is not valid UTF-8")
        if t in seen:
            raise ImportRefused(f"{path}: line {i + 1}: duplicate token {t!r} (first on line {seen[t] + 1})")
        seen[t] = i
    for s in SPECIAL_TOKENS:
        if s.encode() not in seen:
            raise ImportRefused(f"{path}: special token {s} missing (BERT needs [PAD] [UNK] [CLS] [SEP] [MASK])")
    return tokens


def vocab_fingerprint(tokens):
    """common/util.h vocab_fingerprint: FNV-1a 64 over every token's bytes followed by '\\n'."""
    h = 0xCBF29CE484222325
    for t in tokens:
        h = fnv1a64(t + b"\n", h)
    return h


def write_checkpoint(path, config, kind, num_labels, tensors, fingerprint):
    """Writes a checkpoint: config (dict of CONFIG_FIELDS), kind 1 (num_labels 0) or 2, tensors
    [(name, float32 array)] in buffer order (the layout's tensors first, extras after), the
    vocabulary fingerprint. The tensor table's flags are ParamLayout's (hf_bert.decays,
    hf_bert.is_embedding). Written to PATH.tmp.PID, then renamed into place."""
    assert (kind == KIND_MLM and num_labels == 0) or (kind == KIND_CLASSIFIER and 1 <= num_labels <= MAX_LABELS)
    table, offset = b"", 0
    for name, array in tensors:
        raw = name.encode()
        flags = (FLAG_WEIGHT_DECAY if hf_bert.decays(name) else 0) | (FLAG_EMBEDDING if hf_bert.is_embedding(name) else 0)
        entry = struct.pack("<IIII QQ", len(raw), array.ndim, flags, 0, offset, array.size)
        entry += struct.pack(f"<{array.ndim}q", *array.shape) + raw
        table += entry + b"\0" * (-len(entry) % 8)
        offset += array.size
    params = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for _, a in tensors)
    config_block = b"".join(struct.pack("<" + code, config[name]) for name, code in CONFIG_FIELDS)
    config_block += b"\0" * (CONFIG_BYTES - len(config_block))
    header = bytearray(CHECKPOINT_MAGIC + struct.pack("<IIII QQQQQ", CHECKPOINT_VERSION, kind, num_labels, len(tensors),
                                                      fingerprint, offset, checksum(params), len(table), 0))
    assert len(header) == HEADER_BYTES
    data = bytearray(header) + config_block + table + params
    struct.pack_into("<Q", data, 56, file_checksum(data))
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_checkpoint(path, verify=True):
    """Reads a checkpoint. Returns dict: kind, num_labels, config (dict), fingerprint,
    params_checksum, tensors (dict name -> float32 array, in table order). verify: check both
    checksums (slow in Python for big models: about 8 s per 100 MB)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER_BYTES + CONFIG_BYTES or data[:8] != CHECKPOINT_MAGIC:
        raise ValueError(f"{path}: not a wellread checkpoint (expected magic 'WRCHKPNT')")
    version, kind, num_labels, count, fingerprint, param_count, params_sum, table_bytes, file_sum = \
        struct.unpack_from("<IIII QQQQQ", data, 8)
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: version {version}, this reader reads {CHECKPOINT_VERSION}")
    start = HEADER_BYTES + CONFIG_BYTES + table_bytes
    if len(data) != start + 4 * param_count:
        raise ValueError(f"{path}: is {len(data)} bytes but the header describes {start + 4 * param_count}")
    if verify and file_checksum(data) != file_sum:
        raise ValueError(f"{path}: checksum does not match the contents: the file is corrupted")
    config, at = {}, HEADER_BYTES
    for name, code in CONFIG_FIELDS:
        (config[name],) = struct.unpack_from("<" + code, data, at)
        at += 4
    params = np.frombuffer(data, dtype="<f4", count=param_count, offset=start)
    if verify and checksum(params.tobytes()) != params_sum:
        raise ValueError(f"{path}: params_checksum does not match the parameters")
    tensors, at = {}, HEADER_BYTES + CONFIG_BYTES
    for _ in range(count):
        name_length, ndim, _flags, _reserved, offset, numel = struct.unpack_from("<IIII QQ", data, at)
        shape = struct.unpack_from(f"<{ndim}q", data, at + 32)
        name = data[at + 32 + 8 * ndim:at + 32 + 8 * ndim + name_length].decode()
        tensors[name] = params[offset:offset + numel].reshape(shape)
        at += 32 + 8 * ndim + (name_length + 7) // 8 * 8
    return dict(kind=kind, num_labels=num_labels, config=config, fingerprint=fingerprint, params_checksum=params_sum,
                tensors=tensors)


def task_json(label_names, regression, pairs, max_len):
    """finetune.cu task_json: {"label_kind":"class","labels":[...],"pairs":false,"max_len":128}."""
    return (json.dumps({"label_kind": "regression" if regression else "class", "labels": list(label_names),
                        "pairs": bool(pairs), "max_len": int(max_len)}, ensure_ascii=False, separators=(",", ":")) + "\n")


# ---------------------------------------------------------------------------------------------
# Reading a Hugging Face folder

class ImportRefused(Exception):
    """Input the importer cannot convert (exactly); the message names the file and says why."""


def refuse(path, problem):
    raise ImportRefused(f"{path}: {problem}")


def read_json(path):
    """A JSON object from a file; anything else is refused naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        refuse(path, f"cannot read: {e.strerror}")
    except ValueError as e:  # invalid JSON or UTF-8
        refuse(path, f"not valid JSON: {e}")
    if not isinstance(value, dict):
        refuse(path, f"holds a JSON {type(value).__name__}, not an object")
    return value


SUPPORTED = ["BertForSequenceClassification", "BertForMaskedLM", "BertForPreTraining", "BertModel"]
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")  # non-parameters some files carry
NSP_HEAD = ("cls.seq_relationship.weight", "cls.seq_relationship.bias")


def first_line(error):
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0]


def load_hf_weights(hf_dir):
    """dict HF name -> numpy array (floating point as float32), from model.safetensors (sharded or
    not) or pytorch_model.bin. Returns (weights, the file that names them all: the weights file or
    the shards' index). A file that cannot be read is refused naming it."""
    def from_safetensors(path):
        try:
            from safetensors import safe_open
            import torch  # noqa: F401  (framework "pt" below)
        except ImportError as e:
            refuse(path, f"reading it needs the safetensors and torch packages ({e})")
        out = {}
        try:
            with safe_open(path, framework="pt") as f:  # "pt": bf16/fp16 files are read too
                for k in f.keys():
                    t = f.get_tensor(k)
                    out[k] = (t.float() if t.is_floating_point() else t).numpy()
        except Exception as e:  # the library's own errors: a damaged header, a cut-off file, ...
            refuse(path, f"cannot read the safetensors weights: {first_line(e)}")
        return out

    single, index = os.path.join(hf_dir, "model.safetensors"), os.path.join(hf_dir, "model.safetensors.index.json")
    pt = os.path.join(hf_dir, "pytorch_model.bin")
    if os.path.exists(single):
        return from_safetensors(single), single
    if os.path.exists(index):
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
            refuse(index, "weight_map must map tensor names to shard files")
        out = {}
        for shard in sorted(set(weight_map.values())):
            path = os.path.join(hf_dir, shard)
            if not os.path.isfile(path):
                refuse(index, f"names the shard {shard}, which is not in {hf_dir}")
            out.update(from_safetensors(path))
        return out, index
    if os.path.exists(pt):
        try:
            import torch
        except ImportError as e:
            refuse(pt, f"reading it needs the torch package ({e})")
        try:
            state = torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as e:  # not a zip or pickle, cut off, objects other than tensors, ...
            detail = str(e).partition("WeightsUnpickler error:")[2].strip() or first_line(e)  # past torch's weights_only preamble
            refuse(pt, f"cannot read the PyTorch weights (not a torch.save file, damaged, or holding other objects than "
                       f"tensors): {detail.splitlines()[0]}")
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            refuse(pt, "is not a state dict (tensor names -> tensors)")
        return {k: (v.float() if v.is_floating_point() else v).numpy() for k, v in state.items()}, pt
    refuse(hf_dir, "no weights (model.safetensors, model.safetensors.index.json or pytorch_model.bin)")


def check_tensor_values(weights, weights_path):
    """Every weight floating point and finite (the model computes in float32; a NaN or infinity
    would only show up as a NaN loss later)."""
    for name, array in weights.items():
        if not np.issubdtype(array.dtype, np.floating):
            refuse(weights_path, f"tensor {name} has dtype {array.dtype}, not floating point")
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            first = [int(i) for i in np.unravel_index(bad[0], array.shape)]
            refuse(weights_path, f"tensor {name} holds {bad.size} non-finite value{'s' if bad.size > 1 else ''} "
                                 f"(NaN or infinity), the first at index {first}")


def normalize_names(weights):
    """Gives every weight its task-model name: "bert." in front of a bare BertModel's encoder
    names, LayerNorm gamma/beta (old TF conversions) as weight/bias; drops non-parameter buffers.
    Returns (weights, whether the names were bare)."""
    out = {}
    bare = not any(k.startswith("bert.") for k in weights)
    for k, v in weights.items():
        k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if bare and k.split(".")[0] in ("embeddings", "encoder", "pooler"):
            k = "bert." + k
        if k.startswith("bert.") and k[len("bert."):] in BUFFERS:
            continue
        out[k] = v
    return out, bare


def detect_architecture(config, weights, config_path):
    """The model class, from config "architectures" checked against the weights, or from the
    weights alone."""
    has_classifier = "classifier.weight" in weights
    has_mlm = "cls.predictions.transform.dense.weight" in weights
    has_nsp = NSP_HEAD[0] in weights
    from_weights = ("BertForSequenceClassification" if has_classifier else "BertForPreTraining" if has_mlm and has_nsp
                    else "BertForMaskedLM" if has_mlm else "BertModel")
    archs = config.get("architectures") or []
    if not archs:
        return from_weights, "from the weight names (config.json has no 'architectures')"
    if not isinstance(archs, list):
        refuse(config_path, f"architectures is {archs!r}, not a list of class names")
    arch = archs[0]
    if arch not in SUPPORTED:
        refuse(config_path, f"architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED)}")
    needs = {"BertForSequenceClassification": has_classifier, "BertForMaskedLM": has_mlm,
             "BertForPreTraining": has_mlm and has_nsp, "BertModel": True}
    if not needs[arch]:
        refuse(config_path, f"says {arch}, but the weights lack its head "
                            f"(classifier.weight / cls.predictions.* / cls.seq_relationship.*)")
    return arch, "from config.json"


def check_supported_config(config, path):
    """Refuses what the C++ model does not compute (model/bert.h)."""
    if config.get("model_type", "bert") != "bert":
        refuse(path, f"model_type is {config.get('model_type')!r}, not 'bert'")
    if config.get("position_embedding_type", "absolute") != "absolute":
        refuse(path, f"position_embedding_type {config['position_embedding_type']!r}: only learned absolute positions are supported")
    if config.get("hidden_act", "gelu") != "gelu":
        refuse(path, f"hidden_act {config['hidden_act']!r}: only 'gelu' (exact erf GELU) is supported")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        refuse(path, "is_decoder / add_cross_attention: only the bidirectional encoder is supported")
    if "embedding_size" in config and config["embedding_size"] != config.get("hidden_size"):
        refuse(path, "embedding_size differs from hidden_size (factorized embeddings): not supported")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def our_config(config, vocab_tokens, path, vocab_path):
    """Our BertConfig (checkpoint config block) from a HF config; HF's defaults where a field is
    absent. Every field is checked as BertConfig::validate checks it, naming HF's key."""
    sizes = dict(num_layers="num_hidden_layers", hidden="hidden_size", num_heads="num_attention_heads", ffn="intermediate_size",
                 vocab_size="vocab_size", max_positions="max_position_embeddings", type_vocab="type_vocab_size")
    defaults = dict(num_layers=12, hidden=768, num_heads=12, ffn=3072, vocab_size=30522, max_positions=512, type_vocab=2)
    c = {}
    for ours, key in sizes.items():
        v = config.get(key, defaults[ours])
        if not is_int(v) or not 1 <= v <= MAX_SIZES[ours]:
            refuse(path, f"{key} is {v!r}, must be an integer in 1..{MAX_SIZES[ours]}")
        c[ours] = v
    if c["hidden"] % c["num_heads"]:
        refuse(path, f"num_attention_heads {c['num_heads']} does not divide hidden_size {c['hidden']}")
    pad = config.get("pad_token_id")
    c["pad_id"] = vocab_tokens.index(b"[PAD]") if pad is None else pad
    if not is_int(c["pad_id"]) or not 0 <= c["pad_id"] < c["vocab_size"]:
        refuse(path, f"pad_token_id {c['pad_id']!r} is outside the vocabulary (0..{c['vocab_size'] - 1})")
    floats = dict(layer_norm_eps=("layer_norm_eps", 1e-12), hidden_dropout=("hidden_dropout_prob", 0.1),
                  attention_dropout=("attention_probs_dropout_prob", 0.1))
    for ours, (key, default) in floats.items():
        v = config.get(key, default)
        if not is_number(v):
            refuse(path, f"{key} is {v!r}, not a finite number")
        c[ours] = float(v)
    if not (0 < c["layer_norm_eps"] <= np.finfo(np.float32).max and np.float32(c["layer_norm_eps"]) > 0):
        refuse(path, f"layer_norm_eps {c['layer_norm_eps']} must be positive in float32")
    for ours in ("hidden_dropout", "attention_dropout"):
        if not 0 <= c[ours] < 1:
            refuse(path, f"{floats[ours][0]} {c[ours]} is outside [0, 1)")
    if len(vocab_tokens) != c["vocab_size"]:
        refuse(vocab_path, f"has {len(vocab_tokens)} tokens but {path} says vocab_size {c['vocab_size']}: "
                           "the embedding rows must be the vocabulary's tokens")
    return c


def classifier_labels(config, path):
    """(label names in id order, regression?) of a BertForSequenceClassification config."""
    id2label = config.get("id2label")
    if id2label:
        if not isinstance(id2label, dict) or not all(isinstance(k, str) and k.isdigit() for k in id2label):
            refuse(path, f"id2label must map label ids (\"0\", \"1\", ...) to names, is {id2label!r:.80}")
        ids = sorted(int(i) for i in id2label)
        if ids != list(range(len(ids))):
            refuse(path, f"id2label keys {ids} are not 0..K-1")
        names = [id2label[str(i)] for i in ids]
        if not all(isinstance(n, str) and n for n in names):
            refuse(path, "id2label's label names must be non-empty strings")
    else:
        K = config.get("num_labels", 2)
        if not is_int(K) or not 1 <= K <= MAX_LABELS:
            refuse(path, f"num_labels is {K!r}, must be an integer in 1..{MAX_LABELS}")
        names = [f"LABEL_{i}" for i in range(K)]
    if len(names) > MAX_LABELS:
        refuse(path, f"{len(names)} labels, at most {MAX_LABELS}")
    if "num_labels" in config and config["num_labels"] != len(names):
        refuse(path, f"num_labels {config['num_labels']!r} but id2label has {len(names)} entries")
    problem = config.get("problem_type")
    if problem == "multi_label_classification":
        refuse(path, "problem_type multi_label_classification (sigmoid per label) is not supported; "
                     "finetune trains single-label softmax classifiers and regression")
    if problem == "regression" and len(names) != 1:
        refuse(path, f"regression with {len(names)} outputs; finetune's regression has one target")
    return names, problem == "regression" or len(names) == 1


def hf_shapes(c, num_labels, parts):
    """HF name -> the shape the config implies, for the embeddings, the layers and the heads in
    `parts` (names of hf_bert.HEADS): what the weights must hold."""
    shapes = dict(hf_bert.param_layout(c, 0))
    shapes.update(hf_bert.param_layout(c, max(num_labels, 1)))
    shapes.update(hf_bert.extra_shapes(c))
    out = {hf: tuple(shapes[ours]) for table in [hf_bert.EMBEDDING_TENSORS] + [hf_bert.HEADS[h] for h in parts]
           for ours, hf in table.items()}
    for ours, hf_parts in hf_bert.LAYER_TENSORS.items():
        L, rows, *rest = shapes[ours]  # [L, rows, ...]: rows split evenly between the HF parts (q, k, v)
        for l in range(L):
            for p in hf_parts:
                out[hf_bert.layer_hf_name(l, p)] = (rows // len(hf_parts), *rest)
    return out


def fresh_mlm_head(c, seed):
    """An MLM head as model/bert.cpp init_weights makes it: dense normal(0, 0.02), LayerNorm 1 and 0, biases 0."""
    rng = np.random.default_rng(seed)
    C, V = c["hidden"], c["vocab_size"]
    return {"mlm_head.dense_w": rng.normal(0.0, 0.02, (C, C)).astype(np.float32),
            "mlm_head.dense_b": np.zeros(C, np.float32), "mlm_head.ln_w": np.ones(C, np.float32),
            "mlm_head.ln_b": np.zeros(C, np.float32), "mlm_head.bias": np.zeros(V, np.float32)}


def convert(hf_dir, seed=0, allow_cased=False):
    """Reads a HF folder. Returns dict: arch, kind, num_labels, config, tensors [(name, array)] in
    checkpoint order, fingerprint, vocab_path, labels, regression, notes."""
    config_path = os.path.join(hf_dir, "config.json")
    if not os.path.exists(config_path):
        refuse(hf_dir, "no config.json")
    config = read_json(config_path)
    check_supported_config(config, config_path)
    vocab_path = os.path.join(hf_dir, "vocab.txt")
    if not os.path.exists(vocab_path):
        refuse(hf_dir, "no vocab.txt (a WordPiece vocabulary is needed)")
    tokens = read_vocab(vocab_path)
    tok_config_path = os.path.join(hf_dir, "tokenizer_config.json")
    if os.path.exists(tok_config_path):
        tok_config = read_json(tok_config_path)
        if tok_config.get("do_lower_case") is False and not allow_cased:
            refuse(tok_config_path, "do_lower_case is false (a cased model); wellread's tokenizer lowercases. "
                                    "Pass --allow-cased to import anyway.")
    c = our_config(config, tokens, config_path, vocab_path)

    weights, weights_path = load_hf_weights(hf_dir)
    weights, bare = normalize_names(weights)
    check_tensor_values(weights, weights_path)
    arch, how = detect_architecture(config, weights, config_path)
    source = os.path.basename(weights_path)
    notes = [f"architecture {arch} ({how}); weights from {source}" + ("; bare BertModel names (no 'bert.' prefix)" if bare else "")]
    # Which parts of hf_bert's mapping the file provides, and what becomes of the rest.
    has_pooler = all(v in weights for v in hf_bert.POOLER_TENSORS.values())
    if arch == "BertForSequenceClassification":
        labels, regression = classifier_labels(config, config_path)
        kind, num_labels, heads, extras = KIND_CLASSIFIER, len(labels), ["pooler", "classifier"], []
        if not has_pooler:
            refuse(weights_path, "BertForSequenceClassification weights without bert.pooler.*")
        if config.get("classifier_dropout") is not None and config["classifier_dropout"] != c["hidden_dropout"]:
            notes.append(f"classifier_dropout {config['classifier_dropout']} is not kept: wellread's classifier uses "
                         f"hidden_dropout {c['hidden_dropout']} (a training setting; finetune --dropout sets it)")
    else:
        labels, regression = None, False
        kind, num_labels = KIND_MLM, 0
        heads = ["mlm_head"] if arch != "BertModel" else []
        extras = ["pooler"] if has_pooler else []
    if arch == "BertForPreTraining":
        notes.append("the next-sentence head (cls.seq_relationship) is dropped")
    if extras:
        notes.append("the pooler is kept as extra tensors pooler.dense_w/b (finetune takes it over)")

    used = set(NSP_HEAD) if arch == "BertForPreTraining" else set()
    # The MLM decoder must be tied: its weight the word embeddings, its bias the MLM bias.
    if "mlm_head" in heads:
        if hf_bert.MLM_HEAD_TENSORS["mlm_head.bias"] not in weights and hf_bert.TIED_DECODER_BIAS in weights:
            weights[hf_bert.MLM_HEAD_TENSORS["mlm_head.bias"]] = weights[hf_bert.TIED_DECODER_BIAS]
        word = weights.get(hf_bert.EMBEDDING_TENSORS["embeddings.word"])
        for tied, to in ((hf_bert.TIED_DECODER_WEIGHT, word),
                         (hf_bert.TIED_DECODER_BIAS, weights.get(hf_bert.MLM_HEAD_TENSORS["mlm_head.bias"]))):
            if tied in weights:
                if to is None or weights[tied].shape != to.shape or not np.array_equal(weights[tied], to):
                    refuse(weights_path, f"{tied} differs from the tensor it is tied to: an untied MLM decoder is not supported")
                used.add(tied)
    # Every tensor the model needs, with the shape the config implies (checked before anything is
    # stacked, so an odd tensor is named rather than failing inside numpy).
    for name, shape in hf_shapes(c, num_labels, heads + extras).items():
        if name not in weights:
            refuse(weights_path, f"{arch} needs tensor {name}, which is missing")
        if tuple(weights[name].shape) != shape:
            refuse(weights_path, f"tensor {name} has shape {list(weights[name].shape)}, but {config_path} implies {list(shape)}")
        used.add(name)
    unused = sorted(set(weights) - used)
    if unused:
        refuse(weights_path, f"weights not understood (a model this importer does not know): {', '.join(unused[:8])}"
                             + (f" and {len(unused) - 8} more" if len(unused) > 8 else ""))
    ours = hf_bert.to_ours(weights, c["num_layers"], heads=heads + extras)
    if "mlm_head" not in heads and kind == KIND_MLM:
        ours.update(fresh_mlm_head(c, seed))
        notes.append(f"NOTE: {arch} has no MLM head: the checkpoint's MLM head (mlm_head.*) is FRESHLY INITIALIZED "
                     f"(normal(0, 0.02), LayerNorm 1/0, biases 0; seed {seed}). The encoder and pooler are the model's; "
                     "fine-tune it, but do not expect masked-token predictions before MLM training.")

    layout = hf_bert.param_layout(c, num_labels)
    extra_layout = [(n, s) for n, s in hf_bert.extra_shapes(c).items() if kind == KIND_MLM and n in ours]
    tensors = [(name, ours[name]) for name, _ in layout + extra_layout]
    return dict(arch=arch, kind=kind, num_labels=num_labels, config=c, tensors=tensors, fingerprint=vocab_fingerprint(tokens),
                vocab_path=vocab_path, labels=labels, regression=regression, notes=notes)


def import_hf(hf_dir, out_dir, name="model.bin", pairs=False, max_len=0, seed=0, allow_cased=False, log=print):
    """Converts and writes OUT_DIR/NAME, OUT_DIR/vocab.txt and (classifiers) OUT_DIR/task.json.
    Returns the conversion (see convert)."""
    r = convert(hf_dir, seed=seed, allow_cased=allow_cased)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        refuse(out_dir, "exists and is not a folder (OUT_DIR is the folder to write the checkpoint into)")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    write_checkpoint(path, r["config"], r["kind"], r["num_labels"], r["tensors"], r["fingerprint"])
    vocab_out = os.path.join(out_dir, "vocab.txt")
    if os.path.abspath(vocab_out) != os.path.abspath(r["vocab_path"]):
        shutil.copyfile(r["vocab_path"], vocab_out)
    if r["kind"] == KIND_CLASSIFIER:
        with open(os.path.join(out_dir, "task.json"), "w", encoding="utf-8") as f:
            f.write(task_json(r["labels"], r["regression"], pairs, max_len))
    c = r["config"]
    count = sum(a.size for _, a in r["tensors"])
    what = (f"kind 2 (classifier, {r['num_labels']} " + ("output, regression" if r["regression"] else "labels: " + ", ".join(r["labels"]))
            + ")") if r["kind"] == KIND_CLASSIFIER else "kind 1 (MLM model)"
    log(f"{path}: {what}; L{c['num_layers']}-H{c['hidden']} (NH {c['num_heads']}, F {c['ffn']}, V {c['vocab_size']}, "
        f"P {c['max_positions']}); {count} parameters; vocabulary fingerprint {r['fingerprint']:016x}")
    for note in r["notes"]:
        log("  " + note)
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description="Hugging Face BERT folder -> wellread checkpoint + vocab.txt (+ task.json)")
    p.add_argument("hf_dir", help="folder with config.json, model.safetensors or pytorch_model.bin, vocab.txt")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("--name", default="model.bin", help="checkpoint file name in OUT_DIR")
    p.add_argument("--pairs", action="store_true", help="classifier: task.json says it reads sentence pairs")
    p.add_argument("--max-len", type=int, default=0, help="classifier: task.json max_len (0: the model's positions)")
    p.add_argument("--seed", type=int, default=0, help="seed of a fresh MLM head (BertModel input)")
    p.add_argument("--allow-cased", action="store_true", help="import a cased model anyway (our tokenizer lowercases)")
    a = p.parse_args(argv)
    try:
        import_hf(a.hf_dir, a.out_dir, a.name, a.pairs, a.max_len, a.seed, a.allow_cased)
    except ImportRefused as e:
        sys.exit(f"import_hf.py: {e}")
    except OSError as e:  # reading vocab.txt, writing OUT_DIR
        sys.exit(f"import_hf.py: {e.filename or a.out_dir}: {e.strerror or e}")
    except Exception as e:  # a bug of this script, as the C++ programs' "internal error"
        sys.exit(f"import_hf.py: internal error: {type(e).__name__}: {first_line(e)}")


if __name__ == "__main__":
    main()
