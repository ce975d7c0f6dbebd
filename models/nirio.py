"""Read and write NIR files (HDF5) as :class:`models.Graph`.

Reading never unpickles anything and never leaves the named file: it walks the HDF5
groups with h5py, refuses external, soft and hard-to-see links, external storage and
virtual datasets by name, checks every dataset's declared size against the memory
budget (:mod:`models.limits`) and its dtype (numbers, or text for names and types;
complex numbers are refused) before reading it, checks every node's type and
fields, and builds NIR node objects. Errors name the file and the HDF5 path or node.
Nested ``NIRGraph`` nodes are flattened into ``outer.inner`` names. Writing is
atomic (temporary file in the same folder, then rename). The graph's ``dt`` and
metadata travel in the NIR graph metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import nir
import numpy as np

from .errors import NIRFormatError, ParameterError, SnnchipError, UnsupportedNodeError
from .limits import check_bytes
from .fileio import atomic_write
from .graph import SUPPORTED_TYPES, Graph

_NESTED = "NIRGraph"


def _type(d, where: str) -> str:
    """A node dict's ``type``: a string, or an error naming the node."""
    t = d.get("type") if isinstance(d, dict) else None
    if not isinstance(t, str):
        raise NIRFormatError(f"{where}: node 'type' must be a string, got {type(t).__name__}")
    return t


def _node_from_dict(d: dict, where: str):
    t = _type(d, where)
    if t not in SUPPORTED_TYPES:
        raise UnsupportedNodeError(
            f"{where}: unsupported node type '{t}' (supported: {', '.join(SUPPORTED_TYPES)})"
        )
    d = dict(d)
    if t in ("Input", "Output") and "shape" not in d:
        raise NIRFormatError(f"{where}: {t} has no 'shape' field")
    try:
        return nir.dict2NIRNode(d)
    except SnnchipError:
        raise
    except Exception as err:  # NIR validates with assert / raises on bad fields
        msg = str(err) or type(err).__name__
        raise NIRFormatError(f"{where}: invalid {t} node: {msg}") from None


def _flatten(d: dict, where: str, prefix: str = ""):
    """Nodes and edges of a (possibly nested) graph dict, nested names joined by '.'."""
    nodes, edges = {}, []
    raw_nodes = d.get("nodes")
    raw_edges = d.get("edges")
    if not isinstance(raw_nodes, dict) or raw_edges is None:
        raise NIRFormatError(f"{where}: graph '{prefix or 'root'}' lacks nodes or edges")
    inner_io = {}
    for name, nd in raw_nodes.items():
        full = prefix + str(name)
        if not isinstance(nd, dict) or "type" not in nd:
            raise NIRFormatError(f"{where}: node '{full}' has no type")
        if _type(nd, f"{where}: node '{full}'") == _NESTED:
            sub_nodes, sub_edges, _ = _flatten(nd, where, full + ".")
            ins = [k for k, v in sub_nodes.items() if type(v).__name__ == "Input" and k.count(".") == full.count(".") + 1]
            outs = [k for k, v in sub_nodes.items() if type(v).__name__ == "Output" and k.count(".") == full.count(".") + 1]
            # The subgraph's Input/Output become pass-through points: drop them and
            # reconnect their neighbours to the outer edges.
            inner_io[full] = (ins, outs, sub_nodes, sub_edges)
            clash = sorted(set(sub_nodes) & set(nodes))
            if clash:
                raise NIRFormatError(f"{where}: node name '{clash[0]}' occurs twice once nested graphs are "
                                     f"flattened ('outer.inner' names); rename one")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
        else:
            if full in nodes:
                raise NIRFormatError(f"{where}: node name '{full}' occurs twice once nested graphs are "
                                     f"flattened ('outer.inner' names); rename one")
            nodes[full] = _node_from_dict(nd, f"{where}: node '{full}'")
    try:
        pairs = [(prefix + _s(a), prefix + _s(b)) for a, b in np.asarray(raw_edges).reshape(-1, 2)]
    except ValueError:
        raise NIRFormatError(f"{where}: edges of graph '{prefix or 'root'}' are not (src, dst) pairs") from None
    for a, b in pairs:
        srcs = [a]
        dsts = [b]
        if a in inner_io:
            srcs = [p for p, q in edges if q in inner_io[a][1]]
        if b in inner_io:
            dsts = [q for p, q in edges if p in inner_io[b][0]]
        edges.extend((s, t) for s in srcs for t in dsts)
    for full, (ins, outs, _, _) in inner_io.items():
        for k in ins + outs:
            nodes.pop(k, None)
        edges = [(a, b) for a, b in edges if a not in ins + outs and b not in ins + outs]
    meta = d.get("metadata", {}) or {}
    return nodes, edges, meta


