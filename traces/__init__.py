"""Trace files of a chip simulation (off by default): AER spikes, VCD waveforms, Chrome/Perfetto timelines.

One interface for the engine: :class:`TraceSession` (``session.py``) opens the
writers a :class:`TraceConfig` asks for, takes the engine's outputs and its timing
timeline, and closes (or, on any error, aborts) them all; every file is written
atomically through :class:`models.fileio.AtomicFile`. The formats:

* ``aer.py`` -- AER spike events of every sample (``.npz``),
* ``vcd.py`` -- membranes, spikes and core phases of one sample on a cycle timebase,
* ``chrome.py`` -- the cycle timeline of one sample (Trace Event Format),
* ``timeline.py`` -- the recorder the timing model drives (steps, phases, packets).

A new trace format is a writer module here plus a line in :class:`TraceSession`.
This is also where recorded stimulus/response files for RTL testbenches will go.
"""

from .aer import AerWriter
from .chrome import ChromeWriter
from .config import TraceConfig
from .session import TraceSession, vcd_selection
from .timeline import Timeline
from .vcd import write_vcd

__all__ = ["TraceConfig", "TraceSession", "AerWriter", "ChromeWriter", "Timeline", "write_vcd", "vcd_selection"]
