"""Design-space sweeps and sample-sharded runs (snnchip/sweep.py, snnchip/cmd_sweep.py).

Small on purpose: mnist_mlp, 5-10 held-out samples of 8 steps, grids of 2-4 points;
one 2-worker LocalCluster for the module. The serial loop (no Dask) is the oracle.
"""

from __future__ import annotations

import argparse
import importlib
import os

import numpy as np
import pandas as pd
import pytest

import snnchip
from snnchip.cli import main

# the module, even once ``snnchip.sweep`` is also the API function (``from .sweep import sweep`` in __init__)
S = importlib.import_module("snnchip.sweep")

STEPS = 8
GRID4 = {"core.axons": [128, 256], "noc.multicast": ["unicast", "xy-tree"]}


@pytest.fixture(scope="module")
def shared():
    return S.prepare(["mnist_mlp"], "tianjic", samples=5, steps=STEPS)


@pytest.fixture(scope="module")
def client():
    c = S.connect(workers=2)
    yield c
    S.close(c)


@pytest.fixture(scope="module")
def serial4(shared):
    return S.run_sweep(shared, GRID4, progress=False)


def _rows(df):
    return df.drop(columns=["wall_s"]).to_dict("records")


def test_serial_rows_hold_the_measured_point(serial4):
    df = serial4
    assert list(df["core.axons"]) == [128, 128, 256, 256]
    assert list(df["noc.multicast"]) == ["unicast", "xy-tree"] * 2
    assert (df["status"] == "ok").all()
    # 784x400 + 400x10 on 128-row crossbars: ceil(784/128)=7 x ceil(400/256)=2 tiles + ceil(400/128)=4 -> 18
    assert list(df["cores"]) == [18, 18, 10, 10]
    assert list(df["crossbars"]) == [18, 18, 10, 10]
    assert list(df["chips"]) == [1, 1, 1, 1] and list(df["fold"]) == [1, 1, 1, 1]
    assert list(df["chip"]) == ["tianjic+core.axons=128+noc.multicast=unicast",
                                "tianjic+core.axons=128+noc.multicast=xy-tree",
                                "tianjic+core.axons=256+noc.multicast=unicast",
                                "tianjic+core.axons=256+noc.multicast=xy-tree"]
    # tianjic's fixed 5,050-cycle phase: 8 steps at 300 MHz = 134.67 us whatever the grid
    assert list(df["cycles_per_step"]) == [5050.0] * 4
    assert df["latency_us"].tolist() == pytest.approx([5050 * STEPS / 300.0] * 4)
    # the paper view counts MACs and ACs only: the same for every point of the same weights
    # (up to the order of a float sum over cores)
    assert df["energy_paper_pj"].tolist() == pytest.approx([df["energy_paper_pj"].iloc[0]] * 4, rel=1e-12)
    # the hardware view counts the NoC: unicast costs more than the xy-tree on the same cores
    hw = df["energy_hardware_pj"].tolist()
    assert hw[0] > hw[1] and hw[2] > hw[3]
    assert list(df["pareto"]) == [False, False, False, True]
    # each row equals the same point through the public API (map, run, estimate)
    m = snnchip.map("mnist_mlp", snnchip.load_chip("tianjic", {"core.axons": 256, "noc.multicast": "xy-tree"}))
    mi = next(iter(S.prepare(["mnist_mlp"], "tianjic", samples=5, steps=STEPS).models.values()))
    r = snnchip.run(m, mi.inputs)
    assert df["energy_hardware_pj"].iloc[3] == snnchip.estimate(r, m, view="hardware").total_pj
    assert df["accuracy"].iloc[3] == r.accuracy(mi.labels)


def test_two_workers_equal_the_serial_loop(shared, client, serial4, tmp_path):
    par = S.run_sweep(shared, GRID4, tmp_path, client=client, progress=False)
    assert _rows(par) == _rows(serial4)
    # the files hold the same rows, in grid order
    assert _rows(pd.read_parquet(tmp_path / "sweep.parquet")) == _rows(serial4)
    csv = pd.read_csv(tmp_path / "sweep.csv", dtype={"key": str})
    assert list(csv["key"]) == list(serial4["key"]) and list(csv["status"]) == ["ok"] * 4
    assert (tmp_path / "pareto.png").stat().st_size > 0 and (tmp_path / "pareto.pdf").stat().st_size > 0


