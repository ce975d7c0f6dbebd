"""Tampered data files: typed errors naming the file, sizes checked before allocation."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from models import limits
from models.datasets import load_mnist, load_nmnist, read_idx, read_nmnist_events
from models.errors import DatasetError, SizeLimitError


def _idx(path, arr, *, dims=None, gz=True, extra=b""):
    dims = arr.shape if dims is None else dims
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    head = bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    data = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes() + extra
    (gzip.open if gz else open)(path, "wb").write(data)
    return path


def _mnist(folder, images, labels):
    folder.mkdir(exist_ok=True)
    _idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    return folder


def test_gzip_bomb_is_refused_before_inflating(tmp_path):
    # the header declares 4 GB; the compressed file is a few KB
    head = bytes([0, 0, 0x08, 3]) + (1_000_000).to_bytes(4, "big") + (64).to_bytes(4, "big") * 2
    with gzip.open(tmp_path / "bomb.gz", "wb") as f:
        f.write(head)
        f.write(bytes(1 << 20))
    limits.set_max_bytes(1 << 30)
    try:
        with pytest.raises(SizeLimitError, match=r"bomb\.gz: IDX data of shape \(1000000, 64, 64\)"):
            read_idx(tmp_path / "bomb.gz")
    finally:
        limits.set_max_bytes(None)


def test_trailing_data_is_corrupt(tmp_path):
    _idx(tmp_path / "x.gz", np.zeros((2, 28, 28), np.uint8), extra=b"\0" * 1000)
    with pytest.raises(DatasetError, match="truncated or corrupt IDX"):
        read_idx(tmp_path / "x.gz")


def test_mnist_with_wrong_image_size_or_labels(tmp_path):
    bad_shape = _mnist(tmp_path / "a", np.zeros((3, 14, 56), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match=r"shape \(N, 28, 28\).*\(3, 14, 56\)"):
        load_mnist(bad_shape)
    bad_label = _mnist(tmp_path / "b", np.zeros((3, 28, 28), np.uint8), np.array([1, 99, 2], np.uint8))
    with pytest.raises(DatasetError, match="label 99 of image 1 is not a digit"):
        load_mnist(bad_label)


def _bs2(path, events):
    raw = bytearray()
    for x, y, p, t in events:
        raw += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    path.write_bytes(bytes(raw))
    return path


def test_empty_and_time_reversed_recordings(tmp_path):
    with pytest.raises(DatasetError, match="empty N-MNIST file"):
        read_nmnist_events(_bs2(tmp_path / "e.bs2", []))
    with pytest.raises(DatasetError, match="event 2 at 5 us comes before event 1 at 900 us"):
        read_nmnist_events(_bs2(tmp_path / "r.bs2", [(1, 1, 0, 10), (2, 2, 1, 900), (3, 3, 0, 5)]))


def test_long_time_span_is_checked_before_allocation(tmp_path):
    folder = tmp_path / "nm"
    folder.mkdir()
    (folder / "test100.txt").write_text("1 3\n2 4\n")
    _bs2(folder / "1.bs2", [(1, 1, 0, 0), (2, 2, 1, (1 << 23) - 1)])  # 8,389 frames of 1 ms
    _bs2(folder / "2.bs2", [(1, 1, 0, 0), (2, 2, 1, 3000)])
    limits.set_max_bytes(50 << 20)
    try:
        with pytest.raises(SizeLimitError, match="8389 frames"):
            load_nmnist(folder)
    finally:
        limits.set_max_bytes(None)
    seq = load_nmnist(folder, n_bins=10)  # rebinned: small, every event kept
    assert seq.inputs.shape[:2] == (10, 2) and seq.inputs.sum() == 4
