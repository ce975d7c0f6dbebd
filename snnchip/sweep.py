"""Design-space sweeps and sample-sharded runs, in one process or on a Dask cluster.

Owns ``snnchip sweep`` and :func:`sweep`: a grid of chip fields and mapping options is
expanded into points; each point is mapped (:func:`mapper.mapping.map_model`), run on
the chip simulator (:func:`snnchip.api.run`: every sample functionally, the first
``timing_samples`` cycle by cycle) and costed under both energy views of
:data:`models.defaults.ENERGY_TABLE`. Rows stream into ``sweep.parquet`` and
``sweep.csv`` (rewritten atomically after every point, in grid order) and a Pareto
figure; a point is skipped when its key is already in the folder, so an interrupted
sweep resumes where it stopped. :func:`run_sharded` splits one run's samples over a
cluster and merges the shards exactly (:func:`hwsim.result.merge_results`).
"""

from __future__ import annotations

from concurrent.futures import CancelledError

import hashlib
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from models.errors import SnnchipError

from .sweep_results import (RESULT_FIELDS, VIEWS, SweepError, is_missing, pareto_figure, pareto_front, read_results,
                            results_frame, write_results)

#: grid keys that are mapping options, not chip fields (chip fields are dotted: ``core.axons``).
MAP_KEYS = ("model", "placement", "max_fold", "fold", "seed")
PLACEMENTS = ("rowmajor", "hilbert", "partition", "anneal")
#: status prefix of a point whose worker was lost or whose code failed outside the project's
#: typed errors: recorded, but computed again on the next run of the same sweep.
CRASHED = "crashed: "


# ----------------------------------------------------------------- the grid ---------------

def parse_grid(items) -> dict:
    """``["core.axons=128,256", "noc.multicast=unicast,xy-tree"]`` -> ``{field: [values]}``.

    Values are split at commas and parsed as YAML scalars (:func:`hwsim.chip.parse_overrides`),
    so ``128`` is an int and ``xy-tree`` a string. A field given twice is an error.
    """
    from hwsim.chip import parse_overrides

    grid: dict = {}
    for item in items or ():
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise SweepError(f"--grid {item!r}: expected FIELD=V1,V2,..., e.g. core.axons=128,256")
        if key in grid:
            raise SweepError(f"--grid {key}: given twice; list all its values once")
        grid[key] = [parse_overrides([f"{key}={v.strip()}"])[key] for v in raw.split(",") if v.strip()]
    return grid


