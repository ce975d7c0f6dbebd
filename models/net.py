"""Populations and projections: the lowered network that the mapper consumes.

A :class:`Net` is a list of neuron :class:`Population` objects and the
:class:`Projection` objects between them. Every projection answers the same
questions whatever its storage:

* ``shape`` = (n_pre, n_post), ``apply(x)`` = x @ W for a batch ``x`` (B, n_pre),
* ``fan_in()`` / ``fan_out()`` (nonzero weights per post / pre neuron), ``nnz``,
* ``weights_for_posts(idx)`` = the (n_pre, len(idx)) CSR block of those columns,
* ``to_csr()`` = the whole pre x post matrix, refused above ``max_nnz`` entries.

Storage kinds:

* :class:`ConvProjection` -- a shared kernel plus :class:`~models.ops.ConvGeometry`
  (pooling composed in); never expanded unless asked, so ImageNet convolutions
  stay a few MB.
* :class:`DenseProjection` -- ``W_eff = pre_map.T @ W.T`` written as a dense
  (n_post, K) matrix ``W`` after an optional sparse (K, n_pre) ``pre_map`` (a
  pooling or flatten in front of a fully connected layer keeps W unexpanded).
* :class:`SparseProjection` -- an explicit scipy CSR (pre x post).

A projection with ``delay_steps = d`` delivers the source's output of step t - d
(zero before). Biases folded into a projection that arrive at step 0 are the
target population's constant input ``Population.bias``; a bias behind a delay is
a ``(start_step, vector)`` entry of ``Projection.bias_terms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .errors import ShapeError, SnnchipError
from .neurons import SPIKING
from .ops import ConvGeometry, conv2d, conv_fan_in_max, conv_synapses

#: to_csr() refuses to build larger matrices (an ImageNet conv would need billions).
DEFAULT_MAX_NNZ = 50_000_000


@dataclass(eq=False)
class Population:
    """A group of neurons of one model.

    ``model`` is ``input`` (the graph input, no dynamics) or a model of the table
    :mod:`models.neurons`: ``IF``, ``LIF``, ``LI``, ``I``, ``CubaLIF``, ``CubaLI``,
    ``Threshold`` or ``Identity`` (a linear readout: output = input current). ``params`` holds flat float64 arrays of length
    ``size`` (``r``, ``v_threshold``, ``v_reset``, ``tau``, ``v_leak``,
    ``tau_syn``, ``tau_mem``, ``w_in``, ``threshold`` as the model needs).
    ``bias`` is a constant input current added at every step.
    """

    name: str
    model: str
    shape: tuple
    params: dict = field(default_factory=dict)
    bias: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spiking(self) -> bool:
        return self.model in SPIKING


class Projection:
    """Base class; see the module docstring for the interface."""

    kind = "abstract"

    def __init__(self, name: str, src: str, dst: str, n_pre: int, n_post: int,
                 delay_steps: int = 0, mode: str = "AC"):
        self.name, self.src, self.dst = name, src, dst
        self.n_pre, self.n_post = int(n_pre), int(n_post)
        self.delay_steps = int(delay_steps)
        #: constant inputs that start later than step 0: [(start_step, (n_post,) vector)]
        self.bias_terms: list = []
        self.mode = mode  # "AC" (spiking source) or "MAC" (real-valued source)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_pre, self.n_post)

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.n_pre:
            raise ShapeError(f"projection '{self.name}': input has shape {x.shape}, expected (B, {self.n_pre})")
        return x

    def to_csr(self, max_nnz: int = DEFAULT_MAX_NNZ) -> sp.csr_matrix:
        if self.nnz > max_nnz:
            raise SnnchipError(
                f"projection '{self.name}': {self.nnz:,} synapses exceed max_nnz={max_nnz:,}; "
                f"use weights_for_posts() on blocks instead"
            )
        return self.weights_for_posts(np.arange(self.n_post))

    def __repr__(self):
        return (f"{type(self).__name__}({self.name!r}: {self.src} -> {self.dst}, "
                f"{self.n_pre}x{self.n_post}, nnz={self.nnz:,}, delay={self.delay_steps}, {self.mode})")


class ConvProjection(Projection):
    """A convolution (pooling composed in) between two populations.

    ``weight`` has shape (C_out, C_in/groups, kh, kw); the flat indices of the
    pre and post populations are the C-order flattening of ``geom.in_shape`` and
    ``geom.out_shape``.
    """

    kind = "conv"

    def __init__(self, name, src, dst, weight: np.ndarray, geom: ConvGeometry, **kw):
        super().__init__(name, src, dst, int(np.prod(geom.in_shape)), int(np.prod(geom.out_shape)), **kw)
        self.weight = weight
        self.geom = geom

    @property
    def nnz(self) -> int:
        return conv_synapses(self.weight, self.geom)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_x(x)
        if getattr(self, "_w64", None) is None:
            self._w64 = np.ascontiguousarray(self.weight, dtype=np.float64)
        y = conv2d(x.reshape((x.shape[0],) + self.geom.in_shape), self._w64, self.geom)
        return y.reshape(x.shape[0], -1)

    def fan_in(self) -> np.ndarray:
        """Nonzero weights per post neuron, (n_post,)."""
        g = self.geom
        vh, vw = g.tap_valid(0).astype(np.int64), g.tap_valid(1).astype(np.int64)
        nz = (self.weight != 0).sum(axis=1).astype(np.int64)  # (C_out, kh, kw)
        return np.einsum("ia,oab,jb->oij", vh, nz, vw).reshape(-1)

    def fan_out(self) -> np.ndarray:
        g = self.geom
        uh, uw = g.tap_source(0).astype(np.int64), g.tap_source(1).astype(np.int64)
        cin_g, cout_g = g.in_channels // g.groups, g.out_channels // g.groups
        out = np.zeros(g.in_shape, dtype=np.int64)
        for gi in range(g.groups):
            nz = (self.weight[gi * cout_g:(gi + 1) * cout_g] != 0).sum(axis=0).astype(np.int64)
            out[gi * cin_g:(gi + 1) * cin_g] = np.einsum("ya,cab,xb->cyx", uh, nz, uw)
        return out.reshape(-1)

    def max_fan_in(self) -> int:
        return conv_fan_in_max(self.weight, self.geom)

    def weights_for_posts(self, post_idx) -> sp.csr_matrix:
        """Explicit (n_pre, len(post_idx)) CSR of the given post neurons' weights."""
        post_idx = np.asarray(post_idx, dtype=np.int64)
        g = self.geom
        oh, ow = g.out_hw
        kh, kw = g.kernel
        cin_g, cout_g = g.in_channels // g.groups, g.out_channels // g.groups
        o, rem = np.divmod(post_idx, oh * ow)
        i, j = np.divmod(rem, ow)
        c = np.arange(cin_g)
        a = np.arange(kh)
        b = np.arange(kw)
        # broadcast over (post, c, a, b)
        O, C, A, Bk = np.ix_(np.arange(post_idx.size), c, a, b)
        y = g.stride[0] * i[O] - g.padding[0] + g.dilation[0] * A
        x = g.stride[1] * j[O] - g.padding[1] + g.dilation[1] * Bk
        ch = (o[O] // cout_g) * cin_g + C
        w = self.weight[o[O], C, A, Bk]
        valid = (y >= 0) & (y < g.in_hw[0]) & (x >= 0) & (x < g.in_hw[1]) & (w != 0)
        shape = np.broadcast_shapes(y.shape, x.shape, ch.shape, w.shape)
        valid = np.broadcast_to(valid, shape)
        pre = (np.broadcast_to(ch, shape) * g.in_hw[0] + np.broadcast_to(y, shape)) * g.in_hw[1] + np.broadcast_to(x, shape)
        col = np.broadcast_to(np.arange(post_idx.size).reshape(-1, 1, 1, 1), shape)
        m = sp.csr_matrix(
            (np.broadcast_to(w, shape)[valid].astype(np.float64), (pre[valid], col[valid])),
            shape=(self.n_pre, post_idx.size),
        )
        m.sum_duplicates()
        return m


class DenseProjection(Projection):
    """``y = (x @ pre_map.T) @ W.T``: a dense (n_post, K) W behind an optional sparse (K, n_pre) map."""

    kind = "dense"

    def __init__(self, name, src, dst, weight: np.ndarray, pre_map: sp.csr_matrix | None = None, **kw):
        n_pre = weight.shape[1] if pre_map is None else pre_map.shape[1]
        super().__init__(name, src, dst, n_pre, weight.shape[0], **kw)
        if pre_map is not None and pre_map.shape[0] != weight.shape[1]:
            raise ShapeError(f"projection '{name}': pre_map {pre_map.shape} does not match weight {weight.shape}")
        self.weight = weight
        self.pre_map = None if pre_map is None else sp.csr_matrix(pre_map)

    def _nz_pattern(self) -> sp.csr_matrix:
        """Boolean (n_post, n_pre) sparsity pattern, computed in row blocks."""
        wnz = sp.csr_matrix(self.weight != 0, dtype=np.int64)
        if self.pre_map is None:
            return wnz
        return (wnz @ sp.csr_matrix(self.pre_map != 0, dtype=np.int64)).astype(bool).tocsr()

    @property
    def nnz(self) -> int:
        if self.pre_map is None:
            return int(np.count_nonzero(self.weight))
        return int(self.fan_in().sum())

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_x(x)
        if getattr(self, "_wt64", None) is None:
            self._wt64 = np.ascontiguousarray(self.weight.T, dtype=np.float64)
        if self.pre_map is not None:
            x = np.asarray((self.pre_map @ x.T).T)
        return x @ self._wt64

    def fan_in(self) -> np.ndarray:
        if self.pre_map is None:
            return np.count_nonzero(self.weight, axis=1).astype(np.int64)
        return np.asarray(self._nz_pattern().sum(axis=1)).ravel().astype(np.int64)

    def fan_out(self) -> np.ndarray:
        if self.pre_map is None:
            return np.count_nonzero(self.weight, axis=0).astype(np.int64)
        return np.asarray(self._nz_pattern().sum(axis=0)).ravel().astype(np.int64)

    def max_fan_in(self) -> int:
        return int(self.fan_in().max(initial=0))

    def weights_for_posts(self, post_idx) -> sp.csr_matrix:
        w = self.weight[np.asarray(post_idx, dtype=np.int64)].astype(np.float64)  # (n, K)
        if self.pre_map is None:
            return sp.csr_matrix(w.T)
        m = sp.csr_matrix(self.pre_map.T @ w.T)  # (n_pre, n)
        m.eliminate_zeros()
        return m


class SparseProjection(Projection):
    """An explicit scipy CSR matrix, rows = pre neurons, columns = post neurons."""

    kind = "sparse"

    def __init__(self, name, src, dst, csr: sp.csr_matrix, **kw):
        csr = sp.csr_matrix(csr, dtype=np.float64)
        csr.eliminate_zeros()
        super().__init__(name, src, dst, csr.shape[0], csr.shape[1], **kw)
        self.csr = csr
        self._csc = None

    @property
    def nnz(self) -> int:
        return int(self.csr.nnz)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self._check_x(x)
        return np.asarray((self.csr.T @ x.T).T)

    def fan_in(self) -> np.ndarray:
        return np.diff(self.csr.tocsc().indptr).astype(np.int64)

    def fan_out(self) -> np.ndarray:
        return np.diff(self.csr.indptr).astype(np.int64)

    def max_fan_in(self) -> int:
        return int(self.fan_in().max(initial=0))

    def weights_for_posts(self, post_idx) -> sp.csr_matrix:
        if self._csc is None:
            self._csc = self.csr.tocsc()
        return sp.csr_matrix(self._csc[:, np.asarray(post_idx, dtype=np.int64)])


@dataclass(eq=False)
class Net:
    """The lowered network.

    ``populations`` are in evaluation order (the graph's topological order with
    recurrent edges removed); ``populations[0]`` is the input. A projection with
    ``delay_steps == 0`` reads its source's output of the same step (the source
    precedes the target in the order); ``delay_steps >= 1`` reads step t - d.
    ``output`` names the population whose output is the network output.
    """

    populations: list
    projections: list
    output: str
    dt: float = 1.0
    input_spiking: bool = True
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.pop = {p.name: p for p in self.populations}
        self.index = {p.name: i for i, p in enumerate(self.populations)}

    @property
    def input(self) -> Population:
        return self.populations[0]

    def is_mac(self, q) -> bool:
        """Projection ``q`` runs MACs: its source sends values, not spikes -- the real-valued
        graph input (``input_spiking`` False) or a non-spiking population (an ANN unit of a
        hybrid network, an LI / I / Identity readout). Lowering records this as ``q.mode``;
        a hand-built projection's default mode is "AC", so the source decides as well."""
        if q.src == self.input.name:
            return q.mode == "MAC" or not self.input_spiking
        return q.mode == "MAC" or not self.pop[q.src].spiking

    def incoming(self, name: str) -> list:
        return [p for p in self.projections if p.dst == name]

    def outgoing(self, name: str) -> list:
        return [p for p in self.projections if p.src == name]

    def summary(self) -> str:
        lines = [f"{'population':<14}{'model':<10}{'shape':<14}{'neurons':>10}"]
        for p in self.populations:
            lines.append(f"{p.name:<14}{p.model:<10}{'x'.join(map(str, p.shape)):<14}{p.size:>10,}")
        lines.append("")
        lines.append(f"{'projection':<22}{'kind':<8}{'src -> dst':<22}{'synapses':>14}{'max fan-in':>11}{'delay':>6}{'mode':>5}")
        for q in self.projections:
            lines.append(f"{q.name:<22}{q.kind:<8}{(q.src + ' -> ' + q.dst):<22}{q.nnz:>14,}{q.max_fan_in():>11,}{q.delay_steps:>6}{q.mode:>5}")
        return "\n".join(lines)
