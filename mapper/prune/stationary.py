r"""Crossbar-aware pruning on the weight-stationary mapping, with the paper's packing.

This module owns pruning measured on the paper's denominator (Liang, Deng et al., IEEE
Access 2018): a layer is its stationary matrix (:mod:`mapper.stationary`), ``rows =
C_in k k`` (channel-major: row ``(c kh + a) kw + b``) or ``K`` features, ``columns =
C_out``; rows are cut in order into **chunks** of ``A = core.axons`` rows and columns
into **blocks** of ``N = core.neurons``.

Packing (crossbars a pruned layer needs; ``keep`` = the layer's nonzero pattern)
------------------------------------------------------------------------------
* crossbar grain: a (chunk ``j``, block ``b``) crossbar stays when any of its weights
  does: ``sum_{j, b} [keep[chunk j, block b] has a nonzero]``;
* column grain with output recombination: ``S_j`` = the columns with a nonzero weight
  in chunk ``j``; the kept columns of one chunk are packed side by side, whatever their
  blocks, so the layer needs ``sum_j ceil(|S_j| / N)`` crossbars. Each crossbar then
  sends every column's partial sum to that column's own neuron (per-column partial-sum
  destinations; the unrolled tiler's partial sums go to one soma block, which is why
  :mod:`mapper.prune.select` cannot pack like this).

Both give ``ceil(rows / A) * ceil(columns / N)`` for a dense layer: the same
denominator as :mod:`mapper.stationary`.

Selection (:func:`prune_stationary`, per layer, ``L1`` importance)
-----------------------------------------------------------------
The target ``r`` removes ``ceil(r * crossbars)`` crossbars of the whole net, spread by
:func:`allocate` (every layer the same fraction as far as whole crossbars allow; each
prunable layer keeps at least one). Crossbar grain: keep the ``k`` (chunk, block) pairs of largest ``sum |W|``.
Column grain: in each chunk sort the columns by ``sum |W|`` over the chunk's rows; the
chunk's ``m``-th crossbar holds its columns ``(m-1) N .. m N - 1`` in that order, worth
their summed importance (decreasing in ``m``); keep the ``k`` most valuable crossbars
over all chunks. Both selections are exact for their objective (the most ``L1`` weight
kept in ``k`` crossbars of that packing). The weights outside the kept crossbars are
zeroed; kernels keep their pooling factor (:func:`mapper.stationary.pool_factor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.net import ConvProjection, DenseProjection, Net

from ..stationary import layer_of, pool_factor
from .layers import PruneError

#: crossbar savings the paper reports (256 x 256 crossbars), by zoo model
PAPER_SAVINGS = {"vgg8:cifar": 0.721, "vgg16:imagenet": 0.598, "resnet18:imagenet": 0.442}


def stationary_matrix(q) -> np.ndarray | None:
    """The ``rows x columns`` stationary matrix of a conv (groups 1) or dense projection, else None."""
    if isinstance(q, ConvProjection):
        g = q.geom
        if g.groups != 1:
            return None
        ph, pw = pool_factor(q.weight, g.kernel, g.stride, g.padding)
        core = np.asarray(q.weight, dtype=np.float64)[:, :, ::ph, ::pw]
        return core.reshape(core.shape[0], -1).T
    if isinstance(q, DenseProjection):
        return np.asarray(q.weight, dtype=np.float64).T
    return None


def crossbar_grain_count(keep: np.ndarray, A: int, N: int) -> int:
    """(chunk, block) crossbars with a nonzero in ``keep`` (rows x columns)."""
    R, C = keep.shape
    nz = np.add.reduceat(np.add.reduceat(keep.astype(np.int64), np.arange(0, R, A), axis=0),
                         np.arange(0, C, N), axis=1)
    return int(np.count_nonzero(nz))


def column_grain_count(keep: np.ndarray, A: int, N: int) -> int:
    """``sum_j ceil(|S_j| / N)``: the paper's packing of every chunk's kept columns."""
    R = keep.shape[0]
    per_chunk = np.add.reduceat(keep.astype(np.int64), np.arange(0, R, A), axis=0)  # (chunks, C)
    S = np.count_nonzero(per_chunk, axis=1)
    return int(np.sum(-(-S // N)))


def _select(W: np.ndarray, A: int, N: int, k: int, grain: str) -> np.ndarray:
    """Keep mask (rows x columns) of the ``k`` most important crossbars (module docstring)."""
    R, C = W.shape
    imp = np.add.reduceat(np.abs(W), np.arange(0, R, A), axis=0)  # (chunks, C)
    keep_cc = np.zeros_like(imp, dtype=bool)  # (chunks, columns)
    if grain == "crossbar":
        J = np.add.reduceat(imp, np.arange(0, C, N), axis=1)  # (chunks, blocks)
        idx = np.argsort(-J, axis=None, kind="stable")[:k]
        kb = np.zeros(J.size, dtype=bool)
        kb[idx] = True
        kb = kb.reshape(J.shape)
        keep_cc = kb[:, np.arange(C) // N]
    elif grain == "column":
        order = np.argsort(-imp, axis=1, kind="stable")  # per chunk, columns by importance
        srt = np.take_along_axis(imp, order, axis=1)
        val = np.add.reduceat(srt, np.arange(0, C, N), axis=1)  # (chunks, groups), decreasing per chunk
        idx = np.argsort(-val, axis=None, kind="stable")[:k]
        kg = np.zeros(val.size, dtype=bool)
        kg[idx] = True
        kg = kg.reshape(val.shape)
        slot_kept = kg[:, np.arange(C) // N]  # (chunks, sorted slot)
        np.put_along_axis(keep_cc, order, slot_kept, axis=1)
    else:
        raise PruneError(f"unknown grain {grain!r}; choose crossbar or column")
    return keep_cc[np.arange(R) // A]


@dataclass
class StationaryPrune:
    """A weight-stationary pruning: the pruned float net and per-layer crossbar counts."""

    net: Net
    grain: str
    target: float
    layers: list

    @property
    def crossbars_before(self) -> int:
        return sum(r["before"] for r in self.layers)

    @property
    def crossbars_after(self) -> int:
        return sum(r["after"] for r in self.layers)

    @property
    def savings(self) -> float:
        return 1.0 - self.crossbars_after / max(1, self.crossbars_before)

    @property
    def l1_kept(self) -> float:
        """Fraction of the prunable layers' summed ``|W|`` that the kept crossbars hold."""
        return sum(r["l1_kept"] for r in self.layers) / max(sum(r["l1"] for r in self.layers), 1e-300)


