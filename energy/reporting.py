r"""Energy and activity reports of a run: tables (Markdown, LaTeX, CSV, JSON) and figures.

:func:`write_report` estimates the run under every requested table and view and writes
``energy.md``, ``energy.tex`` (a standalone booktabs document), ``energy_tables.tex`` (the
same tables without a preamble, for ``\input`` in a paper), ``energy_per_layer.csv``,
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
from .estimate import VIEW_CONVENTIONS, VIEWS, estimate_counters
from .graphcounts import NO_GRAPH_LAYERS, layer_labels
from .readrun import run_counters
from .runstats import RunCounters, runtime_s  # noqa: F401 (runtime_s re-exported)
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


def _si(pj: float) -> str:
    """An energy in uJ (>= 1 uJ) or nJ with 4 significant digits, for papers."""
    if pj != pj:
        return "n/a"
    return f"{pj / 1e6:.4g} uJ" if abs(pj) >= 1e6 else f"{pj / 1e3:.4g} nJ"


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

    ``counters``: the run's :func:`~energy.readrun.run_counters`, when already read."""
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
           "dense_ann": {"macs_per_step": counters.dense_flops,
                         "macs_per_inference": counters.dense_flops * counters.steps,
                         "counted_on": counters.baseline_how},
           "view_conventions": VIEW_CONVENTIONS,
           "estimates": [e.to_dict() for e in ests.values()], "neurobench": nb,
           "firing_rates": {"values": rates, "unit": "spikes per neuron per step", "source": rates_how}}
    return json.dumps(doc, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))


def _markdown(ests: dict, groups: dict, techs: list, counters: RunCounters, mapping, nb: dict, rates: dict,
              rates_how: str) -> str:
    labels = layer_labels(mapping.net)
    md = [f"# Energy report: {mapping.model or 'model'} on {mapping.chip.name}", "",
          f"{counters.samples} sample(s) x {counters.steps} steps. All energies in pJ **per inference** (one "
          f"sample); each row names the view and the technology table that produced it.", "",
          "## The three views side by side", "", _side_by_side_md(ests, counters), "",
          *[f"- **{v}**: {VIEW_CONVENTIONS[v]}." for v in VIEWS],
          f"- **dense ANN**: the graph's layers as written run once with MACs, {counters.dense_flops:,} per step "
          f"(x {counters.steps} steps = {counters.dense_flops * counters.steps:,} per inference); "
          f"{counters.baseline_how}. Ratio = view / its ANN baseline (hardware: compute + memory against the "
          f"ANN's compute + memory).", "", "## Totals", "",
          "| table | view | energy (pJ) | dense-ANN baseline (pJ) | SNN/ANN |", "|---|---|---:|---:|---:|"]
    for (tn, v), e in ests.items():
        md.append(f"| {tn} | {v} | {_fmt(e.total_pj)} | {_fmt(e.ann_baseline_pj)} | {e.snn_ann_ratio:.4f} |")
    md += ["", "SNN/ANN: paper and chip-ops views = total / (E_MAC x FLOPs of the graph as written, one pass); "
           "hardware view = (compute + memory) / the ANN's compute + memory (NoC and static left out of both).", ""]
    for (tn, v), e in ests.items():
        g = groups[(tn, v)]
        cols = _group_columns(g)
        md += [f"## Per layer: {v} view, table {tn}", "",
               "| layer | " + " | ".join(f"{c} (pJ)" for c in cols) + " | total (pJ) |",
               "|---|" + "---:|" * (len(cols) + 1)]
        for layer, d in g.items():
            name = layer if v == "paper" else f"{labels.get(layer, layer)} ({layer})"
            md.append(f"| {name} | " + " | ".join(_fmt(d[c]) for c in cols) + f" | {_fmt(sum(d.values()))} |")
        md += [""] + [f"- {n}" for n in e.notes] + [""]
    md += ["## NeuroBench counts (per sample)", "", "| metric | value | counted on |", "|---|---:|---|"]
    for k in ("Effective_ACs", "Effective_MACs", "Dense", "SynOps_per_event", "SynOps_per_value",
              "activation_sparsity", "connection_sparsity"):
        md.append(f"| {k} | {_fmt(nb.get(k, float('nan')))} | {nb.get('where', {}).get(k, nb.get('source', ''))} |")
    md += ["", "Synaptic ops per event: one op per stored nonzero weight per nonzero input (NeuroBench, the chip); "
           "per unit of event value: a k-count event is k ops per weight (Sinabs' SynOpCounter). They differ "
           "for event counts above 1 (multi-spike neurons, binned event inputs).", ""]
    md += ["", "## Firing rates (spikes per neuron per step; " + rates_how + ")", "", "| layer | rate |",
           "|---|---:|"] + [f"| {k} | {v:.4f} |" for k, v in rates.items()] + [""]
    md += ["## Technology tables", ""]
    for t in techs:
        md += [f"### {t.name}", "", t.description, "", "| field | value | basis | note |", "|---|---:|---|---|"]
        for fld in type(t).model_fields:
            fig = getattr(t, fld)
            if hasattr(fig, "points"):
                pts = ", ".join(f"{k:g}: {v:g}" for k, v in fig.points.items())
                md.append(f"| {fld} | {pts} | {fig.basis} | {fig.note} |")
            elif hasattr(fig, "basis"):
                md.append(f"| {fld} | {fig.value:g} | {fig.basis} | {fig.note} |")
        md += [""] + ([f"Calibration: {t.calibration}", ""] if t.calibration else []) \
            + [f"- [{k}] {s}" for k, s in t.sources.items()] + [""]
    return "\n".join(md)


