"""Tampered mapping folders: refused with one line naming the file and field, before any kernel runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mapper.mapfile import MappingFileError
from mapper.mapping import Mapping, map_model
from models import read_nir
from models.zoo.catalog import trained_path
from hwsim.chip import load_chip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mf") / "m"
    map_model(read_nir(trained_path("mnist_mlp")), load_chip("tianjic"), model="mnist_mlp").save(folder)
    return folder


@pytest.fixture
def copy(saved, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(saved, dst)
    return dst


def _edit_npz(folder, key, change):
    p = folder / "mapping.npz"
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = change(arrays[key].copy())
    np.savez_compressed(p, **arrays)
    doc = json.loads((folder / "mapping.json").read_text())
    doc["npz_sha256"] = ""  # an attacker can drop the hash; the checks must still hold
    (folder / "mapping.json").write_text(json.dumps(doc))


def _edit_json(folder, change):
    doc = json.loads((folder / "mapping.json").read_text())
    change(doc)
    (folder / "mapping.json").write_text(json.dumps(doc))


def _set(a, idx, v):
    a[idx] = v
    return a


@pytest.mark.parametrize("key, change, words", [
    ("placement.positions", lambda a: _set(a, 0, [0, 500, 500]), "core 0 has x = 500, outside 0..11"),
    ("placement.positions", lambda a: _set(a, 1, a[0]), "cores 0 and 1 sit on the same router"),
    ("placement.positions", lambda a: a[:3], r"placement.positions is \(3, 3\)"),
    ("flows.dst.indices", lambda a: _set(a, 0, 50), "flows.dst.indices' has values outside 0..9"),
    ("flows.dst.indptr", lambda a: a[::-1].copy(), "not a CSR pointer"),
    ("flows.src", lambda a: _set(a, 0, -3), "flows.src' has values outside"),
    ("flows.rate", lambda a: _set(a.astype(np.float64), 0, np.nan), "NaN or infinite"),
    ("flows.rate", lambda a: _set(a.astype(np.float64), 0, -1.0), "flows.rate must be finite and >= 0"),
    ("flows.kind", lambda a: _set(a, 0, 7), "flows.kind' has values outside 0..1"),
])
def test_tampered_arrays(copy, key, change, words):
    _edit_npz(copy, key, change)
    with pytest.raises(MappingFileError, match=words):
        Mapping.load(copy)


@pytest.mark.parametrize("change, words", [
    (lambda d: d["tiles"][0].__setitem__("n_axons", 16), "tile 0 claims 16 axons"),
    (lambda d: d["chip"]["mesh"].update(width=1, height=1), "placement mesh 12x13 differs from the chip's 1x1"),
    (lambda d: d["chip"]["core"].update(membrane_bits=8, state_bits_per_neuron=None),
     "quantised with membrane_bits=16, the chip has core.membrane_bits=8"),
    (lambda d: d.__setitem__("multicast", "broadcast"), "multicast 'broadcast' is not one of"),
    (lambda d: d["cores"][1].extend(d["cores"][0]), "is placed on two cores"),
])
def test_tampered_json(copy, change, words):
    _edit_json(copy, change)
    with pytest.raises(MappingFileError, match=words):
        Mapping.load(copy)


def test_mixed_pair_is_refused(saved, tmp_path):
    other = tmp_path / "o"
    map_model(read_nir(trained_path("mnist_mlp")), load_chip("tianjic"), placement="hilbert",
              model="mnist_mlp").save(other)
    mixed = tmp_path / "mixed"
    shutil.copytree(saved, mixed)
    shutil.copy(other / "mapping.npz", mixed / "mapping.npz")
    with pytest.raises(MappingFileError, match="does not belong to mapping.json"):
        Mapping.load(mixed)


def test_zip_bomb_npz_is_refused_before_inflating(copy):
    from models import limits

    limits.set_max_bytes(1 << 20)
    try:
        with pytest.raises(Exception, match="uncompressed arrays: .* more than the memory budget"):
            Mapping.load(copy)
    finally:
        limits.set_max_bytes(None)


def test_cli_run_on_tampered_mapping_exits_cleanly(copy):
    """The case that corrupted memory: a core placed off the mesh, then `snnchip run`."""
    _edit_npz(copy, "placement.positions", lambda a: _set(a, 0, [0, 500, 500]))
    p = subprocess.run([sys.executable, "-m", "snnchip.cli", "run", str(copy), "--samples", "2"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "placement.positions" in lines[0] and "Traceback" not in p.stderr
