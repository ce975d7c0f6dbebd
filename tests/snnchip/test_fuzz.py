"""A fuzz corpus of malformed files run through the commands (issue 18's classes):
NIR files (byte flips, truncations, edited fields and metadata), chip files, mapping
folders (edited arrays and JSON, truncated npz), run folders and N-MNIST event files.

Every case runs ``snnchip`` in one child process (a crash or memory corruption kills
it, and fails the test); each must exit 0 or 2 with at most one line on stderr,
never a traceback and never an "unexpected" internal error, and leave no temporary
file behind. The corpus is generated from a fixed seed.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from models.zoo.catalog import trained_path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = r'''
import contextlib, io, json, os, sys
from snnchip.cli import main
out = []
for case in json.load(open(sys.argv[1])):
    if case.get("env_data"):
        os.environ["SNNCHIP_DATA"] = case["env_data"]
    else:
        os.environ.pop("SNNCHIP_DATA", None)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(case["argv"])
        except SystemExit as e:  # argparse
            rc = e.code
    out.append({"name": case["name"], "rc": rc, "stderr": err.getvalue()})
json.dump(out, open(sys.argv[2], "w"))
'''

WEIRD = ["fast", -1, 0, 1e400, float("nan"), 10 ** 30, [1, 2], {"a": 1}, None, True, "12:30", ""]


def _nir_cases(base: Path, folder: Path, rng: random.Random) -> list:
    cases = []
    raw = base.read_bytes()
    for k in range(6):  # byte flips
        b = bytearray(raw)
        for _ in range(rng.randint(1, 40)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        p = folder / f"flip{k}.nir"
        p.write_bytes(bytes(b))
        cases.append(p)
    for k, frac in enumerate((0.0, 0.01, 0.3, 0.7, 0.999)):  # truncations
        p = folder / f"trunc{k}.nir"
        p.write_bytes(raw[: int(len(raw) * frac)])
        cases.append(p)
    fields = ["node/nodes/fc1/weight", "node/nodes/fc1/bias", "node/nodes/if1/v_threshold", "node/nodes/if1/r",
              "node/nodes/input/shape", "node/nodes/fc2/type", "node/edges", "node/metadata/dt",
              "node/metadata/steps", "node/metadata/encoding", "node/type"]
    values = [np.array([b"x", b"y"]), np.full((400, 784), np.nan, np.float32), np.zeros((3, 3)), np.array(-5.0),
              np.bytes_(b"IF"), np.array([1e30, -1e30]), np.zeros((0,)), np.array(2 ** 62, np.int64),
              np.bytes_(b"Conv9d")]
    for k in range(16):
        p = folder / f"edit{k}.nir"
        shutil.copy(base, p)
        key = rng.choice(fields)
        with h5py.File(p, "a") as f:
            if key in f:
                del f[key]
            if rng.random() < 0.85:
                f[key] = rng.choice(values)
        cases.append(p)
    return cases


def _chip_cases(folder: Path, rng: random.Random) -> list:
    fields = [("core", "axons"), ("core", "weight_bits"), ("core", "membrane_bits"), ("mesh", "width"),
              ("noc", "multicast"), ("timing", "clock_hz"), ("timing", "step_cycles"), ("core", "neuron_models")]
    cases = []
    for k in range(12):
        sec, name = rng.choice(fields)
        value = rng.choice(WEIRD)
        p = folder / f"chip{k}.json"
        doc = {"base": "tianjic", sec: {name: value}} if k % 2 else {"base": "nosuch"}
        try:
            p.write_text(json.dumps(doc))
        except ValueError:
            p.write_text('{"base": "tianjic", "core": {"axons": NaN}}')
        cases.append(p)
    (folder / "yaml0.yaml").write_text("base: tianjic\ncore:\n  axons: 12:30\n")
    (folder / "yaml1.yaml").write_text("base: tianjic\ncore: [1, 2\n")
    (folder / "yaml2.yaml").write_text("base: yaml2.yaml\n")
    (folder / "yaml3.yaml").write_text("core:\n  axons: " + "9" * 5000 + "\n")
    return cases + [folder / f"yaml{k}.yaml" for k in range(4)]


def _mapping_cases(good: Path, folder: Path, rng: random.Random) -> list:
    with np.load(good / "mapping.npz") as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads((good / "mapping.json").read_text())
    cases = []
    keys = sorted(arrays)
    for k in range(14):
        d = folder / f"map{k}"
        shutil.copytree(good, d)
        a = dict(arrays)
        key = rng.choice(keys)
        x = a[key]
        choice = rng.randrange(5)
        if choice == 0 and x.size:
            x = x.copy()
            x.reshape(-1)[rng.randrange(x.size)] = rng.choice([-1, 10 ** 6, 2 ** 40])
        elif choice == 1:
            x = x.astype(np.float64) * np.nan
        elif choice == 2:
            x = x.reshape(-1)[: max(0, x.size // 2)]
        elif choice == 3:
            x = np.array(["a"] * 3)
        else:
            x = np.zeros((2, 2, 2))
        a[key] = x
        np.savez_compressed(d / "mapping.npz", **a)
        j = json.loads(json.dumps(doc))
        j["npz_sha256"] = ""
        (d / "mapping.json").write_text(json.dumps(j))
        cases.append(d)
    for k in range(8):
        d = folder / f"mapj{k}"
        shutil.copytree(good, d)
        j = json.loads(json.dumps(doc))
        j["npz_sha256"] = ""
        target = rng.choice(["chip", "placement", "tiles", "cores", "flows", "net", "multicast", "fold"])
        if k % 3 == 0:
            j.pop(target, None)
        else:
            j[target] = rng.choice(WEIRD[:9]) if not isinstance(j.get(target), list) or k % 3 == 1 else j[target][:1]
        try:
            (d / "mapping.json").write_text(json.dumps(j))
        except ValueError:
            (d / "mapping.json").write_text("{")
        cases.append(d)
    d = folder / "map_trunc"
    shutil.copytree(good, d)
    (d / "mapping.npz").write_bytes((good / "mapping.npz").read_bytes()[:3000])
    cases.append(d)
    d = folder / "map_dir"
    shutil.copytree(good, d)
    (d / "mapping.json").unlink()
    (d / "mapping.json").mkdir()
    cases.append(d)
    return cases


def _run_cases(good_run: Path, folder: Path, rng: random.Random) -> list:
    cases = []
    doc = json.loads((good_run / "result.json").read_text())
    for k in range(6):
        d = folder / f"run{k}"
        shutil.copytree(good_run, d)
        j = json.loads(json.dumps(doc))
        key = rng.choice(["counter_names", "core_population", "meta", "timing", "format_version", "spikes"])
        j[key] = rng.choice(WEIRD[:9])
        try:
            (d / "result.json").write_text(json.dumps(j))
        except ValueError:
            (d / "result.json").write_text("[")
        cases.append(d)
    d = folder / "run_npz"
    shutil.copytree(good_run, d)
    with np.load(d / "result.npz") as z:
        a = {k: z[k] for k in z.files}
    a["counters"] = a["counters"][:, :2]
    np.savez(d / "result.npz", **a)
    cases.append(d)
    return cases


def _event_cases(folder: Path, rng: random.Random) -> list:
    d = folder / "data" / "nmnist_small"
    d.mkdir(parents=True)
    names = []
    for k in range(6):
        n = f"{k + 1}"
        size = rng.choice([0, 7, 5 * 50, 5 * 3])
        raw = bytearray(rng.randrange(256) for _ in range(size))
        (d / f"{n}.bs2").write_bytes(bytes(raw))
        names.append(f"{n} {rng.choice([1, 11, -4])}")
    (d / "test100.txt").write_text("\n".join(names) + "\n")
    return [d.parent]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    rng = random.Random(1234)
    from snnchip.cli import main

    good = root / "good_map"
    assert main(["map", "mnist_mlp", "-o", str(good)]) == 0
    assert main(["run", str(good), "--samples", "2", "--check", "0", "-o", str(root / "good_run")]) == 0
    files = root / "files"
    files.mkdir()
    cases = []
    for p in _nir_cases(trained_path("mnist_mlp"), files, rng):
        cases.append({"name": p.name, "argv": ["info", str(p)]})
        cases.append({"name": p.name + ":map", "argv": ["map", str(p), "-o", str(root / "out" / p.stem)]})
    for p in _chip_cases(files, rng):
        cases.append({"name": p.name, "argv": ["chip", "show", str(p)]})
    for d in _mapping_cases(good, files, rng):
        cases.append({"name": d.name, "argv": ["run", str(d), "--samples", "2", "--check", "1",
                                               "-o", str(root / "out" / d.name)]})
    for d in _run_cases(root / "good_run", files, rng):
        cases.append({"name": d.name, "argv": ["report", str(d), "--mapping", str(good), "--table", "loihi",
                                               "-o", str(root / "out" / d.name)]})
    cases.append({"name": "report-o-file", "argv": ["report", str(root / "good_run"), "--mapping", str(good),
                                                    "-o", str(good / "mapping.json")]})
    for d in _event_cases(files, rng):
        cases.append({"name": "events", "argv": ["simulate", "nir_cnn", "--data", "nmnist", "--samples", "2"],
                      "env_data": str(d)})
    return root, cases


def test_fuzz_corpus(corpus):
    root, cases = corpus
    spec = root / "cases.json"
    spec.write_text(json.dumps(cases))
    runner = root / "runner.py"
    runner.write_text(RUNNER)
    p = subprocess.run([sys.executable, str(runner), str(spec), str(root / "results.json")], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"the process crashed (rc {p.returncode}): {p.stderr[-2000:]}"
    results = json.loads((root / "results.json").read_text())
    assert len(results) == len(cases) > 100
    bad = []
    for r in results:
        lines = r["stderr"].strip().splitlines()
        lines = [ln for ln in lines if "%|" not in ln]  # progress bars
        if r["rc"] not in (0, 2) or len(lines) > 1 or "Traceback" in r["stderr"] or "unexpected" in r["stderr"]:
            bad.append((r["name"], r["rc"], r["stderr"][-400:]))
    assert bad == [], "\n".join(map(str, bad))
    refused = sum(r["rc"] == 2 for r in results)
    assert refused >= 0.6 * len(results)  # the corpus is mostly bad input; most must be refused
    left = [str(q.relative_to(root)) for q in root.rglob(".*") if q.is_file() or q.is_dir()]
    assert left == []
