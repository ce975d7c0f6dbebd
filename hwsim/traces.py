"""Trace files of a chip simulation (off by default): AER spikes, VCD waveforms, Chrome timeline.

Enable with ``hwsim.simulate(..., trace=TraceConfig(aer=..., vcd=..., chrome=...))`` or
the shortcuts ``simulate(..., aer=path, vcd=path, chrome=path)``. Every file is written
atomically: the data goes to a hidden temporary file in the target's folder and is
moved into place with ``os.replace`` at the very end; a run that raises removes its
temporaries and leaves no partial file.

AER spike trace (``.npz``)
--------------------------
One row per nonzero output of a neuron (a spike, a multi-spike count, or the nonzero
value of a non-spiking LI / I / Identity population), ordered by (sample, step,
neuron). Arrays (int64 unless noted): ``sample``, ``step``, ``neuron`` (global id =
``pop_offset[pop] + index``), ``pop``, ``index``, ``core`` (the core of the neuron's
soma; -1 = the I/O port for graph-input events), ``payload`` (spike count or value);
plus ``pop_names`` (unicode) and ``pop_offset``. Graph-input events are included only
with ``aer_include_input=True``. Memory stays bounded: the engine runs the samples in
chunks whose full output record (steps x samples x neurons int64) fits in
``chunk_bytes``; after every chunk its events are appended, column by column, to raw
temporary files, which are finally streamed (``numpy.lib.format.write_array`` from a
memory map) into an uncompressed zip64 ``.npz``. ``numpy.load`` reads it.

VCD (``.vcd``, via ``pyvcd``)
-----------------------------
One sample (``vcd_sample``). The neurons are those listed in ``vcd_neurons``
(``(population, index)`` pairs or ``"population:index"`` strings) and every neuron
whose soma is on a core of ``vcd_cores``. Scopes ``chip.core<c>.<population>``; per
neuron ``n<index>_v``: the membrane, an ``integer`` vector of ``membrane_bits``
(two's complement), and ``n<index>_spike``: a 1-bit ``wire``, 1 at a step where the
neuron's output is nonzero. **Time unit: one simulation step** (the header says
``$timescale 1 us`` because VCD has no step unit; a ``$comment`` repeats it); the value
at time ``t`` is the state after step ``t``.

Chrome trace (``.json``, Trace Event Format; opens in Perfetto / chrome://tracing)
-------------------------------------------------------------------------------
The cycle timeline of one timed sample (``timeline_sample``; needs ``timing=True``).
``ts`` / ``dur`` are microseconds: ``cycles / clock_hz * 1e6``, with cycles counted
from the start of the sample's first step. ``pid`` = chip index (row-major over the
chip grid) + 1 for cores, ``pid 0`` = "steps & NoC"; ``tid`` = core id. Events:

* ``ph "X"``, ``cat "step"``: one per step on ``pid 0, tid 0`` (barrier included);
* ``ph "X"``, ``cat "core"``, names ``integrate`` / ``fire`` (and ``psum wait``
  between them when the soma waits for partial sums), ``args`` = step, cycles;
* ``ph "X"``, ``cat "noc"``, names ``spike`` / ``psum``: one per delivered
  destination on ``pid 0, tid = 1 + source core``, from the inject cycle to the
  delivery cycle, ``args`` = src, dst core, flits, step.

Events are written while the timing model runs (one step at a time), so the file is
never held in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import SimulationError

__all__ = ["TraceConfig", "AerWriter", "ChromeWriter", "write_vcd"]


@dataclass
class TraceConfig:
    """What to trace (see the module docstring). Paths are files; ``None`` = off."""

    aer: str | os.PathLike | None = None
    vcd: str | os.PathLike | None = None
    chrome: str | os.PathLike | None = None
    aer_include_input: bool = False
    vcd_cores: tuple = ()
    vcd_neurons: tuple = ()
    vcd_sample: int = 0
    max_vcd_signals: int = 4096
    timeline_sample: int = 0
    chunk_bytes: int = 1 << 28

    @property
    def enabled(self) -> bool:
        return any(p is not None for p in (self.aer, self.vcd, self.chrome))


def _tmp_for(path: Path, suffix: str = ".tmp") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    return Path(tmp)


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


# --------------------------------------------------------------------------- AER

class AerWriter:
    """Streams AER events to temporary raw column files; :meth:`close` assembles the ``.npz``."""

    COLS = ("sample", "step", "neuron", "pop", "index", "core", "payload")

    def __init__(self, path, pop_names, pop_off, nrn_core, include_input: bool):
        self.path = Path(path)
        self.pop_names = list(pop_names)
        self.pop_off = np.asarray(pop_off, np.int64)
        core = np.asarray(nrn_core, np.int64).copy()
        core[: self.pop_off[1]] = -1
        self.core = core
        self.g0 = 0 if include_input else int(self.pop_off[1])
        self.n = 0
        self.tmp = {c: _tmp_for(self.path, f".{c}.raw") for c in self.COLS}
        self.files = {c: open(p, "wb") for c, p in self.tmp.items()}

    def add(self, sample0: int, out: np.ndarray) -> None:
        """``out`` (nb, T, N) outputs of samples ``sample0 ..``; appends its nonzero entries."""
        sub = out[:, :, self.g0:]
        b, t, n = np.nonzero(sub)
        if not b.size:
            return
        g = n.astype(np.int64) + self.g0
        pop = np.searchsorted(self.pop_off, g, side="right") - 1
        cols = {"sample": b.astype(np.int64) + sample0, "step": t.astype(np.int64), "neuron": g, "pop": pop,
                "index": g - self.pop_off[pop], "core": self.core[g], "payload": sub[b, t, n].astype(np.int64)}
        for c in self.COLS:
            self.files[c].write(np.ascontiguousarray(cols[c], np.int64).tobytes())
        self.n += int(b.size)

    def close(self) -> Path:
        import zipfile

        for f in self.files.values():
            f.close()
        tmp = _tmp_for(self.path)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for c in self.COLS:
                    arr = (np.memmap(self.tmp[c], dtype=np.int64, mode="r", shape=(self.n,)) if self.n
                           else np.zeros(0, np.int64))
                    with zf.open(f"{c}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
                    del arr
                for name, arr in (("pop_names", np.array(self.pop_names, dtype=str)), ("pop_offset", self.pop_off)):
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
            os.replace(tmp, self.path)
        except BaseException:
            _unlink(tmp)
            raise
        finally:
            for p in self.tmp.values():
                _unlink(p)
        return self.path

    def abort(self) -> None:
        for f in self.files.values():
            f.close()
        for p in self.tmp.values():
            _unlink(p)


# --------------------------------------------------------------------------- Chrome

class ChromeWriter:
    """Streams Trace Event Format events (the timeline recorder of :mod:`hwsim.engine`'s timing)."""

    def __init__(self, path, clock_hz: float, core_chip: np.ndarray, chip_grid_w: int, core_population,
                 mode: str):
        self.path = Path(path)
        self.us = 1e6 / float(clock_hz)
        self.tmp = _tmp_for(self.path)
        self.f = open(self.tmp, "w")
        self.first = True
        cc = np.asarray(core_chip, np.int64).reshape(-1, 2)
        self.pid = 1 + cc[:, 1] * max(int(chip_grid_w), 1) + cc[:, 0]
        self.f.write('{"displayTimeUnit":"ns","otherData":{"tool":"snnchip hwsim","mode":%s,'
                     '"clock_hz":%s,"time_unit":"us"},"traceEvents":[\n' % (json.dumps(mode), json.dumps(float(clock_hz))))
        self._ev({"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "steps & NoC"}})
        self._ev({"ph": "M", "name": "thread_name", "pid": 0, "tid": 0, "args": {"name": "steps"}})
        for p in np.unique(self.pid):
            ch = cc[np.flatnonzero(self.pid == p)[0]]
            self._ev({"ph": "M", "name": "process_name", "pid": int(p), "tid": 0,
                      "args": {"name": f"chip ({int(ch[0])}, {int(ch[1])})"}})
        for c in range(cc.shape[0]):
            pop = core_population[c] if c < len(core_population) else ""
            self._ev({"ph": "M", "name": "thread_name", "pid": int(self.pid[c]), "tid": c,
                      "args": {"name": f"core {c} {pop}".strip()}})
            self._ev({"ph": "M", "name": "thread_name", "pid": 0, "tid": 1 + c,
                      "args": {"name": f"NoC from core {c}"}})

    def _ev(self, d: dict) -> None:
        self.f.write(("" if self.first else ",\n") + json.dumps(d, separators=(",", ":")))
        self.first = False

    # timeline interface (cycles)
    def step(self, t: int, start: int, length: int) -> None:
        self._ev({"ph": "X", "cat": "step", "name": f"step {t}", "pid": 0, "tid": 0, "ts": start * self.us,
                  "dur": length * self.us, "args": {"step": int(t), "cycles": int(length)}})

    def phase(self, core: int, t: int, name: str, start: int, end: int) -> None:
        if end <= start:
            return
        self._ev({"ph": "X", "cat": "core", "name": name, "pid": int(self.pid[core]), "tid": int(core),
                  "ts": start * self.us, "dur": (end - start) * self.us,
                  "args": {"step": int(t), "cycles": int(end - start)}})

    def packets(self, t: int, kind: str, src_core, dst_ptr, dst_core, inject, delivery, flits) -> None:
        own = np.repeat(np.arange(len(src_core)), np.diff(dst_ptr))
        for k in range(delivery.size):
            p = own[k]
            s, d0 = int(inject[p]), int(delivery[k])
            self._ev({"ph": "X", "cat": "noc", "name": kind, "pid": 0, "tid": 1 + int(src_core[p]),
                      "ts": s * self.us, "dur": max(d0 - s, 0) * self.us,
                      "args": {"step": int(t), "src": int(src_core[p]), "dst": int(dst_core[k]),
                               "flits": int(flits[p]), "cycles": int(d0 - s)}})

    def close(self) -> Path:
        try:
            self.f.write("\n]}\n")
            self.f.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        try:
            self.f.close()
        except OSError:
            pass
        _unlink(self.tmp)


class _Offset:
    """Shifts a recorder's cycles by a running offset (the start of the current step)."""

    def __init__(self, rec):
        self.rec, self.off = rec, 0

    def step(self, t, length):
        self.rec.step(t, self.off, length)
        self.off += int(length)

    def phase(self, core, t, name, start, end):
        self.rec.phase(core, t, name, self.off + int(start), self.off + int(end))

    def packets(self, t, kind, src_core, dst_ptr, dst_core, inject, delivery, flits):
        self.rec.packets(t, kind, src_core, dst_ptr, dst_core, np.asarray(inject) + self.off,
                         np.asarray(delivery) + self.off, flits)


# --------------------------------------------------------------------------- VCD

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


def write_vcd(path, prog, gids: np.ndarray, spikes: np.ndarray, memb: np.ndarray, sample: int) -> Path:
    """Write the VCD of neurons ``gids`` from (T, K) ``spikes`` / ``memb`` (see the module docstring)."""
    from vcd import VCDWriter

    path = Path(path)
    tmp = _tmp_for(path)
    M = int(prog.membrane_bits)
    try:
        with open(tmp, "w") as f:
            with VCDWriter(f, timescale="1 us", date="", check_values=True,
                           comment=f"snnchip hwsim sample {sample}; 1 time unit = 1 simulation step; "
                                   f"membranes are signed {M}-bit integers") as w:
                vs, vv = [], []
                for g in gids:
                    p = int(np.searchsorted(prog.pop_off, g, side="right") - 1)
                    i = int(g - prog.pop_off[p])
                    scope = f"chip.core{int(prog.nrn_core[g])}.{prog.pop_names[p]}"
                    vv.append(w.register_var(scope, f"n{i}_v", "integer", size=M, init=0))
                    vs.append(w.register_var(scope, f"n{i}_spike", "wire", size=1, init=0))
                lo, hi = -(1 << (M - 1)), (1 << (M - 1)) - 1
                prev_s = np.zeros(len(gids), np.int64)
                prev_v = np.zeros(len(gids), np.int64)
                for t in range(spikes.shape[0]):
                    s = (spikes[t] != 0).astype(np.int64)
                    v = np.clip(memb[t], lo, hi)
                    for k in np.flatnonzero((s != prev_s) | (v != prev_v)):
                        if v[k] != prev_v[k]:
                            w.change(vv[k], t, int(v[k]))
                        if s[k] != prev_s[k]:
                            w.change(vs[k], t, int(s[k]))
                    prev_s, prev_v = s, v
                if spikes.shape[0]:
                    w.flush(spikes.shape[0])
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return path
