"""Pruning studies: prune -> map -> run on the chip simulator -> energy, and sweeps of it.

Owns the measurements behind ``snnchip prune`` and ``snnchip prune-sweep``: every
accuracy here is measured through :func:`hwsim.engine.simulate` on the mapped,
quantised network (spike-exact with the integer reference), every crossbar count is
the mapping's, and energy is the paper view (``E = E_MAC MACs + E_AC ACs`` per
inference, :func:`energy.estimate.estimate`) of the same run.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

from models.defaults import ENERGY_TABLE  # noqa: F401 (re-exported: the CLI reads it from here)
from models.errors import SnnchipError
from models.fileio import atomic_write, save_figure

SWEEP_FIELDS = ("model", "grain", "reorder", "finetune_epochs", "target", "crossbars", "crossbars_implied",
                "crossbar_savings", "cores", "accuracy", "accuracy_drop_pts", "energy_paper_uj", "samples")


def evaluate(graph, chip, seq, sem, *, batch: int = 250, desc: str = "chip") -> dict:
    """Map ``graph`` on ``chip`` and run ``seq`` on the chip simulator (functional) with the
    simulation semantics ``sem`` (:class:`snnchip.inputs.Semantics`).

    Returns ``crossbars``, ``cores``, ``accuracy`` (fraction), ``correct``, ``samples``,
    ``energy_paper_uj`` (per inference, table :data:`ENERGY_TABLE`) and ``mapping``.
    """
    from tqdm import tqdm

    from energy.estimate import estimate
    from hwsim.engine import simulate
    from hwsim.result import merge_results
    from mapper.mapping import map_model

    m = map_model(graph, chip)
    B = seq.inputs.shape[1]
    parts = []
    with tqdm(total=B, desc=desc, unit="sample", file=sys.stderr, disable=B <= batch, leave=False) as bar:
        for lo in range(0, B, batch):
            hi = min(B, lo + batch)
            parts.append(simulate(m, seq.inputs[:, lo:hi], reset=sem.reset, spikes=sem.spikes, v_min=sem.v_min,
                                  timing=False))
            bar.update(hi - lo)
    r = merge_results(parts)
    correct = int((r.predict() == seq.labels).sum())
    e = estimate(r, ENERGY_TABLE, "chip-ops", mapping=m)  # the paper view counts the graph's FLOPs, which pruning keeps
    return {"crossbars": int(m.tiling.n_crossbars), "cores": len(m.tiling.cores), "accuracy": correct / B,
            "correct": correct, "samples": int(B), "energy_paper_uj": float(e.total_pj) / 1e6, "mapping": m}


def prune_model(graph, chip, *, target: float, grain: str, reorder: bool, finetune: int = 0, score: str = "l1",
                mapping=None, log: bool = False, unit_rates: dict | None = None):
    """:func:`mapper.prune.prune`, then :func:`mapper.prune.finetune` when ``finetune`` > 0."""
    from mapper import prune as P

    res = P.prune(graph, chip, target=target, grain=grain, reorder=reorder, score=score, mapping=mapping,
                  unit_rates=unit_rates)
    if finetune:
        res = P.finetune(res, finetune, log=log)
    return res


def sweep(model: str, graph, chip, seq, sem, *, targets, grains, reorders, finetune: int,
          log=print, on_row=None) -> list[dict]:
    """Rows of :data:`SWEEP_FIELDS`: the unpruned model, then every (grain, reorder, target).

    ``on_row(rows)`` is called after every row (the CLI rewrites its files, so an
    interrupted sweep keeps what it measured)."""
    base = evaluate(graph, chip, seq, sem, desc="unpruned")
    m0 = base["mapping"]
    rows = [_row(model, "none", False, 0, 0.0, base, base["crossbars"], base)]
    log(_line(rows[-1]))
    if on_row:
        on_row(rows)
    for grain in grains:
        for reorder in reorders:
            for t in targets:
                t0 = time.perf_counter()
                res = prune_model(graph, chip, target=t, grain=grain, reorder=reorder, finetune=finetune,
                                  mapping=m0)
                ev = evaluate(res.graph, chip, seq, sem, desc=f"{grain} {t:g}")
                rows.append(_row(model, grain, reorder, finetune, t, ev, res.crossbars_implied, base))
                log(_line(rows[-1]) + f"  ({time.perf_counter() - t0:.0f} s)")
                if on_row:
                    on_row(rows)
    return rows


def _row(model, grain, reorder, epochs, target, ev, implied, base) -> dict:
    return {"model": model, "grain": grain, "reorder": bool(reorder), "finetune_epochs": int(epochs),
            "target": float(target), "crossbars": ev["crossbars"], "crossbars_implied": int(implied),
            "crossbar_savings": 1.0 - ev["crossbars"] / base["crossbars"], "cores": ev["cores"],
            "accuracy": ev["accuracy"], "accuracy_drop_pts": 100.0 * (base["accuracy"] - ev["accuracy"]),
            "energy_paper_uj": ev["energy_paper_uj"], "samples": ev["samples"]}


def _line(r: dict) -> str:
    return (f"{r['model']:<10} {r['grain']:<8} reorder={'yes' if r['reorder'] else 'no ':<3} "
            f"target {r['target']:.2f}: {r['crossbars']:>5} crossbars ({100 * r['crossbar_savings']:5.1f} % saved), "
            f"accuracy {100 * r['accuracy']:.2f} % ({r['accuracy_drop_pts']:+.2f} pts drop), "
            f"{r['energy_paper_uj']:.3f} uJ/inference")


def write_sweep(rows: list[dict], out_dir) -> dict:
    """``sweep.csv``, ``sweep.json`` and ``sweep.png``/``.pdf`` (savings vs accuracy) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SWEEP_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    files = {"csv": out / "sweep.csv", "json": out / "sweep.json"}
    text = buf.getvalue()
    atomic_write(files["csv"], lambda fh: fh.write(text))
    atomic_write(files["json"], lambda fh: json.dump(rows, fh, indent=1))
    if len(rows) > 1:
        files.update(_figure(rows, out))
    return files


def _figure(rows, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = [r for r in rows if r["grain"] == "none"]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    styles = {("crossbar", False): ("o-", "crossbar grain"), ("crossbar", True): ("o--", "crossbar grain + reorder"),
              ("column", False): ("s-", "column grain"), ("column", True): ("s--", "column grain + reorder")}
    for key, (st, label) in styles.items():
        pts = sorted((r["crossbar_savings"], r["accuracy"]) for r in rows if (r["grain"], r["reorder"]) == key)
        if pts:
            xs, ys = zip(*pts)
            ax.plot([100 * x for x in xs], [100 * y for y in ys], st, label=label, ms=4)
    if base:
        b = 100 * base[0]["accuracy"]
        ax.axhline(b, color="0.5", lw=0.8)
        ax.axhline(b - 1.0, color="0.5", lw=0.8, ls=":", label="unpruned - 1 pt")
    model = rows[0]["model"] if rows else ""
    ax.set_xlabel("crossbars saved (%)")
    ax.set_ylabel("accuracy on the chip simulator (%)")
    ax.set_title(f"{model}: crossbar-aware pruning", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out / "sweep")


def check_out_path(path) -> Path:
    p = Path(path)
    if p.suffix != ".nir":
        raise SnnchipError(f"{p}: the pruned model is written as a .nir file; give a path ending in .nir")
    if not p.parent.exists():
        raise SnnchipError(f"{p.parent}: no such folder")
    return p


__all__ = ["ENERGY_TABLE", "SWEEP_FIELDS", "evaluate", "prune_model", "sweep", "write_sweep"]
