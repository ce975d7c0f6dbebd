"""Tianjic's hybrid paradigm on the shipped CNN: all-SNN vs hybrid vs all-ANN, on the chip.

    python bench/hybrid.py [--samples 200] [--chip tianjic]

The three shipped models are one trained QCFS network (``python -m models.train cnn``),
converted three ways (``python -m models.train hybrid``): ``mnist_cnn`` (every layer IF,
T = 32), ``mnist_hybrid`` (conv1 an ANN layer with 8-bit activations, conv2 and fc IF,
T = 32) and ``mnist_ann`` (every layer an ANN layer, T = 1). Each is mapped on the chip,
run on ``--samples`` held-out MNIST images (cycle timing on the first), checked spike for
spike against the integer reference, and costed per inference in the three energy views
(``energy.estimate``; table ``--table``). Prints a Markdown table; the README's model
card quotes it.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

MODELS = ("mnist_cnn", "mnist_hybrid", "mnist_ann")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--chip", default="tianjic")
    ap.add_argument("--table", default="horowitz45-int8")
    args = ap.parse_args(argv)

    import snnchip
    from hwsim.engine import reference_net
    from models.datasets import mnist_sequences
    from models.intref import simulate_int

    print(f"machine: {platform.machine()}, python {platform.python_version()}; chip {args.chip}; table "
          f"{args.table}; {args.samples} held-out MNIST samples (test[8000:{8000 + args.samples}])\n")
    print("| model | ANN layers | T | accuracy (chip) | = integer reference | MACs / inf. | ACs / inf. | "
          "cycles / step | latency / inf. | paper nJ | chip-ops nJ | hardware nJ | wall s |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in MODELS:
        t0 = time.perf_counter()
        g = snnchip.load(name)
        T = int(g.metadata.get("steps", 32))
        seq = mnist_sequences("direct", T, start=8000, stop=8000 + args.samples)
        m = snnchip.map(g, args.chip)
        r = snnchip.run(m, seq.inputs)
        B = r.output.shape[1]
        ref = simulate_int(reference_net(m.net, m.chip.timing.mode), seq.inputs)
        exact = bool(np.array_equal(ref.output, r.output))
        acc = r.accuracy(seq.labels)
        tot = r.totals()
        cps = float(np.mean(r.timing["cycles_per_step"]))
        lat_us = cps * T / m.chip.timing.clock_hz * 1e6
        e = {v: snnchip.estimate(r, m, table=args.table, view=v).total_pj / 1e3
             for v in ("paper", "chip-ops", "hardware")}
        print(f"| {name} | {g.metadata.get('ann_layers', '-') or '-'} | {T} | {100 * acc:.2f} % | "
              f"{'yes' if exact else 'NO'} | {tot['macs'] / B:,.0f} | {tot['acs'] / B:,.0f} | {cps:,.0f} | "
              f"{lat_us:,.1f} us | {e['paper']:,.1f} | {e['chip-ops']:,.1f} | {e['hardware']:,.1f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
