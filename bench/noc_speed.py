"""Packets per second of the Numba NoC (``hwsim.noc``) against its SimPy twin
(``hwsim.noc_ref``) on the same traffic, measured in the same run; also checks that
both give the same delivery cycles.

Usage: ``python bench/noc_speed.py [--k 8] [--p 0.3] [--cycles 400]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hwsim.noc import uniform_traffic, simulate_noc
from hwsim.noc_ref import simulate_noc_ref


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8, help="mesh side")
    ap.add_argument("--p", type=float, default=0.3, help="injection probability per node per cycle")
    ap.add_argument("--cycles", type=int, default=400, help="injection cycles")
    args = ap.parse_args()
    pk = uniform_traffic(args.k, args.p, args.cycles)
    run = dict(grid_w=args.k, grid_h=args.k, router_cycles=1, link_cycles=1)
    fast = simulate_noc(pk, **run)  # compiles (or loads the cache)
    ref = simulate_noc_ref(pk, **run)
    same = bool(np.array_equal(fast.delivery_cycle, ref.delivery_cycle))
    t_fast = best_of(lambda: simulate_noc(pk, **run), 5)
    t_ref = best_of(lambda: simulate_noc_ref(pk, **run), 1)
    n = pk.n_packets
    print(f"{n} packets on {args.k}x{args.k}, p = {args.p}, {args.cycles} cycles; identical deliveries: {same}")
    print(f"numba {n / t_fast:12,.0f} packets/s ({t_fast * 1e3:8.2f} ms)")
    print(f"simpy {n / t_ref:12,.0f} packets/s ({t_ref * 1e3:8.2f} ms)")
    print(f"numba / simpy speed ratio: {t_ref / t_fast:,.0f}x")


if __name__ == "__main__":
    main()
