"""The chip numbers the tiler reads, checked once, and the error every tiling step raises.

:func:`read_chip` turns a chip config into a :class:`ChipLimits` (crossbar size, bit
widths, core memory, fold limit, cores in the system) or names the missing or bad field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import SnnchipError


class TilingError(SnnchipError):
    """The net cannot be tiled for this chip (names the population and the limit)."""



@dataclass(frozen=True)
class ChipLimits:
    """The chip fields tiling depends on (``mesh.width * mesh.height * mesh.max_chips`` as
    ``cores_available``)."""

    axons: int
    neurons: int
    crossbars_per_core: int
    weight_bits: int
    membrane_bits: int
    memory_bytes: int
    max_fold: int
    cores_available: int
    synapse_memory: str = "dense"
    synapse_index_bits: int = 0
    axon_types: int = 0
    axon_rows: int = 1  # physical crossbar rows per input (TrueNorth input copies); axons = rows // axon_rows

    @property
    def sparse(self) -> bool:
        return self.synapse_memory == "sparse"

    @property
    def synapse_bits(self) -> int:
        """Bits stored per synapse in sparse synapse memory (weight + index)."""
        return self.weight_bits + self.synapse_index_bits

    @property
    def crossbar_bytes(self) -> int:
        """Weight bytes of one crossbar: dense, every cell; sparse, 0 (counted per tile,
        :meth:`weight_bits_of`)."""
        return 0 if self.sparse else -(-self.weight_bits_of(0) // 8)

    def weight_bits_of(self, used_cells: int) -> int:
        """Stored weight bits of one weight matrix with ``used_cells`` nonzero synapses:
        dense ``axons * neurons * weight_bits``; sparse ``used_cells * (weight_bits +
        synapse_index_bits)``; with ``axon_types = k > 0`` a binary crossbar plus k
        weights per neuron, ``axons * neurons + neurons * k * weight_bits``."""
        if self.sparse:
            return int(used_cells) * self.synapse_bits
        rows = self.axons * self.axon_rows
        if self.axon_types:
            return rows * self.neurons + self.neurons * self.axon_types * self.weight_bits
        return rows * self.neurons * self.weight_bits

    def state_bytes(self, neurons: int) -> int:
        return neurons * self.membrane_bits // 8

    @property
    def fold_memory_limit(self) -> int:
        """Largest f with crossbar bytes + f * neurons * membrane_bits / 8 <= memory_bytes."""
        return (self.memory_bytes - self.crossbar_bytes) // max(self.state_bytes(self.neurons), 1)


def read_chip(chip) -> ChipLimits:
    """The :class:`ChipLimits` of ``chip``; a core that cannot hold one crossbar is an error."""
    hw = chip_limits(chip)
    if hw.fold_memory_limit < 1 and not hw.sparse:  # sparse: tiles are narrowed to fit (tiler)
        raise TilingError(
            f"core.memory_bytes={hw.memory_bytes:,} cannot hold one crossbar ({hw.crossbar_bytes:,} B of weights) "
            f"and its neurons' state ({hw.state_bytes(hw.neurons):,} B)")
    return hw


def chip_limits(chip) -> ChipLimits:
    """The :class:`ChipLimits` of ``chip`` (fields checked, memory not)."""
    vals = {}
    for sec, name in (("core", "axons"), ("core", "neurons"), ("core", "crossbars_per_core"),
                      ("core", "weight_bits"), ("core", "membrane_bits"), ("core", "memory_bytes"),
                      ("core", "max_fold"), ("mesh", "width"), ("mesh", "height"), ("mesh", "max_chips")):
        try:
            v = getattr(getattr(chip, sec), name)
        except AttributeError:
            raise TilingError(f"chip config has no {sec}.{name}") from None
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise TilingError(f"chip {sec}.{name} must be a positive integer, got {v!r}")
        vals[f"{sec}.{name}"] = int(v)
    core = chip.core
    sm = getattr(core, "synapse_memory", "dense")
    if sm not in ("dense", "sparse"):
        raise TilingError(f"chip core.synapse_memory must be 'dense' or 'sparse', got {sm!r}")
    hw = ChipLimits(vals["core.axons"], vals["core.neurons"], vals["core.crossbars_per_core"], vals["core.weight_bits"],
                    vals["core.membrane_bits"], vals["core.memory_bytes"], vals["core.max_fold"],
                    vals["mesh.width"] * vals["mesh.height"] * vals["mesh.max_chips"],
                    sm, int(getattr(core, "synapse_index_bits", 0) or 0), int(getattr(core, "axon_types", 0) or 0))
    return hw



def ceil_div(a, b):
    """``ceil(a / b)`` for integers and integer arrays."""
    return -(-a // b)
