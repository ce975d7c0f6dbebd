"""Chip model and presets, compiled core programs, the event-driven simulator, the NoC
model and traces. ``ChipConfig`` (``hwsim.chip``) is the only home of hardware numbers."""

from .chip import (  # noqa: F401
    ChipConfig, ChipConfigError, CoreConfig, MeshConfig, NocConfig, TimingConfig,
    list_presets, load_chip, parse_overrides,
)
from .chip_describe import describe  # noqa: F401,E402
from .noc import NocError, NocResult, Packets, simulate_noc  # noqa: F401,E402
from .noc_ref import simulate_noc_ref  # noqa: F401,E402
from .program import Program, ProgramError, compile  # noqa: F401,E402
from .engine import simulate  # noqa: F401,E402
from .result import RunResult  # noqa: F401,E402
from traces import TraceConfig  # noqa: F401,E402 - the trace options of simulate