def load_grid_file(path) -> tuple[str | None, dict]:
    """(base chip or None, grid) of a YAML file ``base: PRESET`` + ``grid: {field: [values]}``.

    A ``base`` that is not a preset is a chip file relative to the grid file.
    """
    import yaml

    from hwsim.chip import list_presets

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SweepError(f"{path}: cannot read grid file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("grid"), dict):
        raise SweepError(f"{path}: expected a mapping with 'grid: {{field: [values]}}' (and optional 'base: PRESET')")
    extra = sorted(set(doc) - {"base", "grid"})
    if extra:
        raise SweepError(f"{path}: unknown key(s) {', '.join(extra)}; allowed: base, grid")
    grid = {}
    for k, v in doc["grid"].items():
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise SweepError(f"{path}: grid.{k}: no values")
        grid[str(k)] = vals
    base = doc.get("base")
    if base is not None:
        base = str(base)
        if base not in list_presets() and not Path(base).is_absolute():
            base = str(path.parent / base)
    return base, grid


def points(grid: dict) -> list[dict]:
    """Every combination of the grid's values, the last field varying fastest (``itertools.product``)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def check_grid(grid: dict, base_chip) -> None:
    """Refuse unknown fields and empty value lists before any point runs (a bad *value* is a point's error)."""
    if not grid:
        raise SweepError("empty grid: give --grid FIELD=V1,V2 or --grid-file GRID.yaml")
    chip = base_chip.to_dict()
    for key, values in grid.items():
        if not values:
            raise SweepError(f"grid field {key}: no values")
        if "." not in key:
            if key not in MAP_KEYS:
                raise SweepError(f"grid field {key!r}: unknown; mapping options are {', '.join(MAP_KEYS)}, "
                                 "chip fields are dotted (core.axons, core.weight_bits, noc.multicast, ...)")
            continue
        node = chip
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SweepError(f"grid field {key!r}: not a field of chip {base_chip.name} "
                                 f"(sections: {', '.join(k for k, v in chip.items() if isinstance(v, dict))})")
            node = node[part]
        if isinstance(node, dict):
            raise SweepError(f"grid field {key!r} is a section; name one of its fields ({', '.join(node)})")


# ----------------------------------------------------------------- identities -------------

def _feed(h, obj) -> None:
    if isinstance(obj, np.ndarray):
        h.update(f"nd{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            h.update(str(k).encode() + b":")
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, np.generic):
        _feed(h, obj.item())
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def model_identity(graph) -> str:
    """SHA-256 of what decides a model's results: nodes (type and every weight array), edges, dt, metadata.

    The same weights give the same identity whether they came from a ``.nir`` file,
    a shipped name or a zoo builder; any changed weight gives another.
    """
    import dataclasses

    h = hashlib.sha256()
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        h.update(f"node {name} {type(node).__name__}".encode())
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                if f.name != "metadata":
                    _feed(h, getattr(node, f.name))
    _feed(h, sorted(graph.edges))
    _feed(h, float(graph.dt))
    _feed(h, {k: str(v) for k, v in (graph.metadata or {}).items()})
    return h.hexdigest()


def point_key(point: dict, context: dict) -> str:
    """16 hex digits of SHA-256 over the point's fields and what else decides its row.

    ``context``: the model's identity, the base chip, samples, steps and data; a
    point with the same key gives the same row, so a re-run skips it.
    """
    doc = {"point": {k: point[k] for k in sorted(point) if k != "model"}, **context}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ----------------------------------------------------------------- one point --------------

@dataclass
class ModelInputs:
    """What every point of one model shares: the lowered net and the data (scattered once)."""

    name: str
    net: object
    inputs: np.ndarray          # (T, B, *input_shape)
    labels: np.ndarray | None
    identity: str
    data: str


@dataclass
class SweepInputs:
    """The sweep's shared inputs: the base chip, the models and the fixed mapping options."""

    chip: object
    models: dict                 # name -> ModelInputs
    placement: str = "rowmajor"
    max_fold: int | None = None
    seed: int = 0
    timing_samples: int = 1
    table: str = ""
    batch: int = 128


def evaluate_point(point: dict, key: str, shared: SweepInputs) -> dict:
    """Map, run and cost one point; a :class:`SnnchipError` becomes the row's ``status``.

    Returns the row: every field of ``point``, then :data:`RESULT_FIELDS`. Latency is
    the mean over the timed samples: ``cycles_per_step`` and ``latency_us`` (cycles x
    steps / clock); energy per view is ``E.total_pj`` of :func:`energy.estimate.estimate`,
    per inference.
    """
    from mapper.mapping import map_model

    from .api import estimate, run

    t0 = time.perf_counter()
    mi = shared.models[point["model"]]
    row = dict(point)
    row.update({k: None for k in RESULT_FIELDS})
    row.update({"samples": int(mi.inputs.shape[1]), "steps": int(mi.inputs.shape[0]), "key": key, "pareto": False})
    try:
        overrides = {k: v for k, v in point.items() if "." in k}
        chip = shared.chip.with_overrides(overrides) if overrides else shared.chip
        row["chip"] = chip.name
        placement = str(point.get("placement", shared.placement))
        if placement not in PLACEMENTS:
            raise SweepError(f"placement {placement!r}: choose one of {', '.join(PLACEMENTS)}")
        m = map_model(mi.net, chip, placement=placement, max_fold=point.get("max_fold", shared.max_fold),
                      fold=point.get("fold"), seed=int(point.get("seed", shared.seed)), model=mi.name)
        row.update({"cores": len(m.tiling.cores), "chips": int(m.placement.n_chips),
                    "crossbars": int(m.tiling.n_crossbars), "fold": int(max(m.tiling.fold.values(), default=1))})
        r = run(m, mi.inputs, timing=shared.timing_samples > 0, timing_samples=max(1, shared.timing_samples),
                batch=shared.batch)
        if mi.labels is not None:
            row["accuracy"] = float(r.accuracy(mi.labels))
        if r.timing is not None:
            row["cycles_per_step"] = float(np.mean(r.timing["cycles_per_step"]))
            row["latency_cycles"] = float(np.mean(r.timing["latency_cycles"]))
            row["latency_us"] = float(np.mean(r.timing["latency_us"]))
        for view in VIEWS:
            row[f"energy_{view}_pj"] = float(estimate(r, m, table=shared.table or None, view=view).total_pj)
        row["status"] = "ok"
    except SnnchipError as e:
        row["status"] = f"{type(e).__name__}: {' '.join(str(e).split())}"
    row["wall_s"] = time.perf_counter() - t0
    return row


def _warm(shared: SweepInputs) -> float:
    """Load (or compile) the engine's Numba kernels in this process: one sample, two steps, base chip."""
    from mapper.mapping import map_model

    from .api import run

    t0 = time.perf_counter()
    for mi in shared.models.values():
        try:
            run(map_model(mi.net, shared.chip, model=mi.name), mi.inputs[:2, :1], timing_samples=1)
            break
        except SnnchipError:  # the base chip may not hold this model; try the next
            continue
    return time.perf_counter() - t0


# ----------------------------------------------------------------- the sweep --------------

def prepare(models, base_chip, *, data=None, samples: int = 100, steps: int | None = None, placement="rowmajor",
            max_fold=None, seed: int = 0, timing_samples: int = 1, table: str | None = None,
            batch: int = 128) -> SweepInputs:
    """Load each model, lower it and load its data once: the inputs every point shares."""
    from models import defaults, lower

    from .api import load, load_chip
    from .inputs import load_data

    chip = load_chip(base_chip)
    specs = {}
    for spec in models:
        g = load(spec)
        name = spec if isinstance(spec, str) else str(g.metadata.get("model", "model"))
        net = lower(g)
        enc = None if net.input_spiking else "direct"  # MAC-mode first layer: real-valued input
        kind, seq = load_data(g, data, samples, steps, enc)
        labels = None if seq.labels is None else np.asarray(seq.labels)
        specs[name] = ModelInputs(name, net, np.ascontiguousarray(seq.inputs), labels, model_identity(g), kind)
    return SweepInputs(chip, specs, placement, max_fold, seed, timing_samples, table or defaults.ENERGY_TABLE, batch)


def _context(shared: SweepInputs, mi: ModelInputs) -> dict:
    return {"model": mi.identity, "chip": hashlib.sha256(shared.chip.to_json().encode()).hexdigest(),
            "samples": int(mi.inputs.shape[1]), "steps": int(mi.inputs.shape[0]), "data": mi.data,
            "placement": shared.placement, "max_fold": shared.max_fold, "seed": shared.seed,
            "timing_samples": shared.timing_samples, "table": shared.table}


def run_sweep(shared: SweepInputs, grid: dict, out_dir=None, *, client=None, retries: int = 2,
              retry_failed: bool = False, progress: bool = True, figure_every_s: float = 5.0, log=None,
              _evaluate=None):
    """Evaluate every point of ``grid`` not already in ``out_dir``; returns the DataFrame of all rows.

    ``client``: a :class:`distributed.Client` (points run as tasks with ``retries``;
    the shared inputs are scattered to every worker once), or None: one process, in
    grid order (the oracle the parallel run is tested against). Rows are written after
    every point (tables; the figure at most every ``figure_every_s`` seconds and at the
    end). A point recorded in ``out_dir`` is skipped, except ``crashed:`` ones, and
    failed ones with ``retry_failed``. ``_evaluate`` replaces :func:`evaluate_point`
    (tests inject faults with it).
    """
    from tqdm import tqdm

    grid = dict(grid)
    if "model" not in grid:
        grid = {"model": list(shared.models), **grid}
    check_grid(grid, shared.chip)
    unknown = [m for m in grid["model"] if m not in shared.models]
    if unknown:
        raise SweepError(f"grid models {unknown} were not prepared (prepared: {', '.join(shared.models)})")
    fields = list(grid)
    pts = points(grid)
    keys = [point_key(p, _context(shared, shared.models[p["model"]])) for p in pts]
    if len(set(keys)) != len(keys):
        raise SweepError("the grid lists a point twice (a value repeated in one field?)")
    evaluate = _evaluate or evaluate_point
    old = read_results(out_dir) if out_dir is not None else None
    kept: dict = {}
    if old is not None:
        for rec in old.to_dict("records"):
            st = str(rec.get("status"))
            if st.startswith(CRASHED) or (retry_failed and st != "ok"):
                continue
            kept[str(rec["key"])] = {k: (None if is_missing(v) else v) for k, v in rec.items()}
    todo = [(i, p, k) for i, (p, k) in enumerate(zip(pts, keys)) if k not in kept]
    order = {k: i for i, k in enumerate(keys)}
    done: dict = {}

    def frame():
        prev = [r for k, r in kept.items() if k not in order]  # rows of other grids stay, first
        ours = sorted(((order[k], r) for k, r in {**kept, **done}.items() if k in order), key=lambda t: t[0])
        return results_frame(prev + [r for _, r in ours], fields)

    last_fig = [time.monotonic()]

    def save(final=False):
        if out_dir is None:
            return
        now = time.monotonic()
        fig = final or now - last_fig[0] >= figure_every_s
        write_results(frame(), out_dir, figure=fig)
        if fig:
            last_fig[0] = now

    if log:
        log(f"{len(pts)} points: {len(pts) - len(todo)} already in {out_dir}, {len(todo)} to run"
            + (f" on {_describe(client)}" if client is not None else " in this process"))
    bar = tqdm(total=len(todo), desc="sweep", unit="point", file=sys.stderr, disable=not progress or not todo)
    try:
        if client is None:
            for _, p, k in todo:
                done[k] = evaluate(p, k, shared)
                bar.update(1)
                save()
        else:
            _run_on_client(client, shared, todo, done, evaluate, retries, bar, save)
    finally:
        bar.close()
        if todo:
            save(final=True)
        elif out_dir is not None and old is not None and not (Path(out_dir) / "pareto.png").exists():
            save(final=True)
    return frame()


def _describe(client) -> str:
    try:
        nthreads = client.nthreads()
        return f"Dask {client.scheduler.address} ({len(nthreads)} workers, {sum(nthreads.values())} threads)"
    except Exception:  # noqa: BLE001 - only a log line
        return "Dask"


def _run_on_client(client, shared, todo, done, evaluate, retries, bar, save) -> None:
    from distributed import as_completed

    # one copy of the nets and data on every worker, not one per task
    shared_f = client.scatter(shared, broadcast=True)
    warm = [client.submit(_warm, shared_f, workers=[w], pure=False, allow_other_workers=False)
            for w in client.nthreads()]
    futs = {client.submit(evaluate, p, k, shared_f, key=f"snnchip-sweep-{k}", retries=retries, pure=False): (p, k)
            for _, p, k in todo}
    resubmitted: dict = {}
    try:
        pending = as_completed(futs)
        for fut in pending:
            p, k = futs[fut]
            try:
                row = fut.result()
            except CancelledError:
                # the scheduler forgot the task (a lost worker took its inputs with it, or the client's
                # heartbeat lapsed on a loaded machine): scatter the inputs again and resubmit, a bounded
                # number of times, before the point is recorded as crashed
                n = resubmitted.get(k, 0)
                if n < retries:
                    resubmitted[k] = n + 1
                    shared_f = client.scatter(shared, broadcast=True)
                    again = client.submit(evaluate, p, k, shared_f, key=f"snnchip-sweep-{k}-again{n + 1}",
                                          retries=retries, pure=False)
                    futs[again] = (p, k)
                    pending.add(again)
                    continue
                row = dict(p)
                row.update({f: None for f in RESULT_FIELDS})
                row.update({"key": k, "pareto": False, "status": f"{CRASHED}cancelled by the scheduler {n} times"})
            except Exception as e:  # noqa: BLE001 - a lost worker (KilledWorker) or a bug: record, go on
                row = dict(p)
                row.update({f: None for f in RESULT_FIELDS})
                row.update({"key": k, "pareto": False,
                            "status": f"{CRASHED}{type(e).__name__}: {' '.join(str(e).split())}"[:500]})
            done[k] = row
            bar.update(1)
            save()
    finally:
        for f in list(futs) + warm:
            f.cancel()
        shared_f.cancel()


def sweep(model, grid, *, chip="tianjic", samples: int = 100, client=None, out_dir=None, data=None,
          steps: int | None = None, placement: str = "rowmajor", max_fold: int | None = None, seed: int = 0,
          timing_samples: int = 1, retries: int = 2, progress: bool = False):
    """A design-space sweep of ``model`` over ``grid``; returns a :class:`pandas.DataFrame`, one row per point.

    Parameters
    ----------
    model : str or Graph, or a list of them
        The model(s); a grid key ``model`` may also list names.
    grid : dict or list of str
        ``{"core.axons": [128, 256], "noc.multicast": ["unicast", "xy-tree"]}`` or the
        CLI's ``["core.axons=128,256", ...]``. Keys: dotted chip fields and
        :data:`MAP_KEYS` (``placement``, ``max_fold``, ``fold``, ``seed``).
    chip : preset name, chip file or ChipConfig
        The base every point overrides.
    samples : int
        Held-out samples per point (all run functionally; ``timing_samples`` timed).
    client : distributed.Client or None
        None runs the points in this process, one after another.
    out_dir : path or None
        Stream ``sweep.parquet``, ``sweep.csv`` and ``pareto.png``/``.pdf`` there and
        skip the points already in it.

    Returns
    -------
    DataFrame with the grid's fields, then ``chip, cores, chips, crossbars, fold,
    accuracy, cycles_per_step, latency_cycles, latency_us, energy_paper_pj,
    energy_hardware_pj, samples, steps, wall_s, status, pareto, key``.

    Examples
    --------
    >>> df = snnchip.sweep("mnist_mlp", {"core.axons": [128, 256]}, samples=10)
    >>> df[["core.axons", "cores", "energy_hardware_pj"]]
    """
    if not isinstance(grid, dict):
        grid = parse_grid(grid)
    grid = dict(grid)
    models = grid.get("model") or (list(model) if isinstance(model, (list, tuple)) else [model])
    if "model" in grid or isinstance(model, (list, tuple)):
        grid["model"] = [m if isinstance(m, str) else str(m.metadata.get("model", "model")) for m in models]
    shared = prepare(models, chip, data=data, samples=samples, steps=steps, placement=placement, max_fold=max_fold,
                     seed=seed, timing_samples=timing_samples)
    return run_sweep(shared, grid, out_dir, client=client, retries=retries, progress=progress)


# ----------------------------------------------------------------- sharded runs -----------

def _shard(mapping, x, reset, spikes, timing_samples: int, batch: int, record=None, v_min=None) -> list:
    """Run samples ``x`` (T, b, ...) in batches, the first ``timing_samples`` timed; the batch results."""
    from hwsim.engine import simulate

    B = x.shape[1]
    parts = []
    for lo in range(0, B, batch):
        hi = min(B, lo + batch)
        nt = max(0, min(timing_samples - lo, hi - lo))
        parts.append(simulate(mapping, x[:, lo:hi], reset=reset, spikes=spikes, v_min=v_min, timing=nt > 0,
                              timing_samples=max(nt, 1), record=record))
    return parts


def shard_bounds(B: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` consecutive (lo, hi) sample ranges covering ``0..B``, sizes differing by at most one."""
    shards = max(1, min(int(shards), B))
    edges = [B * i // shards for i in range(shards + 1)]
    return [(edges[i], edges[i + 1]) for i in range(shards)]


def run_sharded(mapping, inputs, *, shards: int | None = None, client=None, reset: str | None = None,
                spikes: str | None = None, timing_samples: int = 1, batch: int = 128, record=None, progress=False,
                v_min=None):
    """Run ``inputs`` (T, B, *input_shape) on ``mapping``, the samples split into shards over a cluster.

    Each shard runs on a worker in batches of ``batch`` samples; the first
    ``timing_samples`` samples of the run are timed (they sit in the first shards).
    The batch results are merged in sample order by :func:`hwsim.result.merge_results`:
    outputs, recordings and per-sample timing concatenated, counters summed, so the
    result equals the one-process run (``snnchip run``'s loop) counter for counter.
    ``shards`` defaults to max(workers' threads, ceil(B / batch)); ``client`` None runs the
    shards here one after another. Reset and spike mode default to the mapping's net metadata;
    ``v_min`` is the membrane floor (:func:`hwsim.engine.simulate`).
    """
    from tqdm import tqdm

    from hwsim.result import merge_results

    from .inputs import modes

    x = np.asarray(inputs)
    if x.ndim < 2 or x.shape[1] < 1:
        raise SnnchipError(f"inputs must be (T, B, *input_shape) with B >= 1, got shape {x.shape}")
    if batch < 1 or timing_samples < 0:
        raise SnnchipError(f"batch must be >= 1 and timing_samples >= 0, got {batch} and {timing_samples}")
    meta = dict(mapping.net.metadata or {})
    reset, spikes = modes(SimpleNamespace(metadata=meta), SimpleNamespace(reset=reset, spikes=spikes))
    B = x.shape[1]
    if shards is None:
        threads = 1
        if client is not None:
            threads = sum(client.nthreads().values()) or 1
        shards = max(threads, -(-B // batch))
    bounds = shard_bounds(B, shards)
    kw = {"reset": reset, "spikes": spikes, "batch": batch, "record": record, "v_min": v_min}
    parts_by_shard: list = [None] * len(bounds)
    with tqdm(total=B, desc="chip simulation", unit="sample", file=sys.stderr, disable=not progress) as bar:
        if client is None:
            for i, (lo, hi) in enumerate(bounds):
                parts_by_shard[i] = _shard(mapping, x[:, lo:hi], timing_samples=max(0, timing_samples - lo), **kw)
                bar.update(hi - lo)
        else:
            from distributed import as_completed

            m_f = client.scatter(mapping, broadcast=True)
            xs = client.scatter([np.ascontiguousarray(x[:, lo:hi]) for lo, hi in bounds])
            futs = {client.submit(_shard, m_f, xf, timing_samples=max(0, timing_samples - lo), retries=2,
                                  pure=False, **kw): i for i, (xf, (lo, hi)) in enumerate(zip(xs, bounds))}
            try:
                for fut in as_completed(futs):
                    i = futs[fut]
                    parts_by_shard[i] = fut.result()
                    bar.update(bounds[i][1] - bounds[i][0])
            finally:
                for f in list(futs) + list(xs) + [m_f]:
                    f.cancel()
    return merge_results([p for parts in parts_by_shard for p in parts])


# ----------------------------------------------------------------- clusters ---------------

def connect(*, workers: int | None = None, scheduler: str | None = None):
    """A :class:`distributed.Client`: on ``scheduler`` (an address), else a new ``LocalCluster``.

    The local cluster has ``workers`` processes (default: the machine's cores) with one
    thread each, Numba's parallel loops included: the engine's kernels hold the GIL, so
    processes, not threads, scale.
    The caller closes the client (and its cluster: ``client.cluster``).
    """
    import logging
    import os
    import signal
    import threading

    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    n = workers if workers else (os.cpu_count() or 1)
    # worker processes started while SIGINT is ignored keep ignoring it: Ctrl-C (sent to the whole
    # process group) stops the sweep in this process, which closes the cluster, instead of a
    # traceback from every worker
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, env={"NUMBA_NUM_THREADS": "1"})
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
    return Client(cluster)


def close(client) -> None:
    """Close ``client`` and the local cluster it started, if any."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


__all__ = ["MAP_KEYS", "RESULT_FIELDS", "SweepError", "parse_grid", "load_grid_file", "points", "check_grid",
           "model_identity", "point_key", "evaluate_point", "prepare", "run_sweep", "sweep", "read_results",
           "write_results", "pareto_front", "pareto_figure", "run_sharded", "shard_bounds", "connect", "close"]
