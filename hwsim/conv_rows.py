"""Convolutions compiled without their crossbar entries (issue 17): the compile side of
the geometric event path (``hwsim.compile(mapping, conv_path="geometric")``).

A convolution (:mod:`models.ops`)
``y[o, i, j] = sum_{c, a, b} w[o, c, a, b] * x[g(o) + c, s_h i - p_h + d_h a, s_w j - p_w + d_w b]``
mapped on tiles stores, in the row of pre ``(c, y, x)`` and the column of post ``(o, i, j)``,
the weight ``w[o, c - g(o), a, b]`` of the one tap with ``y = s_h i - p_h + d_h a`` and
``x = s_w j - p_w + d_w b`` (given ``y`` and ``i`` the tap ``a`` is unique). Every tile
of a projection adds into the same accumulator before the shift, so the sum an event
makes does not depend on the tiling: the kernel scatters ``w * x`` from the geometry
(:func:`hwsim.engine.events.conv_event`) and the program keeps, per projection, its
integer kernel once, and per tile row only its counts. For a tile whose posts are the
block ``o in [o0, o1), i in [i0, i1), j in [j0, j1)``, the row of pre ``(c, y, x)`` holds::

    n(c, y, x) = sum_{a, b} NZ[c, a, b] * VH[y, a] * VW[x, b]
    NZ[c, a, b] = #{o in [o0, o1), g(o) = g(c) : w[o, c - g(o), a, b] != 0}
    VH[y, a]    = [(y + p_h - d_h a) = s_h i for an integer i in [i0, i1)]   (VW likewise)

entries, all in distinct columns (so ``n`` is also its used columns): the counters
(events, AC / MAC = ``n``, integrate cycles ``ceil(n / pe_width) + overhead``) are
those of the explicit rows. ``NZ`` comes from a prefix sum over output channels,
O(weights) per projection; the counts cost O(rows x taps).

The explicit rows would have checked that the tiles hold every synapse once; here a
projection qualifies when it is a :class:`~models.net.ConvProjection` alone on its
(destination, source, delay) key, and every tile of its destination holds a
rectangular block of posts; compile then checks that no pre appears twice among the
rows of one soma's tiles and that the rows' counts add up to the projection's nonzero
synapses (``conv_synapses``): each count is at most the synapses of its (row, block),
so equal totals mean every synapse lies in exactly one tile.
"""

from __future__ import annotations

import numpy as np

from models.net import ConvProjection
from models.ops import ConvGeometry

CONV_PATHS = ("geometric", "rows")
GEOM_COLS = 16  # geo_geom columns: C_in, H, W, C_out, H', W', kh, kw, sh, sw, ph, pw, dh, dw, cin_g, cout_g


def post_box(post: np.ndarray, shape) -> tuple | None:
    """``(o0, o1, i0, i1, j0, j1)`` when the (distinct) post indices of a (C, H', W')
    population are exactly that block, else None."""
    if len(shape) != 3 or post.size == 0:
        return None
    _, OH, OW = (int(v) for v in shape)
    o, rem = np.divmod(post, OH * OW)
    i, j = np.divmod(rem, OW)
    box = (int(o.min()), int(o.max()) + 1, int(i.min()), int(i.max()) + 1, int(j.min()), int(j.max()) + 1)
    if (box[1] - box[0]) * (box[3] - box[2]) * (box[5] - box[4]) != post.size:
        return None  # distinct posts inside the box that do not fill it
    return box


class TileRows:
    """The rows seen so far of one projection on the geometric path, soma tile by soma
    tile, and the check that every synapse lies in exactly one tile: no pre neuron is a
    row of two tiles of one soma, and the rows' entries add up to the projection's
    nonzero synapses (``nnz``, given by the subclass)."""

    what = "projection"

    def _check_soma(self):
        if self.rows:
            r = np.concatenate(self.rows)
            if np.unique(r).size != r.size:
                raise ValueError(f"a pre neuron is a row of two tiles of soma tile {self.soma}")
        self.rows = []

    def check(self) -> None:
        """Raise ValueError unless every synapse lies in exactly one tile (module docstring)."""
        self._check_soma()
        if self.total != self.nnz:
            raise ValueError(f"its tiles' rows hold {self.total} synapses, the {self.what} has {self.nnz}")


