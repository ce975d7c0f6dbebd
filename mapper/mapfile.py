"""Mapping files: ``mapping.json`` (structure, pydantic) + ``mapping.npz`` (arrays), written as one folder.

Saving goes through :class:`models.fileio.AtomicFolder`: a reader sees the old
folder or the new one, never a mix, and a second writer of the same folder is
refused. ``mapping.json`` carries the SHA-256 of ``mapping.npz``'s arrays; a pair that
does not belong together is refused on load.

Loading trusts nothing it can recompute. Before any array reaches compiled code
(the routing kernel runs inside :func:`load_mapping`), every one is checked:
npz members' uncompressed sizes against the memory budget before reading, dtypes,
shapes, index bounds, monotone CSR pointers, finite non-negative traffic rates;
tile sizes are recomputed from the arrays and compared with the JSON; the
placement must lie inside the chip's mesh and chip grid with one core per router;
the multicast mode must be known; the net's quantisation widths must be the chip's
and its integer weights inside the chip's weight range. Finally the mapper's own
design rules (:func:`mapper.validate.check`) run against the chip. A folder whose
``mapping.json`` says ``conv_mapping: weight_stationary`` is read by
:func:`mapper.stationary.load_stationary` instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from models.errors import SnnchipError
from models.fileio import AtomicFolder, atomic_write, read_npz
from models.limits import check_bytes
from models.netio import net_from_dict, net_to_dict

from .placement import Placement
from .routing import Flows, route
from .errors import MappingFileError
from .validate import MappingError, check

FORMAT_VERSION = 1
MULTICAST_MODES = ("unicast", "xy-tree")


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
    npz_sha256: str = ""


def _to_records(m):
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




def arrays_sha256(arrays: dict) -> str:
    """SHA-256 of named arrays: names, dtypes, shapes and bytes in name order (zip timestamps excluded)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_mapping(m, folder: str | os.PathLike) -> Path:
    """Write ``m`` into ``folder`` as a unit (see the module docstring); returns the folder."""
    folder = Path(folder)
    doc, arrays = _to_records(m)
    with AtomicFolder(folder) as out:
        atomic_write(out.tmp / "mapping.npz", lambda f: np.savez_compressed(f, **arrays), binary=True)
        doc.npz_sha256 = arrays_sha256(arrays)
        atomic_write(out.tmp / "mapping.json", lambda f: f.write(doc.model_dump_json(indent=1)))
    return folder


def _load_arrays(npath: Path) -> dict:
    """The npz's arrays, sizes checked against the budget before any is read; numbers only."""
    try:
        arrays = read_npz(npath)
    except SnnchipError:
        raise
    except Exception as err:  # zip/npz damage of any kind  # noqa: BLE001
        raise MappingFileError(f"{npath}: cannot read arrays ({type(err).__name__}: {err})") from None
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise MappingFileError(f"{npath}: array '{k}' has dtype {a.dtype}, expected numbers")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise MappingFileError(f"{npath}: array '{k}' holds NaN or infinite values")
    return arrays


def _index_array(arrays, key: str, npath: Path, lo: int, hi: int, ndim: int = 1) -> np.ndarray:
    if key not in arrays:
        raise MappingFileError(f"{npath}: array '{key}' missing")
    a = arrays[key]
    if a.dtype.kind not in "iu" or a.ndim != ndim:
        raise MappingFileError(f"{npath}: '{key}' must be a {ndim}-d integer array, got {a.dtype} {a.shape}")
    if a.size and (int(a.min()) < lo or int(a.max()) >= hi):
        raise MappingFileError(f"{npath}: '{key}' has values outside {lo}..{hi - 1} "
                               f"(min {int(a.min())}, max {int(a.max())})")
    return a


