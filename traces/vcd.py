"""VCD waveforms (``.vcd``, written with ``pyvcd``) of one sample, on the chip's cycle timebase.

Scopes ``chip.core<c>`` (the cores of the chosen neurons) and ``chip.core<c>.<population>``.
Signals:

* ``chip.step``: the step number (32-bit integer), changing at each step's first cycle;
* ``chip.core<c>.phase``: the core's phase, a string (``integrate``, ``psum_wait``,
  ``fire``, ``idle``), and ``phase_code`` (2 bits: 0 idle, 1 integrate, 2 psum_wait,
  3 fire) for viewers without string signals;
* per neuron ``n<index>_v``: the membrane, an ``integer`` vector of ``membrane_bits``
  (two's complement), and ``n<index>_spike``: a 1-bit ``wire``, 1 while the neuron's
  output of the step is nonzero. Both take step ``t``'s values when the core's fire
  phase of step ``t`` ends (at the step's end for a core without a fire phase).

**Time**: ``$timescale 1 ps``; a cycle ``c`` (counted from the start of step 0) is at
``round(c * 1e12 / clock_hz)`` ps, so GTKWave's axis reads in real time (the header's
``$comment`` gives the clock and the length of one cycle). A step window (``steps``)
writes only those steps; the values at its start are the state after the step before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.fileio import AtomicFile

PHASE_CODES = {"idle": 0, "integrate": 1, "psum_wait": 2, "fire": 3}


def write_vcd(path, prog, gids: np.ndarray, spikes: np.ndarray, memb: np.ndarray, sample: int, phases,
              clock_hz: float, window: tuple | None = None) -> Path:
    """Write the VCD of neurons ``gids`` from (T, K) ``spikes`` / ``memb`` and the
    :class:`traces.timeline.PhaseLog` ``phases`` of the same sample (module docstring)."""
    from vcd import VCDWriter

    T = spikes.shape[0]
    lo, hi = window if window is not None else (0, T)
    ps = 1e12 / float(clock_hz)

    def at(cycle: int) -> int:
        return int(round(cycle * ps))

    M = int(prog.membrane_bits)
    vmin, vmax = -(1 << (M - 1)), (1 << (M - 1)) - 1
    core_of = [int(prog.nrn_core[g]) for g in gids]
    cores = sorted(set(core_of))
    events = []  # (time ps, order, var key, value)
    for t in range(lo, hi):
        events.append((at(phases.step_start[t]), 0, ("step",), t))
    for c in cores:
        for (t, name, start, end) in phases.phases.get(c, ()):
            key = name.replace(" ", "_")
            events.append((at(start), 1, ("phase", c), key))
            events.append((at(end), 1, ("phase", c), "idle"))
    for k, g in enumerate(gids):
        for t in range(lo, hi):
            when = at(phases.fire_end(core_of[k], t))
            events.append((when, 2, ("v", k), int(np.clip(memb[t, k], vmin, vmax))))
            events.append((when, 2, ("s", k), int(spikes[t, k] != 0)))
    # a phase that ends where the next begins: the "idle" of the first must not win
    events.sort(key=lambda e: (e[0], e[1], e[3] != "idle" if e[1] == 1 else 0))
    comment = (f"snnchip hwsim sample {sample}; clock {clock_hz:g} Hz, one cycle = {ps:.3f} ps; "
               f"times are cycles x 1e12 / clock_hz rounded to 1 ps; steps {lo}..{hi - 1}; "
               f"membranes are signed {M}-bit integers")
    f = AtomicFile(path)
    try:
        with f.open("w") as fh, VCDWriter(fh, timescale="1 ps", date="", check_values=True, comment=comment,
                                          init_timestamp=events[0][0] if events else 0) as w:
            var = {("step",): w.register_var("chip", "step", "integer", size=32, init=lo)}
            for c in cores:
                var["phase", c] = w.register_var(f"chip.core{c}", "phase", "string", init="idle")
                var["code", c] = w.register_var(f"chip.core{c}", "phase_code", "integer", size=2, init=0)
            v0 = memb[lo - 1] if lo > 0 else np.zeros(len(gids), np.int64)
            s0 = spikes[lo - 1] if lo > 0 else np.zeros(len(gids), np.int64)
            for k, g in enumerate(gids):
                p = int(np.searchsorted(prog.pop_off, g, side="right") - 1)
                i = int(g - prog.pop_off[p])
                scope = f"chip.core{core_of[k]}.{prog.pop_names[p]}"
                var["v", k] = w.register_var(scope, f"n{i}_v", "integer", size=M,
                                             init=int(np.clip(v0[k], vmin, vmax)))
                var["s", k] = w.register_var(scope, f"n{i}_spike", "wire", size=1, init=int(s0[k] != 0))
            last = {}
            for when, _, key, value in events:
                if last.get(key) == value:
                    continue
                last[key] = value
                w.change(var[key], when, value)
                if key[0] == "phase":
                    w.change(var["code", key[1]], when, PHASE_CODES.get(value, 0))
            end = at(phases.step_start[hi - 1] + phases.step_len[hi - 1]) if hi > lo else 0
            w.flush(max(end, events[-1][0] if events else 0))
        return f.commit()
    except BaseException:
        f.abort()
        raise
