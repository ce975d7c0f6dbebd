"""What a simulation traces: :class:`TraceConfig` (paths ``None`` = off)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class TraceConfig:
    """What to trace. Paths are files; ``None`` = off.

    ``aer``: every sample's spikes (``aer_include_input`` adds the graph input's events).
    ``vcd``: sample ``vcd_sample``'s neurons on cores ``vcd_cores`` and ``vcd_neurons``
    (``"pop:index"`` strings or ``(pop, index)`` pairs), at most ``max_vcd_signals``.
    ``chrome``: sample ``timeline_sample``'s cycle timeline. Both need cycle timing of
    that sample. ``steps``: ``(lo, hi)``, only steps lo..hi-1 in the VCD and timeline
    (cycles still count from the first step); ``max_noc_events``: NoC packets written
    to the timeline at most (later ones are counted, not drawn), so a long run's file
    stays bounded. ``chunk_bytes``: memory for one chunk of AER recordings.
    """

    aer: str | os.PathLike | None = None
    vcd: str | os.PathLike | None = None
    chrome: str | os.PathLike | None = None
    aer_include_input: bool = False
    vcd_cores: tuple = ()
    vcd_neurons: tuple = ()
    vcd_sample: int = 0
    max_vcd_signals: int = 4096
    timeline_sample: int = 0
    steps: tuple | None = None
    max_noc_events: int = 200_000
    chunk_bytes: int = 1 << 28

    @property
    def enabled(self) -> bool:
        return any(p is not None for p in (self.aer, self.vcd, self.chrome))

    def in_window(self, t: int) -> bool:
        return self.steps is None or self.steps[0] <= t < self.steps[1]
