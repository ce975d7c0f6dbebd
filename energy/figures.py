"""Report figures (matplotlib, Agg). Each function returns a Figure, or a string saying
why it cannot be drawn (the report lists those)."""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def energy_breakdown(paper, hardware):
    """Stacked bars per layer: paper view (MAC, AC) beside hardware view (compute, memory, NoC, static)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, est in zip(axes, (paper, hardware)):
        g = est.per_layer_groups()
        layers = list(g)
        cols = list(next(iter(g.values())).keys())
        x = np.arange(len(layers))
        bottom = np.zeros(len(layers))
        colors = {"MAC": "#1f77b4", "AC": "#ff7f0e", "Compute": "#2ca02c", "Memory": "#9467bd",
                  "NoC": "#d62728", "Static": "#7f7f7f"}
        for c in cols:
            vals = np.array([g[layer][c] for layer in layers]) / 1e3
            ax.bar(x, vals, bottom=bottom, label=c, color=colors.get(c))
            bottom += vals
        for xi, tot in zip(x, bottom):
            ax.text(xi, tot, f"{tot:,.1f} nJ", ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, bottom.max(initial=0) * 1.12 or 1)
        ax.set_xticks(x, layers, rotation=30 if len(layers) > 4 else 0, ha="right" if len(layers) > 4 else "center")
        ax.set_xlabel("layer (destination population)")
        ax.set_ylabel("energy per inference (nJ)")
        ax.set_title(f"{est.view} view, table {est.table}\ntotal {est.total_pj / 1e3:,.2f} nJ per inference")
        ax.legend(frameon=False)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Energy per layer")
    fig.tight_layout()
    return fig


def _grid(mapping):
    g = np.asarray(mapping.placement.global_xy())[:-1]
    gw = mapping.placement.chip_grid[0] * mapping.placement.width
    gh = mapping.placement.chip_grid[1] * mapping.placement.height
    return g, gw, gh


def _chip_lines(ax, mapping):
    pl = mapping.placement
    for cx in range(1, pl.chip_grid[0]):
        ax.axvline(cx * pl.width - 0.5, color="k", lw=1.5)
    for cy in range(1, pl.chip_grid[1]):
        ax.axhline(cy * pl.height - 0.5, color="k", lw=1.5)


def core_utilisation(result, mapping):
    """Busy cycles / runtime cycles per core, drawn at the core's mesh position."""
    from .runstats import runtime_s

    plt = _plt()
    g, gw, gh = _grid(mapping)
    B = int(result.meta.get("samples") or result.output.shape[1])
    busy = result.per_core()["busy_cycles"] / B
    rt, how = runtime_s(result, mapping.chip)
    cycles = rt * float(mapping.chip.timing.clock_hz)
    util = busy / cycles if cycles > 0 else busy * np.nan
    img = np.full((gh, gw), np.nan)
    for c in range(len(busy)):
        img[g[c, 1], g[c, 0]] = util[c]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.45 * gw + 2), max(3.5, 0.45 * gh + 1)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#e8e8e8")
    im = ax.imshow(img, cmap=cmap, origin="lower", vmin=0, vmax=max(1e-9, float(np.nanmax(img)) if np.isfinite(img).any() else 1))
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("utilisation (busy cycles / runtime cycles)")
    if gw * gh <= 400:
        for c in range(len(busy)):
            ax.text(g[c, 0], g[c, 1], str(c), ha="center", va="center", fontsize=7, color="w")
    _chip_lines(ax, mapping)
    ax.set_xlabel("mesh x (core column)")
    ax.set_ylabel("mesh y (core row)")
    ax.set_title(f"Core utilisation on {mapping.chip.name} ({len(busy)} cores used; grey = unused)\n"
                 f"runtime {rt * 1e6:,.2f} us per inference: {how}", fontsize=9)
    fig.tight_layout()
    return fig


