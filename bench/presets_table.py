"""The README's presets x models table: cores, chips, accuracy, latency and energy of every
shipped preset on the shipped MNIST models and the NIR paper's CNN.

    python bench/presets_table.py [--samples 100]

Every preset is mapped, run on the chip simulator (accuracy on ``--samples`` held-out
samples, cycle timing on the first one, spike-exact check against the integer reference
on 10) and estimated in the paper view (``E_MAC MACs + E_AC ACs``, table
``horowitz45-fp32``, per inference). A weight-stationary preset (``crossbar``) runs on
:mod:`hwsim.stationary` (its latency: cycles per step x steps, positions streamed).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

MODELS = ("mnist_mlp", "mnist_cnn", "nir_cnn")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--presets", default="tianjic,loihi,truenorth,crossbar")
    args = ap.parse_args(argv)

    import snnchip
    from hwsim.chip import load_chip
    from mapper.mapping import map_model
    from models.intref import simulate_int
    from models.zoo.catalog import load

    print("| preset | model | cores | chips | crossbars | input | accuracy (chip) | latency / inference | "
          "energy / inference (paper view) | exact |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---|")
    for preset in args.presets.split(","):
        chip = load_chip(preset)
        for model in MODELS:
            t0 = time.perf_counter()
            m = map_model(load(model), chip, model=model)
            r = m.resources()
            enc = m.net.metadata.get("encoding") if m.net.input_spiking else "real (MAC)"
            if model == "nir_cnn":
                enc = "events"
            res = snnchip.run(m, samples=args.samples, timing_samples=1)
            n = min(10, args.samples)
            acc = res.meta.get("accuracy", float("nan"))
            lat = res.timing["latency_us"][0] if res.timing is not None else float("nan")
            e = snnchip.estimate(res, m, view="paper")
            exact = _exact(m, args.samples, n, res, simulate_int)
            print(f"| {preset} | {model} | {r['cores_used']:,} | {r['chips_used']} | {r['crossbars']:,} | {enc} | "
                  f"{100 * acc:.1f} % | {lat:,.0f} us | {e.total_pj / 1e6:,.3f} uJ | {exact} |  "
                  f"<!-- {time.perf_counter() - t0:.0f} s -->")


def _exact(m, samples, n, res, simulate_int) -> str:
    """Run the first ``n`` samples on the integer reference and compare output spikes."""
    from types import SimpleNamespace

    from snnchip.inputs import load_data, source_modes

    net = m.net
    model = SimpleNamespace(input_shape=tuple(net.input.shape), metadata=dict(net.metadata or {}))
    sem = source_modes(model, SimpleNamespace(reset=None, spikes=None, v_min=None))
    _, seq = load_data(model, None, n, res.output.shape[0], None if net.input_spiking else "direct")
    ref = simulate_int(net, seq.inputs, reset=sem.reset, spikes=sem.spikes, v_min=sem.v_min)
    got = res.output[:, :n]
    return "yes" if np.array_equal(got.reshape(ref.output.shape), ref.output) else "NO"


if __name__ == "__main__":
    main()
