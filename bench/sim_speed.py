"""Speed of the chip simulator (``hwsim.engine.simulate``) on two real models, measured
in ONE run against yardsticks on this machine:

* the shipped MNIST MLP (``models/zoo/trained/mnist_mlp.nir``, MNIST test[8000:], direct
  encoding, T = 32) and the NIR paper CNN (``shared/data/nir_paper/cnn_sinabs.nir``,
  N-MNIST test100, 1 ms frames), each mapped on ``tianjic`` with ``map_model``;
* hwsim functional only (``timing=False``) and cycle-level (``timing=True``) on the
  first ``--timed-*`` samples (default: all); when fewer samples are timed than run,
  the extra cost of timing is measured per timed sample and scaled to all samples,
  and the table says so;
* (a) snnTorch on the CPU with the same float weights and steps (the float network,
  built from the NIR graph by ``bench/snntorch_port.py``: torch Conv2d / Linear /
  pooling + ``snn.Leaky(beta=1, threshold, reset_mechanism="subtract",
  reset_delay=True)``, equations in its docstring); its accuracy and
  predictions are checked against ``models.simulate`` (our float reference) to
  sanity-check the port. Skipped, with a message, when torch / snntorch are absent
  (``pip install -e '.[bench]'``);
* (b) a Numba int8 row-accumulate kernel as this machine's roofline: per event it reads
  one int8 crossbar row of the model's average row length and adds it into int32
  accumulators, nothing else;
* (c) the budget of the roofline target: a Numba kernel that does only the dense
  integer IF update of every neuron at every step (:func:`_neuron_floor`), timed
  against the time the roofline needs for the model's events (the 50 % target
  allows twice that for the whole run).

Prints a table with the ratios (functional vs snnTorch samples/s, target >= 5x (issue 17);
the (events at roofline + neuron-update floor) bound vs the functional time, target >= 50 %;
synaptic events/s vs roofline, target >= 50 %; cycle-level vs functional time, target
<= 2x), the machine, and writes it as Markdown to ``bench/results/sim_speed.md``.
The two sides of each ratio run alternately (functional / cycle-level: best of 5
each; snnTorch / functional: best of 3 each), so a slow phase of a shared machine
does not land on one side only, and each timed call starts ``PAUSE`` = 0.2 s after the
previous one ended: an OpenMP pool (torch's; Numba's before hwsim ran its input scan on
its own threads) keeps its workers busy-waiting for milliseconds after a parallel region
(libgomp's ``GOMP_SPINCOUNT``), which would otherwise take a core from the next run.
``--profile`` adds a cProfile of the cycle-level path (where the time goes).

Usage: ``python bench/sim_speed.py [--mlp-samples 2000] [--cnn-samples 100]
[--timed-mlp N] [--timed-cnn N] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.chip import load_chip  # noqa: E402
from hwsim.engine import simulate as hw_simulate  # noqa: E402
from hwsim.program import compile as compile_program  # noqa: E402
from mapper.mapping import map_model  # noqa: E402
from models import lower, simulate as float_simulate  # noqa: E402
from snntorch_port import build_snntorch, run_snntorch  # noqa: E402 (bench/, this script's folder)
from models.datasets import load_nmnist, mnist_sequences, shared_data_dir  # noqa: E402
from models.defaults import HELD_OUT_START, STEPS  # noqa: E402
from models.intref import simulate_int  # noqa: E402
from models.zoo.catalog import load as load_model  # noqa: E402

MLP = ROOT / "models" / "zoo" / "trained" / "mnist_mlp.nir"
CNN = shared_data_dir() / "nir_paper" / "cnn_sinabs.nir"


# ----------------------------------------------------------------------------- roofline

@njit(parallel=True, cache=True)
def _row_accumulate(w, rows, cols, L, n_acc, n_threads):
    """Per event e: acc[cols[r] : cols[r] + L] += w[r*L : r*L + L] with r = rows[e]
    (int8 weights, int32 accumulators, one accumulator array per thread; the slices
    let LLVM vectorise the row add, as a tuned kernel would)."""
    n = rows.size
    check = np.zeros(n_threads, np.int64)
    for th in prange(n_threads):
        acc = np.zeros(n_acc, np.int32)
        lo = n * th // n_threads
        hi = n * (th + 1) // n_threads
        for e in range(lo, hi):
            r = rows[e]
            a = acc[cols[r]:cols[r] + L]
            ww = w[r * L:r * L + L]
            for j in range(L):
                a[j] += np.int32(ww[j])
        check[th] = acc.sum()
    return check.sum()


def roofline(L: int, n_rows: int, n_acc: int, synops: float, seed: int = 0) -> dict:
    """Synaptic events/s of :func:`_row_accumulate` with rows of length ``L`` (the model's
    mean row length), ``n_rows`` distinct rows, ``n_acc`` accumulators; about ``synops``
    synaptic events (capped to keep the run short); best of 3."""
    rng = np.random.default_rng(seed)
    L = max(1, int(round(L)))
    n_acc = max(n_acc, L + 1)
    w = rng.integers(-128, 128, n_rows * L, dtype=np.int8)
    cols = rng.integers(0, n_acc - L + 1, n_rows).astype(np.int64)
    n_ev = int(min(max(synops, 1e8), 1e9) // L)
    rows = rng.integers(0, n_rows, n_ev).astype(np.int32)
    thr = numba.get_num_threads()
    _row_accumulate(w, rows[:1000], cols, L, n_acc, thr)  # compile / load cache
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        _row_accumulate(w, rows, cols, L, n_acc, thr)
        best = min(best, time.perf_counter() - t0)
    return {"L": L, "events": n_ev, "seconds": best, "row_events_per_s": n_ev / best,
            "synops_per_s": n_ev * L / best}


@njit(parallel=True, cache=True)
def _neuron_floor(cur, thr, steps, samples, sh, lo, hi, n_threads):
    """Dense integer IF updates, the chip's per-step neuron work and nothing else: for
    every sample and step, every neuron ``n`` does ``v = sat(v + ((I + h) >> sh))``,
    ``z = v >= thr``, ``v -= z * thr`` with its input current ``I`` read from ``cur``
    (a few rows of currents, cycled per step; ``h = 2**(sh - 1)``, 0 when ``sh = 0``)
    and writes ``z``: the hwsim engine's update for IF neurons with subtractive reset
    (``hwsim.engine.kernel._neurons``) without bias and without the spike listing. Parallel over samples, one
    state per thread. Returns the spike count (a checksum, so no work is dropped)."""
    n = thr.size
    A = cur.shape[0]
    hb = (np.int64(1) << (sh - 1)) if sh > 0 else np.int64(0)
    total = np.zeros(n_threads, np.int64)
    for th in prange(n_threads):
        v = np.zeros(n, np.int64)
        z = np.zeros(n, np.int64)
        cnt = np.int64(0)
        for b in range(th, samples, n_threads):
            v[:] = 0
            for t in range(steps):
                c = cur[t % A]
                for i in range(n):
                    vv = min(max(v[i] + ((c[i] + hb) >> sh), lo), hi)
                    zz = np.int64(1) if vv >= thr[i] else np.int64(0)
                    v[i] = vv - zz * thr[i]
                    z[i] = zz
                for i in range(n):
                    cnt += z[i]
        total[th] = cnt
    return total.sum()


def neuron_floor(prog, steps: int, samples: int, seed: int = 0) -> dict:
    """Seconds of :func:`_neuron_floor` for the program's neurons (every population but
    the input, with their thresholds), ``steps`` x ``samples`` (best of 3): the time a
    step-synchronous simulator spends on neuron updates alone when it updates every
    neuron every step (the chip does). Currents are random, about a tenth of the
    threshold, so neurons fire now and then."""
    rng = np.random.default_rng(seed)
    thr = np.asarray(prog.nrn_thr[int(prog.pop_off[1]):], np.int64)
    thr = np.maximum(thr, 1)
    M = int(prog.membrane_bits)
    lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
    sh = int(np.max(prog.proj_shift, initial=0))
    cur = (rng.integers(-2, 4, (16, thr.size)) * (thr // 10 + 1)) << sh
    nt = numba.get_num_threads()
    _neuron_floor(cur, thr, 2, 1, sh, lo, hi, nt)  # compile / load cache
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        _neuron_floor(cur, thr, steps, samples, sh, lo, hi, nt)
        best = min(best, time.perf_counter() - t0)
    return {"neurons": int(thr.size), "seconds": best, "updates_per_s": thr.size * steps * samples / best}


# ----------------------------------------------------------------------------- one model

#: seconds between timed calls (the previous call's idle OpenMP workers stop spinning)
PAUSE = 0.2


def timed(fn):
    """Wall-clock seconds of one call of ``fn`` started :data:`PAUSE` seconds after the
    previous one, and its result."""
    time.sleep(PAUSE)
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_alternating(fa, fb, repeat):
    """Best times of ``fa`` and ``fb`` run alternately ``repeat`` times each, so a slow
    phase of a shared machine hits both, not one side of the ratio; and their outputs."""
    ta = tb = np.inf
    for _ in range(repeat):
        t, oa = timed(fa)
        ta = min(ta, t)
        t, ob = timed(fb)
        tb = min(tb, t)
    return ta, oa, tb, ob


def bench_model(name, graph, seq, reset, spikes, timed_samples, torch_ok, torch_batch, profile, log):
    T, B = seq.inputs.shape[:2]
    row = {"model": name, "samples": B, "steps": T}
    net = lower(graph, input_spiking=seq.spiking)
    log(f"\n== {name}: {B} samples x {T} steps, reset={reset} spikes={spikes}")
    t, fref = timed(lambda: float_simulate(net, seq.inputs, reset=reset, spikes=spikes))
    fpred = fref.predict()
    row["float_acc"] = float(np.mean(fpred == seq.labels))
    log(f"float reference: accuracy {100 * row['float_acc']:.2f} % ({t:.1f} s)")
    chip = load_chip("tianjic")
    t, m = timed(lambda: map_model(net, chip, model=name))
    row["cores"] = len(m.tiling.cores)
    t_c, prog = timed(lambda: compile_program(m))
    log(f"mapped on tianjic: {row['cores']} cores ({t:.1f} s); compiled in {t_c:.2f} s")
    hw_simulate(prog, seq.inputs[:2, :1], reset=reset, spikes=spikes, timing=True)  # load the JIT caches
    # functional and cycle-level, alternating
    K = B if timed_samples is None else max(1, min(timed_samples, B))
    t_f, rf, t_k, rk = timed_alternating(
        lambda: hw_simulate(prog, seq.inputs, reset=reset, spikes=spikes, timing=False),
        lambda: hw_simulate(prog, seq.inputs[:, :K], reset=reset, spikes=spikes, timing=True, timing_samples=K),
        repeat=5)
    # the same run with no input at all: the cost of stepping the chip without events
    # (the zero array is made outside the timer)
    zeros = np.full(seq.inputs.shape, 0, seq.inputs.dtype)
    t_idle, _ = timed(lambda: hw_simulate(prog, zeros, reset=reset, spikes=spikes, timing=False))
    del zeros
    tot = rf.totals()
    syn = tot["acs"] + tot["macs"]
    row.update(func_s=t_f, func_sps=B / t_f, synops=syn, events=tot["events"], func_synops_s=syn / t_f,
               hw_acc=rf.accuracy(seq.labels), mean_row=syn / max(tot["events"], 1), idle_s=t_idle,
               mac_share=tot["macs"] / max(syn, 1))
    ri = simulate_int(m.net, seq.inputs, reset=reset, spikes=spikes)
    row["int_exact"] = bool(np.array_equal(ri.output, rf.output))
    log(f"hwsim functional: {t_f:.2f} s, {B / t_f:,.1f} samples/s, {syn / t_f / 1e6:,.1f} M synaptic events/s "
        f"({tot['events']:,} row events, mean row {row['mean_row']:.1f}); accuracy {100 * row['hw_acc']:.2f} %, "
        f"output identical to the integer reference: {row['int_exact']}")
    log(f"  same run with all-zero input (no events): {t_idle:.2f} s = {100 * t_idle / t_f:.0f} % of the functional "
        f"time; MACs are {100 * row['mac_share']:.1f} % of the synaptic events")
    # cycle-level: the timed samples' extra cost, scaled to all samples
    if K == B:
        t_kf = t_f
    else:
        t_kf, _ = timed(lambda: hw_simulate(prog, seq.inputs[:, :K], reset=reset, spikes=spikes, timing=False))
    per_timed = max(t_k - t_kf, 0.0) / K
    row.update(timed=K, cyc_s_measured=t_k, cyc_per_sample=per_timed,
               cyc_s=t_f + per_timed * B, latency_cycles=float(np.mean(rk.timing["latency_cycles"])),
               latency_us=float(np.mean(rk.timing["latency_us"])))
    row["cyc_ratio"] = row["cyc_s"] / t_f
    scaled = "" if K == B else f" (timed {K} of {B} samples: {t_k:.2f} s with timing vs {t_kf:.2f} s without; " \
                               f"scaled {per_timed * 1e3:.1f} ms per timed sample to all {B})"
    log(f"hwsim cycle-level: {row['cyc_s']:.2f} s for {B} samples{scaled}; "
        f"latency {row['latency_cycles']:,.0f} cycles = {row['latency_us']:,.1f} us per inference")
    if profile:
        pr = cProfile.Profile()
        k = min(K, 4)
        pr.enable()
        hw_simulate(prog, seq.inputs[:, :k], reset=reset, spikes=spikes, timing=True, timing_samples=k)
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(8)
        lines = [ln for ln in s.getvalue().splitlines() if ln.strip()]
        i = next((j for j, ln in enumerate(lines) if "tottime" in ln), 0)
        row["profile"] = lines[i:i + 9]
        row["profile_k"] = k
        log(f"cProfile of the cycle-level run on {k} sample(s), by own time:")
        for ln in row["profile"]:
            log("  " + ln)
    # roofline
    n_rows = int(prog.row_ptr.size - 1)
    rl = roofline(row["mean_row"], max(n_rows, 1), int(max(prog.n_acc, 1)), syn)
    row.update(roof_synops_s=rl["synops_per_s"], roof_L=rl["L"])
    log(f"roofline (Numba int8 row-accumulate, row length {rl['L']}, {n_rows:,} rows): "
        f"{rl['synops_per_s'] / 1e6:,.1f} M synaptic events/s ({rl['row_events_per_s'] / 1e6:,.2f} M rows/s)")
    nf = neuron_floor(prog, T, B)
    row.update(nrn=nf["neurons"], nrn_s=nf["seconds"], roof_s=syn / rl["synops_per_s"])
    log(f"neuron-update floor (Numba dense integer IF update, {nf['neurons']:,} neurons x {T} steps x {B} "
        f"samples): {nf['seconds']:.3f} s ({nf['updates_per_s'] / 1e6:,.0f} M updates/s); the events at the "
        f"roofline take {row['roof_s']:.3f} s, so the 50 % target allows {2 * row['roof_s']:.3f} s in all")
    # snnTorch
    if torch_ok:
        import torch

        ops = build_snntorch(graph)
        run_snntorch(ops, seq.inputs[:2, :2], torch_batch)  # warm-up
        # torch's OpenMP pool collapses when the 2 cores are shared: probe 1 and all threads, keep the faster
        probe = seq.inputs[:, :max(1, B // 10)]
        speeds = {}
        for nt in sorted({1, numba.get_num_threads()}):
            torch.set_num_threads(nt)
            speeds[nt], _ = timed(lambda: run_snntorch(ops, probe, torch_batch))
        nt = min(speeds, key=speeds.get)
        torch.set_num_threads(nt)
        # alternate with hwsim's functional run: their ratio is measured in the same minutes
        t_s, cnt, t_fp, _ = timed_alternating(
            lambda: run_snntorch(ops, seq.inputs, torch_batch),
            lambda: hw_simulate(prog, seq.inputs, reset=reset, spikes=spikes, timing=False), repeat=3)
        row["torch_threads"] = nt
        row["torch_ratio"] = t_s / t_fp
        spred = np.argmax(cnt, axis=1)
        row.update(torch_s=t_s, torch_sps=B / t_s, torch_acc=float(np.mean(spred == seq.labels)),
                   torch_agree=float(np.mean(spred == fpred)))
        log(f"snnTorch ({nt} thread(s); probe " + ", ".join(f"{k} thr {v:.2f} s" for k, v in speeds.items())
            + f"): {t_s:.2f} s, {B / t_s:,.1f} samples/s (hwsim functional in the alternating runs: {t_fp:.2f} s, "
            f"{row['torch_ratio']:.2f}x); accuracy {100 * row['torch_acc']:.2f} % "
            f"(float reference {100 * row['float_acc']:.2f} %; same prediction on {100 * row['torch_agree']:.1f} %)")
    return row


# ----------------------------------------------------------------------------- report

def machine() -> dict:
    cpu = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    d = {"cpu": cpu, "cores": os.cpu_count(), "numba threads": numba.get_num_threads(),
         "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    try:
        import snntorch
        import torch

        d["torch"] = torch.__version__
        d["torch threads"] = torch.get_num_threads()
        d["snntorch"] = snntorch.__version__
    except ImportError:
        d["torch"] = "not installed"
    return d


def fmt_rate(x):
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def table(rows, mach) -> str:
    L = ["# hwsim simulation speed (bench/sim_speed.py)", "",
         "Machine: " + "; ".join(f"{k} {v}" for k, v in mach.items()), "",
         "| model | samples x steps | cores | accuracy float / chip | hwsim functional samples/s | "
         "hwsim synaptic events/s | roofline events/s | cycle-level samples/s | snnTorch samples/s | "
         "snnTorch accuracy (agreement with float ref) |",
         "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ts = f"{fmt_rate(r['torch_sps'])} ({r['torch_threads']} thr)" if "torch_sps" in r else "skipped (no torch)"
        ta = (f"{100 * r['torch_acc']:.2f} % ({100 * r['torch_agree']:.1f} %)" if "torch_acc" in r else "-")
        cyc = fmt_rate(r["samples"] / r["cyc_s"]) + ("" if r["timed"] == r["samples"]
                                                     else f" (timed {r['timed']}, scaled)")
        L.append(f"| {r['model']} | {r['samples']} x {r['steps']} | {r['cores']} | "
                 f"{100 * r['float_acc']:.2f} % / {100 * r['hw_acc']:.2f} % | {fmt_rate(r['func_sps'])} | "
                 f"{r['func_synops_s'] / 1e6:,.1f} M | {r['roof_synops_s'] / 1e6:,.1f} M (row {r['roof_L']}) | "
                 f"{cyc} | {ts} | {ta} |")
    L += ["", "| model | ratio | measured | target | met |", "|---|---|---:|---|---|"]
    for r in rows:
        if "torch_sps" in r:
            v = r["torch_ratio"]
            L.append(f"| {r['model']} | hwsim functional / snnTorch samples/s | {v:.2f}x | >= 5x | "
                     f"{'yes' if v >= 5 else '**no**'} |")
        else:
            L.append(f"| {r['model']} | hwsim functional / snnTorch samples/s | skipped | >= 5x | - |")
        v = (r["roof_s"] + r["nrn_s"]) / r["func_s"]
        L.append(f"| {r['model']} | (events at roofline + neuron-update floor) / hwsim functional time | "
                 f"{100 * v:.1f} % | >= 50 % | {'yes' if v >= 0.5 else '**no**'} |")
        v = r["func_synops_s"] / r["roof_synops_s"]
        L.append(f"| {r['model']} | synaptic events/s / roofline | {100 * v:.1f} % | >= 50 % | "
                 f"{'yes' if v >= 0.5 else '**no**'} |")
        v = r["cyc_ratio"]
        note = "" if r["timed"] == r["samples"] else f" (timed {r['timed']} of {r['samples']}, scaled per sample)"
        L.append(f"| {r['model']} | cycle-level / functional time | {v:.2f}x{note} | <= 2x | "
                 f"{'yes' if v <= 2 else '**no**'} |")
    L.append("")
    L.append("Functional = `simulate(..., timing=False)`; cycle-level = `timing=True` on the timed samples "
             "plus the functional run of the rest, extrapolated per timed sample when not all are timed. "
             "Synaptic events = ACs + MACs counted by the engine. Times are wall clock, the best of 5 "
             "functional and 5 cycle-level runs, alternating (so a slow phase of the machine hits both sides "
             "of their ratio), after loading the Numba caches; the snnTorch ratio comes from 3 more runs of each, "
             "alternating with hwsim's functional run, so it can differ from the ratio of the two columns.")
    L += ["", "Where the functional time goes (measured in the same run):", ""]
    for r in rows:
        L.append(f"- {r['model']}: the same run with an all-zero input (no events at all) takes "
                 f"{r['idle_s']:.2f} s = {100 * r['idle_s'] / r['func_s']:.0f} % of the functional time "
                 f"({r['func_s']:.2f} s); MACs are {100 * r['mac_share']:.1f} % of the synaptic events; "
                 f"{r['events'] / r['samples']:,.0f} row events and {r['synops'] / r['samples']:,.0f} synaptic "
                 f"events per sample; output identical to the integer reference: {r['int_exact']}.")
    L += ["", "Budget of the roofline target (measured in the same run): at 50 % of the roofline the whole "
          "functional run may take twice the time the roofline kernel needs for the same synaptic events. "
          "The neuron-update floor is a Numba kernel that does only the dense integer IF update of every "
          "neuron at every step (the chip's per-step neuron work, the engine's formula without bias, no "
          "events), same "
          "threads:", "",
          "| model | neurons x steps x samples | events at the roofline | 50 % target allows | neuron-update floor "
          "| hwsim functional | (events at roofline + floor) / hwsim time |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['model']} | {r['nrn']:,} x {r['steps']} x {r['samples']} | {r['roof_s']:.3f} s | "
                 f"{2 * r['roof_s']:.3f} s | {r['nrn_s']:.3f} s | {r['func_s']:.3f} s | "
                 f"{(r['roof_s'] + r['nrn_s']) / r['func_s'] * 100:.1f} % |")
    for r in rows:
        if "profile" in r:
            L += ["", f"cProfile of the cycle-level run, {r['model']}, {r['profile_k']} timed sample(s), by own time:",
                  "", "```"] + r["profile"] + ["```"]
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mlp-samples", type=int, default=2000)
    ap.add_argument("--cnn-samples", type=int, default=100)
    ap.add_argument("--timed-mlp", type=int, default=None, help="samples timed cycle by cycle (default all)")
    ap.add_argument("--timed-cnn", type=int, default=None, help="samples timed cycle by cycle (default all)")
    ap.add_argument("--torch-batch", type=int, default=500)
    ap.add_argument("--profile", action="store_true", help="cProfile the cycle-level path")
    ap.add_argument("--only", choices=["mlp", "cnn"])
    ap.add_argument("-o", "--output", default=str(ROOT / "bench" / "results" / "sim_speed.md"))
    args = ap.parse_args()

    def log(msg):
        print(msg, flush=True)

    try:
        import snntorch  # noqa: F401
        import torch

        torch.set_num_threads(numba.get_num_threads())
        torch_ok = True
    except ImportError as e:
        torch_ok = False
        log(f"snnTorch baseline (a) skipped: {e} (pip install -e '.[bench]')")
    mach = machine()
    log("machine: " + "; ".join(f"{k} {v}" for k, v in mach.items()))
    rows = []
    if args.only in (None, "mlp"):
        g = load_model(str(MLP))
        seq = mnist_sequences("direct", int(g.metadata.get("steps", STEPS)), start=HELD_OUT_START,
                              samples=args.mlp_samples)
        rows.append(bench_model("mnist_mlp", g, seq, str(g.metadata.get("reset", "subtract")),
                                str(g.metadata.get("spikes", "binary")), args.timed_mlp, torch_ok,
                                args.torch_batch, args.profile, log))
    if args.only in (None, "cnn"):
        if not CNN.exists():
            log(f"\n{CNN} not found: NIR paper CNN skipped")
        else:
            g = load_model(str(CNN))
            seq = load_nmnist(samples=args.cnn_samples)
            rows.append(bench_model("nir_paper_cnn", g, seq, str(g.metadata.get("reset", "subtract")),
                                    str(g.metadata.get("spikes", "binary")), args.timed_cnn, torch_ok,
                                    args.torch_batch, args.profile, log))
    md = table(rows, mach)
    print()
    print(md)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(md)
    os.replace(tmp, out)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
