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

from models.errors import SnnchipError

from .errors import MappingFileError  # noqa: F401 - part of this module's API
from .placement import Placement, place
from .routing import Routes, flows_from_tiling, route
from .validate import MappingError, check, core_bytes


class EncodingError(SnnchipError):
    """An input encoding the net or the chip cannot use (names the encoding)."""


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
        if self.quant.get("input"):
            lines.append(f"  {self.quant['input']}")
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

        return load_mapping(folder, cls)


# -------------------------------------------------------------------- the pipeline ----

ENCODINGS = ("direct", "rate", "poisson")


def spiking_input(net, encoding: str):
    """``net`` with its graph input read as spikes made by ``encoding`` ('rate' | 'poisson').

    The input projections switch from MAC to AC mode (exactly what ``models.lower(graph,
    input_spiking=True)`` gives) and ``metadata['encoding']`` records the encoding, so that
    ``snnchip run`` and the float and integer references encode the data the same way.
    ``net`` itself is not changed (a shallow copy with new projection objects).
    """
    import copy

    from models.net import Net

    if encoding not in ("rate", "poisson"):
        raise EncodingError(f"encoding must be 'rate' or 'poisson' for spiking input, got {encoding!r}")
    if getattr(net, "quantized", False):
        raise EncodingError("spiking_input needs the float net (before quantize)")
    projs = []
    for q in net.projections:
        if q.src == net.input.name and q.mode == "MAC":
            q = copy.copy(q)
            q.mode = "AC"
        projs.append(q)
    meta = dict(net.metadata)
    meta["encoding"] = encoding
    return Net(list(net.populations), projs, net.output, dt=net.dt, input_spiking=True, metadata=meta)


def choose_input(net, chip, encoding: str | None):
    """The net as the chip will read its input, and the note the report prints about it.

    ``encoding``: 'direct' keeps a real-valued input (MAC mode), 'rate' / 'poisson' make
    it spikes (:func:`spiking_input`); ``None`` keeps the net's own input unless it is
    real-valued on a chip without ``ANN`` in ``core.modes`` (TrueNorth, Loihi), which gets
    'rate' (said in the report).
    """
    if encoding is not None and encoding not in ENCODINGS:
        raise EncodingError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    real = not net.input_spiking
    if encoding == "direct":
        if not real:
            raise EncodingError("encoding 'direct' needs a real-valued input; this net reads spikes "
                                   "(lower the graph with input_spiking=False)")
        return net, ""
    if encoding in ("rate", "poisson"):
        return (spiking_input(net, encoding), f"input: real values as {encoding}-coded spikes") if real \
            else (net, "")
    if real and "ANN" not in tuple(chip.core.modes):
        return (spiking_input(net, "rate"),
                f"input: real values as rate-coded spikes ({chip.name} has no ANN mode; encoding='rate' by default)")
    return net, ""


def map_model(graph_or_net, chip, *, placement: str = "rowmajor", rates: dict | None = None, max_fold=None,
              fold=None, seed: int = 0, model: str = "", multicast: str | None = None,
              input_spiking: bool | None = None, encoding: str | None = None,
              axon_copies: int | None = None) -> Mapping:
    """quantize -> tile -> place -> route -> validate; raises MappingError listing every broken limit.

    ``rates``: per-population firing rates (spikes per neuron per step) from a
    profiling run, used as traffic weights; ``None`` = uniform (1 per neuron per step).
    ``encoding``: ``'rate'`` / ``'poisson'`` map a real-valued graph input as spikes
    (recorded in ``net.metadata['encoding']``, which ``snnchip run`` follows),
    ``'direct'`` keeps it real-valued (MAC mode); default: the net's own input, or
    ``'rate'`` on a chip without ANN mode (:func:`choose_input`).
    ``axon_copies`` (chips with ``core.axon_types = k``): k (default) = every input on k
    axons, one per type, so each synapse takes the nearest of its neuron's k weights; 1 =
    one axon of one type per input, k times fewer rows but a much coarser fit
    (:func:`mapper.axon_types.assign_axon_types`).
    With ``core.conv_mapping: weight_stationary`` the conv layers are tiled as one kernel
    copy each (:mod:`mapper.stationary`): an exact resource report, and ``hwsim.simulate``
    runs it on :mod:`hwsim.stationary` (``hwsim.compile`` refuses it:
    :func:`mapper.stationary.check_runnable`).
    """
    from models import Graph, lower

    from .quantize import quantize
    from .tiling import tile

    net = lower(graph_or_net, input_spiking=input_spiking) if isinstance(graph_or_net, Graph) else graph_or_net
    net, input_note = choose_input(net, chip, encoding)
    types_table = ""
    if int(getattr(chip.core, "axon_types", 0) or 0) > 0 and "axon_types" not in net.metadata:
        from .axon_types import assign_axon_types

        k = int(chip.core.axon_types)
        net, types_report = assign_axon_types(net, k, copies=k if axon_copies is None else int(axon_copies))
        types_table = types_report.table()
    if getattr(chip.core, "conv_mapping", "unrolled") == "weight_stationary":
        from .stationary import map_stationary

        return map_stationary(net, chip, model=model, input_note=input_note)
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
    if input_note:
        quant["input"] = input_note
    if types_table:
        quant["table"] = types_table + "\n\n" + quant["table"]
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
