"""AER spike trace (``.npz``): one row per nonzero neuron output, of every sample.

One row per nonzero output of a neuron (a spike, a multi-spike count, or the nonzero
value of a non-spiking LI / I / Identity population), ordered by (sample, step,
neuron). Arrays (int64 unless noted): ``sample``, ``step``, ``neuron`` (global id =
``pop_offset[pop] + index``), ``pop``, ``index``, ``core`` (the core of the neuron's
soma; -1 = the I/O port for graph-input events), ``payload`` (spike count or value);
plus ``pop_names`` (unicode) and ``pop_offset``. Graph-input events are included only
with ``aer_include_input=True``. Memory stays bounded: the engine runs the samples in
chunks whose output record fits in ``chunk_bytes``; after every chunk its events are
appended, column by column, to raw temporary files, which are finally streamed
(``numpy.lib.format.write_array`` from a memory map) into an uncompressed zip64
``.npz``. ``numpy.load`` reads it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from models.fileio import AtomicFile


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
        self.cols = {}
        try:
            for c in self.COLS:
                self.cols[c] = AtomicFile(self.path, f".{c}.raw")
            self.files = {c: f.open("wb") for c, f in self.cols.items()}
        except BaseException:
            self.abort()
            raise

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
        for f in self.files.values():
            f.close()
        try:
            with AtomicFile(self.path) as out, zipfile.ZipFile(out.tmp, "w", zipfile.ZIP_STORED,
                                                                allowZip64=True) as zf:
                for c in self.COLS:
                    arr = (np.memmap(self.cols[c].tmp, dtype=np.int64, mode="r", shape=(self.n,)) if self.n
                           else np.zeros(0, np.int64))
                    with zf.open(f"{c}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
                    del arr
                for name, arr in (("pop_names", np.array(self.pop_names, dtype=str)), ("pop_offset", self.pop_off)):
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        for f in self.cols.values():
            f.abort()
