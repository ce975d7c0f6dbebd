"""Commands about crossbar-aware pruning: ``prune`` and ``prune-sweep`` (measurements in :mod:`snnchip.pruning`)."""

from __future__ import annotations

from models.errors import SnnchipError

from .cmd_chip import chip_from_args
from .cmd_model import data_options, load_model
from .inputs import load_data, source_modes


def _prune_setup(args):
    if args.finetune is not None and args.finetune < 1:
        raise SnnchipError(f"--finetune must be >= 1 epochs, got {args.finetune}")
    g = load_model(args.model, args)
    if args.finetune:
        from models.train import model_from_graph

        try:
            model_from_graph(g)
        except ValueError as e:
            raise SnnchipError(f"--finetune: {args.model}: {e}; prune it without --finetune, or fine-tune "
                               "through mapper.prune.finetune(..., callback=...)") from None
    chip = chip_from_args(args)
    sem = source_modes(g, args)
    encoding = None if g.metadata.get("encoding") else "direct"
    kind, seq = load_data(g, args.data, args.samples, args.steps, encoding, **data_options(args))
    return g, chip, sem, kind, seq


def cmd_prune(args):
    """Prune a model for a chip; print crossbars, chip-simulator accuracy and energy before/after."""
    from mapper.prune import check_request

    from .pruning import ENERGY_TABLE, check_out_path, evaluate, prune_model

    check_request(args.target, args.grain, args.score)
    out = check_out_path(args.output) if args.output else None
    g, chip, sem, kind, seq = _prune_setup(args)
    T, B = seq.inputs.shape[:2]
    print(f"pruning {args.model} for {chip.name}: grain {args.grain}, target {args.target:g} of the crossbars, "
          f"reorder {'on' if args.reorder else 'off'}, score {args.score}, "
          + (f"fine-tuning {args.finetune} epoch(s)" if args.finetune else "no fine-tuning")
          + f" | evaluation: {kind} {B} samples x {T} steps on the chip simulator | {sem.header()}")
    before = evaluate(g, chip, seq, sem, desc="unpruned")
    rates = None
    if args.score == "activation":
        from mapper.prune import unit_rates

        n = min(B, 200)
        rates = unit_rates(g, seq.inputs[:, :n], reset=sem.reset, spikes=sem.spikes, v_min=sem.v_min)
        print(f"activation score: mean input activity per unit from {n} samples of the float reference")
    res = prune_model(g, chip, target=args.target, grain=args.grain, reorder=args.reorder,
                      finetune=args.finetune or 0, score=args.score, mapping=before["mapping"], unit_rates=rates)
    after = evaluate(res.graph, chip, seq, sem, desc="pruned")
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
    from mapper.prune import check_request

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
            check_request(t, gr, "l1")
    reorders = {"no": [False], "yes": [True], "both": [False, True]}[args.reorder]
    g, chip, sem, kind, seq = _prune_setup(args)
    rows = sweep(args.model, g, chip, seq, sem, targets=targets, grains=grains, reorders=reorders,
                 finetune=args.finetune or 0, log=lambda s: print(s, flush=True),
                 on_row=lambda rows: write_sweep(rows, args.output))
    files = write_sweep(rows, args.output)
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0