def test_cli_on_an_existing_scheduler_equals_the_serial_loop(client, serial4, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", client.scheduler.address)
    assert main(["sweep", "mnist_mlp", "--grid", "core.axons=128,256", "--grid", "noc.multicast=unicast,xy-tree",
                 "--samples", "5", "--steps", str(STEPS), "-o", str(tmp_path)]) == 0
    assert f"4 to run on Dask {client.scheduler.address} (2 workers, 2 threads)" in capsys.readouterr().out
    assert _rows(pd.read_parquet(tmp_path / "sweep.parquet")) == _rows(serial4)
    assert len(client.nthreads()) == 2  # the command closed its client, not the cluster


def test_workers_import_this_tree(client):
    assert set(client.run(lambda: snnchip.__file__).values()) == {snnchip.__file__}


def test_a_worker_killed_mid_point_is_replaced_and_every_point_runs_once(shared, client, serial4, tmp_path):
    marker = tmp_path / "killed"
    victim = S.points({"model": ["mnist_mlp"], **GRID4})[1]

    def evaluate(point, key, shared_):
        if point == victim and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies in the middle of this point
        return S.evaluate_point(point, key, shared_)

    df = S.run_sweep(shared, GRID4, tmp_path / "out", client=client, progress=False, _evaluate=evaluate)
    assert marker.exists()
    assert list(df["status"]) == ["ok"] * 4
    assert df["key"].is_unique and len(df) == 4
    assert _rows(df) == _rows(serial4)


def test_rerun_recomputes_nothing_and_a_larger_grid_only_the_new_points(shared, tmp_path):
    calls = []

    def counting(point, key, shared_):
        calls.append(point["core.axons"])
        return S.evaluate_point(point, key, shared_)

    grid = {"core.axons": [128, 256]}
    first = S.run_sweep(shared, grid, tmp_path, progress=False, _evaluate=counting)
    assert calls == [128, 256]
    again = S.run_sweep(shared, grid, tmp_path, progress=False, _evaluate=counting)
    assert calls == [128, 256]
    assert again["wall_s"].tolist() == first["wall_s"].tolist()
    more = S.run_sweep(shared, {"core.axons": [64, 128, 256]}, tmp_path, progress=False, _evaluate=counting)
    assert calls == [128, 256, 64]
    assert list(more["core.axons"]) == [64, 128, 256]
    assert more["wall_s"].tolist()[1:] == first["wall_s"].tolist()
    # other samples are other points
    other = S.prepare(["mnist_mlp"], "tianjic", samples=4, steps=STEPS)
    S.run_sweep(other, grid, tmp_path, progress=False, _evaluate=counting)
    assert calls == [128, 256, 64, 128, 256]


def test_failing_points_record_their_error_and_the_rest_complete(tmp_path):
    small = snnchip.load_chip("tianjic", {"mesh.max_chips": 1})
    shared = S.prepare(["mnist_mlp"], small, samples=5, steps=STEPS)
    df = S.run_sweep(shared, {"core.axons": [8, 256], "core.weight_bits": [1, 8]}, tmp_path, progress=False)
    st = dict(zip(zip(df["core.axons"], df["core.weight_bits"]), df["status"]))
    assert st[(256, 8)] == "ok"
    assert st[(256, 1)] == "QuantizationError: weight_bits must be in [2, 32], got 1"
    assert st[(8, 1)].startswith("QuantizationError")
    assert st[(8, 8)] == ("MappingError: mnist_mlp: mapping violates 1 chip limit(s): cores: needs 246 cores, "
                          "system has 156 (1 chips x 12x13); cores by layer: if1 196, if2 50")
    assert df.loc[df["status"] != "ok", "cores"].isna().all()
    # failed points are finished points: a re-run skips them unless asked
    calls = []
    S.run_sweep(shared, {"core.axons": [8, 256], "core.weight_bits": [1, 8]}, tmp_path, progress=False,
                _evaluate=lambda p, k, s: calls.append(p) or S.evaluate_point(p, k, s))
    assert calls == []
    S.run_sweep(shared, {"core.axons": [8, 256], "core.weight_bits": [1, 8]}, tmp_path, progress=False,
                retry_failed=True, _evaluate=lambda p, k, s: calls.append(p) or S.evaluate_point(p, k, s))
    assert len(calls) == 3


def test_sharded_run_equals_the_one_process_run(client):
    from hwsim.engine import simulate

    m = snnchip.map("mnist_mlp", snnchip.load_chip("tianjic", {"core.axons": 128}))
    mi = next(iter(S.prepare(["mnist_mlp"], "tianjic", samples=10, steps=STEPS).models.values()))
    one = simulate(m, mi.inputs, reset="subtract", spikes="binary", timing=True, timing_samples=4)
    # 3 shards of 3, 3, 4 samples: the 4 timed samples span two shards
    got = S.run_sharded(m, mi.inputs, shards=3, client=client, timing_samples=4)
    assert np.array_equal(got.output, one.output)
    assert got.counter_names == one.counter_names and np.array_equal(got.counters, one.counters)
    assert got.totals() == one.totals()
    assert set(got.timing) == set(one.timing)
    for k, v in one.timing.items():
        assert np.array_equal(got.timing[k], v) if isinstance(v, np.ndarray) else got.timing[k] == v, k
    assert got.meta["samples"] == 10
    assert S.shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]


