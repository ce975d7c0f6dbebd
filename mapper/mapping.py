"""The ``Mapping``: a quantised net placed and routed on a chip, and its files.

:func:`map_model` runs the mapper passes in order -- ``quantize`` -> ``tile`` ->
``place`` -> ``route`` -> ``validate`` -- each a plain function over plain data.
A :class:`Mapping` saves as ``mapping.json`` + ``mapping.npz`` and loads back
identically, re-validated (the file format and its checks: :mod:`mapper.mapfile`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .mapfile import MappingFileError  # noqa: F401 - part of this module's API
from .placement import Placement, place
from .routing import Routes, flows_from_tiling, route
from .validate import MappingError, check, core_bytes


@dataclass
class Mapping:
    """Everything the chip simulator needs: chip, integer net, tiles, cores, placement, routes."""

    chip: object
    net: object
    tiling: object
    placement: Placement
    routes: Routes
    model: str = ""
    quant: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)  # rowmajor cost, for comparison
    file_sha256: str = ""  # of mapping.json when loaded from a folder (it holds the npz's hash)

    def __repr__(self) -> str:
        tl = self.tiling
        chips = self.placement.n_chips
        return (f"Mapping({self.model or 'model'} on {self.chip.name}: {len(tl.cores):,} cores on {chips} "
                f"chip{'s' if chips != 1 else ''}, {tl.n_crossbars:,} crossbars for {len(tl.tiles):,} tiles, "
                f"fold <= {max(tl.fold.values(), default=1)})")

    # ---------------------------------------------------------------- reports ------
    def resources(self) -> dict:
        """Figures of the resource report (see :meth:`report`)."""
        chip, tl = self.chip, self.tiling
        c = chip.core
        n_cores = len(tl.cores)
        cells = c.axons * c.neurons
        used = sum(t.used_cells for t in tl.tiles)
        per_core = core_bytes(tl, chip)
        crossbars, wbytes = int(per_core[:, 0].sum()), int(per_core[:, 1].sum())
        pp = tl.per_population()
        stored = sum(r["weights_stored"] for r in pp)
        unique = sum(r["unique_weights"] for r in pp)
        unique_wbytes = unique * c.weight_bits / 8
        return {
            "cores_used": n_cores, "cores_per_chip": chip.mesh.width * chip.mesh.height,
            "chips_used": self.placement.n_chips, "max_chips": chip.mesh.max_chips,
            "tiles": len(tl.tiles), "crossbars": crossbars,
            "partial_tiles": sum(t.kind == "partial" for t in tl.tiles),
            "crossbar_utilization": used / max(1, len(tl.tiles) * cells),
            "weight_bytes": wbytes, "weights_stored": stored, "unique_weights": unique,
            "weight_bytes_unique": unique_wbytes, "duplication": stored / max(1, unique),
            "max_routing_entries": int(self.routes.table_entries.max(initial=0)),
            "routing_entries_limit": c.routing_entries,
            "traffic_hops": self.placement.stats.get("flit_hops", 0.0),
            "interchip_flits": self.placement.stats.get("interchip_flits", 0.0),
            "rowmajor_traffic_hops": self.baseline.get("flit_hops", float("nan")),
            "max_link_load": self.routes.max_link_load(),
            "fold": dict(tl.fold),
        }

    def report(self) -> str:
        r = self.resources()
        lines = [
            f"mapping of {self.model or 'model'} on {self.chip.name} ({self.placement.strategy} placement, "
            f"{self.routes.multicast} routing)",
            f"  cores used       {r['cores_used']:,} of {r['cores_per_chip'] * r['chips_used']:,} on "
            f"{r['chips_used']} chip(s) ({r['cores_per_chip']} cores each, max {r['max_chips']} chips)",
            f"  crossbars        {r['crossbars']:,} for {r['tiles']:,} tiles ({r['partial_tiles']:,} partial-sum tiles)",
            f"  utilization      {100 * r['crossbar_utilization']:.1f} % of crossbar cells hold a synapse",
            f"  weight memory    {r['weight_bytes'] / 1024:,.1f} KiB of crossbar SRAM; {r['weights_stored']:,} weights "
            f"stored, {r['unique_weights']:,} distinct ({r['weight_bytes_unique'] / 1024:,.1f} KiB): "
            f"duplication x{r['duplication']:.1f}",
            f"  routing tables   largest {r['max_routing_entries']} entries (limit {r['routing_entries_limit']})",
            f"  traffic x hops   {r['traffic_hops']:,.1f} flit-hops/step ({self.placement.strategy}) vs "
            f"{r['rowmajor_traffic_hops']:,.1f} (rowmajor); inter-chip {r['interchip_flits']:,.1f} flits/step",
            f"  max link load    {r['max_link_load']:,.2f} flits/step",
        ]
        folds = {k: v for k, v in r["fold"].items() if v > 1}
        if folds:
            lines.append("  fold             " + ", ".join(f"{k} x{v}" for k, v in folds.items()))
        lines.append("")
        lines.append(self.tiling.summary())
        if self.quant.get("table"):
            lines.append("")
            lines.append(self.quant["table"])
        return "\n".join(lines)

    # ---------------------------------------------------------------- files --------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``mapping.json`` + ``mapping.npz`` into ``folder`` as a unit (:mod:`mapper.mapfile`)."""
        from .mapfile import save_mapping

        return save_mapping(self, folder)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Mapping":
        """Read and re-validate a mapping folder (:mod:`mapper.mapfile`); every array is range-checked first."""
        from .mapfile import load_mapping

        return load_mapping(folder)