def prune_stationary(net: Net, chip, *, target: float, grain: str = "column") -> StationaryPrune:
    """Prune every conv / dense layer of a float ``net`` to ``floor(target * crossbars)`` fewer
    crossbars on ``chip``'s weight-stationary mapping (module docstring); ``net`` is not changed.

    Layers without crossbars (digital pooling, skips) and grouped convolutions stay as they are
    (counted, unpruned).
    """
    if grain not in ("crossbar", "column"):
        raise PruneError(f"unknown grain {grain!r}; choose crossbar or column")
    if not 0 < float(target) < 1:
        raise PruneError(f"target must be a fraction in (0, 1) of the crossbars to remove, got {target!r}")
    A, N = int(chip.core.axons), int(chip.core.neurons)
    count = column_grain_count if grain == "column" else crossbar_grain_count
    mats, befores = {}, {}
    for q in net.projections:
        lay = layer_of(q, chip)
        W = stationary_matrix(q) if lay.kind != "digital" else None
        if W is not None:
            mats[q.name] = W
            befores[q.name] = count(W != 0, A, N)
        elif lay.crossbars:
            befores[q.name] = lay.crossbars
    removed = allocate(befores, {k: befores[k] - 1 for k in mats}, float(target))
    projs, rows = [], []
    for q in net.projections:
        if q.name not in mats:
            projs.append(q)
            if q.name in befores:
                rows.append({"projection": q.name, "before": befores[q.name], "after": befores[q.name],
                             "l1": 0.0, "l1_kept": 0.0})
            continue
        W = mats[q.name]
        keep = _select(W, A, N, befores[q.name] - removed[q.name], grain)
        projs.append(_masked(q, keep))
        rows.append({"projection": q.name, "before": befores[q.name], "after": count((W != 0) & keep, A, N),
                     "l1": float(np.abs(W).sum()), "l1_kept": float(np.abs(W[keep]).sum())})
    out = Net(list(net.populations), projs, net.output, dt=net.dt, input_spiking=net.input_spiking,
              metadata=dict(net.metadata))
    return StationaryPrune(out, grain, float(target), rows)


