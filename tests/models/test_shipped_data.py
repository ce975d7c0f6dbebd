"""The MNIST subset shipped in the package: checksums, equality with the IDX files, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from models import shipped_data
from models.datasets import load_mnist
from models.errors import DatasetError
from tests.conftest import DATA, need


def test_shipped_subset_equals_the_idx_files():
    need(DATA / "mnist" / "t10k-images-idx3-ubyte.gz")
    x, y = load_mnist(DATA / "mnist", start=8000, stop=8500)
    imgs, labels = shipped_data.load_shipped_mnist()
    assert imgs.shape == (500, 28, 28) and imgs.dtype == np.uint8
    np.testing.assert_array_equal((imgs.astype(np.float32) / 255.0)[:, None], x)
    np.testing.assert_array_equal(labels, y)
    assert np.bincount(labels, minlength=10).min() > 30  # every class present


def test_fallback_when_no_idx_files(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNCHIP_DATA", str(tmp_path))  # an empty shared folder
    x, y = load_mnist(start=8100, stop=8110)
    imgs, labels = shipped_data.load_shipped_mnist(8100, 8110)
    np.testing.assert_array_equal(x[:, 0], imgs.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(DatasetError, match=r"ships only test\[8000:8500\]"):
        load_mnist(start=0, stop=10)
    with pytest.raises(DatasetError, match="no MNIST file"):
        load_mnist(tmp_path, start=8000, stop=8010)  # an explicit folder never falls back


def test_checksum_guards_the_file(monkeypatch, tmp_path):
    import shutil

    bad = tmp_path / shipped_data.SHIPPED_MNIST.name
    shutil.copy(shipped_data.SHIPPED_MNIST_META, tmp_path / shipped_data.SHIPPED_MNIST_META.name)
    imgs, labels = shipped_data.load_shipped_mnist()
    imgs = imgs.copy()
    imgs[0, 0, 0] ^= 1
    np.savez_compressed(bad, images=imgs, labels=labels)
    monkeypatch.setattr(shipped_data, "SHIPPED_MNIST", bad)
    monkeypatch.setattr(shipped_data, "SHIPPED_MNIST_META", tmp_path / shipped_data.SHIPPED_MNIST_META.name)
    with pytest.raises(DatasetError, match="images checksum differs"):
        shipped_data.load_shipped_mnist()
