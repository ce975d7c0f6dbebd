"""Energy and activity reports of a run: tables (Markdown, LaTeX, CSV, JSON) and figures.

:func:`write_report` estimates the run under every requested table and view and writes
``energy.md``, ``energy.tex`` (a standalone booktabs document), ``energy_per_layer.csv``,
``energy_per_core.csv``, ``energy.json`` and the figures ``energy_breakdown``,
``core_utilisation``, ``noc_link_load``, ``spike_raster`` and ``firing_rates`` as PNG and
PDF. Every number carries the view and the table that produced it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from models.defaults import ENERGY_TABLES
from models.fileio import atomic_write

from .counts import layer_counters, neurobench_from_run
from .errors import EnergyError
from .estimate import VIEWS, estimate_counters
from .runstats import RunCounters, run_counters, runtime_s  # noqa: F401 (runtime_s re-exported)
from .tables import list_tables, load_table

#: the tables a report shows (:data:`models.defaults.ENERGY_TABLES`; the name stays for callers)
DEFAULT_TABLES = ENERGY_TABLES


def _fmt(x: float) -> str:
    if x != x:
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.4g}"


def _tex(s: str) -> str:
    return (s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
            .replace("#", r"\#"))


def _write_csv(path: Path, header: list, rows) -> Path:
    """One CSV file, written atomically."""
    def write(fh):
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return atomic_write(path, write)


def firing_rates(result, mapping, counters: RunCounters | None = None) -> tuple[dict, str]:
    """Spikes per neuron per step of every spiking population, and the data used.

    ``counters``: the run's :func:`~energy.runstats.run_counters`, when already read."""
    net = mapping.net
    B = int(result.meta.get("samples") or result.output.shape[1])
    T = int(result.counters.shape[0])
    rates, exact_all = {}, True
    if counters is None:
        layers, exact, _ = layer_counters(result, mapping)
    else:
        layers, exact = counters.layer_totals, counters.exact_layers
    for p in net.populations[1:]:
        if not p.spiking:
            continue
        if p.name in result.spikes:
            rates[p.name] = float(np.asarray(result.spikes[p.name]).sum()) / (T * B * p.size)
        else:
            rates[p.name] = layers[p.name]["spikes"] / (T * B * p.size)
            exact_all = exact_all and exact
    how = "recorded spikes and spike counters" if exact_all else "spike counters, shared cores split by neuron share"
    return rates, how


def _group_columns(groups: dict) -> list:
    """The display groups of :meth:`Estimate.per_layer_groups` (the same for every layer)."""
    return list(next(iter(groups.values())).keys()) if groups else []


def _json(ests: dict, techs: list, counters: RunCounters, mapping, nb: dict, rates: dict, rates_how: str) -> str:
    doc = {"unit": "pJ per inference", "samples": counters.samples, "steps": counters.steps,
           "chip": mapping.chip.name, "model": mapping.model, "tables": {t.name: t.model_dump() for t in techs},
           "estimates": [e.to_dict() for e in ests.values()], "neurobench": nb,
           "firing_rates": {"values": rates, "unit": "spikes per neuron per step", "source": rates_how}}
    return json.dumps(doc, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))


def _markdown(ests: dict, groups: dict, techs: list, counters: RunCounters, mapping, nb: dict, rates: dict,
              rates_how: str) -> str:
    md = [f"# Energy report: {mapping.model or 'model'} on {mapping.chip.name}", "",
          f"{counters.samples} sample(s) x {counters.steps} steps. All energies in pJ **per inference** (one "
          f"sample); each row names the view and the technology table that produced it.", "", "## Totals", "",
          "| table | view | energy (pJ) | dense-ANN baseline (pJ) | SNN/ANN |", "|---|---|---:|---:|---:|"]
    for (tn, v), e in ests.items():
        md.append(f"| {tn} | {v} | {_fmt(e.total_pj)} | {_fmt(e.ann_baseline_pj)} | {e.snn_ann_ratio:.4f} |")
    md += ["", "SNN/ANN: paper view = total / (E_MAC x FLOPs); hardware view = (compute + memory) / "
           "the ANN's compute + memory (NoC and static left out of both).", ""]
    for (tn, v), e in ests.items():
        g = groups[(tn, v)]
        cols = _group_columns(g)
        md += [f"## Per layer: {v} view, table {tn}", "",
               "| layer | " + " | ".join(f"{c} (pJ)" for c in cols) + " | total (pJ) |",
               "|---|" + "---:|" * (len(cols) + 1)]
        for layer, d in g.items():
            md.append(f"| {layer} | " + " | ".join(_fmt(d[c]) for c in cols) + f" | {_fmt(sum(d.values()))} |")
        md += [""] + [f"- {n}" for n in e.notes] + [""]
    md += ["## NeuroBench counts (per sample, from the chip counters)", "", "| metric | value |", "|---|---:|"]
    for k in ("Effective_ACs", "Effective_MACs", "Dense", "activation_sparsity", "connection_sparsity"):
        md.append(f"| {k} | {_fmt(nb[k])} |")
    md += ["", "## Firing rates (spikes per neuron per step; " + rates_how + ")", "", "| layer | rate |",
           "|---|---:|"] + [f"| {k} | {v:.4f} |" for k, v in rates.items()] + [""]
    md += ["## Technology tables", ""]
    for t in techs:
        md += [f"### {t.name}", "", t.description, "", "| field | value | basis | note |", "|---|---:|---|---|"]
        for fld in type(t).model_fields:
            fig = getattr(t, fld)
            if hasattr(fig, "basis"):
                md.append(f"| {fld} | {fig.value:g} | {fig.basis} | {fig.note} |")
        md += [""] + [f"- [{k}] {s}" for k, s in t.sources.items()] + [""]
    return "\n".join(md)


