"""Folding and packing: how many tiles one crossbar time-multiplexes, and which crossbars share a core.

Folding (Tianjic's semi-folded mapping)
---------------------------------------
Tiles of one conv population with the same channel block and chunk have identical weight
matrices up to edge clipping (an edge patch's matrix is the interior one with the padding
rows and missing columns removed, so the interior matrix serves it): they share a
``weight_group``. A crossbar with fold ``f`` holds one weight group and runs up to ``f``
of its tiles (consecutive patches in raster order) one after another within a step: it
stores the weights once and the state of up to ``f * neurons`` neurons, and needs about
``f`` times the cycles. Chunks that contain rows of a non-conv projection and dense
populations are never folded (``f = 1``).

For a cap ``F`` each conv population with ``P`` patches gets the balanced fold
``f = ceil(P / ceil(P / min(F, limit)))`` (the same number of crossbars as ``min(F,
limit)``, with equal loads), where ``limit = min(core.max_fold, P, f_mem)`` and ``f_mem``
is the largest ``f`` with ``axons*neurons*weight_bits/8 + f*neurons*membrane_bits/8 <=
memory_bytes``. Without arguments ``F`` is the smallest in ``1..core.max_fold`` for which
the net fits ``mesh.width * mesh.height * mesh.max_chips`` cores, found by bisection (the
core count does not grow with ``F``), or ``core.max_fold`` if none does (``Tiling.fits``
is then False). ``max_fold=F`` forces the cap; ``fold={pop: f}``
(or one int for every conv population) forces exact values.

**Packing into cores.** Crossbars are taken in order (populations in net order; within a
conv population patch-group major: for each group of patches, each channel block, each
chunk, so a soma and its partial-sum tiles, and blocks that read the same inputs, are
neighbours) and a core takes up to ``core.crossbars_per_core`` crossbars of distinct
weight groups while their weight bytes (``axons*neurons*weight_bits/8`` each; with sparse
synapse memory, nonzero synapses x (weight_bits + synapse_index_bits) / 8) + sum(n_neurons)
* membrane_bits/8 <= memory_bytes`` (the rule of ``mapper.validate``). Two crossbars of one
weight group never share a core: tiles of one group on one core ARE folding, which the
fold decides (so a single-group layer at fold 1 gains nothing from crossbars_per_core > 1).
"""

from __future__ import annotations

from .limits import ChipLimits, TilingError, ceil_div


def pack_cores(crossbars: list, tiles: list, hw: ChipLimits) -> list:
    """Greedy in-order packing of crossbars into cores (module docstring)."""
    if hw.crossbars_per_core == 1:  # one crossbar per core; its fold was checked against memory
        return [list(xb) for xb in crossbars]
    cores: list = []
    cur: list = []
    groups: set = set()
    state = weights = 0
    for xb in crossbars:
        g = tiles[xb[0]].weight_group
        s = sum(tiles[t].n_neurons for t in xb) * hw.membrane_bits
        w = hw.weight_bits_of(max(tiles[t].used_cells for t in xb))
        need_bits = weights + w + state + s
        if cur and (len(groups) >= hw.crossbars_per_core or g in groups or need_bits > 8 * hw.memory_bytes):
            cores.append(cur)
            cur, groups, state, weights = [], set(), 0, 0
        cur.extend(xb)
        groups.add(g)
        state += s
        weights += w
    if cur:
        cores.append(cur)
    return cores


def balanced_fold(P: int, f: int) -> int:
    """``ceil(P / ceil(P / f))``: as many crossbars as fold ``f`` (clipped to 1..P), with equal loads."""
    f = max(1, min(f, P))
    return ceil_div(P, ceil_div(P, f))


def fold_plan(layouts, hw: ChipLimits, cap: int, forced: dict) -> dict:
    """The fold of every population for the cap ``cap`` (dense: 1; forced folds clipped to the patches)."""
    folds = {}
    for lay in layouts:
        if lay.kind != "conv":
            folds[lay.name] = 1
        elif lay.name in forced:
            folds[lay.name] = max(1, min(forced[lay.name], lay.n_patches))
        else:
            folds[lay.name] = balanced_fold(lay.n_patches, min(cap, hw.max_fold, hw.fold_memory_limit))
    return folds


def forced_folds(layouts, fold: dict | int, hw: ChipLimits) -> dict:
    """The exact folds a user asked for (``{population: f}`` or one int for every conv population), checked."""
    by_name = {lay.name: lay for lay in layouts}
    items = ({lay.name: int(fold) for lay in layouts if lay.kind == "conv"} if not isinstance(fold, dict)
             else {k: int(v) for k, v in fold.items()})
    forced: dict = {}
    for name, f in items.items():
        if name not in by_name:
            raise TilingError(f"fold given for unknown population '{name}'")
        if by_name[name].kind != "conv" and f != 1:
            raise TilingError(f"population '{name}' is not a convolution: its fold must be 1, got {f}")
        if f < 1 or f > hw.max_fold:
            raise TilingError(f"population '{name}': fold {f} outside 1..core.max_fold={hw.max_fold}")
        if f > hw.fold_memory_limit:
            raise TilingError(
                f"population '{name}': fold {f} needs {hw.crossbar_bytes + f * hw.state_bytes(hw.neurons):,} "
                f"bytes per core, core.memory_bytes is {hw.memory_bytes:,}")
        forced[name] = f
    return forced


def plan(layouts, tiles: list, hw: ChipLimits, cap: int, forced: dict) -> tuple:
    """``(folds, crossbars, cores)`` for the fold cap ``cap``."""
    folds = fold_plan(layouts, hw, cap, forced)
    crossbars = [xb for lay in layouts for xb in lay.crossbars(folds[lay.name])]
    return folds, crossbars, pack_cores(crossbars, tiles, hw)


def fold_to_fit(layouts, tiles: list, hw: ChipLimits, forced: dict, max_fold: int | None = None) -> tuple:
    """``(folds, crossbars, cores)`` for the cap ``max_fold``, or for the smallest cap with which the
    net fits the system's cores (``core.max_fold`` when none does)."""
    if max_fold is not None:
        return plan(layouts, tiles, hw, int(max_fold), forced)
    # smallest cap that fits, by bisection (the core count does not grow with the cap)
    best = plan(layouts, tiles, hw, hw.max_fold, forced)
    if len(best[2]) <= hw.cores_available:
        lo, hi = 1, hw.max_fold  # plan(hi) fits
        while lo < hi:
            mid = (lo + hi) // 2
            trial = plan(layouts, tiles, hw, mid, forced)
            if len(trial[2]) <= hw.cores_available:
                hi, best = mid, trial
            else:
                lo = mid + 1
    return best
