"""The shipped models' latency with the ideal NoC and the wormhole router model
(``noc.router_model``), and what cycle-level timing costs over the functional run, in
ONE run on this machine:

* the shipped MNIST MLP and CNN (``models/zoo/trained/mnist_{mlp,cnn}.nir``, MNIST
  test[8000:], direct encoding, T = 32) and the NIR paper CNN
  (``shared/data/nir_paper/cnn_sinabs.nir``, N-MNIST test100, 1 ms frames, T = 314),
  mapped on ``tianjic`` with dynamic steps (``timing.step_cycles = dynamic``; the preset's
  fixed 5,050-cycle phase would hide the network), sync mode, with ``map_model``;
* per model and NoC model: mean cycles per step and latency (us) of the timed samples,
  the ratio wormhole / ideal;
* wall time of ``simulate(timing=False)`` (functional) and ``simulate(timing=True)``
  (cycle-level, every sample timed) on the same samples, best of ``--repeat`` runs of
  each, alternating, after loading the Numba caches; the ratio cycle-level /
  functional (issue 20's target: <= 3x).

Writes the table as Markdown to ``bench/results/noc_engine.md``.

Usage: ``python bench/noc_engine.py [--mnist-samples 20] [--cnn-samples 2] [--cnn-steps 314] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from hwsim.chip import load_chip  # noqa: E402
from hwsim.engine import simulate  # noqa: E402
from hwsim.program import compile as compile_program  # noqa: E402
from mapper.mapping import map_model  # noqa: E402
from models.datasets import load_nmnist, mnist_sequences, shared_data_dir  # noqa: E402

OUT = ROOT / "bench" / "results" / "noc_engine.md"


def _best(fn, repeat):
    best, res = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t0)
    return best, res


def _measure(name, graph, x, repeat):
    rows = []
    for rm in ("ideal", "wormhole"):
        chip = load_chip("tianjic").with_overrides({"noc.router_model": rm, "timing.step_cycles": "dynamic"})
        prog = compile_program(map_model(graph, chip))
        B = x.shape[1]
        simulate(prog, x[:2, :1], timing=True)  # load the caches and build the tables of both runs
        simulate(prog, x[:2, :1], timing=False)
        tf = tc = float("inf")
        res = None
        for _ in range(repeat):
            t, _r = _best(lambda: simulate(prog, x, timing=False), 1)
            tf = min(tf, t)
            t, res = _best(lambda: simulate(prog, x, timing=True, timing_samples=B), 1)
            tc = min(tc, t)
        tim = res.timing
        rows.append(dict(model=name, noc=rm, samples=B, steps=x.shape[0],
                         cps=float(np.mean(tim["cycles_per_step"])), lat_us=float(np.mean(tim["latency_us"])),
                         t_f=tf, t_c=tc))
        print(f"{name} {rm}: {rows[-1]['cps']:,.1f} cycles/step, {rows[-1]['lat_us']:,.1f} us; functional "
              f"{tf:.2f} s, cycle-level {tc:.2f} s ({tc / tf:.2f}x)", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist-samples", type=int, default=20)
    ap.add_argument("--cnn-samples", type=int, default=2)
    ap.add_argument("--cnn-steps", type=int, default=314, help="first steps of the NIR CNN's samples (default 314: all)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    rows = []
    zoo = Path(models.__path__[0]) / "zoo" / "trained"
    mn = mnist_sequences("direct", 32, start=8000, stop=8000 + a.mnist_samples).inputs
    for kind in ("mlp", "cnn"):
        rows += _measure(f"mnist_{kind}", models.read_nir(str(zoo / f"mnist_{kind}.nir")), mn, a.repeat)
    nir = shared_data_dir() / "nir_paper" / "cnn_sinabs.nir"
    if nir.exists():
        x = load_nmnist(samples=a.cnn_samples).inputs[:a.cnn_steps]
        rows += _measure("nir_paper_cnn", models.read_nir(str(nir)), x, a.repeat)
    L = ["# Shipped models' latency: ideal NoC vs wormhole router model (bench/noc_engine.py)", "",
         f"Machine: {platform.processor() or platform.machine()}; numba threads {numba.get_num_threads()}; "
         f"python {platform.python_version()}; shared with other sessions (wall times are noisy). "
         "Chip `tianjic+timing.step_cycles=dynamic` (sync), `noc.router_model` ideal / wormhole (router defaults: 1 VC x 4 "
         "flits, BookSim2's delays, one flit per cycle in and out of each core; in the wormhole model xy-tree "
         "multicast forks in the routers, chip-to-chip links are links of the simulation and input events "
         "enter through the I/O port, timed).", "",
         "| model | samples x steps | NoC | cycles/step | latency (us) | wormhole / ideal | functional (s) | "
         "cycle-level (s) | cycle-level / functional |",
         "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    by = {(r["model"], r["noc"]): r for r in rows}
    for r in rows:
        ratio = r["cps"] / by[r["model"], "ideal"]["cps"]
        L.append(f"| {r['model']} | {r['samples']} x {r['steps']} | {r['noc']} | {r['cps']:,.1f} | "
                 f"{r['lat_us']:,.1f} | {ratio:.3f} | {r['t_f']:.3f} | {r['t_c']:.3f} | {r['t_c'] / r['t_f']:.2f}x |")
    L += ["", f"Wall times: best of {a.repeat} functional (`timing=False`) and {a.repeat} cycle-level "
          "(`timing=True`, every sample timed) runs, alternating, after loading the Numba caches. Target of "
          "issue 20: cycle-level <= 3x functional."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
