r"""TrueNorth's axon types: every input gets one of ``k`` types, every neuron one weight per type.

This module owns the step ``Net -> Net`` that a chip with ``core.axon_types = k > 0``
needs before quantisation: on such a chip the crossbar is binary and the weight of
synapse (input ``a``, neuron ``n``) is ``c[a, n] * s[n, t(a)]`` with a connection bit
``c[a, n]``, the input's type ``t(a)`` in ``0..k-1`` and the neuron's signed weight
``s[n, t]`` per type (Merolla et al., Science 2014). A trained weight matrix ``W`` has
no such structure, so the mapper approximates it.

Algorithm (per projection; rows ``a`` = its inputs, columns ``n`` = its neurons)
------------------------------------------------------------------------------
Minimise the squared error over the synapses of ``W``::

    E = sum_{a, n : W[a, n] != 0} (W[a, n] - c[a, n] s[n, t(a)])^2

by alternating three exact steps (Lloyd's k-means with a connection bit), each of
which never increases ``E``:

1. **weights**: ``s[n, t]`` = mean of ``W[a, n]`` over the connected synapses of type
   ``t`` into ``n`` (least squares; 0 when there are none);
2. **connections**: ``c[a, n] = 1`` iff ``(W - s[n, t(a)])^2 < W^2`` (connecting a
   synapse only when it lowers its error; a zero weight stays unconnected);
3. **types**: each input takes the type with the smallest
   ``sum_n min(W[a, n]^2, (W[a, n] - s[n, t])^2)``.

Start: inputs ranked by the mean of their nonzero weights and cut into ``k`` equal
groups (strongly negative ... strongly positive inputs); at most ``iters`` rounds, stop
when no type changes. The result is deterministic.

**Input copies** (``copies = k``, the default of ``map_model``; Eedn-style): every input
is wired to ``k`` axons of one core, one of each type, so synapse (a, n) may use any of
neuron ``n``'s ``k`` weights: per column a 1-D k-means of the nonzero weights
(:func:`fit_levels`), each synapse on its nearest level or unconnected when 0 is nearer.
An input then takes ``k`` crossbar rows (``floor(core.axons / k)`` inputs per crossbar).
One spike reaching ``k`` axons of a core is our assumption: on TrueNorth a neuron targets
one axon, and the copies would be made by splitter neurons (not modelled; the timing
counts one row event per input spike). With one axon per input (``copies = 1``) a trained
matrix is poorly represented (MNIST MLP: relative rms 0.67 of the weights' rms, 12 %
accuracy; with copies 95 %).

The error reported per projection is relative to ``max |W|``, as the quantiser's
(``rms`` and ``max`` over the nonzero weights of ``W``), plus the fraction of synapses
left unconnected. Integer rounding afterwards keeps the structure: ``mapper.quantize``
scales a column by one factor, so equal floats round to equal integers.

Storage: a dense projection without ``pre_map`` stays dense and a dense projection
behind a pooling/flatten ``pre_map`` keeps it (all inputs that share a column of ``W``
share a type); anything else (convolutions: their kernel is shared across positions,
the types are not) becomes an explicit CSR :class:`~models.net.SparseProjection`.
The types are recorded in ``net.metadata['axon_types']`` (per projection: ``k``,
``copies``, ``rows`` (``"W"`` = the inputs of W after its pre_map, ``"pre"`` = the
pre-neurons) and ``types`` (empty with copies)), which
:func:`mapper.validate.rule_axon_types` checks and the tiler reads (``copies`` rows per input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.errors import SnnchipError
from models.net import DenseProjection, Net, SparseProjection


class AxonTypeError(SnnchipError):
    """An axon-type request the chip cannot take (names the value)."""


@dataclass
class AxonTypeReport:
    """Per projection: types used, relative rms / max error and unconnected fraction."""

    rows: list

    def table(self) -> str:
        copies = {r.get("copies", 1) for r in self.rows}
        how = ("each input on k axons, one per type" if copies != {1} else "each input one axon of one type")
        lines = [f"axon types (TrueNorth): {how}, each neuron one weight per type",
                 f"{'projection':<22}{'inputs':>8}{'types':>6}{'rms err':>9}{'max err':>9}{'unconn':>8}{'iters':>6}"]
        for r in self.rows:
            lines.append(f"{r['projection'][:21]:<22}{r['inputs']:>8,}{r['types_used']:>6}{r['rms_error']:>9.3f}"
                         f"{r['max_error']:>9.3f}{100 * r['unconnected']:>7.1f}%{r['iters']:>6}")
        lines.append("errors relative to max|w| of the projection, over its nonzero weights")
        return "\n".join(lines)


def fit_types(W: sp.csr_matrix, k: int, iters: int = 30):
    """Types ``t`` (n_rows,), per-column weights ``s`` (n_cols, k) and the approximation
    (CSR, same pattern or fewer entries) of the rows x columns matrix ``W`` (module
    docstring), and the number of rounds run."""
    W = sp.csr_matrix(W, dtype=np.float64)
    W.eliminate_zeros()
    n_rows, n_cols = W.shape
    row = np.repeat(np.arange(n_rows), np.diff(W.indptr))
    col, w = W.indices, W.data
    cnt = np.bincount(row, minlength=n_rows)
    mean = np.bincount(row, weights=w, minlength=n_rows) / np.maximum(cnt, 1)
    t = np.zeros(n_rows, dtype=np.int64)
    t[np.argsort(mean, kind="stable")] = (np.arange(n_rows) * k) // max(n_rows, 1)
    conn = np.ones(w.size, dtype=bool)
    s = np.zeros((n_cols, k))
    rounds = 0
    for rounds in range(1, iters + 1):
        s = _weights(col, t[row], w, conn, n_cols, k)
        err0 = w * w
        cost = np.empty((n_rows, k))
        for ty in range(k):
            e = np.minimum(err0, (w - s[col, ty]) ** 2)
            cost[:, ty] = np.bincount(row, weights=e, minlength=n_rows)
        new = np.argmin(cost, axis=1)
        new[cnt == 0] = t[cnt == 0]
        sv = s[col, t[row]]
        conn = (w - sv) ** 2 < err0
        if np.array_equal(new, t):
            break
        t = new
        sv = s[col, t[row]]
        conn = (w - sv) ** 2 < err0
    s = _weights(col, t[row], w, conn, n_cols, k)
    sv = s[col, t[row]]
    conn = (w - sv) ** 2 < w * w
    approx = sp.csr_matrix((np.where(conn, sv, 0.0), W.indices.copy(), W.indptr.copy()), shape=W.shape)
    approx.eliminate_zeros()
    return t, s, approx, rounds


def _weights(col, ty, w, conn, n_cols, k):
    key = col * k + ty
    num = np.bincount(key[conn], weights=w[conn], minlength=n_cols * k)
    den = np.bincount(key[conn], minlength=n_cols * k)
    return (num / np.maximum(den, 1)).reshape(n_cols, k)


def fit_levels(W: sp.csr_matrix, k: int, iters: int = 30):
    """Copies mode: every input on ``k`` axons, one per type, so each synapse picks the
    nearest of its neuron's ``k`` weights or stays unconnected. Per column a 1-D k-means
    (Lloyd) of the nonzero weights, started at their ``(t + 1/2) / k`` quantiles; a
    synapse connects iff its nearest level is closer to ``W`` than 0 is.
    Returns ``(levels (n_cols, k), approx CSR, rounds)``."""
    W = sp.csr_matrix(W, dtype=np.float64)
    W.eliminate_zeros()
    C = W.tocsc()
    n_cols = W.shape[1]
    col = np.repeat(np.arange(n_cols), np.diff(C.indptr))
    w = C.data
    order = np.lexsort((w, col))
    w_s, col_s = w[order], col[order]
    start = C.indptr[:-1]
    cnt = np.diff(C.indptr)
    L = np.zeros((n_cols, k))
    for t in range(k):
        pos = start + np.minimum(((t + 0.5) / k * cnt).astype(np.int64), np.maximum(cnt - 1, 0))
        L[:, t] = np.where(cnt > 0, w_s[np.minimum(pos, max(w.size - 1, 0))] if w.size else 0.0, 0.0)
    rounds = 0
    lab = np.zeros(w.size, dtype=np.int64)
    for rounds in range(1, iters + 1):
        new = np.argmin(np.abs(w[:, None] - L[col]), axis=1) if w.size else lab
        key = col * k + new
        num = np.bincount(key, weights=w, minlength=n_cols * k)
        den = np.bincount(key, minlength=n_cols * k)
        L = np.where(den > 0, num / np.maximum(den, 1), L.ravel()).reshape(n_cols, k)
        if rounds > 1 and np.array_equal(new, lab):
            break
        lab = new
    val = L[col, lab] if w.size else w
    conn = (w - val) ** 2 < w * w
    approx = sp.csc_matrix((np.where(conn, val, 0.0), C.indices.copy(), C.indptr.copy()), shape=W.shape).tocsr()
    approx.eliminate_zeros()
    return L, approx, rounds


def assign_axon_types(net: Net, k: int, *, copies: int = 1, iters: int = 30):
    """``(net', report)``: ``net`` with every projection's weights restricted to ``k`` axon
    types (module docstring). ``net`` is the float net; it is not modified.

    ``copies = 1``: each input one axon of one type (:func:`fit_types`). ``copies = k``:
    each input copied onto ``k`` axons, one per type (Eedn-style), so each synapse takes
    the nearest of its neuron's ``k`` weights (:func:`fit_levels`); a crossbar then holds
    ``floor(core.axons / k)`` inputs (the tiler reads ``copies`` from the metadata).
    """
    if copies not in (1, k):
        raise AxonTypeError(f"axon copies must be 1 or core.axon_types={k}, got {copies}")
    projs, rows, meta = [], [], {}
    for q in net.projections:
        if isinstance(q, DenseProjection):
            Wm = sp.csr_matrix(np.asarray(q.weight, dtype=np.float64).T)  # (K, n_post)
            kind = "W"
        else:
            Wm = q.to_csr()  # (n_pre, n_post)
            kind = "pre"
        if copies == 1:
            t, _s, approx, rounds = fit_types(Wm, k, iters)
        else:
            _L, approx, rounds = fit_levels(Wm, k, iters)
            t = np.arange(Wm.shape[0]) % k  # every type is on every input; stored for the record only
        ref = sp.csr_matrix(Wm, dtype=np.float64)
        diff = (approx - ref).tocsr()
        nz = ref.nnz
        d = np.asarray(diff[ref.nonzero()]).ravel() if nz else np.zeros(0)
        scale = float(np.abs(ref.data).max(initial=0.0)) or 1.0
        kw = dict(delay_steps=q.delay_steps, mode=q.mode)
        if kind == "W":
            nq = DenseProjection(q.name, q.src, q.dst, approx.T.toarray().astype(np.float64), q.pre_map, **kw)
        else:
            nq = SparseProjection(q.name, q.src, q.dst, approx, **kw)
        nq.bias_terms = list(q.bias_terms)
        projs.append(nq)
        meta[q.name] = {"k": int(k), "rows": kind, "copies": int(copies),
                        "types": t.tolist() if copies == 1 else []}
        rows.append({"projection": q.name, "inputs": int(Wm.shape[0]), "copies": int(copies),
                     "types_used": int(np.unique(t).size),
                     "rms_error": float(np.sqrt(np.mean(d ** 2)) / scale) if d.size else 0.0,
                     "max_error": float(np.abs(d).max(initial=0.0) / scale),
                     "unconnected": float(1 - approx.nnz / nz) if nz else 0.0, "iters": int(rounds)})
    md = dict(net.metadata)
    md["axon_types"] = meta
    out = Net(list(net.populations), projs, net.output, dt=net.dt, input_spiking=net.input_spiking, metadata=md)
    return out, AxonTypeReport(rows)


def type_violations(net: Net) -> list:
    """``(projection, text)`` for every projection of a quantised ``net`` whose weights break
    its recorded axon types: a column with two different nonzero weights on one type."""
    info = net.metadata.get("axon_types") or {}
    out = []
    for q in net.projections:
        rec = info.get(q.name)
        if rec is None:
            out.append((q.name, "no axon types assigned (core.axon_types > 0 needs mapper.axon_types)"))
            continue
        if rec["rows"] == "W":
            M = sp.csr_matrix(np.asarray(q.weight).T)
        else:
            M = sp.csr_matrix(q.csr if isinstance(q, SparseProjection) else q.to_csr())
        if rec.get("copies", 1) > 1:  # each synapse may use any of its neuron's k weights
            M.eliminate_zeros()
            C = M.tocsc()
            if C.nnz:
                colv = np.repeat(np.arange(C.shape[1]), np.diff(C.indptr))
                pairs = np.unique(np.stack([colv.astype(np.float64), C.data.astype(np.float64)]), axis=1)
                distinct = np.bincount(pairs[0].astype(np.int64), minlength=C.shape[1])
                if distinct.max() > rec["k"]:
                    n = int(np.argmax(distinct))
                    out.append((q.name, f"neuron {n} has {int(distinct[n])} different weights, "
                                        f"{rec['k']} axon types"))
            continue
        t = np.asarray(rec["types"], dtype=np.int64)
        if t.size != M.shape[0] or (t.size and (t.min() < 0 or t.max() >= rec["k"])):
            out.append((q.name, f"types recorded for {t.size} inputs, the weights have {M.shape[0]}"))
            continue
        M.eliminate_zeros()
        row = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        key = M.indices.astype(np.int64) * rec["k"] + t[row]
        order = np.argsort(key, kind="stable")
        ks, vs = key[order], M.data[order]
        same = ks[1:] == ks[:-1]
        bad = same & (vs[1:] != vs[:-1])
        if bad.any():
            n = int(ks[1:][bad][0] // rec["k"])
            out.append((q.name, f"neuron {n} has {int(bad.sum()) + 1}+ different weights on one axon type"))
    return out
