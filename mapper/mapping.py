"""The ``Mapping``: a quantised net placed and routed on a chip, and its files.

:func:`map_model` runs the mapper passes in order -- ``quantize`` -> ``tile`` ->
``place`` -> ``route`` -> ``validate`` -- each a plain function over plain data.
A :class:`Mapping` saves as ``mapping.json`` (structure, a pydantic model) plus
``mapping.npz`` (arrays; loaded with ``allow_pickle=False``), both written
atomically; :meth:`Mapping.load` re-validates everything against the chip and
round-trips exactly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from models.errors import SnnchipError
from models.fileio import atomic_write
from models.netio import net_from_dict, net_to_dict

from .placement import Placement, place
from .routing import Flows, Routes, flows_from_tiling, route
from .validate import check, core_bytes, MappingError

FORMAT_VERSION = 1


class MappingFileError(SnnchipError):
    """A mapping folder is missing, corrupt, or inconsistent with its chip."""


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
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        doc, arrays = _to_records(self)
        atomic_write(folder / "mapping.npz", lambda f: np.savez_compressed(f, **arrays), binary=True)
        atomic_write(folder / "mapping.json", lambda f: f.write(doc.model_dump_json(indent=1)))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "Mapping":
        return _from_records(Path(folder))


# -------------------------------------------------------------------- records ---------

class TileRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    population: str
    kind: str
    soma: int
    post: str
    axons: list[tuple[str, int, str]]
    n_axons: int
    n_neurons: int
    used_cells: int
    mode: str
    block: list
    weight_group: int


class MappingRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format_version: int
    model: str
    chip: dict
    net: dict
    tiles: list[TileRecord]
    cores: list[list[int]]
    crossbars: list[list[int]]
    blocks: dict
    unique_weights: dict
    fold: dict[str, int]
    placement: dict
    multicast: str
    flows: dict
    quant: dict
    baseline: dict


def _to_records(m: Mapping):
    arrays: dict = {}
    net_doc, net_arrays = net_to_dict(m.net)
    arrays.update(net_arrays)
    tiles = []
    for t in m.tiling.tiles:
        pk = f"tile{t.id}.post"
        arrays[pk] = np.asarray(t.post, dtype=np.int64)
        ax = []
        for j, (src, delay, idx) in enumerate(t.axons):
            ak = f"tile{t.id}.ax{j}"
            arrays[ak] = np.asarray(idx, dtype=np.int64)
            ax.append((src, int(delay), ak))
        tiles.append(TileRecord(id=t.id, population=t.population, kind=t.kind, soma=t.soma, post=pk, axons=ax,
                                n_axons=t.n_axons, n_neurons=t.n_neurons, used_cells=t.used_cells, mode=t.mode,
                                block=[b if isinstance(b, (str, int)) else int(b) for b in t.block],
                                weight_group=t.weight_group))
    p = m.placement
    arrays["placement.positions"] = p.positions.astype(np.int64)
    f = m.routes.flows
    arrays["flows.src"], arrays["flows.rate"], arrays["flows.kind"] = f.src, f.rate, f.kind
    d = f.dst.tocsr()
    arrays["flows.dst.indptr"], arrays["flows.dst.indices"] = d.indptr.astype(np.int64), d.indices.astype(np.int64)
    doc = MappingRecord(
        format_version=FORMAT_VERSION, model=m.model, chip=m.chip.to_dict(), net=net_doc, tiles=tiles,
        cores=[list(map(int, c)) for c in m.tiling.cores],
        crossbars=[list(map(int, c)) for c in m.tiling.crossbars], blocks=_jsonable(m.tiling.blocks),
        unique_weights={k: int(v) for k, v in m.tiling._unique_weights.items()}, fold={k: int(v) for k, v in m.tiling.fold.items()},
        placement={"n_chips": p.n_chips, "chip_grid": list(p.chip_grid), "width": p.width, "height": p.height,
                   "strategy": p.strategy, "interchip_penalty": p.interchip_penalty, "stats": p.stats},
        multicast=m.routes.multicast, flows={"n_cores": f.n_cores}, quant=_jsonable(m.quant),
        baseline=_jsonable(m.baseline))
    return doc, arrays


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _from_records(folder: Path) -> Mapping:
    from hwsim.chip import ChipConfig

    from .tiling import Tile, Tiling

    jpath, npath = folder / "mapping.json", folder / "mapping.npz"
    if jpath.exists() and not npath.exists():
        try:
            head = json.loads(jpath.read_text())
        except ValueError:
            head = None
        if isinstance(head, dict) and head.get("conv_mapping") == "weight_stationary":
            from .stationary import StationaryError

            raise StationaryError(f"{folder}: a core.conv_mapping=weight_stationary mapping (resources only); "
                                  f"the chip simulator runs unrolled mappings only")
    for pth in (jpath, npath):
        if not pth.exists():
            raise MappingFileError(f"{pth}: no such file (is {folder} a mapping folder written by `snnchip map`?)")
    try:
        doc = MappingRecord.model_validate_json(jpath.read_text())
    except ValidationError as err:
        e = err.errors()[0]
        raise MappingFileError(f"{jpath}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except ValueError as err:
        raise MappingFileError(f"{jpath}: not valid JSON ({err})") from None
    if doc.format_version != FORMAT_VERSION:
        raise MappingFileError(f"{jpath}: format_version {doc.format_version}, this snnchip reads {FORMAT_VERSION}")
    try:
        arrays = dict(np.load(npath, allow_pickle=False))
    except Exception as err:  # zip/npz damage of any kind
        raise MappingFileError(f"{npath}: cannot read arrays ({err})") from None
    try:
        chip = ChipConfig.model_validate(doc.chip)
    except ValidationError as err:
        e = err.errors()[0]
        raise MappingFileError(f"{jpath}: chip.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    net = net_from_dict(doc.net, arrays, where=str(jpath))

    def arr(key):
        if key not in arrays:
            raise MappingFileError(f"{npath}: array '{key}' missing")
        return arrays[key]

    tiles = []
    for r in doc.tiles:
        if r.population not in net.pop:
            raise MappingFileError(f"{jpath}: tile {r.id} belongs to unknown population '{r.population}'")
        post = arr(r.post)
        size = net.pop[r.population].size
        if post.size and (post.min() < 0 or post.max() >= size):
            raise MappingFileError(f"{jpath}: tile {r.id}: post index outside population '{r.population}' ({size})")
        axons = []
        for src, delay, key in r.axons:
            idx = arr(key)
            if src not in net.pop or (idx.size and (idx.min() < 0 or idx.max() >= net.pop[src].size)):
                raise MappingFileError(f"{jpath}: tile {r.id}: axons from '{src}' out of range")
            axons.append((src, delay, idx))
        tiles.append(Tile(id=r.id, population=r.population, kind=r.kind, soma=r.soma,
                          n_axons=r.n_axons, n_neurons=r.n_neurons, used_cells=r.used_cells, mode=r.mode,
                          block=tuple(r.block), weight_group=r.weight_group, _post=post, _axons=axons))
    n_tiles = len(tiles)
    for k, c in enumerate(doc.cores):
        if any(t < 0 or t >= n_tiles for t in c):
            raise MappingFileError(f"{jpath}: core {k} lists a tile outside 0..{n_tiles - 1}")
    for k, c in enumerate(doc.crossbars):
        if any(t < 0 or t >= n_tiles for t in c):
            raise MappingFileError(f"{jpath}: crossbar {k} lists a tile outside 0..{n_tiles - 1}")
    tiling = Tiling(tiles=tiles, cores=doc.cores, fold=dict(doc.fold), chip=chip, crossbars=doc.crossbars,
                    blocks=dict(doc.blocks), _unique_weights=dict(doc.unique_weights))
    pd = doc.placement
    positions = arr("placement.positions")
    if positions.shape != (len(doc.cores), 3):
        raise MappingFileError(f"{npath}: placement has {positions.shape[0]} cores, mapping has {len(doc.cores)}")
    placement = Placement(positions, pd["n_chips"], tuple(pd["chip_grid"]), pd["width"], pd["height"],
                          pd["strategy"], pd["interchip_penalty"], dict(pd["stats"]))
    n = doc.flows["n_cores"]
    dst = sp.csr_matrix((np.ones(arr("flows.dst.indices").size, bool), arr("flows.dst.indices"),
                         arr("flows.dst.indptr")), shape=(arr("flows.src").size, n))
    flows = Flows(arr("flows.src"), arr("flows.rate"), dst, arr("flows.kind"), n)
    routes = route(placement, flows, chip, multicast=doc.multicast)
    m = Mapping(chip, net, tiling, placement, routes, doc.model, dict(doc.quant), dict(doc.baseline))
    v = check(tiling, chip, net=net, routes=routes)
    if v:
        raise MappingError(v, str(folder))
    return m


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
    copy each (:mod:`mapper.stationary`); such a mapping has an exact resource report
    but ``hwsim.compile`` cannot run it (:func:`mapper.stationary.check_runnable`).
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
