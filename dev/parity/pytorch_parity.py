"""dev/parity/pytorch_parity.py: the model-against-PyTorch numbers the README quotes, measured.

Runs the parity tests of tests/test_model.cpp (Hugging Face BertForMaskedLM in double precision,
tests/fixtures/bert/mlm_reference.bin, as the reference; the CPU model in fp32), reads the errors
they print, and rewrites the `pytorch_parity` section of README.md with them, so the README never
states a number that was typed instead of measured.

    make build/test_wellread && python3 dev/parity/pytorch_parity.py
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "dev"))
from markdown_section import cpu_model, markers, replace_section  # noqa: E402

TESTS = "Model.ForwardAndBackwardMatchPyTorch:Model.TenAdamWStepsMatchPyTorch"
PATTERNS = {  # what the tests print -> the number
    "logits": r"^logits: .* rel err (\S+)$",
    "loss": r"^loss: .* rel err (\S+)$",
    "gradient": r"^gradients: worst (\S+), rel err (\S+) ",
    "adamw": r"^10 AdamW steps: .* worst rel err (\S+) ",
}


def measure(binary):
    out = subprocess.run([binary, f"--gtest_filter={TESTS}"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"pytorch_parity.py: {binary}: the parity tests failed:\n{out.stdout[-3000:]}{out.stderr[-2000:]}")
    found = {}
    for key, pattern in PATTERNS.items():
        m = re.search(pattern, out.stdout, re.M)
        if not m:
            sys.exit(f"pytorch_parity.py: {binary}: no '{key}' line in the tests' output (did they change?)")
        found[key] = m.groups()
    return found


def sci(text):
    """'5.07e-07' -> '5.07e-7'; '0.00e+00' -> '0'."""
    value = float(text)
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "test_wellread"))
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    args = ap.parse_args()
    n = measure(args.binary)
    begin, end = markers("pytorch_parity")
    text = (f"{begin}\n"
            f"**The model against PyTorch** (`tests/test_model.cpp`, Hugging Face `BertForMaskedLM` in double\n"
            f"precision as the reference, the CPU model in fp32): relative error {sci(n['logits'][0])} on the logits,\n"
            f"{sci(n['loss'][0])} on the loss, at most {sci(n['gradient'][1])} on every parameter gradient (the worst:\n"
            f"`{n['gradient'][0]}`), and {sci(n['adamw'][0])} on the losses of 10 AdamW steps. Measured on\n"
            f"{cpu_model()} by `dev/parity/pytorch_parity.py`, which rewrites this paragraph (the last bits\n"
            f"differ between CPUs: the kernels differ by instruction set; the tests' bounds are 1e-5 and 1e-4).\n"
            f"{end}")
    replace_section(args.readme, begin, end, text)
    print(text)


if __name__ == "__main__":
    main()
