"""The files of a sweep: ``sweep.parquet`` and ``sweep.csv`` (one row per point, grid order),
the Pareto figure ``pareto.png``/``.pdf`` and the Markdown table ``snnchip sweep`` prints.

Every file is written atomically (:func:`models.fileio.atomic_write`), so an interrupted
sweep leaves readable files; :func:`read_results` reads them back for a resumed sweep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import SnnchipError
from models.fileio import atomic_write, save_figure

#: the view the Pareto figure and the ``pareto`` column use: it counts NoC, memory and static energy,
#: which multicast, placement and crossbar size change and the paper view leaves out.
PARETO_VIEW = "hardware"
VIEWS = ("paper", "chip-ops", "hardware")
RESULT_FIELDS = ("chip", "cores", "chips", "crossbars", "fold", "accuracy", "cycles_per_step", "latency_cycles",
                 "latency_us") + tuple(f"energy_{v}_pj" for v in VIEWS) + ("samples", "steps", "wall_s", "status",
                                                                            "pareto", "key")
INT_FIELDS = ("cores", "chips", "crossbars", "fold", "samples", "steps")


class SweepError(SnnchipError):
    """A sweep cannot start: unknown grid field, empty grid, unreadable grid file or results."""


def is_missing(v) -> bool:
    """None, NaN or pandas' NA (a failed point's empty cells, as read back from parquet or CSV)."""
    import pandas as pd

    return v is None or (np.ndim(v) == 0 and bool(pd.isna(v)))


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
        df[c] = pd.array([None if is_missing(v) else int(v) for v in df[c]], dtype="Int64")
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
    return save_figure(fig, out / "pareto")


def format_table(df, fields) -> str:
    """A Markdown table of the rows: the varied fields, then cores, crossbars, fold, accuracy, latency, energy."""
    cols = [f for f in fields if f in df.columns and (f != "model" or df["model"].nunique() > 1)]
    head = cols + ["cores", "chips", "crossbars", "fold", "accuracy %", "cycles/step", "latency us",
                   "paper uJ", "hardware uJ", "Pareto", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < len(cols) else "---:"
                                                          for i in range(len(head) - 1)) + "|---|"]

    def num(v, fmt):
        return "-" if is_missing(v) else format(v, fmt)

    for r in df.to_dict("records"):
        cells = [str(r[c]) for c in cols]
        cells += [num(r["cores"], ".0f"), num(r["chips"], ".0f"), num(r["crossbars"], ".0f"), num(r["fold"], ".0f"),
                  num(None if is_missing(r["accuracy"]) else 100 * r["accuracy"], ".1f"),
                  num(r["cycles_per_step"], ",.0f"), num(r["latency_us"], ",.1f"),
                  num(None if is_missing(r["energy_paper_pj"]) else r["energy_paper_pj"] / 1e6, ".3f"),
                  num(None if is_missing(r["energy_hardware_pj"]) else r["energy_hardware_pj"] / 1e6, ".3f"),
                  "*" if r["pareto"] else "", str(r["status"])[:80]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["PARETO_VIEW", "VIEWS", "RESULT_FIELDS", "INT_FIELDS", "SweepError", "is_missing", "read_results", "pareto_front",
           "results_frame", "write_results", "pareto_figure", "format_table"]
