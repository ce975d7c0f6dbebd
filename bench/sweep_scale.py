"""Scaling of ``snnchip sweep`` on Dask: the same 16-point grid on 1 and 2 local workers.

mnist_mlp on tianjic, grid core.axons (128, 256) x core.weight_bits (4, 8) x
noc.multicast (unicast, xy-tree) x placement (rowmajor, hilbert), ``--samples``
held-out images per point (all functional, ``--timing-samples`` timed). Prints the per-point cost (the
workers' own wall time per point, mean), each sweep's wall time (scatter, kernel
warm-up, points and file writes; the cluster's start is given apart), the parallel
efficiency T1 / (2 T2), and a paper estimate of a 1,000-point sweep on 64 workers
from the measured per-point cost; writes ``bench/results/sweep_scale.md``.

Usage: ``python bench/sweep_scale.py [--samples 20] [--timing-samples 4]``
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from models.fileio import atomic_write
from snnchip.sweep import close, connect, points, prepare, run_sweep

GRID = {"core.axons": [128, 256], "core.weight_bits": [4, 8], "noc.multicast": ["unicast", "xy-tree"],
        "placement": ["rowmajor", "hilbert"]}


def timed_sweep(shared, workers: int, out: Path) -> dict:
    t0 = time.perf_counter()
    client = connect(workers=workers)
    t1 = time.perf_counter()
    try:
        cpu0 = client.run(time.process_time)
        df = run_sweep(shared, GRID, out, client=client, progress=False)
        t2 = time.perf_counter()
        cpu1 = client.run(time.process_time)
    finally:
        close(client)
    # CPU seconds the worker processes got during the sweep: on a shared machine, fewer than workers x wall
    cpu = sum(cpu1[w] - cpu0.get(w, 0.0) for w in cpu1)
    return {"workers": workers, "start_s": t1 - t0, "wall_s": t2 - t1, "cpu_s": cpu, "df": df}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20, help="held-out samples per point (default 20)")
    ap.add_argument("--timing-samples", type=int, default=4, help="samples per point timed cycle by cycle "
                    "(default 4; the timing is most of a point's cost)")
    ap.add_argument("--out", default="bench/results/sweep_scale.md", help="results file (default "
                    "bench/results/sweep_scale.md)")
    args = ap.parse_args()
    shared = prepare(["mnist_mlp"], "tianjic", samples=args.samples, timing_samples=args.timing_samples)
    n = len(points(GRID))
    tmp = Path(tempfile.mkdtemp(prefix="sweep_scale_"))
    try:
        runs = [timed_sweep(shared, w, tmp / f"w{w}") for w in (1, 2)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one, two = runs
    cols = [c for c in one["df"].columns if c not in ("wall_s", "pareto")]
    same = one["df"][cols].equals(two["df"][cols])
    ok = int((one["df"]["status"] == "ok").sum())
    per_point = float(one["df"]["wall_s"].mean())
    per_point_2 = float(two["df"]["wall_s"].mean())
    eff = one["wall_s"] / (2 * two["wall_s"])
    rounds = math.ceil(1000 / 64)
    ideal = rounds * per_point
    est = ideal / eff
    load = os.getloadavg()
    lines = [
        "# `snnchip sweep` scaling (bench/sweep_scale.py)",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min; the machine is "
        "shared, so the figures move between runs).",
        "",
        f"Grid: mnist_mlp on tianjic, {' x '.join(f'{k} ({len(v)})' for k, v in GRID.items())} = {n} points "
        f"({ok} ok), {args.samples} held-out samples x {shared.models['mnist_mlp'].inputs.shape[0]} steps per point, "
        f"{args.timing_samples} sample(s) timed cycle by cycle.",
        "",
        "| workers | cluster start s | sweep wall s | mean point s (in the worker) | points/s | "
        "cores the workers got (CPU s / wall s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r, pp in ((one, per_point), (two, per_point_2)):
        lines.append(f"| {r['workers']} | {r['start_s']:.1f} | {r['wall_s']:.1f} | {pp:.2f} | {n / r['wall_s']:.2f} | "
                     f"{r['cpu_s'] / r['wall_s']:.2f} |")
    lines += [
        "",
        f"- parallel efficiency T1 / (2 T2) = {one['wall_s']:.1f} / (2 x {two['wall_s']:.1f}) = {eff:.2f}",
        f"- worker utilisation with 2 workers (sum of in-worker point times / (2 x wall)): "
        f"{n * per_point_2 / (2 * two['wall_s']):.2f}; the mean point took {per_point_2 / per_point:.2f}x as long as "
        "with 1 worker (two workers and the driver share the 2 cores with the machine's other load)",
        f"- rows of the 1- and 2-worker sweeps identical (all columns but wall time and the Pareto mark): "
        f"{'yes' if same else 'NO'}",
        f"- sweep overhead beyond the points with 1 worker (scatter, warm-up, files): "
        f"{one['wall_s'] - n * per_point:.1f} s",
        f"- paper estimate, 1,000 points on 64 workers: ceil(1000 / 64) = {rounds} rounds x {per_point:.2f} s per "
        f"point = {ideal:.0f} s at perfect scaling; {est:.0f} s at the efficiency measured here ({eff:.2f}); "
        "plus the cluster's start and one warm-up per worker",
        f"- the same from CPU time (an idle machine's per-point cost; the workers' CPU seconds include the "
        f"warm-up): {one['cpu_s'] / n:.2f} CPU s per point -> {rounds * one['cpu_s'] / n:.0f} s for 1,000 points on "
        "64 workers",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write(args.out, lambda fh: fh.write(text))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