def allocate(before: dict, room: dict, target: float) -> dict:
    """Crossbars to remove per layer: ``ceil(target * total)`` in all, each layer giving up
    ``floor(target * before)`` first, then one at a time to the layer with the smallest
    fraction removed that still has room (``room``: removable crossbars per prunable layer).
    When the layers cannot give that many (every layer keeps one), as many as they can:
    :attr:`StationaryPrune.savings` then falls short of the target."""
    total = sum(before.values())
    need = math.ceil(target * total - 1e-9)
    rem = {k: min(room[k], math.floor(target * before[k])) for k in room}
    got = sum(rem.values())
    while got < need:
        cand = [k for k in room if rem[k] < room[k]]
        if not cand:
            break
        k = min(cand, key=lambda k: (rem[k] / before[k], -before[k], k))
        rem[k] += 1
        got += 1
    return rem


def _masked(q, keep: np.ndarray):
    """A copy of ``q`` with the weights outside ``keep`` (rows x columns of its stationary matrix) zeroed."""
    kw = dict(delay_steps=q.delay_steps, mode=q.mode)
    if isinstance(q, DenseProjection):
        nq = DenseProjection(q.name, q.src, q.dst, np.asarray(q.weight) * keep.T, q.pre_map, **kw)
    else:
        g = q.geom
        ph, pw = pool_factor(q.weight, g.kernel, g.stride, g.padding)
        O, Ci, K1, K2 = q.weight.shape
        m = keep.T.reshape(O, Ci, K1 // ph, K2 // pw)
        m = np.repeat(np.repeat(m, ph, axis=2), pw, axis=3)
        nq = ConvProjection(q.name, q.src, q.dst, np.asarray(q.weight) * m, g, **kw)
    nq.bias_terms = list(q.bias_terms)
    return nq


def paper_savings(models=None, *, grains=("crossbar", "column"), unrolled_chip=None, seed: int = 0) -> list[dict]:
    """Crossbar savings of the paper's structures at the paper's ratios, on both denominators.

    For each zoo model of :data:`PAPER_SAVINGS` (random seeded weights: savings only, no
    accuracy): prune at the paper's saving as target on the ``crossbar`` preset (256 x 256,
    weight-stationary) for each grain, and report the crossbars before and after, the saving
    on that (the paper's) denominator, and, with ``unrolled_chip`` (e.g. ``"tianjic"``), the
    same pruned weights tiled unrolled at fold 1 (slow for the ImageNet models: about 10-60 s).
    """
    from hwsim.chip import load_chip
    from models import lower
    from models.zoo.catalog import load

    from ..tiling import tile

    ws = load_chip("crossbar")
    un = load_chip(unrolled_chip) if unrolled_chip else None
    out = []
    for spec in (models or list(PAPER_SAVINGS)):
        net = lower(load(spec, seed=seed))
        base_un = tile(net, un, max_fold=1).n_crossbars if un is not None else None
        for grain in grains:
            r = prune_stationary(net, ws, target=PAPER_SAVINGS[spec], grain=grain)
            row = {"model": spec, "grain": grain, "paper_savings": PAPER_SAVINGS[spec],
                   "ws_before": r.crossbars_before, "ws_after": r.crossbars_after, "ws_savings": r.savings,
                   "l1_kept": r.l1_kept}
            if un is not None:
                after_un = tile(r.net, un, max_fold=1).n_crossbars
                row.update(unrolled_chip=un.name, unrolled_before=base_un, unrolled_after=after_un,
                           unrolled_savings=1.0 - after_un / base_un)
            out.append(row)
    return out


def savings_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`paper_savings` rows."""
    un = any("unrolled_before" in r for r in rows)
    head = "| model | grain | paper | weight-stationary crossbars | saving | L1 kept |"
    sep = "|---|---|---:|---:|---:|---:|"
    if un:
        head += " unrolled crossbars (fold 1) | saving |"
        sep += "---:|---:|"
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['model']} | {r['grain']} | {100 * r['paper_savings']:.1f} % | {r['ws_before']:,} -> "
                f"{r['ws_after']:,} | {100 * r['ws_savings']:.1f} % | {100 * r['l1_kept']:.1f} % |")
        if un:
            line += (f" {r['unrolled_before']:,} -> {r['unrolled_after']:,} | {100 * r['unrolled_savings']:.1f} % |"
                     if "unrolled_before" in r else " - | - |")
        lines.append(line)
    return "\n".join(lines)
