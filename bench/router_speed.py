"""Cycles per second of the Numba router model (``hwsim.router``) against its plain-Python
twin (``hwsim.router_ref``) on the same traffic, measured in the same run; also checks
that both give the same delivery cycles.

Usage: ``python bench/router_speed.py [--k 8] [--rate 0.1] [--flits 4] [--vcs 2] [--cycles 600]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy

from hwsim.router import RouterParams, simulate_router  # noqa: E402
from hwsim.router_ref import simulate_router_ref  # noqa: E402
from hwsim.router_traffic import bernoulli_packets  # noqa: E402
from noc_speed import best_of  # noqa: E402  (bench/ is the script's folder, on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8, help="mesh side (default 8)")
    ap.add_argument("--rate", type=float, default=0.05, help="packets per node per cycle (default 0.05)")
    ap.add_argument("--flits", type=int, default=4, help="flits per packet (default 4)")
    ap.add_argument("--vcs", type=int, default=2, help="VCs (default 2)")
    ap.add_argument("--buffer", type=int, default=8, help="buffer flits per VC (default 8)")
    ap.add_argument("--cycles", type=int, default=600, help="injection cycles (default 600)")
    args = ap.parse_args()
    p = RouterParams(args.k, args.k, vcs=args.vcs, buffer_flits=args.buffer)
    c, s, d, f = bernoulli_packets(args.k * args.k, args.rate, args.cycles, "uniform", args.flits, 1)
    run = dict(max_cycles=args.cycles * 20)
    fast = simulate_router(p, c, s, d, f, **run)  # compiles (or loads the cache)
    ref = simulate_router_ref(p, c, s, d, f, **run)
    same = bool(np.array_equal(fast.delivery, ref.delivery) and fast.cycles == ref.cycles)
    t_fast = best_of(lambda: simulate_router(p, c, s, d, f, **run), 5)
    t_ref = best_of(lambda: simulate_router_ref(p, c, s, d, f, **run), 1)
    print(f"{c.size} packets ({f.sum()} flits) on {args.k}x{args.k}, {args.vcs} VC x {args.buffer}, "
          f"{args.rate} packets/node/cycle, {fast.cycles} cycles; identical deliveries: {same}")
    print(f"numba  {fast.cycles / t_fast:12,.0f} cycles/s ({t_fast * 1e3:9.2f} ms)")
    print(f"python {ref.cycles / t_ref:12,.0f} cycles/s ({t_ref * 1e3:9.2f} ms)")
    print(f"numba / python speed ratio: {t_ref / t_fast:,.0f}x")


if __name__ == "__main__":
    main()
