"""Folders written as a unit. Killed writers: `map -o` and `run -o` killed at random points leave the old complete folder or the
new complete one, never a mix; the next writer removes a killed writer's leftovers."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwsim.result import RunResult
from mapper.mapping import Mapping

ROOT = Path(__file__).resolve().parents[2]


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "snnchip.cli", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _cli(*args):
    p = subprocess.run([sys.executable, "-m", "snnchip.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


def _kill_at(proc, delay: float, sig=signal.SIGKILL) -> None:
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=60)


@pytest.mark.slow
def test_killed_map_leaves_old_or_new(tmp_path):
    out = tmp_path / "m"
    _cli("map", "mnist_mlp", "--placement", "hilbert", "-o", out)
    t0 = time.perf_counter()
    _cli("map", "mnist_mlp", "-o", tmp_path / "timing")
    total = time.perf_counter() - t0
    rng = random.Random(0)
    for k in range(8):
        proc = _start("map", "mnist_mlp", "--placement", "rowmajor" if k % 2 else "hilbert", "-o", out)
        _kill_at(proc, rng.uniform(0.3 * total, 1.1 * total))
        m = Mapping.load(out)  # always loads: the old or the new mapping, complete
        assert m.placement.strategy in ("rowmajor", "hilbert")
    _cli("map", "mnist_mlp", "-o", out)  # the next writer cleans what killed ones left
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert Mapping.load(out).placement.strategy == "rowmajor"


@pytest.mark.slow
def test_terminated_run_leaves_no_temporaries(tmp_path):
    m = tmp_path / "m"
    _cli("map", "mnist_mlp", "-o", m)
    _cli("run", m, "--samples", "5", "-o", tmp_path / "r")
    before = RunResult.load(tmp_path / "r")
    proc = _start("run", m, "--samples", "400", "--timing-samples", "3", "-o", tmp_path / "r")
    _kill_at(proc, 4.0, signal.SIGTERM)
    after = RunResult.load(tmp_path / "r")  # old or new, complete
    assert after.output.shape[1] in (before.output.shape[1], 400)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_second_writer_is_refused(tmp_path):
    from models.fileio import AtomicFolder, FolderBusyError

    with AtomicFolder(tmp_path / "x"):
        with pytest.raises(FolderBusyError, match="another snnchip process is writing this folder"):
            AtomicFolder(tmp_path / "x")
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_report_refuses_a_run_whose_mapping_changed(tmp_path, capsys):
    from snnchip.cli import main

    m = tmp_path / "m"
    assert main(["map", "mnist_mlp", "-o", str(m)]) == 0
    assert main(["run", str(m), "--samples", "3", "--check", "0"]) == 0  # default output m/run
    assert main(["report", str(m / "run"), "-o", str(tmp_path / "rep1"), "--table", "loihi"]) == 0
    assert main(["map", "mnist_mlp", "--placement", "hilbert", "-o", str(m)]) == 0  # run/ is kept, now stale
    assert (m / "run" / "result.json").exists()
    capsys.readouterr()
    assert main(["report", str(m / "run"), "-o", str(tmp_path / "rep2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "made with a different mapping" in err[0]
    assert not (tmp_path / "rep2").exists()


@pytest.mark.slow
def test_killed_report_leaves_old_or_new(tmp_path):
    m = tmp_path / "m"
    _cli("map", "mnist_mlp", "-o", m)
    _cli("run", m, "--samples", "3", "--check", "0", "-o", tmp_path / "r")
    rep = tmp_path / "rep"
    _cli("report", tmp_path / "r", "-o", rep, "--table", "loihi")
    before = sorted(p.name for p in rep.iterdir())
    rng = random.Random(1)
    for _ in range(4):
        proc = _start("report", tmp_path / "r", "-o", rep)
        _kill_at(proc, rng.uniform(1.0, 6.0))
        names = sorted(p.name for p in rep.iterdir())
        assert names == before or {"energy.md", "energy.json", "energy.tex"} <= set(names)
        assert "horowitz45-fp32" in (rep / "energy.md").read_text() or names == before
    _cli("report", tmp_path / "r", "-o", rep, "--table", "loihi")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