# -------------------------------------------------------------------- the pipeline ----

def map_model(graph_or_net, chip, *, placement: str = "rowmajor", rates: dict | None = None, max_fold=None,
              fold=None, seed: int = 0, model: str = "", multicast: str | None = None,
              input_spiking: bool | None = None) -> Mapping:
    """quantize -> tile -> place -> route -> validate; raises MappingError listing every broken limit.

    ``rates``: per-population firing rates (spikes per neuron per step) from a
    profiling run, used as traffic weights; ``None`` = uniform (1 per neuron per step).
    """
    from models import Graph, lower

    from .quantize import quantize
    from .tiling import tile

    net = lower(graph_or_net, input_spiking=input_spiking) if isinstance(graph_or_net, Graph) else graph_or_net
    qnet, qreport = quantize(net, chip)
    # The smallest fold that fits the cores may still overflow routing tables (a core
    # holding few neurons talks to many partial-sum tiles): raise the fold cap until
    # every rule holds, unless the user fixed the fold.
    user_fixed = max_fold is not None or fold is not None
    tiling = tile(qnet, chip, max_fold=max_fold, fold=fold)
    auto = max(tiling.fold.values(), default=1)
    caps = [] if user_fixed else [f for f in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
                                  if auto < f <= chip.core.max_fold]
    while True:
        problems = check(tiling, chip, net=qnet)
        if problems:
            raise MappingError(problems, model)
        flows = flows_from_tiling(tiling, rates, psum_bits=chip.core.membrane_bits, flit_bits=chip.noc.flit_bits)
        T = flows.traffic()
        pl = place(len(tiling.cores), T, chip, placement, seed=seed)
        routes = route(pl, flows, chip, multicast=multicast)
        problems = check(tiling, chip, net=qnet, routes=routes)
        if not problems or {v.rule for v in problems} != {"routing_entries"} or not caps:
            break
        tiling = tile(qnet, chip, max_fold=caps.pop(0))
    if problems:
        raise MappingError(problems, model)
    base = pl.stats if placement == "rowmajor" else place(len(tiling.cores), T, chip, "rowmajor").stats
    quant = {"table": qreport.table(), **(qreport.summary() if hasattr(qreport, "summary") else {})}
    return Mapping(chip, qnet, tiling, pl, routes, model, quant, dict(base))


def fold_sweep(graph_or_net, chip, folds=(1, 2, 4, 8, 16)) -> list[dict]:
    """The space/time trade-off: for each fold cap, cores, chips, cycles factor and memory.

    Tiling only (no placement): ``cores`` = cores needed, ``chips`` = ceil(cores /
    cores per chip), ``cycles_factor`` = largest fold used (a folded core runs that
    many output blocks one after another per step), ``state_bytes`` = largest
    per-core state memory. A fold above ``core.max_fold`` is reported as not allowed.
    """
    from models import Graph, lower

    from .quantize import quantize
    from .tiling import tile

    net = lower(graph_or_net) if isinstance(graph_or_net, Graph) else graph_or_net
    qnet, _ = quantize(net, chip)
    rows = []
    for f in folds:
        if f > chip.core.max_fold:
            rows.append({"fold": f, "allowed": False})
            continue
        t = tile(qnet, chip, fold=f)
        mem = t.core_memory()
        rows.append({"fold": f, "allowed": True, "tiles": len(t.tiles), "cores": t.n_cores,
                     "chips": t.chips_needed, "fits": t.fits, "cycles_factor": t.cycles_factor,
                     "state_bytes": int(mem[:, 1].max(initial=0)),
                     "memory_bytes": int(mem.sum(axis=1).max(initial=0))})
    return rows
