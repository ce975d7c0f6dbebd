"""Commands about the chip: ``chip list|show``, ``map``, ``run`` (the chip simulator) and ``report``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from models.errors import SnnchipError

from .cmd_model import data_options, load_model
from .inputs import load_data, source_modes


def chip_from_args(args):
    """The chip of ``--chip`` with every ``--set FIELD=VALUE`` applied (its name says so)."""
    from hwsim.chip import load_chip, parse_overrides

    chip = load_chip(args.chip)
    if getattr(args, "set", None):
        chip = chip.with_overrides(parse_overrides(args.set))
    return chip


def cmd_chip(args):
    from hwsim.chip import list_presets, load_chip
    from hwsim.chip_describe import describe

    if args.chip_command == "list":
        for name in list_presets():
            chip = load_chip(name)
            print(f"{name:<10} {chip.total_cores:>6,} cores  {chip.core.axons}x{chip.core.neurons} crossbars  "
                  f"{chip.core.weight_bits}-bit weights  {chip.description.splitlines()[0] if chip.description else ''}")
        return 0
    args.chip = args.name
    print(describe(chip_from_args(args)))
    return 0


def cmd_map(args):
    from mapper.mapping import map_model
    from models import lower

    g = load_model(args.model, args)
    chip = chip_from_args(args)
    rates = None
    sem = source_modes(g, args)
    net = lower(g)
    if args.profile:
        kind, seq = load_data(g, None, args.profile, None, None)
        net = lower(g, input_spiking=seq.spiking)
        from models import simulate

        r = simulate(net, seq.inputs, reset=sem.reset, spikes=sem.spikes, v_min=sem.v_min)
        rates = r.firing_rates()
        if seq.spiking:
            rates[net.input.name] = float(seq.inputs.mean())
        print(f"profiled firing rates on {seq.inputs.shape[1]} {kind} samples: "
              + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    if args.fold_sweep:
        return _fold_sweep(args, net, chip)
    net.metadata.update(sem.record())  # the run inherits the semantics the mapping was made for
    print(f"simulation semantics recorded in the mapping: {sem.header()}")
    t0 = time.perf_counter()
    m = map_model(net, chip, placement=args.placement, rates=rates, max_fold=args.max_fold,
                  seed=args.seed, model=args.model, encoding=args.encoding, axon_copies=args.axon_copies)
    dt = time.perf_counter() - t0
    print(m.report())
    if args.output:
        m.save(args.output)
        files = " + ".join(p.name for p in sorted(Path(args.output).iterdir()) if p.name.endswith((".json", ".npz")))
        print(f"\nmapping written to {args.output}/: {files} ({dt:.1f} s to map)")
    return 0


def _fold_sweep(args, net, chip):
    from mapper.mapping import fold_sweep

    try:
        folds = [int(f) for f in args.fold_sweep.split(",")]
    except ValueError:
        raise SnnchipError(f"--fold-sweep must be comma-separated integers, got {args.fold_sweep!r}") from None
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


def _check_run_args(args) -> None:
    for name, value, low in (("--samples", args.samples, 1), ("--steps", args.steps, 1), ("--batch", args.batch, 1),
                             ("--timing-samples", args.timing_samples, 0), ("--check", args.check, 0)):
        if value is not None and value < low:
            raise SnnchipError(f"{name} must be >= {low}, got {value}")
    if getattr(args, "memory_gb", None) is not None and not args.memory_gb > 0:
        raise SnnchipError(f"--memory-gb must be > 0, got {args.memory_gb}")


def cmd_run(args):
    """Run a saved mapping on the chip simulator (hwsim): accuracy, latency, counters.

    The data kind follows the mapping's input population ((2,34,34) -> nmnist,
    (1,28,28) -> mnist) unless ``--data`` names one or an ``.npz``; reset/spike modes,
    MNIST encoding and steps default to the net's metadata (the graph's), else
    subtract / binary. The mapping is compiled once; the engine runs in chunks of about
    an eighth of the samples (at least the Numba threads), at most ``--batch``, fewer
    when the memory budget ``--memory-gb`` (default
    :func:`models.limits.max_bytes`: ``$SNNCHIP_MAX_BYTES``, else a quarter of the
    machine's memory) cannot hold more (:func:`hwsim.engine.samples_per_call`), with a
    progress bar over the chunks; their results are merged; cycle timing covers the first ``--timing-samples`` samples
    (counters always cover every sample). The first ``--check`` samples are also run
    on the integer reference and compared spike for spike.
    """
    from types import SimpleNamespace

    import numba
    from tqdm import tqdm

    from hwsim.engine import samples_per_call
    from hwsim.engine import simulate as hw_simulate
    from hwsim.program import compile as compile_program
    from hwsim.result import merge_results
    from mapper.mapping import Mapping
    from models import limits

    from .cmd_sweep import run_on_cluster
    from .tracing import trace_request

    folder = Path(args.mapping)
    if not folder.is_dir():
        raise SnnchipError(f"{folder}: no such mapping folder (write one with `snnchip map MODEL -o {folder}`)")
    _check_run_args(args)
    m = Mapping.load(folder)
    net = m.net
    meta = dict(net.metadata or {})
    model = SimpleNamespace(input_shape=tuple(net.input.shape), metadata=meta)
    sem = source_modes(model, args)
    reset, spikes = sem.reset, sem.spikes
    encoding = args.encoding
    if encoding is None:
        if not net.input_spiking:
            encoding = "direct"  # the first projections were mapped in MAC mode: real-valued input
        elif meta.get("encoding") in (None, "direct"):
            encoding = "rate"
    kind, seq = load_data(model, args.data, args.samples, args.steps, encoding, args.start, args.seed,
                          **data_options(args))
    if seq.spiking is False and net.input_spiking:
        raise SnnchipError(f"{kind}: real-valued inputs, but {folder} was mapped for spiking input "
                           f"(its first layer has no MAC mode); give spike counts or --encoding rate|poisson")
    T, B = seq.inputs.shape[:2]
    K = min(args.timing_samples, B)
    traces = trace_request(args, m, B, T)
    K = max(K, traces.timed_samples)
    stationary = m.chip.core.conv_mapping == "weight_stationary"
    n_cores = m.resources()["cores_used"] if stationary else len(m.tiling.cores)
    print(f"mapping {folder} ({m.model or 'model'} on {m.chip.name}, {n_cores} cores"
          f"{', weight-stationary' if stationary else ''}) | data {kind} | "
          f"{B} samples x {T} steps | {sem.header()} | cycle timing on {K} sample(s)")
    t0 = time.perf_counter()
    r = run_on_cluster(args, m, seq.inputs, reset=reset, spikes=spikes, v_min=sem.v_min, timing_samples=K,
                       record=traces.record, traces=traces)
    parts = [] if r is None else [r]
    if r is None:
        # compiled once; samples run in chunks that fit the memory budget (kernel tables,
        # one thread's scratch, the chunk's outputs and recordings), never all at once
        budget = limits.max_bytes() if args.memory_gb is None else int(args.memory_gb * (1 << 30))
        if stationary:  # hwsim.simulate runs the mapping itself (hwsim.stationary chunks its patches)
            prog, fit = m, args.batch
        else:
            prog = compile_program(m)
            fit = samples_per_call(prog, T, record=traces.record, reset=reset, spikes=spikes, v_min=sem.v_min,
                                   timing=K > 0, max_bytes=budget)
        # about 8 updates of the progress bar, each call still feeding every thread
        per_call = max(1, min(args.batch, fit, max(numba.get_num_threads(), -(-B // 8))))
        print(f"memory budget {limits.format_bytes(budget)}: {per_call} sample(s) per call, "
              f"{-(-B // per_call)} call(s)")
        with tqdm(total=B, desc="chip simulation", unit="sample", file=sys.stderr) as bar:
            for lo, hi in traces.batches(B, per_call):
                nt = max(0, min(K - lo, hi - lo))
                parts.append(hw_simulate(prog, seq.inputs[:, lo:hi], reset=reset, spikes=spikes, v_min=sem.v_min,
                                         timing=nt > 0, timing_samples=max(nt, 1), record=traces.record,
                                         trace=traces.config_for(lo, hi), max_bytes=budget))
                bar.update(hi - lo)
        del prog
        r = merge_results(parts)
    dt = time.perf_counter() - t0
    r.meta["traces"] = traces.written(parts)
    preds = r.predict()
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %   ({dt:.1f} s, {B / dt:.1f} samples/s)")
    _print_agreement(m, seq, r, sem, min(args.check, B))
    _print_latency(m, r)
    _print_counters(r, B)
    if stationary:
        _print_energy(m, r)
    r.meta.update({"mapping": str(folder), "mapping_sha256": m.file_sha256, "model": m.model, "data": kind,
                   "accuracy": correct / B, "labels": [int(v) for v in seq.labels],
                   "semantics": sem.record()})
    out = Path(args.output) if args.output else folder / "run"
    r.save(out)
    print(f"result written to {out}/ (result.json + result.npz)")
    for kind_, path in r.meta["traces"].items():
        print(f"{kind_} trace written to {path}")
    return 0


def _print_agreement(m, seq, r, sem, n: int) -> None:
    """Run the first ``n`` samples on the integer reference; print whether the chip's output spikes equal it."""
    if n == 0:
        print("integer reference check: skipped (--check 0)")
        return
    from hwsim.engine import reference_net
    from models.intref import simulate_int

    ref = simulate_int(reference_net(m.net, m.chip.timing.mode), seq.inputs[:, :n], reset=sem.reset,
                       spikes=sem.spikes, v_min=sem.v_min)
    T = ref.output.shape[0]
    differ = (r.output[:, :n].reshape(T, n, -1) != ref.output.reshape(T, n, -1)).any(axis=(0, 2))
    bad = int(differ.sum())
    same = bad == 0
    print(f"output spikes identical to the integer reference: {'yes' if same else 'NO'} "
          f"({n} of {seq.inputs.shape[1]} samples checked" + ("" if same else f"; {bad} differ") + ")")


def _print_latency(m, r) -> None:
    if r.timing is None:
        print("latency: not timed (--timing-samples 0)")
        return
    tim = r.timing
    sc = np.asarray(tim["step_cycles"], dtype=np.float64)
    lat = np.asarray(tim["latency_cycles"], dtype=np.float64)
    us = np.asarray(tim["latency_us"], dtype=np.float64)
    clock = float(m.chip.timing.clock_hz)
    print(f"latency ({tim.get('mode', 'sync')} mode, {sc.shape[0]} timed sample(s), {clock / 1e6:g} MHz): "
          f"{sc.mean():,.1f} cycles/step (min {sc.min():,.0f}, max {sc.max():,.0f}); "
          f"{lat.mean():,.0f} cycles = {us.mean():,.2f} us per inference"
          + (f"; {tim['overruns']} step overrun(s)" if tim.get("overruns") else ""))


def _print_counters(r, B: int) -> None:
    tot = r.totals()
    rows = [("crossbar reads", "crossbar_reads"), ("input events", "events"), ("ACs", "acs"), ("MACs", "macs"), ("neuron updates", "neuron_updates"),
            ("spikes", "spikes"), ("packets", "packets"), ("flits", "flits"), ("flit-hops", "flit_hops"),
            ("busy cycles", "busy_cycles")]
    print(f"counters (all {B} samples; total and per inference):")
    for label, key in rows:
        if key in tot:
            print(f"  {label:<15} {tot[key]:>18,}  {tot[key] / B:>16,.1f}")


def _print_energy(m, r) -> None:
    """Energy per inference of a weight-stationary run, in the paper and chip-ops views
    (default table; :mod:`energy.stationary` says what each view prices)."""
    from energy.estimate import estimate
    from models import defaults

    parts = [f"{view} {estimate(r, defaults.ENERGY_TABLE, view, mapping=m).total_pj / 1e6:,.3f} uJ"
             for view in ("paper", "chip-ops")]
    print(f"energy per inference ({defaults.ENERGY_TABLE}): {'; '.join(parts)}")


def cmd_report(args):
    """Energy and activity report of a saved run: tables (Markdown, LaTeX, CSV, JSON) and figures.

    The mapping is ``--mapping``, else the ``mapping`` folder recorded in the run's
    result.json, else the RUN folder itself or its parent when it holds mapping.json.
    """
    from energy import report
    from hwsim.result import RunResult
    from mapper.mapping import Mapping
    from models import defaults

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
    if m.chip.core.conv_mapping == "weight_stationary":  # the report's figures draw the placement and NoC
        raise SnnchipError(f"{run}: a weight-stationary run has no placement or NoC to draw; its energy is in "
                           f"`snnchip run`'s output and snnchip.estimate(result, mapping, view=...)")
    ran = r.meta.get("mapping_sha256")
    if ran and ran != m.file_sha256:
        raise SnnchipError(f"{run}: this run was made with a different mapping than the one now in {folder} "
                           f"(mapping.json changed since); run it again: snnchip run {folder} -o {run}")
    raster = None
    if args.raster:
        raster = {}
        for item in args.raster:
            pop, _, idx = item.partition(":")
            try:
                raster[pop] = [int(i) for i in idx.split(",")] if idx else None
            except ValueError:
                raise SnnchipError(f"--raster {item!r}: expected POP or POP:i,j,... with integer indices") from None
    tables = args.table or list(defaults.ENERGY_TABLES)
    from models.fileio import AtomicFolder

    with AtomicFolder(args.output) as out:  # the report's files appear together, or not at all
        files = report(r, m, out.tmp, tables=tables, raster=raster, figure_table=tables[0])
    skipped = files.pop("skipped", {})
    print(f"report of {run} (mapping {folder}) written to {args.output}/:")
    for k, p in files.items():
        print(f"  {p.name}")
    for k, why in skipped.items():
        print(f"  not drawn: {k} ({why})")
    return 0
