"""The ``sweep`` command (design-space grids, :mod:`snnchip.sweep`) and the cluster options of ``run``.

``add_parser(sub)`` adds ``snnchip sweep``; ``add_run_options(parser)`` adds ``--workers``
and ``--scheduler`` to ``snnchip run``, whose command calls :func:`run_on_cluster`.
"""

from __future__ import annotations

import os
import time

from models.errors import SnnchipError

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
MODEL_HELP = ".nir path, shipped model (mnist_mlp, mnist_cnn), nir_cnn, or zoo builder; omit it when the grid " \
             "lists model=... (default: none)"


def _cluster_options(s, *, workers_default_help: str, workers_default) -> None:
    s.add_argument("--workers", type=int, default=workers_default, metavar="N",
                   help=f"Dask workers of a local cluster, one process and thread each; 0 = no Dask, one process "
                        f"({workers_default_help})")
    s.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help=f"run on this existing Dask cluster instead of a local one (default: ${SCHEDULER_ENV} "
                        "if set, else none)")


def add_parser(sub) -> None:
    """Add ``snnchip sweep`` to the subcommands ``sub``."""
    s = sub.add_parser("sweep", help="design-space sweep: map, run and cost a model on a grid of chips; "
                       "table, parquet and Pareto figure")
    s.add_argument("model", nargs="?", help=MODEL_HELP)
    s.add_argument("--grid", action="append", metavar="FIELD=V1,V2,...",
                   help="a grid axis: a chip field (core.axons=128,256) or placement, max_fold, fold, seed, model; "
                        "repeatable (default: none)")
    s.add_argument("--grid-file", metavar="GRID.yaml", help="the grid as YAML: 'base: PRESET' and "
                   "'grid: {field: [values]}'; --grid adds to it (default: none)")
    s.add_argument("--chip", help="base chip every point overrides: preset name or YAML/JSON file "
                   "(default: the grid file's base, else tianjic)")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="a fixed change of the base chip, e.g. timing.mode=pipelined; repeatable (default: none)")
    s.add_argument("--placement", default="rowmajor", choices=["rowmajor", "hilbert", "partition", "anneal"],
                   help="placement of every point, unless the grid varies it (default rowmajor)")
    s.add_argument("--max-fold", type=int, help="largest fold the mapper may use (default: each chip's "
                   "core.max_fold)")
    s.add_argument("--seed", type=int, default=0, help="seed of the annealing placement (default 0)")
    s.add_argument("--data", metavar="nmnist|mnist|FILE.npz", help="dataset or your own .npz (default: chosen by "
                   "the model's input shape)")
    s.add_argument("--samples", type=int, default=100, help="samples run per point (default 100)")
    s.add_argument("--steps", type=int, help="time steps (default: the model's metadata, else 32 for images)")
    s.add_argument("--timing-samples", type=int, default=1, metavar="K",
                   help="samples per point timed cycle by cycle for the latency (default 1; 0 = none)")
    _cluster_options(s, workers_default_help="default: the machine's cores", workers_default=None)
    s.add_argument("--retries", type=int, default=2, help="times Dask retries a point whose task failed "
                   "(default 2; a worker that dies is replaced and its point rerun by Dask itself)")
    s.add_argument("--retry-failed", action="store_true", help="run again the points recorded with an error "
                   "(default off: skipped like finished ones)")
    s.add_argument("-o", "--output", default="sweep_out", help="folder for sweep.parquet, sweep.csv, "
                   "pareto.png/.pdf; points already in it are skipped (default sweep_out)")
    s.set_defaults(func=cmd_sweep)


def add_run_options(parser) -> None:
    """Add ``--workers`` and ``--scheduler`` to ``snnchip run`` (see :func:`run_on_cluster`)."""
    _cluster_options(parser, workers_default_help="default 0", workers_default=0)


def _scheduler(args) -> str | None:
    return getattr(args, "scheduler", None) or os.environ.get(SCHEDULER_ENV) or None


def _check(args) -> None:
    for name, value, low in (("--samples", args.samples, 1), ("--steps", args.steps, 1),
                             ("--timing-samples", args.timing_samples, 0), ("--workers", args.workers, 0),
                             ("--retries", args.retries, 0), ("--max-fold", args.max_fold, 1)):
        if value is not None and value < low:
            raise SnnchipError(f"{name} must be >= {low}, got {value}")


