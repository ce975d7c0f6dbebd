"""The result of a chip simulation (:func:`hwsim.engine.simulate`): outputs, recordings,
counters and timing; saved as ``result.json`` + ``result.npz`` (atomic writes)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import SnnchipError
from models.fileio import AtomicFolder, atomic_write, read_npz
from models.limits import check_bytes


class ResultFileError(SnnchipError):
    """A result folder is missing, corrupt or of an unknown format."""


FORMAT_VERSION = 1


@dataclass
class RunResult:
    """``output`` (T, B, *out_shape) of the output population; ``spikes`` / ``membrane``:
    recorded populations (T, B, n) int64; ``counters`` (T, n_cores, K) int64 summed over
    samples with names ``counter_names``; ``core_population[c]`` = population whose tiles
    core c holds (the last one if several); ``timing``: dict of the timed samples or None:
    ``mode``, ``step_cycles`` (Bt, T), ``core_busy_cycles`` (Bt, n_cores), per sample (Bt,)
    ``total_cycles``, ``cycles_per_step``, ``pipeline_depth`` (0 in sync mode),
    ``latency_cycles``, ``latency_us``, ``throughput_inf_s``; ``packet_latency_hist``,
    ``overruns``, ``link_flits`` (grid_w, grid_h, 4): flits each directed link (ports E,
    W, N, S) carried over the timed samples, ``noc_spike_calls`` /
    ``noc_spike_calls_as_trains``: spike NoC simulations, and how many of them ran as
    packet trains (rules: :mod:`hwsim.engine`). ``meta["mode"]`` is the timing mode,
    ``meta["traces"]`` the trace files written (kind -> path)."""

    output: np.ndarray
    spikes: dict = field(default_factory=dict)
    membrane: dict = field(default_factory=dict)
    counters: np.ndarray | None = None
    counter_names: list = field(default_factory=list)
    core_population: list = field(default_factory=list)
    timing: dict | None = None
    meta: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        """One line: samples x steps, chip, cores, accuracy and latency when known; no arrays."""
        T, B = (self.output.shape[0], self.output.shape[1]) if np.ndim(self.output) >= 2 else (0, 0)
        head = f"{int(self.meta.get('samples') or B)} sample(s) x {T} steps"
        if self.meta.get("chip"):
            head += f" on {self.meta['chip']}"
        parts = [head]
        if self.counters is not None:
            parts.append(f"{self.counters.shape[1]} cores")
        if self.meta.get("accuracy") is not None:
            parts.append(f"accuracy {float(self.meta['accuracy']):.4f}")
        if self.timing and np.size(self.timing.get("latency_us", ())):
            lat = np.asarray(self.timing["latency_us"], dtype=np.float64)
            parts.append(f"latency {lat.mean():,.4g} us (mean of {lat.size} timed)")
        if self.spikes:
            parts.append(f"recorded {', '.join(self.spikes)}")
        return f"RunResult({', '.join(parts)})"

    # ---------------------------------------------------------------- outputs
    @property
    def counts(self) -> np.ndarray:
        return self.output.reshape(self.output.shape[0], self.output.shape[1], -1).sum(axis=0)

    def predict(self) -> np.ndarray:
        """Class = argmax of the output summed over time; ties go to the lowest index."""
        return np.argmax(self.counts, axis=1)

    def accuracy(self, labels) -> float:
        return float(np.mean(self.predict() == np.asarray(labels)))

    # ---------------------------------------------------------------- counters
    def counter(self, name: str) -> np.ndarray:
        """(T, n_cores) values of one counter (derived: ``weight_bits_read``, ``state_bits``)."""
        if name == "weight_bits_read":
            return (self.counter("acs") + self.counter("macs")) * int(self.meta.get("weight_bits", 8))
        if name == "state_bits":  # read and written
            return 2 * self.counter("state_words") * int(self.meta.get("membrane_bits", 16))
        if name not in self.counter_names:
            raise KeyError(f"unknown counter {name!r}; known: {self.counter_names}")
        return self.counters[:, :, self.counter_names.index(name)]

    def totals(self) -> dict:
        """Every counter summed over steps and cores."""
        names = list(self.counter_names) + ["weight_bits_read", "state_bits"]
        return {n: int(self.counter(n).sum()) for n in names}

    def per_core(self) -> dict:
        """Counter name -> (n_cores,) totals over steps."""
        return {n: self.counters[:, :, i].sum(axis=0) for i, n in enumerate(self.counter_names)}

    def per_population(self) -> dict:
        """Population -> counter totals (cores attributed by ``core_population``)."""
        out: dict = {}
        pc = self.per_core()
        for c, pop in enumerate(self.core_population):
            d = out.setdefault(pop, {n: 0 for n in self.counter_names})
            for n in self.counter_names:
                d[n] += int(pc[n][c])
        return out

    # ---------------------------------------------------------------- files
    def save(self, folder) -> Path:
        """Write ``result.json`` + ``result.npz`` into ``folder`` as a unit (:class:`models.fileio.AtomicFolder`)."""
        folder = Path(folder)
        arrays = {"output": self.output}
        if self.counters is not None:
            arrays["counters"] = self.counters
        for k, v in self.spikes.items():
            arrays[f"spikes/{k}"] = v
        for k, v in self.membrane.items():
            arrays[f"membrane/{k}"] = v
        tim = None
        if self.timing is not None:
            tim = {}
            for k, v in self.timing.items():
                if isinstance(v, np.ndarray):
                    arrays[f"timing/{k}"] = v
                else:
                    tim[k] = v
        doc = {"format_version": FORMAT_VERSION, "counter_names": list(self.counter_names),
               "core_population": list(self.core_population), "timing": tim, "meta": self.meta,
               "spikes": list(self.spikes), "membrane": list(self.membrane)}
        with AtomicFolder(folder) as out:
            atomic_write(out.tmp / "result.npz", lambda f: np.savez_compressed(f, **arrays), binary=True)
            atomic_write(out.tmp / "result.json", lambda f: f.write(json.dumps(doc, indent=1, default=_jsonable)))
        return folder

    @classmethod
    def load(cls, folder) -> "RunResult":
        """Read a result folder; the JSON's fields and every array's dtype and shape are checked
        (against each other and the counter names) before a :class:`RunResult` is built."""
        folder = Path(folder)
        jpath, npath = folder / "result.json", folder / "result.npz"
        try:
            check_bytes(jpath.stat().st_size * 20, f"{jpath}: JSON document")
            doc = json.loads(jpath.read_text())
            arrays = read_npz(npath)
        except SnnchipError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            raise ResultFileError(f"{folder}: cannot read result ({e})") from None
        _check_doc(doc, arrays, jpath, npath)
        tim = doc.get("timing")
        if tim is not None:
            for k, v in arrays.items():
                if k.startswith("timing/"):
                    tim[k[7:]] = v
        return cls(output=arrays["output"], spikes={k: arrays[f"spikes/{k}"] for k in doc["spikes"]},
                   membrane={k: arrays[f"membrane/{k}"] for k in doc["membrane"]},
                   counters=arrays.get("counters"), counter_names=doc["counter_names"],
                   core_population=doc["core_population"], timing=tim, meta=doc["meta"])


def _check_doc(doc, arrays: dict, jpath: Path, npath: Path) -> None:
    """The structure ``save`` writes; a field of another type or an array of another shape is an error."""
    if not isinstance(doc, dict):
        raise ResultFileError(f"{jpath}: top level must be an object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ResultFileError(f"{jpath}: unknown format_version {doc.get('format_version')!r}")
    for key, kind in (("counter_names", list), ("core_population", list), ("spikes", list), ("membrane", list),
                      ("meta", dict)):
        v = doc.get(key)
        if not isinstance(v, kind) or (kind is list and not all(isinstance(x, str) for x in v)):
            raise ResultFileError(f"{jpath}: {key} must be a {'list of names' if kind is list else 'mapping'}")
    if doc.get("timing") is not None and not isinstance(doc["timing"], dict):
        raise ResultFileError(f"{jpath}: timing must be a mapping or null")
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ResultFileError(f"{npath}: array '{k}' has dtype {a.dtype}, expected numbers")
    out = arrays.get("output")
    if out is None or out.ndim < 2:
        raise ResultFileError(f"{npath}: 'output' missing or not (T, B, ...)")
    T, B = out.shape[:2]
    c = arrays.get("counters")
    if c is not None and (c.ndim != 3 or c.shape != (T, len(doc["core_population"]), len(doc["counter_names"]))):
        raise ResultFileError(f"{npath}: counters are {c.shape}, expected (steps {T}, cores "
                              f"{len(doc['core_population'])}, counters {len(doc['counter_names'])})")
    for group in ("spikes", "membrane"):
        for name in doc[group]:
            a = arrays.get(f"{group}/{name}")
            if a is None or a.ndim != 3 or a.shape[:2] != (T, B):
                raise ResultFileError(f"{npath}: {group}/{name} missing or not (steps {T}, samples {B}, neurons)")


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def merge_results(parts: list) -> RunResult:
    """One :class:`RunResult` from the results of consecutive sample batches of one run.

    Outputs and recordings are joined along the sample axis, counters summed, and
    the timing of the timed samples joined (per-sample arrays concatenated, integer
    totals such as the packet-latency histogram and overruns summed)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    tims = [r.timing for r in parts if r.timing is not None]
    timing = None
    if tims:
        timing = {}
        for k in tims[0]:
            vals = [t[k] for t in tims]
            if k == "packet_latency_hist":
                n = max(v.size for v in vals)
                timing[k] = sum(np.pad(v, (0, n - v.size)) for v in vals).astype(np.int64)
            elif k == "link_flits":
                timing[k] = sum(vals).astype(np.int64)
            elif isinstance(vals[0], np.ndarray):
                timing[k] = np.concatenate(vals, axis=0)
            elif isinstance(vals[0], (int, np.integer)) and not isinstance(vals[0], bool):
                timing[k] = int(sum(vals))
            else:
                timing[k] = vals[0]
    counters = sum(r.counters for r in parts) if first.counters is not None else None
    meta = dict(first.meta)
    if "samples" in meta:
        meta["samples"] = int(sum(int(r.meta.get("samples", r.output.shape[1])) for r in parts))
    return RunResult(
        output=np.concatenate([r.output for r in parts], axis=1),
        spikes={k: np.concatenate([r.spikes[k] for r in parts], axis=1) for k in first.spikes},
        membrane={k: np.concatenate([r.membrane[k] for r in parts], axis=1) for k in first.membrane},
        counters=counters, counter_names=list(first.counter_names),
        core_population=list(first.core_population), timing=timing, meta=meta)
