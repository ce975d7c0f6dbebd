"""Tiling: cut every population's incoming synapses into crossbar tiles and fold them onto cores.

This package owns the step ``Net -> Tiling`` of the flow (docs/design.md): which
post-neurons and which axons share a crossbar, which tiles send partial sums to which,
which tiles may be time-multiplexed on one crossbar (folding) and how crossbars are
packed into cores. Placement and routing consume the result.

Vocabulary
----------
A **tile** is one crossbar's worth of synapses: a set of post-neurons (columns, at most
``chip.core.neurons``) of ONE destination population and the axons (rows, at most
``chip.core.axons``) that feed them. An axon is a source neuron seen through one delay:
``(source population, delay_steps, pre index)``. A population with several incoming
projections (a ResNet block output: conv + skip) has one axon space, the union over its
projections, so rows of different sources share a crossbar.

When the axons of a block of post-neurons do not fit one crossbar the block is split
into an ordered list of **chunks** of rows; the first chunk is the **soma** tile (it holds
the neurons), the others are **partial-sum** tiles that send one multi-bit partial sum
per neuron and step to the soma tile.

Modules, one job each
---------------------
``tiler``        the pass :func:`tile`: every population through its layout, errors at once
``tiles``        the data: :class:`Tile`, :class:`Tiling` (sizes, memory, reports), :func:`tile_matrix`
``dense``        dense and sparse populations (and the exact fallback of a conv population)
``conv``         conv populations: merged convolutions, tiles, cells, weight groups
``conv_blocks``  the conv output-block search and :func:`conv_block_options`
``chunks``       partial-sum splitting: next-fit packing of a block's rows into chunks
``folding``      folds (Tianjic's semi-folded mapping) and packing crossbars into cores
``limits``       the chip fields tiling reads, checked, and :class:`TilingError`
"""

from .conv_blocks import conv_block_options
from .limits import TilingError
from .tiler import tile
from .tiles import Tile, Tiling, tile_matrix

__all__ = ["tile", "Tile", "Tiling", "TilingError", "tile_matrix", "conv_block_options"]