def _check_placement(positions: np.ndarray, pd: dict, chip, n_cores: int, jpath: Path, npath: Path) -> None:
    if positions.shape != (n_cores, 3):
        raise MappingFileError(f"{npath}: placement.positions is {positions.shape}, the mapping has {n_cores} cores "
                               f"(expected ({n_cores}, 3))")
    w, h = int(chip.mesh.width), int(chip.mesh.height)
    if (pd.get("width"), pd.get("height")) != (w, h):
        raise MappingFileError(f"{jpath}: placement mesh {pd.get('width')}x{pd.get('height')} differs from the "
                               f"chip's {w}x{h}")
    grid = pd.get("chip_grid")
    n_chips = pd.get("n_chips")
    if (not isinstance(grid, list) or len(grid) != 2 or not all(isinstance(g, int) and g >= 1 for g in grid)
            or not isinstance(n_chips, int) or not 1 <= n_chips <= grid[0] * grid[1]
            or n_chips > chip.mesh.max_chips):
        raise MappingFileError(f"{jpath}: placement chip grid {grid} / n_chips {n_chips} is not a grid of at most "
                               f"mesh.max_chips={chip.mesh.max_chips} chips")
    for col, (name, hi) in enumerate((("chip", n_chips), ("x", w), ("y", h))):
        v = positions[:, col]
        if v.size and (int(v.min()) < 0 or int(v.max()) >= hi):
            k = int(np.flatnonzero((v < 0) | (v >= hi))[0])
            raise MappingFileError(f"{npath}: placement.positions: core {k} has {name} = {int(v[k])}, "
                                   f"outside 0..{hi - 1}")
    flat = (positions[:, 0] * h + positions[:, 2]) * w + positions[:, 1]
    uniq, first, counts = np.unique(flat, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = np.flatnonzero(flat == uniq[np.argmax(counts > 1)])
        raise MappingFileError(f"{npath}: placement.positions: cores {int(dup[0])} and {int(dup[1])} sit on the "
                               f"same router {tuple(int(v) for v in positions[dup[0]])}")


def _load_flows(arrays, doc, n_cores: int, npath: Path, jpath: Path) -> Flows:
    if doc.flows.get("n_cores") != n_cores:
        raise MappingFileError(f"{jpath}: flows.n_cores {doc.flows.get('n_cores')} differs from the mapping's "
                               f"{n_cores} cores")
    src = _index_array(arrays, "flows.src", npath, 0, n_cores + 1)  # n_cores = the I/O port
    F = src.size
    indptr = _index_array(arrays, "flows.dst.indptr", npath, 0, np.iinfo(np.int64).max)
    indices = _index_array(arrays, "flows.dst.indices", npath, 0, n_cores)
    if indptr.size != F + 1 or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise MappingFileError(f"{npath}: flows.dst.indptr is not a CSR pointer for {F} flows over "
                               f"{indices.size} destinations")
    kind = _index_array(arrays, "flows.kind", npath, 0, 2)
    rate = arrays.get("flows.rate")
    if rate is None or rate.shape != (F,) or kind.shape != (F,):
        raise MappingFileError(f"{npath}: flows.rate and flows.kind must have one entry per flow ({F})")
    if rate.dtype.kind not in "iuf" or np.any(rate < 0):
        raise MappingFileError(f"{npath}: flows.rate must be finite and >= 0")
    dst = sp.csr_matrix((np.ones(indices.size, bool), indices, indptr), shape=(F, n_cores))
    return Flows(src, rate, dst, kind, n_cores)


def _check_quant(net, chip, jpath: Path) -> None:
    q = (net.metadata or {}).get("quant", {})
    for field_, want in (("weight_bits", chip.core.weight_bits), ("membrane_bits", chip.core.membrane_bits)):
        if q.get(field_) != want:
            raise MappingFileError(f"{jpath}: the net was quantised with {field_}={q.get(field_)}, the chip has "
                                   f"core.{field_}={want}")
    wmin, wmax = chip.weight_range
    for proj in net.projections:
        w = proj.csr.data if proj.kind == "sparse" else proj.weight
        if w.size and (w.min() < wmin or w.max() > wmax or np.any(w != np.round(w))):
            raise MappingFileError(f"{jpath}: projection '{proj.name}': weights outside the chip's integer range "
                                   f"[{wmin}, {wmax}]")


def load_mapping(folder: str | os.PathLike, cls):
    """Read a mapping folder, check everything (module docstring), and return it as ``cls``
    (:class:`mapper.mapping.Mapping`, whose ``load`` passes itself: this module does not import
    it back), or a :class:`mapper.stationary.StationaryMapping` for a weight-stationary folder."""
    from hwsim.chip import ChipConfig

    from .tiling import Tile, Tiling

    folder = Path(folder)
    jpath, npath = folder / "mapping.json", folder / "mapping.npz"
    if jpath.is_file() and not npath.exists():
        try:
            head = json.loads(jpath.read_text())
        except ValueError:
            head = None
        if isinstance(head, dict) and head.get("conv_mapping") == "weight_stationary":
            from .stationary import load_stationary

            return load_stationary(folder)
    for pth in (jpath, npath):
        if not pth.is_file():
            raise MappingFileError(f"{pth}: no such file (is {folder} a mapping folder written by `snnchip map`?)")
    text = jpath.read_bytes()
    check_bytes(len(text) * 20, f"{jpath}: JSON document")  # parsed objects take ~20x the text
    try:
        doc = MappingRecord.model_validate_json(text)
    except ValidationError as err:
        e = err.errors()[0]
        raise MappingFileError(f"{jpath}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except ValueError as err:
        raise MappingFileError(f"{jpath}: not valid JSON ({err})") from None
    if doc.format_version != FORMAT_VERSION:
        raise MappingFileError(f"{jpath}: format_version {doc.format_version}, this snnchip reads {FORMAT_VERSION}")
    arrays = _load_arrays(npath)
    if doc.npz_sha256 and doc.npz_sha256 != arrays_sha256(arrays):
        raise MappingFileError(f"{npath}: does not belong to {jpath.name} (its arrays' SHA-256 differs from the "
                               f"one recorded there); write the mapping again")
    try:
        chip = ChipConfig.model_validate(doc.chip)
    except ValidationError as err:
        e = err.errors()[0]
        raise MappingFileError(f"{jpath}: chip.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    if doc.multicast not in MULTICAST_MODES:
        raise MappingFileError(f"{jpath}: multicast {doc.multicast!r} is not one of {', '.join(MULTICAST_MODES)}")
    net = net_from_dict(doc.net, arrays, where=str(jpath))
    _check_quant(net, chip, jpath)
    tiles = []
    for r in doc.tiles:
        if r.population not in net.pop:
            raise MappingFileError(f"{jpath}: tile {r.id} belongs to unknown population '{r.population}'")
        size = net.pop[r.population].size
        post = _index_array(arrays, r.post, npath, 0, size)
        axons = []
        for src, delay, key in r.axons:
            if src not in net.pop:
                raise MappingFileError(f"{jpath}: tile {r.id}: axons from unknown population '{src}'")
            axons.append((src, delay, _index_array(arrays, key, npath, 0, net.pop[src].size)))
        n_axons = sum(int(a[2].size) for a in axons)
        if (r.n_axons, r.n_neurons) != (n_axons, int(post.size)):
            raise MappingFileError(f"{jpath}: tile {r.id} claims {r.n_axons} axons x {r.n_neurons} neurons, its "
                                   f"arrays hold {n_axons} x {post.size}")
        tiles.append(Tile(id=r.id, population=r.population, kind=r.kind, soma=r.soma,
                          n_axons=r.n_axons, n_neurons=r.n_neurons, used_cells=r.used_cells, mode=r.mode,
                          block=tuple(r.block), weight_group=r.weight_group, _post=post, _axons=axons))
    n_tiles = len(tiles)
    seen = set()
    for what, lists in (("core", doc.cores), ("crossbar", doc.crossbars)):
        for k, c in enumerate(lists):
            if any(t < 0 or t >= n_tiles for t in c):
                raise MappingFileError(f"{jpath}: {what} {k} lists a tile outside 0..{n_tiles - 1}")
    for k, c in enumerate(doc.cores):
        for t in c:
            if t in seen:
                raise MappingFileError(f"{jpath}: tile {t} is placed on two cores (again on core {k})")
            seen.add(t)
    tiling = Tiling(tiles=tiles, cores=doc.cores, fold=dict(doc.fold), chip=chip, crossbars=doc.crossbars,
                    blocks=dict(doc.blocks), _unique_weights=dict(doc.unique_weights))
    pd = doc.placement
    n_cores = len(doc.cores)
    positions = _index_array(arrays, "placement.positions", npath, 0, np.iinfo(np.int32).max, ndim=2)
    _check_placement(positions, pd, chip, n_cores, jpath, npath)
    try:
        placement = Placement(positions, pd["n_chips"], tuple(pd["chip_grid"]), pd["width"], pd["height"],
                              str(pd["strategy"]), float(pd["interchip_penalty"]), dict(pd["stats"]))
    except (KeyError, TypeError, ValueError) as err:
        raise MappingFileError(f"{jpath}: placement: {type(err).__name__}: {err}") from None
    flows = _load_flows(arrays, doc, n_cores, npath, jpath)
    routes = route(placement, flows, chip, multicast=doc.multicast)
    m = cls(chip, net, tiling, placement, routes, doc.model, dict(doc.quant), dict(doc.baseline),
                file_sha256=hashlib.sha256(text).hexdigest())
    v = check(tiling, chip, net=net, routes=routes)
    if v:
        raise MappingError(v, str(folder))
    return m
