"""dev/tensor_file.py: writes and reads the named-tensor files of common/tensor_file.h
(magic 'WRTENSOR', then per tensor: name, dtype 0=float32 / 1=int32, shape, row-major data)."""
import struct

import numpy as np

MAGIC = b"WRTENSOR"
DTYPES = {0: np.float32, 1: np.int32}


def save(path, tensors):
    """tensors: dict name -> array-like (float arrays stored as float32, integer ones as int32)."""
    with open(path, "wb") as f:
        f.write(MAGIC)
        for name in sorted(tensors):
            a = np.asarray(tensors[name])
            code = 1 if np.issubdtype(a.dtype, np.integer) else 0
            a = np.ascontiguousarray(a, dtype=DTYPES[code])
            raw = name.encode("utf-8")
            f.write(struct.pack("<I", len(raw)) + raw + struct.pack("<II", code, a.ndim))
            f.write(struct.pack(f"<{a.ndim}q", *a.shape))
            f.write(a.tobytes())


def load(path):
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == MAGIC, f"{path}: not a tensor file"
    pos = 8
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4:pos + 4 + n].decode("utf-8")
        pos += 4 + n
        code, ndim = struct.unpack_from("<II", data, pos)
        pos += 8
        shape = struct.unpack_from(f"<{ndim}q", data, pos)
        pos += 8 * ndim
        count = int(np.prod(shape)) if ndim else 1
        out[name] = np.frombuffer(data, DTYPES[code], count, pos).reshape(shape)
        pos += 4 * count
    return out
