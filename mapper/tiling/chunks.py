"""Partial-sum splitting: the rows of one block of post-neurons packed into crossbar-sized chunks.

When a block's axons do not fit one crossbar, its row items are packed **next-fit** into
an ordered list of chunks of at most ``axons`` rows; the first chunk is the soma tile, the
others are partial-sum tiles. :func:`pack_chunks` builds the chunks of one block (a conv
population's channel blocks, :mod:`mapper.tiling.conv`), :func:`nextfit_vec` counts them
for a whole grid of candidate blocks at once (the block search,
:mod:`mapper.tiling.conv_blocks`).

**Input chunks (partial sums).** The row items of a channel block, in order: for each
conv projection its channels (each of cost ``Rh * Rw`` rows, the largest rows x columns
over the patches), then the other projections' rows (cost 1 each), are packed
**next-fit** into chunks of at most ``axons`` rows: a chunk takes whole channels while
they fit, and one projection's channels may span chunks. For a single conv projection
this is ``n_chunks = ceil(C_in / floor(axons / (Rh * Rw)))``. Chunks are cut by channel
(not by row count) so that all patches of a channel block share the same chunk boundaries
and hence identical weight matrices (the folding condition).
"""

from __future__ import annotations

import numpy as np

from .limits import TilingError, ceil_div


def pack_chunks(runs, capacity: int) -> list:
    """Next-fit packing of item runs into chunks of at most ``capacity`` rows.

    ``runs`` = [(item, n_units, unit_cost)]; returns chunks as lists of
    ``(item, start, stop)`` unit ranges. Units of cost 0 ride in the current chunk.
    """
    chunks: list = [[]]
    fill = 0
    for item, n, w in runs:
        if n <= 0:
            continue
        if w <= 0:
            chunks[-1].append((item, 0, n))
            continue
        if w > capacity:
            raise TilingError(f"internal: one unit of {w} rows exceeds {capacity} axons")
        pos = 0
        while pos < n:
            room = (capacity - fill) // w
            if room == 0:
                chunks.append([])
                fill = 0
                continue
            k = min(room, n - pos)
            chunks[-1].append((item, pos, pos + k))
            pos += k
            fill += k * w
    return chunks


def nextfit_vec(bins, fill, n, w, capacity):
    """Vectorised :func:`pack_chunks` count: add a run of ``n`` units of cost ``w``."""
    n, w, bins, fill = np.broadcast_arrays(n, w, bins, fill)
    w1 = np.clip(w, 1, capacity)
    active = (n > 0) & (w > 0)
    room = (capacity - fill) // w1
    k = np.minimum(n, room)
    rest = n - k
    per = capacity // w1
    extra = ceil_div(rest, per)
    last = rest - (extra - 1) * per
    new_fill = np.where(rest > 0, last * w1, fill + k * w1)
    return np.where(active, bins + extra, bins), np.where(active, new_fill, fill)