class ConvRows(TileRows):
    """One geometric projection: its kernel's nonzero counts and the rows seen so far."""

    what = "convolution"

    @property
    def nnz(self) -> int:
        """Nonzero synapses of the convolution."""
        return self.q.nnz

    def __init__(self, j: int, q: ConvProjection):
        self.j, self.q, self.g = j, q, q.geom
        g = self.g
        self.cin_g, self.cout_g = g.in_channels // g.groups, g.out_channels // g.groups
        nz = (np.asarray(q.weight) != 0).astype(np.int32)  # (C_out, cin_g, kh, kw)
        self.S = np.zeros((nz.shape[0] + 1,) + nz.shape[1:], np.int32)
        np.cumsum(nz, axis=0, out=self.S[1:])  # S[o] = nonzeros of outputs < o
        self.total = 0
        self.soma = -1
        self.box = None
        self.rows: list = []

    def count(self, idx: np.ndarray, post: np.ndarray, soma: int) -> np.ndarray:
        """Entries (= used columns) of the rows ``idx`` (pre indices) of a tile of soma
        ``soma`` holding the posts ``post`` (a block, :func:`post_box`; module docstring);
        remembers the rows for :meth:`check`."""
        if soma != self.soma:
            self._check_soma()
            self.soma = soma
            self.box = post_box(post, self.g.out_shape)
            if self.box is None:
                raise ValueError(f"soma tile {soma} does not hold a rectangular block of posts")
        box = self.box
        self.rows.append(idx)
        g = self.g
        H, W = g.in_hw
        kh, kw = g.kernel
        o0, o1, i0, i1, j0, j1 = box
        c, rem = np.divmod(idx, H * W)
        y, x = np.divmod(rem, W)
        grp = c // self.cin_g
        lo = np.clip(o0, grp * self.cout_g, (grp + 1) * self.cout_g)
        hi = np.clip(o1, grp * self.cout_g, (grp + 1) * self.cout_g)
        cl = c - grp * self.cin_g
        nz = self.S[hi, cl].astype(np.int64) - self.S[lo, cl]  # (R, kh, kw)
        vh = _taps(y, kh, g.stride[0], g.padding[0], g.dilation[0], i0, i1)
        vw = _taps(x, kw, g.stride[1], g.padding[1], g.dilation[1], j0, j1)
        n = np.einsum("rab,ra,rb->r", nz, vh, vw)
        self.total += int(n.sum())
        return n

    def kernel(self, w_dt) -> np.ndarray:
        """The kernel as ``geo_w`` stores it: index ``((c * kh + a) * kw + pos(b)) * cout_g + o_l``
        for input channel ``c`` and output ``g(c) * cout_g + o_l`` (output channels innermost,
        so a tap's outputs are one contiguous run); ``pos`` orders a kernel row's taps by
        ``b mod s_w`` and, within a residue, by descending ``b``: the taps one input
        position reaches outputs through are then stored in the order of those outputs
        (:func:`hwsim.engine.events.conv_event`). Taps that no output uses are zero."""
        g = self.g
        kh, kw = g.kernel
        sw = g.stride[1]
        w = np.asarray(self.q.weight, np.float64).reshape(g.groups, self.cout_g, self.cin_g, kh, kw)
        used = g.tap_valid(0).any(axis=0)[:, None] & g.tap_valid(1).any(axis=0)[None, :]
        order = [b for r in range(sw) for b in range(kw - 1, -1, -1) if b % sw == r]  # position -> tap
        w = np.where(used, w, 0.0)[..., order]
        return np.ascontiguousarray(w.transpose(0, 2, 3, 4, 1)).reshape(-1).astype(w_dt)

    def kmap(self) -> np.ndarray:
        """No pre -> kernel-row map: a convolution's pre index is its (c, y, x)."""
        return np.zeros(0, np.int64)

    def geometry(self) -> list:
        g = self.g
        return [g.in_channels, *g.in_hw, g.out_channels, *g.out_hw, *g.kernel, *g.stride, *g.padding, *g.dilation,
                self.cin_g, self.cout_g]


def _taps(y: np.ndarray, k: int, s: int, p: int, d: int, i0: int, i1: int) -> np.ndarray:
    """(R, k) int64: tap ``a`` of input position ``y`` reaches an output ``i`` in ``[i0, i1)``."""
    t = y[:, None] + p - d * np.arange(k)[None, :]
    i = t // s
    return ((t >= 0) & (t % s == 0) & (i >= i0) & (i < i1)).astype(np.int64)


def weights_ok(q: ConvProjection, wmax: int) -> bool:
    """Every weight of a tap some output uses is an integer of magnitude <= ``wmax``
    (what compile checks on the explicit entries)."""
    g = q.geom
    used = g.tap_valid(0).any(axis=0)[:, None] & g.tap_valid(1).any(axis=0)[None, :]
    w = np.asarray(q.weight)[..., used]
    return not w.size or (np.abs(w).max() <= wmax and np.array_equal(w, np.round(w)))


def plan(projs, tiles, pidx: dict, shapes: list, conv_path: str) -> dict:
    """``{projection index: ConvRows}`` of the projections compiled geometrically (module
    docstring): all qualifying convolutions for ``conv_path="geometric"``, none for ``"rows"``."""
    if conv_path == "rows":
        return {}
    keys: dict = {}
    for q in projs:
        keys[(q.dst, q.src, q.delay_steps)] = keys.get((q.dst, q.src, q.delay_steps), 0) + 1
    boxed = {}
    for t in tiles:
        p = pidx.get(t.population)
        if p is not None and boxed.get(p, True):
            boxed[p] = post_box(np.asarray(t.post, np.int64).reshape(-1), shapes[p]) is not None
    out = {}
    for j, q in enumerate(projs):
        if not isinstance(q, ConvProjection) or keys[(q.dst, q.src, q.delay_steps)] != 1:
            continue
        g = q.geom
        if not isinstance(g, ConvGeometry) or min(*g.stride, *g.dilation) < 1 or not boxed.get(pidx.get(q.dst), False):
            continue
        if tuple(g.out_shape) != tuple(shapes[pidx[q.dst]]) or int(np.prod(g.in_shape)) != q.n_pre:
            continue
        out[j] = ConvRows(j, q)
    return out
