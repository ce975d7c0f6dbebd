"""Commands about models: ``info``, ``models``, ``simulate`` (float reference) and ``demo``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from models.errors import SnnchipError

from .inputs import load_data, run_reference, source_modes


def load_model(spec: str, args=None):
    """The model of a command (``--dt`` overrides the file's time step)."""
    from models.zoo.catalog import load

    dt = getattr(args, "dt", None)
    if dt is not None and not (dt > 0 and dt < float("inf")):
        raise SnnchipError(f"--dt must be a positive number of seconds, got {dt}")
    return load(spec, dt=dt)


def data_options(args) -> dict:
    """The data keywords of :func:`snnchip.inputs.load_data` from a command's options."""
    return {"bins": getattr(args, "bins", None), "frame_us": getattr(args, "frame_us", None)}


def cmd_info(args):
    g = load_model(args.model, args)
    print(f"model: {args.model}")
    print(g.summary())
    if args.lowered:
        from models import lower

        print()
        print(lower(g).summary())
    return 0


def cmd_models(args):
    from models.zoo.catalog import available

    for k, v in available().items():
        print(f"{k:<28} {v}")
    return 0


def cmd_simulate(args):
    from models import lower

    g = load_model(args.model, args)
    sem = source_modes(g, args)
    reset, spikes, v_min = sem.reset, sem.spikes, sem.v_min
    kind, seq = load_data(g, args.data, args.samples, args.steps, args.encoding, args.start, args.seed,
                          **data_options(args))
    model = lower(g, input_spiking=seq.spiking) if args.level == "net" else g
    T, B = seq.inputs.shape[:2]
    print(f"model {args.model} | data {kind} | {B} samples x {T} steps | {sem.header()} | {args.level}")
    t0 = time.perf_counter()
    preds, totals, sizes = run_reference(model, seq, reset, spikes, args.batch, v_min=v_min)
    dt = time.perf_counter() - t0
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %   ({dt:.1f} s, {B / dt:.1f} samples/s)")
    print("firing rate (spikes per neuron per step):")
    for k, v in totals.items():
        print(f"  {k:<14} {v / (T * B * sizes[k]):.4f}")
    return 0


def cmd_demo(args):
    """End-to-end path on a shipped model: summary -> lowering -> float and integer
    reference accuracy -> mapping on Tianjic -> chip simulation -> energy report."""
    from energy import report
    from hwsim.chip import load_chip
    from hwsim.engine import reference_net
    from hwsim.engine import simulate as chip_simulate
    from mapper.mapping import map_model
    from mapper.quantize import quantize
    from models import defaults, lower
    from models.intref import simulate_int
    from models.zoo.catalog import TRAINED, trained_path

    name = next((n for n in ("mnist_cnn", "mnist_mlp") if trained_path(n).exists()), None)
    if name is None:
        raise SnnchipError(f"no shipped model found in {trained_path('mnist_cnn').parent}")
    t0 = time.perf_counter()
    g = load_model(name)
    print(f"== snnchip demo: {name} -- {TRAINED[name]}")
    print(g.summary())
    net = lower(g)
    print(f"\n== lowered to {len(net.populations) - 1} populations and {len(net.projections)} projections")
    print(net.summary())
    sem = source_modes(g, args)
    reset, spikes = sem.reset, sem.spikes
    kind, seq = load_data(g, args.data, args.samples, None, None)
    if seq.spiking != net.input_spiking:
        net = lower(g, input_spiking=seq.spiking)
    T, B = seq.inputs.shape[:2]
    where = (f"MNIST test[{defaults.HELD_OUT_START}:{defaults.HELD_OUT_START + B}] (held out)" if kind == "mnist"
             else kind)
    print(f"\n== float reference on {where}, {T} steps, {sem.header()}")
    preds, totals, sizes = run_reference(net, seq, reset, spikes, v_min=sem.v_min)
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %")
    rates = {}
    for k, v in totals.items():
        rates[k] = v / (T * B * sizes[k])
        print(f"  firing rate {k:<10} {rates[k]:.4f} spikes/neuron/step")
    chip = load_chip(args.chip)
    qnet, _ = quantize(net, chip)
    r = simulate_int(reference_net(qnet, chip.timing.mode), seq.inputs, reset=reset, spikes=spikes,
                     v_min=sem.v_min)
    ci = int((r.predict() == seq.labels).sum())
    print(f"\n== integer reference ({chip.core.weight_bits}-bit weights, {chip.core.membrane_bits}-bit membrane): "
          f"accuracy {ci}/{B} = {100.0 * ci / B:.2f} %")
    print(f"\n== mapping on {chip.name}, traffic weighted by the measured firing rates")
    m = map_model(net, chip, placement="anneal", rates=rates, model=name)
    print(m.report())
    out = Path(args.output)
    m.save(out / "mapping")
    print(f"\nmapping written to {out / 'mapping'}/ (mapping.json + mapping.npz)")
    print(f"\n== chip simulation (Numba engine, {chip.timing.mode} timing on the first sample)")
    run = chip_simulate(m, seq.inputs, reset=reset, spikes=spikes, v_min=sem.v_min, timing=True,
                        record=[m.net.output])  # a small raster: the output layer only
    cc = int((run.predict() == seq.labels).sum())
    same = bool(np.array_equal(run.output, r.output))
    print(f"accuracy on the chip: {cc}/{B} = {100.0 * cc / B:.2f} %; output spikes identical to the "
          f"integer reference: {'yes' if same else 'NO'} ({B} of {B} samples checked)")
    tm = run.timing
    cps = float(np.mean(tm.get("cycles_per_step", [np.nan])))
    print(f"latency: {cps:,.0f} cycles per step, {T} steps = {cps * T / chip.timing.clock_hz * 1e6:,.1f} us "
          f"per inference at {chip.timing.clock_hz / 1e6:g} MHz")
    run.meta["mapping"] = str((out / "mapping").resolve())
    run.save(out / "run")
    files = report(run, m, out / "report")
    print(f"\n== energy report: {len(files.get('files', files))} files in {out / 'report'}/ "
          f"(energy.md, energy.tex, CSV, JSON, figures)")
    print(f"demo done in {time.perf_counter() - t0:.1f} s; report: {out / 'report' / 'energy.md'}")
    return 0 if same else 1