def _read_group(group, path: Path, budget: list) -> dict:
    """The HDF5 group as nested dicts of numpy values, reading only what stays inside the file."""
    out = {}
    for key in group:
        where = f"{path}: {group.name.rstrip('/')}/{key}"
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            kind = "external link" if isinstance(link, h5py.ExternalLink) else "soft link"
            raise NIRFormatError(f"{where}: is an HDF5 {kind}; links to other objects or files are refused")
        item = group[key]
        if isinstance(item, h5py.Group):
            out[_s(key)] = _read_group(item, path, budget)
            continue
        if not isinstance(item, h5py.Dataset):
            raise NIRFormatError(f"{where}: unsupported HDF5 object {type(item).__name__}")
        if item.is_virtual:
            raise NIRFormatError(f"{where}: is a virtual dataset (data in other files); refused")
        if item.external:
            raise NIRFormatError(f"{where}: stores its data in an external file; refused")
        kind = item.dtype.kind
        if kind == "c":
            raise NIRFormatError(f"{where}: complex values ({item.dtype}) are not a weight or parameter")
        if kind not in "biufSOU" or item.dtype.names is not None:
            raise NIRFormatError(f"{where}: unsupported dtype {item.dtype}")
        size = int(np.prod(item.shape, dtype=np.float64)) * max(item.dtype.itemsize, 1) if item.shape else 0
        budget[0] += size
        check_bytes(budget[0], f"{where} (declared shape {item.shape}, {item.dtype}; all datasets so far)")
        value = item[()]
        if isinstance(value, bytes):
            value = value.decode("utf8", errors="replace")
        elif isinstance(value, np.ndarray) and value.dtype.kind in "SO":
            value = np.array([_s(v) for v in value.ravel()], dtype=object).reshape(value.shape)
        out[_s(key)] = value
    return out


def _check_metadata(meta: dict, path: Path) -> dict:
    """Type-check the graph metadata snnchip reads (``dt``, ``steps``, modes); errors name the field."""
    out = {}
    for k, v in meta.items():
        v = _s(v) if isinstance(v, bytes) else (v.item() if isinstance(v, np.generic) else v)
        if isinstance(v, np.ndarray) and v.dtype == object:
            v = v.tolist()
        out[k] = v
    if "dt" in out:
        dt = out["dt"]
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not np.isfinite(dt) or dt <= 0:
            raise NIRFormatError(f"{path}: metadata dt must be a positive finite number (seconds), got {dt!r}")
    if "steps" in out:
        st = out["steps"]
        if isinstance(st, bool) or not isinstance(st, (int, np.integer)) or st < 1:
            raise NIRFormatError(f"{path}: metadata steps must be a positive integer, got {st!r}")
    allowed = {"reset": ("zero", "subtract"), "spikes": ("binary", "multi"),
               "encoding": ("direct", "rate", "poisson")}
    for k, options in allowed.items():
        if k in out and (not isinstance(out[k], str) or out[k] not in options):
            raise NIRFormatError(f"{path}: metadata {k} must be one of {', '.join(options)}, got {out[k]!r}")
    return out


def _s(x) -> str:
    return x.decode("utf8") if isinstance(x, bytes) else str(x)


#: the time-constant fields a missing dt is checked against
_TAU_FIELDS = ("tau", "tau_mem", "tau_syn")


def _refuse_unit_dt(nodes: dict, path) -> None:
    """Raise :class:`ParameterError` when a node has a time constant below 1 (see :func:`read_nir`)."""
    for name, node in nodes.items():
        for f in _TAU_FIELDS:
            v = node.get(f) if isinstance(node, dict) else getattr(node, f, None)
            if v is None:
                continue
            try:
                tmin = float(np.min(np.asarray(v, dtype=np.float64)))
            except (TypeError, ValueError):
                continue
            if np.isfinite(tmin) and 0 < tmin < 1:
                raise ParameterError(f"{path}: node '{name}': {f} = {tmin:g} is below 1 and the file has no dt; "
                                     f"dt = 1 would diverge (dt / {f} > 1): give the time step with --dt SECONDS "
                                     f"(read_nir(path, dt=...)), e.g. --dt 1e-4 for snnTorch exports")


def read_nir(path: str | os.PathLike, *, dt: float | None = None) -> Graph:
    """Read a ``.nir`` file into a validated :class:`Graph`.

    ``dt`` overrides the time step stored in the file's metadata (default 1.0 when
    the file has none, the convention of unit-step exporters such as Sinabs). A file
    without ``dt`` whose time constants (``tau``, ``tau_mem``, ``tau_syn``) are below 1
    is refused: its exporter worked in seconds (snnTorch, Norse), and dt = 1 would make
    the forward-Euler factor dt / tau above 1 and the membranes diverge; give ``dt``
    (``--dt`` on the command line).

    Raises
    ------
    NIRFormatError
        missing, truncated, or non-HDF5 file; malformed node.
    UnsupportedNodeError, GraphError, ShapeError, ParameterError
        from :class:`Graph` validation, naming the node and field.
    """
    path = Path(path)
    if not path.exists():
        raise NIRFormatError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f or not isinstance(f.get("node", getlink=True), h5py.HardLink):
                raise NIRFormatError(f"{path}: not a NIR file (no 'node' group)")
            if not isinstance(f["node"], h5py.Group):
                raise NIRFormatError(f"{path}: not a NIR file ('node' is not a group)")
            d = _read_group(f["node"], path, [0])
    except SnnchipError:
        raise
    except Exception as err:  # h5py raises OSError/KeyError/RuntimeError on damage
        raise NIRFormatError(f"{path}: cannot read NIR file (truncated or not HDF5): {err}") from None
    if _type(d, f"{path}: top-level node") != _NESTED:
        raise NIRFormatError(f"{path}: top-level node is '{d.get('type')}', expected a NIRGraph")
    nodes, edges, meta = _flatten(d, str(path))
    if not isinstance(meta, dict):
        raise NIRFormatError(f"{path}: graph metadata must be a group of fields")
    meta = _check_metadata(meta, path)
    if dt is None and "dt" not in meta:
        _refuse_unit_dt(nodes, path)
    file_dt = float(meta.pop("dt", 1.0))
    return Graph(nodes, edges, dt=float(dt) if dt is not None else file_dt, metadata=meta, source=str(path))


def write_nir(graph: Graph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` atomically (a half-written file never appears)."""
    return atomic_write(path, lambda tmp: nir.write(tmp, graph.to_nir()), binary=None)
