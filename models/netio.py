"""Serialise a :class:`~models.net.Net` as a JSON-able dict plus named numpy arrays.

Used by mapping files (``mapper.mapping``): structure goes to JSON, arrays to one
``.npz`` (no pickle: ``allow_pickle=False`` on load). Round trip is exact,
including integer dtypes of quantised nets and broadcast (uniform) parameters.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import SnnchipError
from .net import ConvProjection, DenseProjection, Net, Population, SparseProjection
from .ops import ConvGeometry


class NetFormatError(SnnchipError):
    """A serialised net is inconsistent or incomplete."""


def _put(arrays: dict, key: str, a: np.ndarray) -> dict:
    a = np.asarray(a)
    if a.ndim == 1 and a.size > 1 and a.strides == (0,):  # uniform broadcast view
        arrays[key] = np.array(a[:1])
        return {"array": key, "broadcast": int(a.size)}
    arrays[key] = np.ascontiguousarray(a)
    return {"array": key}


def _get(arrays, ref: dict, where: str) -> np.ndarray:
    key = ref["array"]
    if key not in arrays:
        raise NetFormatError(f"{where}: array '{key}' missing from the .npz")
    a = arrays[key]
    if "broadcast" in ref:
        return np.broadcast_to(a.reshape(-1)[0], (int(ref["broadcast"]),))
    return a


def net_to_dict(net: Net, prefix: str = "net") -> tuple[dict, dict]:
    arrays: dict = {}
    pops = []
    for i, p in enumerate(net.populations):
        d = {"name": p.name, "model": p.model, "shape": list(map(int, p.shape)), "params": {}}
        for k, v in p.params.items():
            d["params"][k] = _put(arrays, f"{prefix}.pop{i}.{k}", v)
        if p.bias is not None:
            d["bias"] = _put(arrays, f"{prefix}.pop{i}.bias", p.bias)
        pops.append(d)
    projs = []
    for i, q in enumerate(net.projections):
        d = {"name": q.name, "kind": q.kind, "src": q.src, "dst": q.dst, "delay_steps": q.delay_steps,
             "mode": q.mode, "bias_terms": [[int(s), _put(arrays, f"{prefix}.proj{i}.bt{j}", v)]
                                            for j, (s, v) in enumerate(q.bias_terms)]}
        key = f"{prefix}.proj{i}"
        if isinstance(q, ConvProjection):
            g = q.geom
            d["geom"] = {"in_channels": g.in_channels, "out_channels": g.out_channels, "in_hw": list(g.in_hw),
                         "kernel": list(g.kernel), "stride": list(g.stride), "padding": list(g.padding),
                         "dilation": list(g.dilation), "groups": g.groups}
            d["weight"] = _put(arrays, key + ".weight", q.weight)
        elif isinstance(q, DenseProjection):
            d["weight"] = _put(arrays, key + ".weight", q.weight)
            if q.pre_map is not None:
                pm = q.pre_map.tocsr()
                d["pre_map"] = {"shape": list(pm.shape), **{f: _put(arrays, f"{key}.pm.{f}", getattr(pm, f))
                                                          for f in ("data", "indices", "indptr")}}
        else:
            m = q.csr.tocsr()
            d["csr"] = {"shape": list(m.shape), **{f: _put(arrays, f"{key}.csr.{f}", getattr(m, f))
                                                 for f in ("data", "indices", "indptr")}}
        projs.append(d)
    meta = {k: v for k, v in net.metadata.items() if isinstance(v, (str, int, float, bool, list, dict))}
    return ({"populations": pops, "projections": projs, "output": net.output, "dt": net.dt,
             "input_spiking": net.input_spiking, "quantized": bool(getattr(net, "quantized", False)),
             "metadata": meta}, arrays)


def net_from_dict(d: dict, arrays, where: str = "net") -> Net:
    try:
        pops = []
        for p in d["populations"]:
            params = {k: _get(arrays, ref, f"{where}: population '{p['name']}'") for k, ref in p["params"].items()}
            bias = _get(arrays, p["bias"], where) if "bias" in p else None
            pops.append(Population(p["name"], p["model"], tuple(p["shape"]), params, bias))
        projs = []
        for q in d["projections"]:
            w = f"{where}: projection '{q['name']}'"
            kw = dict(delay_steps=int(q["delay_steps"]), mode=q["mode"])
            if q["kind"] == "conv":
                g = q["geom"]
                geom = ConvGeometry(g["in_channels"], g["out_channels"], tuple(g["in_hw"]), tuple(g["kernel"]),
                                    tuple(g["stride"]), tuple(g["padding"]), tuple(g["dilation"]), g["groups"])
                proj = ConvProjection(q["name"], q["src"], q["dst"], _get(arrays, q["weight"], w), geom, **kw)
            elif q["kind"] == "dense":
                pm = None
                if "pre_map" in q:
                    r = q["pre_map"]
                    pm = sp.csr_matrix(tuple(_get(arrays, r[f], w) for f in ("data", "indices", "indptr")),
                                       shape=tuple(r["shape"]))
                proj = DenseProjection(q["name"], q["src"], q["dst"], _get(arrays, q["weight"], w), pm, **kw)
            elif q["kind"] == "sparse":
                r = q["csr"]
                m = sp.csr_matrix(tuple(_get(arrays, r[f], w) for f in ("data", "indices", "indptr")),
                                  shape=tuple(r["shape"]))
                proj = SparseProjection(q["name"], q["src"], q["dst"], m, **kw)
                proj.csr = m  # keep the stored dtype exactly
            else:
                raise NetFormatError(f"{w}: unknown projection kind {q['kind']!r}")
            proj.bias_terms = [(int(s), _get(arrays, ref, w)) for s, ref in q.get("bias_terms", [])]
            projs.append(proj)
        net = Net(pops, projs, d["output"], dt=float(d["dt"]), input_spiking=bool(d["input_spiking"]),
                  metadata=dict(d.get("metadata", {})))
        net.quantized = bool(d.get("quantized", False))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise NetFormatError(f"{where}: malformed net description ({type(err).__name__}: {err})") from None
    names = {p.name for p in net.populations}
    for q in net.projections:
        for end in (q.src, q.dst):
            if end not in names:
                raise NetFormatError(f"{where}: projection '{q.name}' refers to missing population '{end}'")
        if q.n_pre != net.pop[q.src].size or q.n_post != net.pop[q.dst].size:
            raise NetFormatError(f"{where}: projection '{q.name}' is {q.shape}, populations are "
                                 f"{net.pop[q.src].size} x {net.pop[q.dst].size}")
    return net
