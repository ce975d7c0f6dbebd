"""Chip model and presets, compiled core programs, the event-driven simulator, the NoC
model and traces. ``ChipConfig`` (``hwsim.chip``) is the only home of hardware numbers."""

from .chip import (  # noqa: F401
    ChipConfig, ChipConfigError, CoreConfig, MeshConfig, NocConfig, TimingConfig,
    describe, list_presets, load_chip, parse_overrides,
)
