"""The tiling pass ``tile(net, chip) -> Tiling``: every population through its layout, then folds and cores.

A conv population goes through :mod:`mapper.tiling.conv` (falling back to
:mod:`mapper.tiling.dense` when its kernel does not fit a crossbar), any other through
:mod:`mapper.tiling.dense`; :mod:`mapper.tiling.folding` then picks the folds and packs
the crossbars into cores. Every population at fault is reported at once.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .conv import conv_layout
from .dense import DenseLayout
from .folding import fold_to_fit, forced_folds
from .limits import TilingError, read_chip
from .tiles import Tiling


def tile(net, chip, *, max_fold: int | None = None, fold: dict | int | None = None) -> Tiling:
    """Cut ``net`` into crossbar tiles for ``chip``, fold conv layers and pack cores.

    Parameters
    ----------
    net : models.Net
        The lowered network; every population except the input gets tiles (a population
        without incoming synapses gets soma tiles with no axons).
    chip : hwsim.ChipConfig or any object with ``core.axons``, ``core.neurons``,
        ``core.crossbars_per_core``, ``core.weight_bits``, ``core.membrane_bits``,
        ``core.memory_bytes``, ``core.max_fold``, ``mesh.width``, ``mesh.height``,
        ``mesh.max_chips``.
    max_fold : int, optional
        Force the fold cap ``F`` for every conv population (balanced fold
        ``ceil(P / ceil(P / min(F, limit)))``, :mod:`mapper.tiling.folding`). Default: the smallest
        ``F`` in ``1..core.max_fold`` with which the net fits the system's cores.
    fold : dict or int, optional
        Exact fold per conv population (``{name: f}``), or one int for all of them;
        values above the population's patch count are clipped to it.

    Returns
    -------
    Tiling
        ``tiles`` (ids in order: population, block, chunk; soma first), ``crossbars``,
        ``cores``, ``fold`` per population and ``blocks`` (the block choice per population).

    Raises
    ------
    TilingError
        A chip field is missing or invalid, a forced fold exceeds ``core.max_fold`` or the
        core memory, a fold is asked for a population that is not a convolution, or a
        population needs the exact fallback above ``DEFAULT_MAX_NNZ`` synapses.

    Examples
    --------
    >>> t = tile(models.lower(models.zoo.build("vgg16")), hwsim.preset("tianjic"))  # doctest: +SKIP
    >>> print(t.summary())  # doctest: +SKIP
    """
    hw = read_chip(chip)
    copies = input_copies(net)
    if copies > 1:  # each input takes `copies` crossbar rows (mapper.axon_types)
        hw = replace(hw, axons=hw.axons // copies, axon_rows=copies)
    if max_fold is not None:
        if int(max_fold) < 1 or int(max_fold) > hw.max_fold:
            raise TilingError(f"max_fold={max_fold} outside 1..core.max_fold={hw.max_fold}")
    incoming: dict = {}
    for q in net.projections:
        incoming.setdefault(q.dst, []).append(q)
    layouts, tiles, blocks, uniq = [], [], {}, {}
    counter = iter(range(1 << 62))

    def next_group():
        return next(counter)

    failed: list = []
    tiles_of: dict = {}  # population -> tiles, counted without building them once a layer failed
    for pop in net.populations:
        if pop.model == "input":
            continue
        projs = incoming.get(pop.name, [])
        try:
            lay = conv_layout(pop, projs, net, hw) or DenseLayout(pop, projs, hw)
            if failed:  # the tiling is lost: count the tiles for the error text, do not build them
                tiles_of[pop.name] = lay.count_tiles()
                continue
            new_tiles = lay.make_tiles(len(tiles), next_group)
            if hw.sparse:
                lay, new_tiles = _fit_sparse(pop, projs, net, hw, lay, new_tiles, len(tiles), next_group)
        except TilingError as err:  # keep going: report every layer at fault at once
            failed.append(str(err))
            continue
        tiles_of[pop.name] = len(new_tiles)
        tiles.extend(new_tiles)
        layouts.append(lay)
        blocks[pop.name] = lay.describe()
        uniq[pop.name] = sum(_unique_weights(q) for q in projs)
    if failed:
        raise TilingError(_failure_text(failed, tiles_of, hw))
    forced = forced_folds(layouts, fold, hw) if fold is not None else {}
    folds, xbs, cores = fold_to_fit(layouts, tiles, hw, forced, max_fold)
    return Tiling(tiles, cores, folds, chip, crossbars=xbs, blocks=blocks, _unique_weights=uniq)


def input_copies(net) -> int:
    """Crossbar rows each input takes: the ``copies`` of ``net.metadata['axon_types']`` (1 without)."""
    recs = (getattr(net, "metadata", None) or {}).get("axon_types") or {}
    return max((int(r.get("copies", 1)) for r in recs.values()), default=1)


def _tile_bits(t, hw) -> int:
    return hw.weight_bits_of(t.used_cells) + t.n_neurons * hw.membrane_bits


def _fit_sparse(pop, projs, net, hw, lay, new_tiles, first_id, next_group):
    """Sparse synapse memory: narrow the population's blocks until every tile's nonzero
    synapses and neuron state fit ``core.memory_bytes``.

    The columns per block are cut to ``floor(n * capacity / need)`` (``n`` = the widest
    tile's columns, ``need`` = the largest tile's bits), repeatedly, down to one column; the crossbar columns
    (``core.neurons``) then act only as the compartment limit.
    """
    cap_bits = 8 * hw.memory_bytes
    while True:
        need = max((_tile_bits(t, hw) for t in new_tiles), default=0)
        if need <= cap_bits:
            return lay, new_tiles
        n = max(t.n_neurons for t in new_tiles)
        if n <= 1:
            raise TilingError(f"population '{pop.name}': one neuron's synapses and state need {need:,} bits, "
                              f"core.memory_bytes holds {cap_bits:,} bits")
        n = max(1, min(n - 1, n * cap_bits // need))
        h = replace(hw, neurons=int(n))
        lay = conv_layout(pop, projs, net, h) or DenseLayout(pop, projs, h)
        new_tiles = lay.make_tiles(first_id, next_group)


def _failure_text(failed: list, tiles_of: dict, hw) -> str:
    """Every layer at fault, and whether the other layers would fit the system at all."""
    failed = list(failed)
    avail = hw.cores_available * hw.crossbars_per_core * hw.max_fold
    total = sum(tiles_of.values())
    if total > avail:
        worst = ", ".join(f"'{p}' {n:,}" for p, n in sorted(tiles_of.items(), key=lambda kv: -kv[1])[:12])
        failed.append(f"the other layers need {total:,} crossbar tiles, the system holds at most {avail:,} "
                      f"(cores x crossbars_per_core x max_fold); tiles by layer: {worst}")
    return f"{len(failed)} problem(s): " + "; ".join(failed)


def _unique_weights(q) -> int:
    if q.kind == "sparse":
        return int(q.nnz)
    return int(np.count_nonzero(q.weight))