def _latex(ests: dict, groups: dict, counters: RunCounters, mapping) -> str:
    B, T = counters.samples, counters.steps
    tex = [r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage[margin=2cm]{geometry}",
           r"\begin{document}", r"\begin{table}[t]", r"\centering",
           rf"\caption{{Energy per inference of {_tex(mapping.model or 'the model')} on {_tex(mapping.chip.name)} "
           rf"({B} samples, {T} steps), by technology table and view; SNN/ANN against the dense-ANN baseline.}}",
           r"\begin{tabular}{llrrr}", r"\toprule",
           r"Table & View & Energy (pJ) & ANN baseline (pJ) & SNN/ANN \\", r"\midrule"]
    for (tn, v), e in ests.items():
        tex.append(rf"{_tex(tn)} & {v} & {_tex(_fmt(e.total_pj))} & {_tex(_fmt(e.ann_baseline_pj))} & "
                   rf"{e.snn_ann_ratio:.4f} \\")
    tex += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    for (tn, v), g in groups.items():
        cols = _group_columns(g)
        tex += [r"\begin{table}[t]", r"\centering",
                rf"\caption{{Energy per layer (pJ per inference), {v} view, table {_tex(tn)}.}}",
                r"\begin{tabular}{l" + "r" * (len(cols) + 1) + "}", r"\toprule",
                "Layer & " + " & ".join(cols) + r" & Total \\", r"\midrule"]
        for layer, d in g.items():
            tex.append(f"{_tex(layer)} & " + " & ".join(_tex(_fmt(d[c])) for c in cols)
                       + rf" & {_tex(_fmt(sum(d.values())))} \\")
        tex += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    tex.append(r"\end{document}")
    return "\n".join(tex) + "\n"


def _write_text(path: Path, text: str) -> Path:
    atomic_write(path, lambda fh: fh.write(text))
    return path


def write_report(result, mapping, out_dir, *, tables=DEFAULT_TABLES, raster: dict | None = None,
                 figure_table: str | None = None) -> dict:
    """Write every table and figure into ``out_dir``; returns {name: path} of the files written
    and ``skipped`` (figures that could not be drawn, with the reason).

    The run's counters are read once (:func:`~energy.runstats.run_counters`), then
    estimated under every table and view (:func:`~energy.estimate.estimate_counters`),
    then written."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    techs = [load_table(t) for t in tables]
    if not techs:
        raise EnergyError(f"report: no technology tables given; known: {', '.join(list_tables())}")
    counters = run_counters(result, mapping)
    ests = {(t.name, v): estimate_counters(counters, t, v) for t in techs for v in VIEWS}
    groups = {key: e.per_layer_groups() for key, e in ests.items()}
    nb = neurobench_from_run(result, mapping)
    rates, rates_how = firing_rates(result, mapping, counters)

    files: dict = {"json": _write_text(out / "energy.json", _json(ests, techs, counters, mapping, nb, rates,
                                                                    rates_how))}
    files["csv_layers"] = _write_csv(
        out / "energy_per_layer.csv", ["table", "view", "layer", "component", "energy_pj_per_inference"],
        ([tn, v, layer, k, repr(float(val))] for (tn, v), e in ests.items()
         for layer, comp in e.per_layer.items() for k, val in comp.items()))
    files["csv_cores"] = _write_csv(
        out / "energy_per_core.csv", ["table", "view", "core", "component", "energy_pj_per_inference"],
        ([tn, v, c, k, repr(float(val))] for (tn, v), e in ests.items()
         for c, row in enumerate(e.per_core) for k, val in zip(e.components, row)))
    files["markdown"] = _write_text(out / "energy.md", _markdown(ests, groups, techs, counters, mapping, nb, rates,
                                                                 rates_how))
    files["latex"] = _write_text(out / "energy.tex", _latex(ests, groups, counters, mapping))

    ftab = figure_table or techs[0].name
    if ftab not in {t.name for t in techs}:
        raise EnergyError(f"report: figure_table {ftab!r} is not among the tables {[t.name for t in techs]}")
    skipped = _write_figures(out, files, ests[(ftab, "paper")], ests[(ftab, "hardware")], result, mapping,
                             raster, rates, rates_how)
    if skipped:
        with (out / "energy.md").open("a") as f:
            f.write("\n## Figures not drawn\n\n" + "\n".join(f"- {k}: {v}" for k, v in skipped.items()) + "\n")
    files["skipped"] = skipped
    return files


def _write_figures(out: Path, files: dict, paper, hardware, result, mapping, raster, rates, rates_how) -> dict:
    """Draw every figure as PNG and PDF into ``out`` (paths added to ``files``); returns the
    figures not drawn, with the reason."""
    import matplotlib.pyplot as plt

    from . import figures

    skipped = {}
    for name, draw in (("energy_breakdown", lambda: figures.energy_breakdown(paper, hardware)),
                       ("core_utilisation", lambda: figures.core_utilisation(result, mapping)),
                       ("noc_link_load", lambda: figures.noc_link_load(result, mapping)),
                       ("spike_raster", lambda: figures.spike_raster(result, raster)),
                       ("firing_rates", lambda: figures.firing_rates(rates, rates_how))):
        fig = draw()
        if isinstance(fig, str):
            skipped[name] = fig
            continue
        for ext in ("png", "pdf"):
            p = out / f"{name}.{ext}"
            fig.savefig(p, dpi=150, bbox_inches="tight")
            files[f"{name}_{ext}"] = p
        plt.close(fig)
    return skipped


__all__ = ["write_report", "firing_rates", "DEFAULT_TABLES", "runtime_s"]
