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

    @property
    def crossbar_bytes(self) -> int:
        return self.axons * self.neurons * self.weight_bits // 8

    def state_bytes(self, neurons: int) -> int:
        return neurons * self.membrane_bits // 8

    @property
    def fold_memory_limit(self) -> int:
        """Largest f with crossbar bytes + f * neurons * membrane_bits / 8 <= memory_bytes."""
        return (self.memory_bytes - self.crossbar_bytes) // max(self.state_bytes(self.neurons), 1)


def read_chip(chip) -> ChipLimits:
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
    hw = ChipLimits(vals["core.axons"], vals["core.neurons"], vals["core.crossbars_per_core"], vals["core.weight_bits"],
             vals["core.membrane_bits"], vals["core.memory_bytes"], vals["core.max_fold"],
             vals["mesh.width"] * vals["mesh.height"] * vals["mesh.max_chips"])
    if hw.fold_memory_limit < 1:
        raise TilingError(
            f"core.memory_bytes={hw.memory_bytes:,} cannot hold one crossbar ({hw.crossbar_bytes:,} B of weights) "
            f"and its neurons' state ({hw.state_bytes(hw.neurons):,} B)")
    return hw



def ceil_div(a, b):
    """``ceil(a / b)`` for integers and integer arrays."""
    return -(-a // b)
