"""Read and write NIR files (HDF5) as :class:`models.Graph`.

Reading never unpickles anything: it walks the HDF5 groups with h5py, checks every
node's type and fields, and builds NIR node objects. Errors name the file and node.
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
from nir.serialization import hdf2dict

from .errors import NIRFormatError, SnnchipError, UnsupportedNodeError
from .fileio import atomic_write
from .graph import SUPPORTED_TYPES, Graph

_NESTED = "NIRGraph"


def _node_from_dict(d: dict, where: str):
    t = d.get("type")
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
        if nd["type"] == _NESTED:
            sub_nodes, sub_edges, _ = _flatten(nd, where, full + ".")
            ins = [k for k, v in sub_nodes.items() if type(v).__name__ == "Input" and k.count(".") == full.count(".") + 1]
            outs = [k for k, v in sub_nodes.items() if type(v).__name__ == "Output" and k.count(".") == full.count(".") + 1]
            # The subgraph's Input/Output become pass-through points: drop them and
            # reconnect their neighbours to the outer edges.
            inner_io[full] = (ins, outs, sub_nodes, sub_edges)
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
        else:
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


def _s(x) -> str:
    return x.decode("utf8") if isinstance(x, bytes) else str(x)


def read_nir(path: str | os.PathLike, *, dt: float | None = None) -> Graph:
    """Read a ``.nir`` file into a validated :class:`Graph`.

    ``dt`` overrides the time step stored in the file's metadata (default 1.0 when
    the file has none, the convention of unit-step exporters such as Sinabs).

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
            if "node" not in f:
                raise NIRFormatError(f"{path}: not a NIR file (no 'node' group)")
            d = hdf2dict(f["node"])
    except SnnchipError:
        raise
    except Exception as err:  # h5py raises OSError/KeyError/RuntimeError on damage
        raise NIRFormatError(f"{path}: cannot read NIR file (truncated or not HDF5): {err}") from None
    if d.get("type") != _NESTED:
        raise NIRFormatError(f"{path}: top-level node is '{d.get('type')}', expected a NIRGraph")
    nodes, edges, meta = _flatten(d, str(path))
    meta = {k: (_s(v) if isinstance(v, bytes) else (v.item() if isinstance(v, np.generic) else v)) for k, v in meta.items()}
    file_dt = float(meta.pop("dt", 1.0))
    return Graph(nodes, edges, dt=float(dt) if dt is not None else file_dt, metadata=meta, source=str(path))


def write_nir(graph: Graph, path: str | os.PathLike) -> Path:
    """Write ``graph`` to ``path`` atomically (a half-written file never appears)."""
    return atomic_write(path, lambda tmp: nir.write(tmp, graph.to_nir()), binary=None)
