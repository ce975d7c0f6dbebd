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
from models.fileio import atomic_write

#: grid keys that are mapping options, not chip fields (chip fields are dotted: ``core.axons``).
MAP_KEYS = ("model", "placement", "max_fold", "fold", "seed")
PLACEMENTS = ("rowmajor", "hilbert", "partition", "anneal")
VIEWS = ("paper", "hardware")
#: the view the Pareto figure and the ``pareto`` column use: it counts NoC, memory and static energy,
#: which multicast, placement and crossbar size change and the paper view leaves out.
PARETO_VIEW = "hardware"
RESULT_FIELDS = ("chip", "cores", "chips", "crossbars", "fold", "accuracy", "cycles_per_step", "latency_cycles",
                 "latency_us") + tuple(f"energy_{v}_pj" for v in VIEWS) + ("samples", "steps", "wall_s", "status",
                                                                            "pareto", "key")
INT_FIELDS = ("cores", "chips", "crossbars", "fold", "samples", "steps")
#: status prefix of a point whose worker was lost or whose code failed outside the project's
#: typed errors: recorded, but computed again on the next run of the same sweep.
CRASHED = "crashed: "


class SweepError(SnnchipError):
    """A sweep cannot start: unknown grid field, empty grid, unreadable grid file or results."""


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


# ----------------------------------------------------------------- results on disk --------

def read_results(out_dir):
    """The rows already in ``out_dir`` (``sweep.parquet``, else ``sweep.csv``) as a DataFrame, or None."""
    import pandas as pd

    out = Path(out_dir)
    readers = (("sweep.parquet", pd.read_parquet), ("sweep.csv", lambda p: pd.read_csv(p, dtype={"key": str})))
    for name, reader in readers:
        p = out / name
        if p.exists():
            try:
                df = reader(p)
            except Exception as e:  # noqa: BLE001 - pyarrow and pandas raise many kinds
                raise SweepError(f"{p}: cannot read previous results ({' '.join(str(e).split())}); "
                                 "move it away to start afresh") from None
            if "key" not in df.columns or "status" not in df.columns:
                raise SweepError(f"{p}: not a sweep result (no 'key'/'status' columns)")
            return df
    return None


def pareto_front(x, y) -> np.ndarray:
    """Mask of the points no other point beats on both ``x`` and ``y`` (both minimised; NaN never on it).

    A point is on the front iff no point has ``x' <= x`` and ``y' <= y`` with one of them strictly smaller.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    front = np.zeros(x.shape, dtype=bool)
    best = np.inf
    for i in sorted(np.flatnonzero(ok), key=lambda i: (x[i], y[i])):
        if y[i] < best:
            front[i] = True
            best = y[i]
    return front


def results_frame(rows: list[dict], fields: list[str]):
    """The rows as a DataFrame: the varied fields, then :data:`RESULT_FIELDS`; ``pareto`` recomputed."""
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = [c for c in fields if c in df.columns] + [c for c in df.columns if c not in fields
                                                      and c not in RESULT_FIELDS] + list(RESULT_FIELDS)
    for c in cols:
        if c not in df.columns:
            df[c] = None
    df = df[cols].copy()
    for c in INT_FIELDS:  # counts stay integers beside the failed points' gaps
        df[c] = pd.array([None if _missing(v) else int(v) for v in df[c]], dtype="Int64")
    if len(df):
        ok = (df["status"] == "ok").to_numpy()
        x = np.where(ok, pd.to_numeric(df["latency_us"], errors="coerce"), np.nan)
        y = np.where(ok, pd.to_numeric(df[f"energy_{PARETO_VIEW}_pj"], errors="coerce"), np.nan)
        df["pareto"] = pareto_front(x, y)
    return df


def write_results(df, out_dir, *, figure: bool = True) -> dict:
    """``sweep.parquet`` and ``sweep.csv`` (and the Pareto figure) in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"parquet": out / "sweep.parquet", "csv": out / "sweep.csv"}
    # mixed-type columns (a grid field given as 128 and 'auto') are stored as text
    tab = df.copy()
    for c in tab.columns:
        if tab[c].dtype == object and len({type(v) for v in tab[c] if v is not None}) > 1:
            tab[c] = tab[c].map(lambda v: None if v is None else str(v))
    atomic_write(files["parquet"], lambda name: tab.to_parquet(name, index=False), binary=None)
    atomic_write(files["csv"], lambda fh: df.to_csv(fh, index=False))
    if figure:
        files.update(pareto_figure(df, out))
    return files


