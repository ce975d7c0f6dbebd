"""`snnchip run MAPPING`: the chip simulator on a saved mapping, through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, need

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "snnchip.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def mlp_mapping(tmp_path_factory):
    need(DATA / "mnist")
    out = tmp_path_factory.mktemp("run") / "mlp_map"
    p = cli("map", "mnist_mlp", "-o", out)
    assert p.returncode == 0, p.stderr
    return out


def test_run_matches_integer_reference(mlp_mapping, tmp_path):
    from hwsim.result import RunResult
    from mapper.mapping import Mapping
    from models.datasets import mnist_sequences
    from models.intref import simulate_int

    p = cli("run", mlp_mapping, "--samples", 50, "--batch", 16, "--timing-samples", 2, "-o", tmp_path / "res")
    assert p.returncode == 0, p.stderr
    got = re.search(r"accuracy: (\d+)/(\d+) = ([\d.]+) %", p.stdout)
    assert got, p.stdout
    m = Mapping.load(mlp_mapping)
    meta = m.net.metadata
    seq = mnist_sequences("direct", int(meta["steps"]), start=8000, samples=50)
    ref = simulate_int(m.net, seq.inputs, reset=meta["reset"], spikes=meta["spikes"])
    correct = int((ref.predict() == seq.labels).sum())
    assert (int(got.group(1)), int(got.group(2))) == (correct, 50)
    assert f"{100.0 * correct / 50:.2f}" == got.group(3)
    for word in ("cycles/step", "us per inference", "input events", "ACs", "MACs", "neuron updates",
                 "spikes", "packets", "flits", "flit-hops", "busy cycles"):
        assert word in p.stdout, word
    # the saved result: 50 samples merged from 4 batches, spike for spike the reference's output
    r = RunResult.load(tmp_path / "res")
    assert r.output.shape[:2] == (int(meta["steps"]), 50)
    np.testing.assert_array_equal(r.output, ref.output)
    assert r.timing["samples"] == 2 and r.timing["step_cycles"].shape == (2, int(meta["steps"]))
    assert r.meta["accuracy"] == correct / 50


def test_run_default_output_folder(mlp_mapping):
    p = cli("run", mlp_mapping, "--samples", 5, "--steps", 4)
    assert p.returncode == 0, p.stderr
    assert (mlp_mapping / "run" / "result.json").exists() and (mlp_mapping / "run" / "result.npz").exists()


@pytest.mark.parametrize("extra, words", [
    (["--steps", "0"], "--steps"),
    (["--samples", "0"], "--samples"),
    (["--steps", "-2"], "--steps"),
    (["--data", "nmnist", "--samples", "2"], "model input"),
])
def test_run_bad_input(mlp_mapping, extra, words):
    if "nmnist" in extra:
        need(DATA / "nmnist_small" / "test100.txt")
    p = cli("run", mlp_mapping, *extra)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_run_missing_mapping(tmp_path):
    p = cli("run", tmp_path / "no_such_mapping")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_mapping" in lines[0] and "Traceback" not in p.stderr


def test_run_membrane_floor(mlp_mapping, tmp_path):
    """``--v-min`` reaches the chip and the integer-reference check; a bad floor is one line."""
    from hwsim.result import RunResult
    from mapper.mapping import Mapping
    from models.datasets import mnist_sequences
    from models.intref import simulate_int

    p = cli("run", mlp_mapping, "--samples", 12, "--steps", 16, "--v-min=-threshold", "--check", 12,
            "-o", tmp_path / "res")
    assert p.returncode == 0, p.stderr
    assert "v_min=-threshold" in p.stdout and "identical to the integer reference: yes" in p.stdout
    m = Mapping.load(mlp_mapping)
    seq = mnist_sequences("direct", 16, start=8000, samples=12)
    meta = m.net.metadata
    ref = simulate_int(m.net, seq.inputs, reset=meta["reset"], spikes=meta["spikes"], v_min="-threshold")
    r = RunResult.load(tmp_path / "res")
    np.testing.assert_array_equal(r.output, ref.output)
    assert r.meta["semantics"]["v_min"] == "-threshold"
    p = cli("run", mlp_mapping, "--samples", 2, "--v-min", "0.5")
    assert p.returncode == 2 and "--v-min must be" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_run_memory_budget_chunks_samples(mlp_mapping, tmp_path):
    """``--memory-gb`` sized (with :func:`hwsim.engine.samples_per_call`'s accounting) to
    hold the kernel tables, one thread and 1 sample's outputs and recordings: 10 samples
    run as 10 calls, with the same outputs, recordings and counters as the default
    budget's calls of 2 or more (an eighth of the samples, at least the Numba threads)."""
    from hwsim.engine import samples_per_call
    from hwsim.program import compile as compile_program
    from hwsim.result import RunResult
    from mapper.mapping import Mapping

    m = Mapping.load(mlp_mapping)
    meta = m.net.metadata
    T = int(meta["steps"])
    prog = compile_program(m)
    big = 1 << 34
    kw = dict(record="all", reset=meta["reset"], spikes=meta["spikes"], timing=True)
    n_big = samples_per_call(prog, T, max_bytes=big, **kw)
    R = int(prog.pop_off[-1] - prog.pop_off[1])
    per_sample = 8 * T * (int(prog.pop_size[prog.output_pop]) + 2 * R + int(prog.pop_size[0]))
    budget = big - (n_big - 1) * per_sample
    assert samples_per_call(prog, T, max_bytes=budget, **kw) == 1
    args = ("run", mlp_mapping, "--samples", 10, "--record", "all", "--check", 0)
    p = cli(*args, "--memory-gb", repr(budget / (1 << 30)), "-o", tmp_path / "small")
    assert p.returncode == 0, p.stderr
    assert "1 sample(s) per call, 10 call(s)" in p.stdout, p.stdout
    assert "chip simulation" in p.stderr  # the progress bar
    q = cli(*args, "-o", tmp_path / "one")
    assert q.returncode == 0, q.stderr
    per_call = int(re.search(r"memory budget [^:]*: (\d+) sample\(s\) per call", q.stdout).group(1))
    assert per_call >= 2, q.stdout  # an eighth of the samples, at least the Numba threads
    a, b = RunResult.load(tmp_path / "small"), RunResult.load(tmp_path / "one")
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.counters, b.counters)
    assert set(a.spikes) == set(b.spikes) and len(a.spikes) == prog.n_pops - 1
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k])
        np.testing.assert_array_equal(a.membrane[k], b.membrane[k])
    p = cli("run", mlp_mapping, "--samples", 2, "--memory-gb", "0")
    assert p.returncode == 2 and "--memory-gb must be > 0" in p.stderr
