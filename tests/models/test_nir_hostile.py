"""Tampered .nir files: every one gets a typed error naming the file and the HDF5 path or field,
nothing outside the named file is read, and declared sizes are checked before reading."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from models import limits, read_nir
from models.errors import NIRFormatError, SizeLimitError
from models.zoo.catalog import trained_path

W1 = "node/nodes/fc1/weight"


@pytest.fixture
def nir_copy(tmp_path):
    p = tmp_path / "m.nir"
    shutil.copy(trained_path("mnist_mlp"), p)
    return p


def _replace(path, key, make):
    with h5py.File(path, "a") as f:
        del f[key]
        make(f, key)


def test_external_link_is_refused(nir_copy, tmp_path):
    other = tmp_path / "secret.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.ones((400, 784), np.float32)
    _replace(nir_copy, W1, lambda f, k: f.__setitem__(k, h5py.ExternalLink(str(other), "w")))
    with pytest.raises(NIRFormatError, match=r"m\.nir: /node/nodes/fc1/weight: is an HDF5 external link"):
        read_nir(nir_copy)


def test_soft_link_is_refused(nir_copy):
    _replace(nir_copy, W1, lambda f, k: f.__setitem__(k, h5py.SoftLink("/node/nodes/fc2/weight")))
    with pytest.raises(NIRFormatError, match="soft link"):
        read_nir(nir_copy)


def test_external_storage_is_refused(nir_copy, tmp_path):
    raw = tmp_path / "passwd.bin"
    raw.write_bytes(b"root:x:0:0" * 200000)
    _replace(nir_copy, W1, lambda f, k: f.create_dataset(k, shape=(400, 784), dtype="f4",
                                                         external=[(str(raw), 0, 400 * 784 * 4)]))
    with pytest.raises(NIRFormatError, match="stores its data in an external file"):
        read_nir(nir_copy)


def test_virtual_dataset_is_refused(nir_copy, tmp_path):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["w"] = np.ones((400, 784), np.float32)
    layout = h5py.VirtualLayout(shape=(400, 784), dtype="f4")
    layout[:] = h5py.VirtualSource(str(src), "w", shape=(400, 784))
    _replace(nir_copy, W1, lambda f, k: f.create_virtual_dataset(k, layout))
    with pytest.raises(NIRFormatError, match="virtual dataset"):
        read_nir(nir_copy)


def test_lazily_filled_dataset_is_checked_before_reading(nir_copy):
    # 20 GB declared, a few KB on disk (chunked, never written)
    _replace(nir_copy, W1, lambda f, k: f.create_dataset(k, shape=(400, 784 * 16000), dtype="f8",
                                                         chunks=(1, 1024), fillvalue=0.5))
    assert nir_copy.stat().st_size < 2_000_000
    with pytest.raises(SizeLimitError, match=r"fc1/weight .*declared shape \(400, 12544000\).*SNNCHIP_MAX_BYTES"):
        read_nir(nir_copy)


def test_budget_is_settable(nir_copy):
    limits.set_max_bytes(100_000)
    try:
        with pytest.raises(SizeLimitError, match="memory budget of 97.7 KiB"):
            read_nir(nir_copy)
    finally:
        limits.set_max_bytes(None)
    assert read_nir(nir_copy).nodes["fc1"].weight.shape == (400, 784)


def test_complex_weights_are_an_error(nir_copy):
    _replace(nir_copy, W1, lambda f, k: f.__setitem__(k, np.ones((400, 784), np.complex64)))
    with pytest.raises(NIRFormatError, match="fc1/weight: complex values"):
        read_nir(nir_copy)


@pytest.mark.parametrize("field, value, words", [
    ("dt", "fast", "dt must be a positive finite number"),
    ("dt", -1.0, "dt must be a positive finite number"),
    ("steps", "many", "steps must be a positive integer"),
    ("steps", 0, "steps must be a positive integer"),
    ("reset", "sometimes", "reset must be one of zero, subtract"),
])
def test_metadata_values_are_type_checked(nir_copy, field, value, words):
    _replace(nir_copy, f"node/metadata/{field}", lambda f, k: f.__setitem__(k, value))
    with pytest.raises(NIRFormatError, match=words):
        read_nir(nir_copy)


def test_flattened_name_collision_is_an_error(tmp_path):
    import nir

    inner = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                                "b": nir.Affine(weight=np.ones((3, 3)), bias=np.zeros(3)),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "b"), ("b", "output")], type_check=False)
    outer = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "a": inner,
                                "a.b": nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3)),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "a"), ("a", "a.b"), ("a.b", "output")], type_check=False)
    p = tmp_path / "clash.nir"
    nir.write(p, outer)
    with pytest.raises(NIRFormatError, match="node name 'a.b' occurs twice"):
        read_nir(p)


def test_cli_prints_one_line(nir_copy, tmp_path, capsys):
    from snnchip.cli import main

    _replace(nir_copy, W1, lambda f, k: f.__setitem__(k, h5py.SoftLink("/node/nodes/fc2/weight")))
    assert main(["info", str(nir_copy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "soft link" in err[0] and "Traceback" not in err[0]
