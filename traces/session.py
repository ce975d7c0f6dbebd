"""The engine's one interface to traces: :class:`TraceSession` opens, feeds and closes the writers.

The engine creates a session before it runs (which validates the selection, so a bad
request fails before any work or file), records the VCD neurons of its sample into
``vcd_slot`` / ``vcd_spikes`` / ``vcd_membrane``, hands every chunk's outputs to
:meth:`add_outputs` (AER), drives :attr:`timeline` from its step-by-step timing model
(Chrome and the VCD's cycle timebase), and calls :meth:`close` -- or :meth:`abort` on
any error, which removes every temporary file and leaves earlier files untouched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from models.errors import SimulationError

from .aer import AerWriter
from .chrome import ChromeWriter
from .config import TraceConfig
from .timeline import PhaseLog, Timeline
from .vcd import write_vcd


def vcd_selection(cfg: TraceConfig, prog) -> np.ndarray:
    """Global neuron ids of the VCD (sorted, unique); raises SimulationError on bad names."""
    names = prog.pop_names
    gids = []
    for item in cfg.vcd_neurons:
        if isinstance(item, str):
            pop, _, idx = item.rpartition(":")
        else:
            pop, idx = item
        if pop not in names[1:]:
            raise SimulationError(f"trace vcd_neurons: unknown population {pop!r}; known: {names[1:]}")
        p = names.index(pop)
        try:
            i = int(idx)
        except ValueError:
            raise SimulationError(f"trace vcd_neurons: bad neuron index {idx!r} of '{pop}'") from None
        if not 0 <= i < prog.pop_size[p]:
            raise SimulationError(f"trace vcd_neurons: '{pop}' has {int(prog.pop_size[p])} neurons, got index {i}")
        gids.append(int(prog.pop_off[p]) + i)
    g1 = int(prog.pop_off[1])
    for c in cfg.vcd_cores:
        if not 0 <= int(c) < prog.n_cores:
            raise SimulationError(f"trace vcd_cores: core {c} out of range 0..{prog.n_cores - 1}")
        gids.extend((g1 + np.flatnonzero(prog.nrn_core[g1:] == int(c))).tolist())
    sel = np.unique(np.asarray(gids, np.int64))
    if sel.size > cfg.max_vcd_signals:
        raise SimulationError(f"trace vcd: {sel.size} neurons selected, more than max_vcd_signals="
                              f"{cfg.max_vcd_signals}")
    return sel


class TraceSession:
    """The traces of one :func:`hwsim.engine.simulate` call (see the module docstring)."""

    def __init__(self, cfg: TraceConfig | dict | None, prog, *, T: int, B: int, n_timed: int, core_population):
        if isinstance(cfg, dict):
            cfg = TraceConfig(**cfg)
        if cfg is None:
            cfg = TraceConfig()
        if not isinstance(cfg, TraceConfig):
            raise SimulationError(f"trace must be a TraceConfig, a dict or None, got {type(cfg).__name__}")
        if cfg.steps is not None:
            lo, hi = (int(v) for v in cfg.steps)
            if not 0 <= lo < hi <= T:
                raise SimulationError(f"trace steps ({lo}, {hi}): need 0 <= lo < hi <= {T} steps")
            cfg = replace(cfg, steps=(lo, hi))  # the caller's config is left as it was
        self.cfg, self.prog, self.T = cfg, prog, T
        self.core_population = core_population
        if cfg.vcd is not None and cfg.chrome is not None and int(cfg.vcd_sample) != int(cfg.timeline_sample):
            raise SimulationError(f"trace: the VCD (vcd_sample {cfg.vcd_sample}) and the Chrome timeline "
                                  f"(timeline_sample {cfg.timeline_sample}) must follow the same sample")
        self.sample = int(cfg.vcd_sample if cfg.vcd is not None else cfg.timeline_sample)
        for what, path in (("chrome", cfg.chrome), ("vcd", cfg.vcd)):
            if path is not None and not 0 <= self.sample < n_timed:
                raise SimulationError(f"trace {what}: needs timing=True and its sample ({self.sample}) < "
                                      f"timing_samples ({n_timed} timed)")
        N = int(prog.pop_off[-1])
        self.vcd_gids = vcd_selection(cfg, prog) if cfg.vcd is not None else np.zeros(0, np.int64)
        self.vcd_slot = np.full(N, -1, np.int64)
        self.vcd_slot[self.vcd_gids] = np.arange(self.vcd_gids.size)
        self.vcd_spikes = np.zeros((T, max(self.vcd_gids.size, 1)), np.int64)
        self.vcd_membrane = np.zeros((T, max(self.vcd_gids.size, 1)), np.int64)
        self.vcd_b = self.sample if cfg.vcd is not None else -1
        self.writers: list = []
        self.aer = None
        self.phases = None
        self.timeline = None

    @property
    def needs_timeline(self) -> bool:
        """True when the step-by-step timing model must run (a Chrome trace or a VCD)."""
        return self.cfg.chrome is not None or self.cfg.vcd is not None

    def chunk(self, B: int, chunk_max: int) -> int:
        """Samples per kernel call: all of them, or (with AER) as many as ``chunk_bytes`` holds."""
        if self.cfg.aer is None:
            return B
        N = int(self.prog.pop_off[-1])
        return int(max(1, min(chunk_max, int(self.cfg.chunk_bytes) // max(self.T * N * 8, 1))))

    def open(self) -> None:
        cfg, prog = self.cfg, self.prog
        if cfg.aer is not None:
            self.aer = AerWriter(cfg.aer, prog.pop_names, prog.pop_off, prog.nrn_core, cfg.aer_include_input)
            self.writers.append(self.aer)
        sinks = []
        if cfg.chrome is not None:
            grid_w = int(prog.core_chip[:, 0].max(initial=0)) + 1
            cw = ChromeWriter(cfg.chrome, prog.chip.timing.clock_hz, prog.core_chip, grid_w, self.core_population,
                              prog.mode, window=cfg.steps, max_noc_events=cfg.max_noc_events)
            self.writers.append(cw)
            sinks.append(cw)
        if cfg.vcd is not None:
            self.phases = PhaseLog(np.unique(prog.nrn_core[self.vcd_gids]))
            sinks.append(self.phases)
        if sinks:
            self.timeline = Timeline(sinks, cfg.steps)

    def add_outputs(self, b0: int, out: np.ndarray) -> None:
        """Outputs (nb, T, N) of samples ``b0 ..`` (AER only)."""
        if self.aer is not None:
            self.aer.add(b0, out)

    def close(self) -> dict:
        """Write what remains; returns {kind: path} of the files written."""
        paths = {}
        if self.cfg.vcd is not None:
            K = self.vcd_gids.size
            paths["vcd"] = str(write_vcd(self.cfg.vcd, self.prog, self.vcd_gids, self.vcd_spikes[:, :K],
                                         self.vcd_membrane[:, :K], self.sample, self.phases,
                                         self.prog.chip.timing.clock_hz, self.cfg.steps))
        for w in self.writers:
            paths["aer" if isinstance(w, AerWriter) else "chrome"] = str(Path(w.close()))
        self.writers = []
        return paths

    def abort(self) -> None:
        for w in self.writers:
            w.abort()
        self.writers = []