def pareto_figure(df, out_dir) -> dict:
    """``pareto.png`` + ``.pdf``: hardware-view energy vs latency of the ``ok`` points.

    Colour = accuracy on the chip, marker = cores used; the Pareto front (no point
    both faster and cheaper) is ringed and joined by a step line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out_dir)
    ok = df[df["status"] == "ok"]
    x = pd.to_numeric(ok["latency_us"], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(ok[f"energy_{PARETO_VIEW}_pj"], errors="coerce").to_numpy(dtype=float) / 1e6
    acc = pd.to_numeric(ok["accuracy"], errors="coerce").to_numpy(dtype=float) * 100
    cores = pd.to_numeric(ok["cores"], errors="coerce").astype("float64").to_numpy()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    markers = "osD^v<>pPXh*"
    sc = None
    finite = acc[np.isfinite(acc)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
    if vmax - vmin < 0.5:  # one accuracy everywhere: a readable bar around it
        vmin, vmax = max(0.0, vmin - 1.0), min(100.0, vmax + 1.0)
    for i, c in enumerate(sorted({int(v) for v in cores if v == v})):
        sel = cores == c
        sc = ax.scatter(x[sel], y[sel], c=acc[sel], cmap="viridis", vmin=vmin, vmax=vmax,
                        marker=markers[i % len(markers)], s=36, edgecolors="k", linewidths=0.3,
                        label=f"{c} cores")
    front = pareto_front(x, y)
    if front.any():
        order = np.argsort(x[front])
        ax.step(x[front][order], y[front][order], where="post", color="crimson", lw=1.0, label="Pareto front")
        ax.scatter(x[front], y[front], s=120, facecolors="none", edgecolors="crimson", linewidths=1.2)
    if np.isfinite(y).any() and np.nanmax(y) > 20 * np.nanmin(y[y > 0], initial=np.inf):
        ax.set_yscale("log")
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="accuracy on the chip (%)")
        ax.legend(fontsize=7, loc="best")
    failed = int((df["status"] != "ok").sum())
    model = ", ".join(sorted({str(v) for v in df["model"]})) if "model" in df.columns else ""
    ax.set_xlabel("latency per inference (us)")
    ax.set_ylabel(f"energy per inference, {PARETO_VIEW} view (uJ)")
    ax.set_title(f"{model}: {len(ok)} points" + (f" ({failed} failed)" if failed else ""), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    files = {}
    for ext in ("png", "pdf"):
        files[ext] = atomic_write(out / f"pareto.{ext}", lambda name, ext=ext: fig.savefig(name, format=ext, dpi=150),
                                  binary=None)
    plt.close(fig)
    return files


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
            kept[str(rec["key"])] = {k: (None if _missing(v) else v) for k, v in rec.items()}
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


def _missing(v) -> bool:
    """None, NaN or pandas' NA (a failed point's empty cells, as read back from parquet or CSV)."""
    import pandas as pd

    return v is None or (np.ndim(v) == 0 and bool(pd.isna(v)))


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
    try:
        for fut in as_completed(futs):
            p, k = futs[fut]
            try:
                row = fut.result()
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


def format_table(df, fields) -> str:
    """A Markdown table of the rows: the varied fields, then cores, crossbars, fold, accuracy, latency, energy."""
    cols = [f for f in fields if f in df.columns and (f != "model" or df["model"].nunique() > 1)]
    head = cols + ["cores", "chips", "crossbars", "fold", "accuracy %", "cycles/step", "latency us",
                   "paper uJ", "hardware uJ", "Pareto", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < len(cols) else "---:"
                                                          for i in range(len(head) - 1)) + "|---|"]

    def num(v, fmt):
        return "-" if _missing(v) else format(v, fmt)

    for r in df.to_dict("records"):
        cells = [str(r[c]) for c in cols]
        cells += [num(r["cores"], ".0f"), num(r["chips"], ".0f"), num(r["crossbars"], ".0f"), num(r["fold"], ".0f"),
                  num(None if _missing(r["accuracy"]) else 100 * r["accuracy"], ".1f"),
                  num(r["cycles_per_step"], ",.0f"), num(r["latency_us"], ",.1f"),
                  num(None if _missing(r["energy_paper_pj"]) else r["energy_paper_pj"] / 1e6, ".3f"),
                  num(None if _missing(r["energy_hardware_pj"]) else r["energy_hardware_pj"] / 1e6, ".3f"),
                  "*" if r["pareto"] else "", str(r["status"])[:80]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------- sharded runs -----------

def _shard(mapping, x, reset, spikes, timing_samples: int, batch: int, record=None) -> list:
    """Run samples ``x`` (T, b, ...) in batches, the first ``timing_samples`` timed; the batch results."""
    from hwsim.engine import simulate

    B = x.shape[1]
    parts = []
    for lo in range(0, B, batch):
        hi = min(B, lo + batch)
        nt = max(0, min(timing_samples - lo, hi - lo))
        parts.append(simulate(mapping, x[:, lo:hi], reset=reset, spikes=spikes, timing=nt > 0,
                              timing_samples=max(nt, 1), record=record))
    return parts


def shard_bounds(B: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` consecutive (lo, hi) sample ranges covering ``0..B``, sizes differing by at most one."""
    shards = max(1, min(int(shards), B))
    edges = [B * i // shards for i in range(shards + 1)]
    return [(edges[i], edges[i + 1]) for i in range(shards)]


def run_sharded(mapping, inputs, *, shards: int | None = None, client=None, reset: str | None = None,
                spikes: str | None = None, timing_samples: int = 1, batch: int = 128, record=None, progress=False):
    """Run ``inputs`` (T, B, *input_shape) on ``mapping``, the samples split into shards over a cluster.

    Each shard runs on a worker in batches of ``batch`` samples; the first
    ``timing_samples`` samples of the run are timed (they sit in the first shards).
    The batch results are merged in sample order by :func:`hwsim.result.merge_results`:
    outputs, recordings and per-sample timing concatenated, counters summed, so the
    result equals the one-process run (``snnchip run``'s loop) counter for counter.
    ``shards`` defaults to max(workers' threads, ceil(B / batch)); ``client`` None runs the
    shards here one after another. Reset and spike mode default to the mapping's net metadata.
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
    kw = {"reset": reset, "spikes": spikes, "batch": batch, "record": record}
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
           "write_results", "format_table", "pareto_front", "pareto_figure", "run_sharded", "shard_bounds", "connect", "close"]
