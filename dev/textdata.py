"""dev/textdata.py: helpers the dev/ fixture scripts share: reading text lines exactly as the
C++ LineReader does, and the FNV-1a hashes the C++ code uses (common/util.cpp)."""
import gzip

FNV_OFFSET, FNV_PRIME, MASK64 = 0xCBF29CE484222325, 0x100000001B3, 0xFFFFFFFFFFFFFFFF


def read_lines(path):
    """Raw byte lines of a plain or .gz file: split at b'\\n', one trailing b'\\r' removed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [l[:-1] if l.endswith(b"\r") else l for l in lines]


def fnv1a64(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def vocab_fingerprint(tokens):
    """wr::vocab_fingerprint: FNV-1a over every token's UTF-8 bytes followed by '\\n'."""
    h = FNV_OFFSET
    for t in tokens:
        h = fnv1a64(t.encode("utf-8") + b"\n", h)
    return h
