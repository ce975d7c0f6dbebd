"""The graph input of a chip run, validated and scanned for the kernel: one parallel pass
over the (T, B, n) frames finds NaN / infinite values, spiking inputs that are not
non-negative integers, and held frames (a real-valued frame identical to the sample's
previous one: the kernel reuses that step's events, :func:`hwsim.engine.kernel._sample`);
:func:`input_array` raises the errors ``models.intref`` raises for the same inputs."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from models.errors import SimulationError
from models.intref import quant_meta

from .threads import on_threads

__all__ = ["input_array", "scan_inputs"]


@njit(cache=True, nogil=True)
def _scan_group(g, n_groups, x, spiking, nonfinite, notcount, held):
    """:func:`scan_inputs` for samples ``g, g + n_groups, ...`` (one thread's share)."""
    T, B, n = x.shape
    for b in range(g, B, n_groups):
        for t in range(T):
            tp = t - 1 if t > 0 else 0
            bad = False
            frac = False
            diff = False
            if spiking:
                for i in range(n):  # branch-free, so it vectorises
                    f = x[t, b, i]
                    bad |= (f - f) != 0  # inf - inf and NaN - NaN are NaN
                    frac |= (f < 0) | (f != np.floor(f))
            else:
                for i in range(n):
                    f = x[t, b, i]
                    bad |= (f - f) != 0
                    diff |= f != x[tp, b, i]
            nonfinite[t, b] = bad
            notcount[t, b] = spiking and frac and not bad
            held[t, b] = t > 0 and not spiking and not diff


def scan_inputs(x: np.ndarray, spiking: bool, n_threads: int | None = None):
    """One pass over ``x`` (T, B, n), samples split over ``n_threads`` threads (default
    Numba's thread count; :func:`hwsim.engine.threads.on_threads`): per step and sample,
    does it hold a NaN / infinity, (``spiking``) a value that is not a non-negative
    integer, and (not ``spiking``) is it a held frame, identical to the sample's previous
    step (the kernel then reuses that step's events instead of reading and encoding the
    frame)? Each case tests only what it needs (real-valued frames are not tested for
    integers, spiking ones not compared with the previous frame). Returns three (T, B)
    bool arrays: nonfinite, notcount, held."""
    T, B, _ = x.shape
    nonfinite = np.zeros((T, B), np.bool_)
    notcount = np.zeros((T, B), np.bool_)
    held = np.zeros((T, B), np.bool_)
    n = numba.get_num_threads() if n_threads is None else int(n_threads)
    on_threads(_scan_group, max(1, min(n, B)), x, bool(spiking), nonfinite, notcount, held)
    return nonfinite, notcount, held


def input_array(net, x: np.ndarray, input_scale):
    """``inputs`` as (T, B, n_in) float32 / float64 for :func:`hwsim.engine.kernel._encode_step`, validated as
    ``models.intref._InputEncoder`` does (same errors); returns (x, held, scale, top),
    ``held`` (T, B): the frame repeats the sample's previous one (:func:`scan_inputs`)."""
    meta = quant_meta(net)
    shape = tuple(net.input.shape)
    if int(np.prod(x.shape[2:])) != int(np.prod(shape)):
        raise SimulationError(
            f"inputs of shape {x.shape} do not match input '{net.input.name}' of shape {shape} "
            f"(expected (T, B, {', '.join(map(str, shape))}))")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)  # exact for every value the encoder keeps exact (|x| < 2**53)
    x = np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1], -1))
    nonfinite, notcount, held = scan_inputs(x, bool(net.input_spiking))
    if nonfinite.any():
        raise SimulationError("inputs contain NaN or infinite values")
    if net.input_spiking:
        if notcount.any():
            raise SimulationError(f"spiking inputs must be non-negative integers (spikes or event counts); "
                                  f"step {int(np.flatnonzero(notcount.any(axis=1))[0])} is not")
        return x, held, 1.0, 0
    scale = float(meta["input_scale"] if input_scale is None else input_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise SimulationError(f"input_scale must be a positive number, got {input_scale!r}")
    return x, held, scale, (1 << int(meta["input_bits"])) - 1

