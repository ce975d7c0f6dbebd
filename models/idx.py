"""The IDX file format (MNIST's): header, declared size checked against the memory budget, data."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .limits import check_bytes


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions,
    then one big-endian uint32 per dimension. The declared size is checked against
    the memory budget (:mod:`models.limits`) before the data is read, and the file
    must hold exactly that much data, so a gzip bomb is never inflated past it.
    """
    path = Path(path)
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    try:
        with _open_maybe_gzip(path) as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DatasetError(f"{path}: not an IDX file (bad magic number)")
            if head[2] not in dtypes:
                raise DatasetError(f"{path}: unknown IDX type code 0x{head[2]:02x}")
            ndim = head[3]
            raw_dims = fh.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DatasetError(f"{path}: truncated IDX header")
            dims = tuple(int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            dt = np.dtype(dtypes[head[2]])
            need = int(np.prod(dims, dtype=np.float64)) * dt.itemsize
            check_bytes(need, f"{path}: IDX data of shape {dims}")
            data = fh.read(need)
            extra = len(fh.read(1))
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read IDX file ({err})") from None
    if len(data) != need or extra:
        raise DatasetError(
            f"{path}: truncated or corrupt IDX file: header says {need} data bytes, "
            f"file has {len(data) if not extra else 'more'}"
        )
    return np.frombuffer(data, dtype=dt).reshape(dims).astype(dt.newbyteorder("="))
