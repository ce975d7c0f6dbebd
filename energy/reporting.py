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

from models.fileio import atomic_write

from .counts import layer_counters, neurobench_from_run
from .errors import EnergyError
from .estimate import HW_GROUPS, VIEWS, estimate, runtime_s
from .tables import list_tables, load_table

DEFAULT_TABLES = ("horowitz45-fp32", "horowitz45-int8", "tianjic28", "loihi")


def _groups(est) -> dict:
    """Per-layer energies in display groups: paper (MAC, AC), hardware (compute, memory, NoC, static)."""
    out = {}
    for layer, comp in est.per_layer.items():
        if est.view == "paper":
            out[layer] = {"MAC": comp["mac"], "AC": comp["ac"]}
        else:
            out[layer] = {g.capitalize() if g != "noc" else "NoC": sum(comp[k] for k in ks)
                          for g, ks in HW_GROUPS.items()}
    return out


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


def firing_rates(result, mapping) -> tuple[dict, str]:
    """Spikes per neuron per step of every spiking population, and the data used."""
    net = mapping.net
    B = int(result.meta.get("samples") or result.output.shape[1])
    T = int(result.counters.shape[0])
    rates, exact_all = {}, True
    layers, exact, _ = layer_counters(result, mapping)
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


def write_report(result, mapping, out_dir, *, tables=DEFAULT_TABLES, raster: dict | None = None,
                 figure_table: str | None = None) -> dict:
    """Write every table and figure into ``out_dir``; returns {name: path} of the files written
    and ``skipped`` (figures that could not be drawn, with the reason)."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    techs = [load_table(t) for t in tables]
    if not techs:
        raise EnergyError(f"report: no technology tables given; known: {', '.join(list_tables())}")
    ests = {(t.name, v): estimate(result, t, v, mapping=mapping) for t in techs for v in VIEWS}
    nb = neurobench_from_run(result, mapping)
    rates, rates_how = firing_rates(result, mapping)
    B = int(result.meta.get("samples") or result.output.shape[1])
    T = int(result.counters.shape[0])
    files: dict = {}
    skipped: dict = {}

    # ---------------------------------------------------------------- JSON
    doc = {"unit": "pJ per inference", "samples": B, "steps": T, "chip": mapping.chip.name,
           "model": mapping.model, "tables": {t.name: t.model_dump() for t in techs},
           "estimates": [e.to_dict() for e in ests.values()], "neurobench": nb,
           "firing_rates": {"values": rates, "unit": "spikes per neuron per step", "source": rates_how}}
    p = out / "energy.json"
    text = json.dumps(doc, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    atomic_write(p, lambda fh: fh.write(text))
    files["json"] = p

    # ---------------------------------------------------------------- CSV
    files["csv_layers"] = _write_csv(
        out / "energy_per_layer.csv", ["table", "view", "layer", "component", "energy_pj_per_inference"],
        ([tn, v, layer, k, repr(float(val))] for (tn, v), e in ests.items()
         for layer, comp in e.per_layer.items() for k, val in comp.items()))
    files["csv_cores"] = _write_csv(
        out / "energy_per_core.csv", ["table", "view", "core", "component", "energy_pj_per_inference"],
        ([tn, v, c, k, repr(float(val))] for (tn, v), e in ests.items()
         for c, row in enumerate(e.per_core) for k, val in zip(e.components, row)))

    # ---------------------------------------------------------------- Markdown
    md = [f"# Energy report: {mapping.model or 'model'} on {mapping.chip.name}", "",
          f"{B} sample(s) x {T} steps. All energies in pJ **per inference** (one sample); each row names "
          f"the view and the technology table that produced it.", "", "## Totals", "",
          "| table | view | energy (pJ) | dense-ANN baseline (pJ) | SNN/ANN |", "|---|---|---:|---:|---:|"]
    for (tn, v), e in ests.items():
        md.append(f"| {tn} | {v} | {_fmt(e.total_pj)} | {_fmt(e.ann_baseline_pj)} | {e.snn_ann_ratio:.4f} |")
    md += ["", "SNN/ANN: paper view = total / (E_MAC x FLOPs); hardware view = (compute + memory) / "
           "the ANN's compute + memory (NoC and static left out of both).", ""]
    for (tn, v), e in ests.items():
        g = _groups(e)
        cols = list(next(iter(g.values())).keys()) if g else []
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
    p = out / "energy.md"
    atomic_write(p, lambda fh: fh.write("\n".join(md)))
    files["markdown"] = p

    # ---------------------------------------------------------------- LaTeX
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
    for (tn, v), e in ests.items():
        g = _groups(e)
        cols = list(next(iter(g.values())).keys()) if g else []
        tex += [r"\begin{table}[t]", r"\centering",
                rf"\caption{{Energy per layer (pJ per inference), {v} view, table {_tex(tn)}.}}",
                r"\begin{tabular}{l" + "r" * (len(cols) + 1) + "}", r"\toprule",
                "Layer & " + " & ".join(cols) + r" & Total \\", r"\midrule"]
        for layer, d in g.items():
            tex.append(f"{_tex(layer)} & " + " & ".join(_tex(_fmt(d[c])) for c in cols)
                       + rf" & {_tex(_fmt(sum(d.values())))} \\")
        tex += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    tex.append(r"\end{document}")
    p = out / "energy.tex"
    atomic_write(p, lambda fh: fh.write("\n".join(tex) + "\n"))
    files["latex"] = p

    # ---------------------------------------------------------------- figures
    ftab = figure_table or techs[0].name
    if ftab not in {t.name for t in techs}:
        raise EnergyError(f"report: figure_table {ftab!r} is not among the tables {[t.name for t in techs]}")
    from . import figures

    for name, draw in (("energy_breakdown", lambda: figures.energy_breakdown(ests[(ftab, "paper")],
                                                                           ests[(ftab, "hardware")])),
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
        import matplotlib.pyplot as plt

        plt.close(fig)
    if skipped:
        with (out / "energy.md").open("a") as f:
            f.write("\n## Figures not drawn\n\n" + "\n".join(f"- {k}: {v}" for k, v in skipped.items()) + "\n")
    files["skipped"] = skipped
    return files


__all__ = ["write_report", "firing_rates", "DEFAULT_TABLES", "runtime_s"]