def test_pareto_front_by_hand():
    # (latency, energy): (1, 5) and (2, 3) and (4, 1) trade off; (3, 4) is beaten by (2, 3); NaN never counts
    x = [1, 2, 3, 4, np.nan, 2]
    y = [5, 3, 4, 1, 0, 3.5]
    assert S.pareto_front(x, y).tolist() == [True, True, False, True, False, False]


def test_grid_parsing_and_keys(tmp_path):
    assert S.parse_grid(["core.axons=128,256", "noc.multicast=unicast,xy-tree"]) == GRID4
    (tmp_path / "g.yaml").write_text("base: loihi\ngrid:\n  core.weight_bits: [4, 8]\n  placement: [rowmajor]\n")
    assert S.load_grid_file(tmp_path / "g.yaml") == ("loihi", {"core.weight_bits": [4, 8], "placement": ["rowmajor"]})
    chip = snnchip.load_chip("tianjic")
    with pytest.raises(S.SweepError, match="core.axon'"):
        S.check_grid({"core.axon": [1]}, chip)
    with pytest.raises(S.SweepError, match="mapping options"):
        S.check_grid({"folds": [1]}, chip)
    ctx = {"model": "abc", "samples": 5}
    assert S.point_key({"core.axons": 128}, ctx) != S.point_key({"core.axons": 256}, ctx)
    assert S.point_key({"core.axons": 128}, ctx) != S.point_key({"core.axons": 128}, {**ctx, "samples": 6})
    g = snnchip.load("mnist_mlp")
    ident = S.model_identity(g)
    g.nodes["fc2"].weight[0, 0] += 1e-3
    assert S.model_identity(g) != ident


def test_cli_sweep_grid_file_and_help(tmp_path, capsys, monkeypatch):
    # as once snnchip/__init__.py says ``from .sweep import sweep``: the command must not need the module attribute
    monkeypatch.setattr(snnchip, "sweep", S.sweep)
    (tmp_path / "g.yaml").write_text("base: tianjic\ngrid:\n  core.weight_bits: [4, 8]\n")
    out = tmp_path / "out"
    assert main(["sweep", "mnist_mlp", "--grid-file", str(tmp_path / "g.yaml"), "--grid", "core.axons=256",
                 "--samples", "5", "--steps", str(STEPS), "--workers", "0", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 points over core.weight_bits (2) x core.axons (1)" in text
    df = pd.read_parquet(out / "sweep.parquet")
    assert list(df["core.weight_bits"]) == [4, 8] and list(df["status"]) == ["ok", "ok"]
    # weight reads cost weight_bits x e_read_bit in the hardware view: 4-bit points cost less (issue 19: the
    # paper view is now the papers' formula on the graph as written, the same FLOPs for both points)
    assert df["energy_hardware_pj"].iloc[0] < df["energy_hardware_pj"].iloc[1]
    assert main(["sweep", "--samples", "5", "-o", str(out)]) == 2
    assert "no model" in capsys.readouterr().err
    # every option of sweep and of run's cluster options states its default
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    S_cmd = importlib.import_module("snnchip.cmd_sweep")
    S_cmd.add_parser(sub)
    run = sub.add_parser("run")
    S_cmd.add_run_options(run)
    for sp in (sub.choices["sweep"], run):
        for a in sp._actions:
            if a.option_strings and not isinstance(a, argparse._HelpAction):
                assert "default" in a.help, a.option_strings
                assert a.default in (None, False) or str(a.default) in a.help, a.option_strings


def test_run_on_cluster_only_when_asked_and_never_with_trace_files(monkeypatch):
    from types import SimpleNamespace

    from models.errors import SnnchipError
    from snnchip.cmd_sweep import run_on_cluster

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    args = SimpleNamespace(workers=0, scheduler=None, batch=128)
    assert run_on_cluster(args, None, None, reset="subtract", spikes="binary", timing_samples=1) is None
    traced = SimpleNamespace(config=SimpleNamespace(enabled=True))
    with pytest.raises(SnnchipError, match="--vcd, --chrome and --aer"):
        run_on_cluster(SimpleNamespace(workers=2, scheduler=None, batch=128), None, None, reset="subtract",
                       spikes="binary", timing_samples=1, traces=traced)


def test_python_api_returns_the_rows(serial4, tmp_path):
    df = S.sweep("mnist_mlp", ["core.axons=256", "noc.multicast=xy-tree"], samples=5, steps=STEPS, out_dir=tmp_path)
    assert isinstance(df, pd.DataFrame) and len(df) == 1
    assert _rows(df)[0] == {**_rows(serial4)[3], "pareto": True}
    assert _rows(S.read_results(tmp_path)) == _rows(df)