def cmd_sweep(args):
    """Run every point of the grid not yet in ``--output``; print the table and the files written."""
    from hwsim.chip import load_chip, parse_overrides

    from .sweep import check_grid, close, connect, load_grid_file, parse_grid, points, prepare, run_sweep
    from .sweep_results import format_table

    _check(args)
    base, grid = (None, {})
    if args.grid_file:
        base, grid = load_grid_file(args.grid_file)
    for k, v in parse_grid(args.grid).items():
        if k in grid:
            raise SnnchipError(f"--grid {k}: also in {args.grid_file}; give it once")
        grid[k] = v
    if "model" in grid and args.model:
        raise SnnchipError(f"give the model as MODEL ({args.model}) or as --grid model=..., not both")
    if "model" not in grid and not args.model:
        raise SnnchipError("no model: give MODEL or --grid model=A,B")
    models = [str(m) for m in grid["model"]] if "model" in grid else [args.model]
    if "model" in grid:
        grid["model"] = models
    chip = load_chip(args.chip or base or "tianjic")
    if args.set:
        chip = chip.with_overrides(parse_overrides(args.set))
    check_grid(grid, chip)
    t0 = time.perf_counter()
    shared = prepare(models, chip, data=args.data, samples=args.samples, steps=args.steps,
                       placement=args.placement, max_fold=args.max_fold, seed=args.seed,
                       timing_samples=args.timing_samples)
    n_points = len(points(grid))
    mi = next(iter(shared.models.values()))
    print(f"sweep of {', '.join(models)} on {chip.name}: {n_points} points over "
          + " x ".join(f"{k} ({len(v)})" for k, v in grid.items())
          + f" | {mi.data} {mi.inputs.shape[1]} samples x {mi.inputs.shape[0]} steps, "
          f"{args.timing_samples} timed | output {args.output}/", flush=True)
    client = None
    scheduler = _scheduler(args)
    if scheduler or args.workers != 0:
        client = connect(workers=args.workers, scheduler=scheduler)
    try:
        df = run_sweep(shared, grid, args.output, client=client, retries=args.retries,
                         retry_failed=args.retry_failed, log=lambda s: print(s, flush=True))
    finally:
        if client is not None:
            close(client)
    dt = time.perf_counter() - t0
    print(format_table(df, list(grid)))
    bad = int((df["status"] != "ok").sum())
    print(f"{len(df)} rows ({bad} failed) in {dt:.1f} s; wrote {args.output}/sweep.parquet, sweep.csv, "
          f"pareto.png, pareto.pdf")
    return 0


def run_on_cluster(args, mapping, inputs, *, reset: str, spikes: str, timing_samples: int, record=None,
                   traces=None, v_min=None):
    """``snnchip run``'s samples sharded over Dask (:func:`snnchip.sweep.run_sharded`), or None.

    None when neither ``--workers N`` (N > 0) nor a scheduler (``--scheduler`` or
    ``$DASK_SCHEDULER_ADDRESS``) asks for a cluster: the caller runs its own loop.
    Trace files (VCD, timeline, AER) are written by one engine call and refuse a cluster.
    """
    from .sweep import close, connect, run_sharded

    scheduler = _scheduler(args)
    workers = getattr(args, "workers", 0) or 0
    if workers < 0:
        raise SnnchipError(f"--workers must be >= 0, got {workers}")
    if not scheduler and workers == 0:
        return None
    if traces is not None and traces.config.enabled:
        raise SnnchipError("--vcd, --chrome and --aer trace one process's run; drop --workers/--scheduler "
                           f"(and unset ${SCHEDULER_ENV}) to trace")
    client = connect(workers=workers, scheduler=scheduler)
    try:
        return run_sharded(mapping, inputs, client=client, reset=reset, spikes=spikes, v_min=v_min,
                             timing_samples=timing_samples, batch=args.batch, record=record, progress=True)
    finally:
        close(client)


__all__ = ["add_parser", "add_run_options", "cmd_sweep", "run_on_cluster"]