def _side_by_side_md(ests: dict, counters: RunCounters) -> str:
    rows = ["| table | paper | chip-ops | hardware | dense ANN (E_MAC) | dense ANN (hardware) | paper / ANN | "
            "chip-ops / ANN | hardware / ANN |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for tn in dict.fromkeys(t for t, _ in ests):
        p, c, h = (ests.get((tn, v)) for v in VIEWS)
        pt, pr = (_si(p.total_pj), f"{p.snn_ann_ratio:.4g}") if p else ("n/a", "n/a")
        rows.append(f"| {tn} | {pt} | {_si(c.total_pj)} | {_si(h.total_pj)} | {_si(c.ann_baseline_pj)} | "
                    f"{_si(h.ann_baseline_pj)} | {pr} | {c.snn_ann_ratio:.4g} | {h.snn_ann_ratio:.4g} |")
    if not counters.graph_layers:
        rows.append(f"\npaper view n/a: {NO_GRAPH_LAYERS}")
    return "\n".join(rows)


def _tex_num(pj: float, unit: str) -> str:
    if pj != pj:
        return "n/a"
    v = pj / (1e6 if unit == "uJ" else 1e3)
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"


def latex_tables(ests: dict, groups: dict, counters: RunCounters, mapping, labels: dict) -> str:
    r"""The report's tables as a LaTeX fragment (booktabs; no preamble) for ``\input`` in a paper:
    the three views side by side with the dense-ANN baseline and the ratios, a sentence per
    convention under it, then energy per layer (layers named as in the graph)."""
    B, T = counters.samples, counters.steps
    big = max((e.total_pj for e in ests.values()), default=0.0)
    unit = "uJ" if big >= 1e6 else "nJ"
    uu = r"\textmu J" if unit == "uJ" else "nJ"
    model = _tex(mapping.model or "the model")
    tex = [r"% energy tables written by snnchip report; \input{energy_tables} (needs \usepackage{booktabs})",
           r"\begin{table}[t]", r"\centering",
           rf"\caption{{Energy per inference ({uu}) of {model} on {_tex(mapping.chip.name)} ({B} samples, {T} "
           rf"steps): the three views and the dense-ANN baseline of the network as written.}}",
           r"\label{tab:energy-views}", r"\begin{tabular}{lrrrrrrr}", r"\toprule",
           r"Table & Paper & Chip-ops & Hardware & ANN (E$_\mathrm{MAC}$) & ANN (hw) & Paper/ANN & Hardware/ANN \\",
           r"\midrule"]
    for tn in dict.fromkeys(t for t, _ in ests):
        p, c, h = (ests.get((tn, v)) for v in VIEWS)
        if p is None:
            p = type("NA", (), {"total_pj": float("nan"), "snn_ann_ratio": float("nan")})()
        tex.append(rf"{_tex(tn)} & {_tex_num(p.total_pj, unit)} & {_tex_num(c.total_pj, unit)} & "
                   rf"{_tex_num(h.total_pj, unit)} & {_tex_num(c.ann_baseline_pj, unit)} & "
                   rf"{_tex_num(h.ann_baseline_pj, unit)} & {p.snn_ann_ratio:.3g} & {h.snn_ann_ratio:.3g} \\")
    tex += [r"\bottomrule", r"\end{tabular}", "",
            r"\smallskip\footnotesize " + " ".join(rf"\emph{{{v.capitalize()}}}: {_tex(VIEW_CONVENTIONS[v])}."
                                                   for v in VIEWS)
            + rf" \emph{{ANN}}: every layer of the graph once with MACs ({counters.dense_flops:,} per step)"
              r"; hardware ratio: compute + memory against the ANN's.".replace(",", "{,}"),
            r"\end{table}"]
    for (tn, v), g in groups.items():
        cols = _group_columns(g)
        sub_big = max((sum(d.values()) for d in g.values()), default=0.0)
        lu = "uJ" if sub_big >= 1e6 else "nJ"
        luu = r"\textmu J" if lu == "uJ" else "nJ"
        tex += [r"\begin{table}[t]", r"\centering",
                rf"\caption{{Energy per layer ({luu} per inference), {v} view, table {_tex(tn)}.}}",
                r"\begin{tabular}{l" + "r" * (len(cols) + 1) + "}", r"\toprule",
                "Layer & " + " & ".join(cols) + r" & Total \\", r"\midrule"]
        for layer, d in g.items():
            name = layer if v == "paper" else labels.get(layer, layer)
            tex.append(f"{_tex(name)} & " + " & ".join(_tex_num(d[c], lu) for c in cols)
                       + rf" & {_tex_num(sum(d.values()), lu)} \\")
        tex += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(tex) + "\n"


def _latex(fragment: str) -> str:
    return "\n".join([r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{textcomp}",
                      r"\usepackage[margin=2cm]{geometry}", r"\begin{document}", fragment.rstrip("\n"),
                      r"\end{document}"]) + "\n"


def _write_text(path: Path, text: str) -> Path:
    atomic_write(path, lambda fh: fh.write(text))
    return path


def _activations(result, mapping, inputs) -> dict | None:
    """{source: (T, B, n)} of every graph layer's source when the run recorded them all (and
    ``inputs``, the integer inputs the chip saw, are given or the input is real-valued), else None."""
    layers = (mapping.net.metadata or {}).get("graph_layers") or []
    srcs = {d["src"] for d in layers if d.get("src_kind") == "neuron"}
    if not layers or not srcs <= set(result.spikes):
        return None
    acts = {k: np.asarray(result.spikes[k]) for k in srcs}
    if inputs is not None:
        acts[mapping.net.input.name] = np.asarray(inputs)
    return acts


def _neurobench(result, mapping, counters: RunCounters, acts) -> dict:
    """NeuroBench metrics for the report: on the graph as written from recorded activations
    (every source recorded and the input given), else Dense on the graph and the effective
    counts from the chip counters, each labelled with what it was counted on."""
    from .graphcounts import neurobench_graph

    chip = neurobench_from_run(result, mapping)
    layers = counters.graph_layers
    if acts is not None and mapping.net.input.name in acts:
        nb = neurobench_graph(layers, acts)
        nb["where"] = {k: "graph as written, recorded activations" for k in nb}
        return nb
    nb = dict(chip)
    if layers:
        nb["Dense"] = float(counters.steps * sum(int(d["dense"]) for d in layers))
    nb["SynOps_per_event"] = chip["Effective_ACs"] + chip["Effective_MACs"]
    nb["SynOps_per_value"] = float("nan")
    nb["where"] = {"Dense": "graph as written (all-ones count)" if layers else "lowered net (old mapping)",
                   "Effective_ACs": "chip counters (lowered net; record every layer and pass the inputs for the "
                                    "graph's count)",
                   "Effective_MACs": "chip counters (lowered net)", "SynOps_per_event": "chip counters",
                   "SynOps_per_value": "n/a: needs the recorded activations (run --record all)",
                   "activation_sparsity": "chip spikes counter", "connection_sparsity": "lowered net's weights"}
    return nb


def write_report(result, mapping, out_dir, *, tables=DEFAULT_TABLES, raster: dict | None = None,
                 figure_table: str | None = None, inputs=None) -> dict:
    """Write every table and figure into ``out_dir``; returns {name: path} of the files written
    and ``skipped`` (figures that could not be drawn, with the reason).

    The run's counters are read once (:func:`~energy.readrun.run_counters`), then
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
    acts = _activations(result, mapping, inputs)
    ests = {(t.name, v): estimate_counters(counters, t, v, activations=acts if v == "paper" else None)
            for t in techs for v in (VIEWS if counters.graph_layers else VIEWS[1:])}
    groups = {key: e.per_layer_groups() for key, e in ests.items()}
    labels = layer_labels(mapping.net)
    nb = _neurobench(result, mapping, counters, acts)
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
         if e.per_core is not None for c, row in enumerate(e.per_core) for k, val in zip(e.components, row)))
    files["markdown"] = _write_text(out / "energy.md", _markdown(ests, groups, techs, counters, mapping, nb, rates,
                                                                 rates_how))
    fragment = latex_tables(ests, groups, counters, mapping, labels)
    files["latex"] = _write_text(out / "energy.tex", _latex(fragment))
    files["latex_tables"] = _write_text(out / "energy_tables.tex", fragment)

    ftab = figure_table or techs[0].name
    if ftab not in {t.name for t in techs}:
        raise EnergyError(f"report: figure_table {ftab!r} is not among the tables {[t.name for t in techs]}")
    skipped = _write_figures(out, files, ests[(ftab, "chip-ops")], ests[(ftab, "hardware")], result, mapping,
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


__all__ = ["write_report", "latex_tables", "firing_rates", "DEFAULT_TABLES", "runtime_s"]
