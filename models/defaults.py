"""The project's defaults, in one place: data splits and the shared data folder, time steps, energy
tables, quantizer options.

The CLI, the Python API, training and the reports read these names; nothing else
spells the numbers out. A default that a chip decides (bit widths, crossbar size)
lives in the chip presets instead (``hwsim/presets/*.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: MNIST test images the shipped models were trained on (MNIST's training images are
#: not available offline) and the held-out slice they are scored on.
TRAIN_SLICE = (0, 8000)
HELD_OUT_SLICE = (8000, 10000)
HELD_OUT_START = HELD_OUT_SLICE[0]
#: hyper-parameter work (``python -m models.train --dev``): train, then score, inside TRAIN_SLICE.
DEV_SLICES = ((0, 7000), (7000, 8000))

#: time steps of an MNIST run when neither the user nor the model's metadata gives them.
STEPS = 32

#: technology tables of a report (the first one draws the figures) and of single-number summaries.
ENERGY_TABLES = ("horowitz45-fp32", "horowitz45-int8", "tianjic28", "loihi")
ENERGY_TABLE = ENERGY_TABLES[0]

#: quantizer options (``mapper.quantize``) that no chip field sets.
QUANT_MAX_INPUT = 1.0      # largest real-valued input the first layer is scaled for
QUANT_HEADROOM_BITS = 2    # membrane bits kept free above the largest threshold
QUANT_MAX_ACC_SHIFT = 16   # largest per-projection accumulator right shift



def shared_data_dir() -> Path:
    """Where the shared real data lives: ``$SNNCHIP_DATA`` or ``../shared/data``.

    The default is relative to the repository root (the folder above ``models``).
    """
    env = os.environ.get("SNNCHIP_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


__all__ = ["shared_data_dir", "TRAIN_SLICE", "HELD_OUT_SLICE", "HELD_OUT_START", "DEV_SLICES", "STEPS", "ENERGY_TABLES",
           "ENERGY_TABLE", "QUANT_MAX_INPUT", "QUANT_HEADROOM_BITS", "QUANT_MAX_ACC_SHIFT"]
