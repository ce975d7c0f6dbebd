"""The ``snnchip`` command line: thin wiring over models, mapper, hwsim and energy.

Every command turns a :class:`models.SnnchipError` into one line on stderr and
exit code 2; argparse usage errors also print one line.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from models.errors import SnnchipError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"snnchip: error: {message} (see snnchip -h)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _load(spec: str):
    from models.zoo.catalog import load

    return load(spec)


def _data_kind(graph, requested: str | None) -> str:
    if requested:
        return requested
    shape = tuple(graph.input_shape)
    if shape == (2, 34, 34):
        return "nmnist"
    if shape in ((1, 28, 28), (784,)):
        return "mnist"
    raise SnnchipError(f"model input shape {shape} matches no built-in dataset; give --data")


def load_data(graph, data: str | None, samples: int, steps: int | None, encoding: str | None,
              start: int | None = None, seed: int = 0):
    """Input sequences for ``graph`` from a built-in dataset, checked against its input shape."""
    from models import datasets

    kind = _data_kind(graph, data)
    if samples is not None and samples < 1:
        raise SnnchipError(f"--samples must be >= 1, got {samples}")
    if steps is not None and steps < 1:
        raise SnnchipError(f"--steps must be >= 1, got {steps}")
    if kind == "nmnist":
        seq = datasets.load_nmnist(samples=samples, steps=steps)
    elif kind == "mnist":
        enc = encoding or str(graph.metadata.get("encoding", "rate"))
        T = steps or int(graph.metadata.get("steps", 32))
        seq = datasets.mnist_sequences(enc, T, start=8000 if start is None else start, samples=samples, seed=seed)
    else:
        raise SnnchipError(f"--data must be 'nmnist' or 'mnist', got {kind!r}")
    need = int(np.prod(graph.input_shape))
    if int(np.prod(seq.inputs.shape[2:])) != need:
        raise SnnchipError(f"{kind} samples have shape {seq.inputs.shape[2:]}, model input is {graph.input_shape}")
    seq.inputs = seq.inputs.reshape(seq.inputs.shape[:2] + tuple(graph.input_shape))
    return kind, seq


def run_reference(model, seq, reset: str, spikes: str, batch: int = 100, desc: str = "reference"):
    """Simulate in batches with a progress bar; returns (predictions, spike totals, sizes, steps)."""
    from tqdm import tqdm

    from models import simulate

    B = seq.inputs.shape[1]
    preds, totals, sizes = [], {}, {}
    with tqdm(total=B, desc=desc, unit="sample", disable=B <= batch and seq.inputs.shape[0] < 50,
              file=sys.stderr) as bar:
        for lo in range(0, B, batch):
            r = simulate(model, seq.inputs[:, lo:lo + batch], reset=reset, spikes=spikes)
            preds.append(r.predict())
            for k, v in r.spike_totals.items():
                totals[k] = totals.get(k, 0.0) + v
            sizes.update(r.sizes)
            bar.update(min(batch, B - lo))
    return np.concatenate(preds), totals, sizes


def _modes(graph, args):
    reset = args.reset or str(graph.metadata.get("reset", "subtract"))
    spikes = args.spikes or str(graph.metadata.get("spikes", "binary"))
    return reset, spikes


# ----------------------------------------------------------------- commands -----------

def cmd_info(args):
    g = _load(args.model)
    print(f"model: {args.model}")
    print(g.summary())
    if args.lowered:
        from models import lower

        print()
        print(lower(g).summary())
    return 0


def cmd_simulate(args):
    from models import lower

    g = _load(args.model)
    reset, spikes = _modes(g, args)
    kind, seq = load_data(g, args.data, args.samples, args.steps, args.encoding, args.start, args.seed)
    model = lower(g, input_spiking=seq.spiking) if args.level == "net" else g
    T, B = seq.inputs.shape[:2]
    print(f"model {args.model} | data {kind} | {B} samples x {T} steps | reset={reset} spikes={spikes} | {args.level}")
    t0 = time.perf_counter()
    preds, totals, sizes = run_reference(model, seq, reset, spikes, args.batch)
    dt = time.perf_counter() - t0
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %   ({dt:.1f} s, {B / dt:.1f} samples/s)")
    print("firing rate (spikes per neuron per step):")
    for k, v in totals.items():
        print(f"  {k:<14} {v / (T * B * sizes[k]):.4f}")
    return 0


def cmd_demo(args):
    """End-to-end path on a shipped model: summary -> lowering -> float and integer
    reference accuracy -> mapping on Tianjic (resource report, files)."""
    from hwsim.chip import load_chip
    from mapper.mapping import map_model
    from mapper.quantize import quantize
    from models import lower
    from models.intref import simulate_int
    from models.zoo.catalog import TRAINED, trained_path

    name = next((n for n in ("mnist_cnn", "mnist_mlp") if trained_path(n).exists()), None)
    if name is None:
        raise SnnchipError(f"no shipped model found in {trained_path('mnist_cnn').parent}")
    t0 = time.perf_counter()
    g = _load(name)
    print(f"== snnchip demo: {name} -- {TRAINED[name]}")
    print(g.summary())
    net = lower(g)
    print(f"\n== lowered to {len(net.populations) - 1} populations and {len(net.projections)} projections")
    print(net.summary())
    reset, spikes = _modes(g, args)
    kind, seq = load_data(g, None, args.samples, None, None)
    T, B = seq.inputs.shape[:2]
    print(f"\n== float reference on MNIST test[8000:{8000 + B}] (held out), {T} steps, reset={reset}, spikes={spikes}")
    preds, totals, sizes = run_reference(net, seq, reset, spikes)
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %")
    rates = {}
    for k, v in totals.items():
        rates[k] = v / (T * B * sizes[k])
        print(f"  firing rate {k:<10} {rates[k]:.4f} spikes/neuron/step")
    chip = load_chip(args.chip)
    qnet, _ = quantize(net, chip)
    r = simulate_int(qnet, seq.inputs, reset=reset, spikes=spikes)
    ci = int((r.predict() == seq.labels).sum())
    print(f"\n== integer reference ({chip.core.weight_bits}-bit weights, {chip.core.membrane_bits}-bit membrane): "
          f"accuracy {ci}/{B} = {100.0 * ci / B:.2f} %")
    print(f"\n== mapping on {chip.name}, traffic weighted by the measured firing rates")
    m = map_model(net, chip, placement="anneal", rates=rates, model=name)
    print(m.report())
    from pathlib import Path

    from energy import report
    from hwsim.engine import simulate as chip_simulate

    out = Path(args.output)
    m.save(out / "mapping")
    print(f"\nmapping written to {out / 'mapping'}/ (mapping.json + mapping.npz)")
    print(f"\n== chip simulation (Numba engine, {chip.timing.mode} timing on the first sample)")
    run = chip_simulate(m, seq.inputs, reset=reset, spikes=spikes, timing=True,
                        record=[m.net.output])  # a small raster: the output layer only
    cc = int((run.predict() == seq.labels).sum())
    same = bool(np.array_equal(run.output, r.output))
    print(f"accuracy on the chip: {cc}/{B} = {100.0 * cc / B:.2f} %; output spikes identical to the "
          f"integer reference: {'yes' if same else 'NO'}")
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
    return 0


def cmd_chip(args):
    from hwsim.chip import describe, list_presets, load_chip, parse_overrides

    if args.chip_command == "list":
        for name in list_presets():
            chip = load_chip(name)
            print(f"{name:<10} {chip.total_cores:>6,} cores  {chip.core.axons}x{chip.core.neurons} crossbars  "
                  f"{chip.core.weight_bits}-bit weights  {chip.description.splitlines()[0] if chip.description else ''}")
        return 0
    chip = load_chip(args.name)
    if args.set:
        chip = chip.with_overrides(parse_overrides(args.set))
    print(describe(chip))
    return 0


def cmd_map(args):
    from hwsim.chip import load_chip, parse_overrides
    from mapper.mapping import map_model
    from models import lower

    g = _load(args.model)
    chip = load_chip(args.chip)
    if args.set:
        chip = chip.with_overrides(parse_overrides(args.set))
    rates = None
    net = lower(g)
    if args.profile:
        reset, spikes = _modes(g, args)
        kind, seq = load_data(g, None, args.profile, None, None)
        net = lower(g, input_spiking=seq.spiking)
        from models import simulate

        r = simulate(net, seq.inputs, reset=reset, spikes=spikes)
        rates = r.firing_rates()
        if seq.spiking:
            rates[net.input.name] = float(seq.inputs.mean())
        print(f"profiled firing rates on {seq.inputs.shape[1]} {kind} samples: "
              + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    if args.fold_sweep:
        from mapper.mapping import fold_sweep

        folds = [int(f) for f in args.fold_sweep.split(",")]
        print(f"{args.model} on {chip.name}: space/time trade-off by fold")
        print("| fold | tiles | cores | chips | cycles x | max state B/core | max memory B/core |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in fold_sweep(net, chip, folds):
            if not r["allowed"]:
                print(f"| {r['fold']} | - | - | - | - | above core.max_fold={chip.core.max_fold} | - |")
                continue
            chips = f"{r['chips']}" + ("" if r["fits"] else f" (> max {chip.mesh.max_chips})")
            print(f"| {r['fold']} | {r['tiles']:,} | {r['cores']:,} | {chips} | {r['cycles_factor']} | "
                  f"{r['state_bytes']:,} | {r['memory_bytes']:,} |")
        return 0
    t0 = time.perf_counter()
    m = map_model(net, chip, placement=args.placement, rates=rates, max_fold=args.max_fold,
                  seed=args.seed, model=args.model)
    dt = time.perf_counter() - t0
    print(m.report())
    if args.output:
        m.save(args.output)
        print(f"\nmapping written to {args.output}/mapping.json + mapping.npz ({dt:.1f} s to map)")
    return 0


def _merge_results(parts):
    """One :class:`hwsim.result.RunResult` from results of consecutive sample batches:
    outputs and recordings are joined along the sample axis, counters summed, and the
    timing of the timed samples joined (per-sample arrays concatenated, the packet
    latency histogram and overruns summed)."""
    from hwsim.result import RunResult

    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    tims = [r.timing for r in parts if r.timing is not None]
    timing = None
    if tims:
        timing = {}
        for k in tims[0]:
            vals = [t[k] for t in tims]
            if k == "packet_latency_hist":
                n = max(v.size for v in vals)
                timing[k] = sum(np.pad(v, (0, n - v.size)) for v in vals).astype(np.int64)
            elif isinstance(vals[0], np.ndarray):
                timing[k] = np.concatenate(vals, axis=0)
            elif isinstance(vals[0], (int, np.integer)) and not isinstance(vals[0], bool):
                timing[k] = int(sum(vals))
            else:
                timing[k] = vals[0]
    counters = None
    if first.counters is not None:
        counters = sum(r.counters for r in parts)
    meta = dict(first.meta)
    if "samples" in meta:
        meta["samples"] = int(sum(int(r.meta.get("samples", r.output.shape[1])) for r in parts))
    return RunResult(
        output=np.concatenate([r.output for r in parts], axis=1),
        spikes={k: np.concatenate([r.spikes[k] for r in parts], axis=1) for k in first.spikes},
        membrane={k: np.concatenate([r.membrane[k] for r in parts], axis=1) for k in first.membrane},
        counters=counters, counter_names=list(first.counter_names),
        core_population=list(first.core_population), timing=timing, meta=meta)


def cmd_run(args):
    """Run a saved mapping on the chip simulator (hwsim): accuracy, latency, counters.

    The data kind follows the mapping's input population ((2,34,34) -> nmnist,
    (1,28,28) -> mnist); reset/spike modes, MNIST encoding and steps default to the
    net's metadata (the graph's), else subtract / binary. The engine runs in batches
    of ``--batch`` samples whose results are merged; cycle timing covers the first
    ``--timing-samples`` samples (counters always cover every sample).
    """
    from pathlib import Path
    from types import SimpleNamespace

    from tqdm import tqdm

    from hwsim.engine import simulate as hw_simulate
    from mapper.mapping import Mapping

    folder = Path(args.mapping)
    if not folder.is_dir():
        raise SnnchipError(f"{folder}: no such mapping folder (write one with `snnchip map MODEL -o {folder}`)")
    if args.samples is not None and args.samples < 1:
        raise SnnchipError(f"--samples must be >= 1, got {args.samples}")
    if args.steps is not None and args.steps < 1:
        raise SnnchipError(f"--steps must be >= 1, got {args.steps}")
    if args.timing_samples < 0:
        raise SnnchipError(f"--timing-samples must be >= 0, got {args.timing_samples}")
    if args.batch < 1:
        raise SnnchipError(f"--batch must be >= 1, got {args.batch}")
    m = Mapping.load(folder)
    net = m.net
    meta = dict(net.metadata or {})
    model = SimpleNamespace(input_shape=tuple(net.input.shape), metadata=meta)
    reset, spikes = _modes(model, args)
    encoding = None
    if not net.input_spiking:
        encoding = "direct"  # the first projections were mapped in MAC mode: real-valued input
    elif meta.get("encoding") in (None, "direct"):
        encoding = "rate"
    kind, seq = load_data(model, args.data, args.samples, args.steps, encoding)
    T, B = seq.inputs.shape[:2]
    K = min(args.timing_samples, B)
    print(f"mapping {folder} ({m.model or 'model'} on {m.chip.name}, {len(m.tiling.cores)} cores) | data {kind} | "
          f"{B} samples x {T} steps | reset={reset} spikes={spikes} | cycle timing on {K} sample(s)")
    parts = []
    t0 = time.perf_counter()
    with tqdm(total=B, desc="chip simulation", unit="sample", file=sys.stderr,
              disable=B <= args.batch and T < 50) as bar:
        for lo in range(0, B, args.batch):
            hi = min(B, lo + args.batch)
            nt = max(0, min(K - lo, hi - lo))
            parts.append(hw_simulate(m, seq.inputs[:, lo:hi], reset=reset, spikes=spikes,
                                     timing=nt > 0, timing_samples=max(nt, 1)))
            bar.update(hi - lo)
    dt = time.perf_counter() - t0
    r = _merge_results(parts)
    preds = r.predict()
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %   ({dt:.1f} s, {B / dt:.1f} samples/s)")
    if r.timing is not None:
        tim = r.timing
        sc = np.asarray(tim["step_cycles"], dtype=np.float64)
        lat = np.asarray(tim["latency_cycles"], dtype=np.float64)
        us = np.asarray(tim["latency_us"], dtype=np.float64)
        clock = float(m.chip.timing.clock_hz)
        print(f"latency ({tim.get('mode', 'sync')} mode, {sc.shape[0]} timed sample(s), {clock / 1e6:g} MHz): "
              f"{sc.mean():,.1f} cycles/step (min {sc.min():,.0f}, max {sc.max():,.0f}); "
              f"{lat.mean():,.0f} cycles = {us.mean():,.2f} us per inference"
              + (f"; {tim['overruns']} step overrun(s)" if tim.get("overruns") else ""))
    else:
        print("latency: not timed (--timing-samples 0)")
    tot = r.totals()
    rows = [("input events", "events"), ("ACs", "acs"), ("MACs", "macs"), ("neuron updates", "neuron_updates"),
            ("spikes", "spikes"), ("packets", "packets"), ("flits", "flits"), ("flit-hops", "flit_hops"),
            ("busy cycles", "busy_cycles")]
    print(f"counters (all {B} samples; total and per inference):")
    for label, key in rows:
        if key in tot:
            print(f"  {label:<15} {tot[key]:>18,}  {tot[key] / B:>16,.1f}")
    r.meta.update({"mapping": str(folder), "model": m.model, "data": kind, "accuracy": correct / B,
                   "labels": [int(v) for v in seq.labels]})
    out = Path(args.output) if args.output else folder / "run"
    r.save(out)
    print(f"result written to {out}/ (result.json + result.npz)")
    return 0


def cmd_report(args):
    """Energy and activity report of a saved run: tables (Markdown, LaTeX, CSV, JSON) and figures.

    The mapping is ``--mapping``, else the ``mapping`` folder recorded in the run's
    result.json, else the RUN folder itself or its parent when it holds mapping.json.
    """
    from pathlib import Path

    from energy import report
    from energy.reporting import DEFAULT_TABLES
    from hwsim.result import RunResult
    from mapper.mapping import Mapping

    run = Path(args.run)
    if not run.is_dir():
        raise SnnchipError(f"{run}: no such run folder (write one with `snnchip run MAPPING -o {run}`)")
    r = RunResult.load(run)
    cands = [Path(args.mapping)] if args.mapping else []
    if not cands:
        ref = r.meta.get("mapping")
        if ref:
            cands += [Path(ref), run / ref]
        cands += [run, run.parent]
    folder = next((c for c in cands if (c / "mapping.json").exists()), None)
    if folder is None:
        raise SnnchipError(f"{run}: cannot find the run's mapping (looked in {', '.join(map(str, cands))}); "
                           f"give --mapping FOLDER")
    m = Mapping.load(folder)
    raster = None
    if args.raster:
        raster = {}
        for item in args.raster:
            pop, _, idx = item.partition(":")
            raster[pop] = [int(i) for i in idx.split(",")] if idx else None
    tables = args.table or list(DEFAULT_TABLES)
    files = report(r, m, args.output, tables=tables, raster=raster, figure_table=tables[0])
    skipped = files.pop("skipped", {})
    print(f"report of {run} (mapping {folder}) written to {args.output}/:")
    for k, p in files.items():
        print(f"  {p.name}")
    for k, why in skipped.items():
        print(f"  not drawn: {k} ({why})")
    return 0


def cmd_models(args):
    from models.zoo.catalog import available

    for k, v in available().items():
        print(f"{k:<28} {v}")
    return 0


def _prune_setup(args):
    from hwsim.chip import load_chip, parse_overrides

    if args.finetune is not None and args.finetune < 1:
        raise SnnchipError(f"--finetune must be >= 1 epochs, got {args.finetune}")
    g = _load(args.model)
    if args.finetune:
        from models.train import model_from_graph

        try:
            model_from_graph(g)
        except ValueError as e:
            raise SnnchipError(f"--finetune: {args.model}: {e}; prune it without --finetune, or fine-tune "
                               "through mapper.prune.finetune(..., callback=...)") from None
    chip = load_chip(args.chip)
    if args.set:
        chip = chip.with_overrides(parse_overrides(args.set))
    reset, spikes = _modes(g, args)
    encoding = None if g.metadata.get("encoding") else "direct"
    kind, seq = load_data(g, args.data, args.samples, args.steps, encoding)
    return g, chip, reset, spikes, kind, seq


def cmd_prune(args):
    """Prune a model for a chip; print crossbars, chip-simulator accuracy and energy before/after."""
    from mapper.prune import check_request as _check_request

    from .pruning import ENERGY_TABLE, check_out_path, evaluate, prune_model

    _check_request(args.target, args.grain, args.score)
    out = check_out_path(args.output) if args.output else None
    g, chip, reset, spikes, kind, seq = _prune_setup(args)
    T, B = seq.inputs.shape[:2]
    print(f"pruning {args.model} for {chip.name}: grain {args.grain}, target {args.target:g} of the crossbars, "
          f"reorder {'on' if args.reorder else 'off'}, score {args.score}, "
          + (f"fine-tuning {args.finetune} epoch(s)" if args.finetune else "no fine-tuning")
          + f" | evaluation: {kind} {B} samples x {T} steps on the chip simulator")
    before = evaluate(g, chip, seq, reset, spikes, desc="unpruned")
    rates = None
    if args.score == "activation":
        from mapper.prune import unit_rates

        n = min(B, 200)
        rates = unit_rates(g, seq.inputs[:, :n], reset=reset, spikes=spikes)
        print(f"activation score: mean input activity per unit from {n} samples of the float reference")
    res = prune_model(g, chip, target=args.target, grain=args.grain, reorder=args.reorder,
                      finetune=args.finetune or 0, score=args.score, mapping=before["mapping"], unit_rates=rates)
    after = evaluate(res.graph, chip, seq, reset, spikes, desc="pruned")
    print(f"{'layer':<10} {'pop':<8} {'block':>5} {'pairs kept':>11} {'xbar/pair':>9} {'crossbars':>13} {'kept':>8}")
    for node, r in res.layers.items():
        print(f"{node:<10} {r['population']:<8} {r['channel_block']:>5} {r['pairs_kept']:>5} of {r['pairs']:<3} "
              f"{r['crossbars_per_pair']:>9} {r['crossbars_before']:>5} -> {r['crossbars_after']:<5} "
              f"{100 * r['importance_kept']:7.1f}%")
    print(f"{'':<22}{'before':>12}{'after':>12}")
    print(f"{'crossbars':<22}{before['crossbars']:>12,}{after['crossbars']:>12,}   "
          f"({100 * (1 - after['crossbars'] / before['crossbars']):.1f} % fewer; the pruning implies "
          f"{res.crossbars_implied:,})")
    print(f"{'cores':<22}{before['cores']:>12,}{after['cores']:>12,}")
    print(f"{'accuracy (chip)':<22}{100 * before['accuracy']:>11.2f}%{100 * after['accuracy']:>11.2f}%   "
          f"({before['correct']}/{B} -> {after['correct']}/{B})")
    print(f"{'energy, paper view':<22}{before['energy_paper_uj']:>10.3f}uJ{after['energy_paper_uj']:>10.3f}uJ   "
          f"(per inference, E_MAC MACs + E_AC ACs, table {ENERGY_TABLE})")
    if out is not None:
        from models import write_nir

        write_nir(res.graph, out)
        print(f"pruned model written to {out}")
    return 0


def cmd_prune_sweep(args):
    """Crossbar savings vs chip accuracy at several targets, grains and reorder settings."""
    from mapper.prune import check_request as _check_request

    from .pruning import sweep, write_sweep

    try:
        targets = [float(v) for v in args.targets.split(",") if v.strip()]
    except ValueError:
        raise SnnchipError(f"--targets must be comma-separated fractions, got {args.targets!r}") from None
    grains = [v.strip() for v in args.grains.split(",") if v.strip()]
    if not targets or not grains:
        raise SnnchipError("--targets and --grains must not be empty")
    for t in targets:
        for gr in grains:
            _check_request(t, gr, "l1")
    reorders = {"no": [False], "yes": [True], "both": [False, True]}[args.reorder]
    g, chip, reset, spikes, kind, seq = _prune_setup(args)
    rows = sweep(args.model, g, chip, seq, reset, spikes, targets=targets, grains=grains, reorders=reorders,
                 finetune=args.finetune or 0, log=lambda s: print(s, flush=True),
                 on_row=lambda rows: write_sweep(rows, args.output))
    files = write_sweep(rows, args.output)
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snnchip", description="Map, simulate and report SNNs on many-core crossbar chips.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("info", help="print a model's per-node summary table")
    s.add_argument("model", help=".nir path, shipped model (mnist_mlp, mnist_cnn), nir_cnn, or zoo builder (vgg16:imagenet)")
    s.add_argument("--lowered", action="store_true", help="also print populations and projections")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("simulate", help="run the float reference simulator and print accuracy")
    s.add_argument("model")
    s.add_argument("--data", choices=["nmnist", "mnist"], help="dataset (default: from the input shape)")
    s.add_argument("--samples", type=int, default=100)
    s.add_argument("--steps", type=int, help="time steps (N-MNIST: 1 ms frames, default the longest sample)")
    s.add_argument("--encoding", choices=["direct", "rate", "poisson"], help="MNIST encoder (default: model metadata)")
    s.add_argument("--start", type=int, help="first MNIST test image (default 8000, the held-out split)")
    s.add_argument("--reset", choices=["zero", "subtract"], help="default: model metadata, else subtract")
    s.add_argument("--spikes", choices=["binary", "multi"], help="default: model metadata, else binary")
    s.add_argument("--level", choices=["graph", "net"], default="net", help="simulate the graph or the lowered net")
    s.add_argument("--batch", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("demo", help="end-to-end run on a shipped model")
    s.add_argument("--samples", type=int, default=500)
    s.add_argument("--chip", default="tianjic")
    s.add_argument("-o", "--output", default="demo_out", help="folder for the demo's files (default demo_out)")
    s.add_argument("--reset", choices=["zero", "subtract"])
    s.add_argument("--spikes", choices=["binary", "multi"])
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("chip", help="list chip presets or show one (a preset name or a YAML/JSON file)")
    chip_sub = s.add_subparsers(dest="chip_command", required=True, parser_class=_Parser)
    c = chip_sub.add_parser("list", help="list the presets")
    c.set_defaults(func=cmd_chip)
    c = chip_sub.add_parser("show", help="print every field of a chip, with sources and assumptions")
    c.add_argument("name", help="preset name (tianjic, loihi, truenorth, tiny) or a .yaml/.json file")
    c.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a field, e.g. core.axons=128")
    c.set_defaults(func=cmd_chip)

    s = sub.add_parser("map", help="quantize, tile, place and route a model on a chip; print the resource report")
    s.add_argument("model")
    s.add_argument("--chip", default="tianjic", help="preset name or YAML/JSON file (default tianjic)")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a chip field, e.g. core.axons=128")
    s.add_argument("--placement", choices=["rowmajor", "hilbert", "partition", "anneal"], default="rowmajor")
    s.add_argument("--max-fold", type=int, help="largest fold (output blocks per core) the mapper may use")
    s.add_argument("--profile", type=int, metavar="N", help="weight traffic by firing rates of N reference samples")
    s.add_argument("--reset", choices=["zero", "subtract"])
    s.add_argument("--spikes", choices=["binary", "multi"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", help="folder for mapping.json + mapping.npz")
    s.add_argument("--fold-sweep", metavar="F1,F2,...", help="print cores/chips per fold (e.g. 1,2,4,8,16) and stop")
    s.set_defaults(func=cmd_map)

    s = sub.add_parser("run", help="run a mapping (from `snnchip map -o`) on the chip simulator: accuracy, latency, counters")
    s.add_argument("mapping", help="mapping folder written by `snnchip map -o`")
    s.add_argument("--data", choices=["nmnist", "mnist"], help="dataset (default: from the input population's shape)")
    s.add_argument("--samples", type=int, default=100)
    s.add_argument("--steps", type=int, help="time steps (default: model metadata; N-MNIST: the longest sample)")
    s.add_argument("--reset", choices=["zero", "subtract"], help="default: model metadata, else subtract")
    s.add_argument("--spikes", choices=["binary", "multi"], help="default: model metadata, else binary")
    s.add_argument("--timing-samples", type=int, default=1, metavar="K",
                   help="samples timed cycle by cycle (default 1; 0 = functional only)")
    s.add_argument("--batch", type=int, default=128, help="samples per engine call (default 128)")
    s.add_argument("-o", "--output", help="folder for result.json + result.npz (default MAPPING/run)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("report", help="energy tables and figures of a saved run (from `snnchip run -o`)")
    s.add_argument("run", help="run folder holding result.json + result.npz")
    s.add_argument("-o", "--output", default="report", help="folder for the report files (default report)")
    s.add_argument("--mapping", help="mapping folder (default: recorded in the run, or the run folder's parent)")
    s.add_argument("--table", action="append", metavar="NAME|FILE.yaml",
                   help="technology table (repeatable; default all shipped; the first one is used for figures)")
    s.add_argument("--raster", action="append", metavar="POP[:i,j,...]",
                   help="neurons of a recorded population for the spike raster (repeatable)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("prune", help="crossbar-aware pruning: fewer crossbars; accuracy and energy before/after")
    s.add_argument("model")
    s.add_argument("--chip", default="tianjic", help="preset name or YAML/JSON file (default tianjic)")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a chip field, e.g. core.axons=128")
    s.add_argument("--grain", default="crossbar", help="crossbar | column (default crossbar)")
    s.add_argument("--target", type=float, required=True, help="fraction of the crossbars to remove, in (0, 1)")
    s.add_argument("--reorder", action="store_true", help="reorder input neurons/channels so prunable blocks line up")
    s.add_argument("--finetune", type=int, metavar="EPOCHS", help="L0-constrained fine-tuning (zoo models)")
    s.add_argument("--score", default="l1", choices=["l1", "l2", "activation"],
                   help="importance of a crossbar: weight L1 / L2 norm, or L1 x input activity (default l1)")
    s.add_argument("--data", choices=["nmnist", "mnist"], help="evaluation data (default: from the input shape)")
    s.add_argument("--samples", type=int, default=2000, help="held-out samples run on the chip (default 2000)")
    s.add_argument("--steps", type=int)
    s.add_argument("--reset", choices=["zero", "subtract"])
    s.add_argument("--spikes", choices=["binary", "multi"])
    s.add_argument("-o", "--output", help="write the pruned model here (.nir)")
    s.set_defaults(func=cmd_prune)

    s = sub.add_parser("prune-sweep", help="crossbar savings vs chip accuracy: CSV and figure")
    s.add_argument("model")
    s.add_argument("--chip", default="tianjic")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE")
    s.add_argument("--targets", default="0.2,0.35,0.44,0.5,0.6", help="comma-separated fractions")
    s.add_argument("--grains", default="crossbar,column")
    s.add_argument("--reorder", choices=["no", "yes", "both"], default="both")
    s.add_argument("--finetune", type=int, metavar="EPOCHS")
    s.add_argument("--data", choices=["nmnist", "mnist"])
    s.add_argument("--samples", type=int, default=2000)
    s.add_argument("--steps", type=int)
    s.add_argument("--reset", choices=["zero", "subtract"])
    s.add_argument("--spikes", choices=["binary", "multi"])
    s.add_argument("-o", "--output", default="prune_sweep", help="folder for sweep.csv/.json/.png/.pdf")
    s.set_defaults(func=cmd_prune_sweep)

    s = sub.add_parser("models", help="list shipped models and zoo builders")
    s.set_defaults(func=cmd_models)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SnnchipError as err:
        print(f"snnchip: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("snnchip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