def noc_link_load(result, mapping):
    """Flits per step on every mesh link (both directions summed): the mapper's routes, scaled
    so that their total equals the run's measured flit-hops per step."""
    plt = _plt()
    from matplotlib.collections import LineCollection

    load = np.asarray(mapping.routes.link_load, dtype=np.float64)  # (GW, GH, 4): E, W, N, S
    gw, gh = load.shape[0], load.shape[1]
    B = int(result.meta.get("samples") or result.output.shape[1])
    T = int(result.counters.shape[0])
    measured = result.totals()["flit_hops"] / (B * T)
    est = float(load.sum())
    scale = measured / est if est > 0 else 0.0
    segs, vals = [], []
    for x in range(gw):
        for y in range(gh):
            if x + 1 < gw:
                segs.append([(x, y), (x + 1, y)])
                vals.append((load[x, y, 0] + load[x + 1, y, 1]) * scale)
            if y + 1 < gh:
                segs.append([(x, y), (x, y + 1)])
                vals.append((load[x, y, 2] + load[x, y + 1, 3]) * scale)
    vals = np.asarray(vals)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.45 * gw + 2), max(3.5, 0.45 * gh + 1)))
    segs = np.asarray(segs, dtype=np.float64)
    zero = vals <= 0
    ax_bg = LineCollection(segs[zero], colors="#dddddd", linewidths=1.5)
    segs, vals = segs[~zero], vals[~zero]
    lc = LineCollection(segs, array=vals, cmap="inferno_r", linewidths=4, clim=(0, max(vals.max(initial=0), 1e-9)))
    ax.add_collection(ax_bg)
    ax.add_collection(lc)
    g, _, _ = _grid(mapping)
    ax.scatter(g[:, 0], g[:, 1], s=18, c="k", zorder=3, label="used core")
    ax.set_xlim(-0.7, gw - 0.3)
    ax.set_ylim(-0.7, gh - 0.3)
    ax.set_aspect("equal")
    cb = fig.colorbar(lc, ax=ax)
    cb.set_label("link load (flits per step, both directions)")
    ax.set_xlabel("mesh x (core column)")
    ax.set_ylabel("mesh y (core row)")
    ax.legend(loc="upper right", fontsize=7, frameon=True, title="grey: idle link", title_fontsize=7)
    ax.set_title(f"NoC link load on {mapping.chip.name}: mapper routes scaled to the measured\n"
                 f"{measured:,.1f} flit-hops per step per inference (max link {vals.max(initial=0):,.2f} flits/step)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def spike_raster(result, raster: dict | None = None, sample: int = 0, max_neurons: int = 32):
    """Spikes of chosen neurons of sample ``sample``: ``raster`` = {population: indices} of
    recorded populations (default: the first ``max_neurons`` neurons of each recorded one)."""
    plt = _plt()
    if not result.spikes:
        return "the run recorded no spikes (simulate with record=... / run with --record)"
    sel = raster or {k: None for k in result.spikes}
    bad = [k for k in sel if k not in result.spikes]
    if bad:
        from .errors import EnergyError

        raise EnergyError(f"raster: population(s) {bad} not recorded; recorded: {sorted(result.spikes)}")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    row, ticks, labels = 0, [], []
    T = None
    for k, idx in sel.items():
        s = np.asarray(result.spikes[k])[:, sample]  # (T, n)
        T = s.shape[0]
        idx = np.arange(min(max_neurons, s.shape[1])) if idx is None else np.asarray(idx, dtype=np.int64)
        t, n = np.nonzero(s[:, idx])
        ax.scatter(t, row + n, s=40, marker="|", linewidths=1.5, label=k)
        ticks.append(row + (len(idx) - 1) / 2)
        labels.append(f"{k}\n({len(idx)} neurons)")
        row += len(idx)
        ax.axhline(row - 0.5, color="#bbbbbb", lw=0.6)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(-0.5, row - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron (population, first indices)")
    ax.set_title(f"Spike raster, sample {sample}")
    fig.tight_layout()
    return fig


def firing_rates(rates: dict, how: str):
    """Bar chart: spikes per neuron per step for every spiking layer."""
    plt = _plt()
    if not rates:
        return "the net has no spiking populations"
    fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * len(rates) + 2), 3.6))
    names = list(rates)
    vals = [rates[k] for k in names]
    bars = ax.bar(names, vals, color="#1f77b4")
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.set_xlabel("layer (spiking population)")
    ax.set_ylim(0, max(vals) * 1.15 if max(vals) > 0 else 1)
    ax.set_title(f"Firing rate per layer\n(from {how})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
