"""Input data for the commands: built-in datasets, the user's own ``.npz``, event binning.

``load_data`` turns a command's options into a :class:`models.datasets.Sequences`
``(T, B, *input_shape)`` checked against the model's input:

* ``nmnist``: N-MNIST recordings binned into count frames, either ``--frame-us D``
  (fixed frames of D us; the default, 1,000 us) or ``--bins N`` (each recording cut
  into N equal time bins, Tonic's ``ToFrame(n_time_bins=N)``; every event of the
  recording lands in a bin). ``--steps T`` pads fixed-length frames with empty ones
  but never cuts a recording: a cut is refused with a hint to rebin.
* ``mnist``: held-out MNIST test images encoded for T steps (``direct``, ``rate``,
  ``poisson``; default the model's metadata).
* ``FILE.npz``: arrays ``x`` and ``y``; ``x`` is a sequence ``(T, B, *input)`` used as
  it is, or static samples ``(B, *input)`` encoded like MNIST images (values in [0, 1]
  for ``rate``/``poisson``). Loaded without pickle.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from models import defaults
from models.errors import SnnchipError

DATASETS = ("nmnist", "mnist")


class Semantics(NamedTuple):
    """How a model's neurons behave in simulation: the framework's semantics NIR does not carry."""

    reset: str
    spikes: str
    v_min: object  # None (no floor), a float <= 0, or "-threshold"
    source: str | None
    note: str  # where the source came from, for the command's header line ("" without a source)

    def record(self) -> dict:
        """The metadata keys :func:`source_modes` reads back (a mapping stores them; ``v_min``
        ``"none"`` for no floor, which JSON metadata can hold where None would be dropped)."""
        d = {"reset": self.reset, "spikes": self.spikes, "v_min": "none" if self.v_min is None else self.v_min}
        if self.source:
            d["source"] = self.source
        return d

    def header(self) -> str:
        """``reset=.. spikes=.. [v_min=..] [| source ..]`` for a command's first line."""
        return (f"reset={self.reset} spikes={self.spikes}" + (f" v_min={self.v_min}" if self.v_min is not None else "")
                + (f" | {self.note}" if self.note else ""))


def _v_min_value(v, where: str):
    """``None``, ``"-threshold"`` or a float from an option or a metadata value."""
    if v is None or (isinstance(v, str) and v.lower() == "none"):
        return None
    if v == "-threshold":
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise SnnchipError(f"{where} must be a number <= 0, -threshold or none, got {v!r}") from None
    if not np.isfinite(f) or f > 0:
        raise SnnchipError(f"{where} must be a number <= 0, -threshold or none, got {v!r}")
    return f


def source_modes(graph, args) -> Semantics:
    """The simulation semantics of ``graph`` (anything with ``metadata``, and ``nodes`` for
    detection by node names) for a command with options ``args``.

    Per field (reset, spike mode, membrane floor), the first that is set of:

    1. the command's option (``--reset``, ``--spikes``, ``--v-min``);
    2. with ``--source NAME``: that framework's default (:data:`models.frameworks.SOURCES`);
    3. the graph's metadata (``reset``, ``spikes``, ``v_min``: a file's own statement, and what
       ``snnchip map`` records in a mapping, so a run inherits the map's choice);
    4. the framework detected from the file (:func:`models.frameworks.detect_source`);
    5. subtract / binary / no floor.

    A source given on the command line overrides the file's metadata (the user says what the
    file is); a detected one does not (the file's explicit fields are more specific).
    """
    from models.frameworks import detect_source, source_options

    meta = dict(getattr(graph, "metadata", None) or {})
    source, how = getattr(args, "source", None), "given"
    if source is None:
        source, how = detect_source(graph)
    opts = source_options(source) if source else {}
    given = how == "given"
    layers = [{k: getattr(args, k, None) for k in ("reset", "spikes", "v_min")}]
    layers += [opts, meta] if given else [meta, opts]
    layers.append({"reset": "subtract", "spikes": "binary", "v_min": None})

    def pick(key):
        for d in layers:
            if d.get(key) is not None:
                return d[key], d is layers[0]
        return None, False

    reset, spikes = str(pick("reset")[0]), str(pick("spikes")[0])
    v, from_option = pick("v_min")
    v_min = _v_min_value(v, "--v-min" if from_option else "metadata v_min")
    note = f"source {source} ({how})" if source else ""
    return Semantics(reset, spikes, v_min, source, note)


def _data_kind(graph, requested: str | None) -> str:
    if requested:
        return requested
    shape = tuple(graph.input_shape)
    if shape == (2, 34, 34):
        return "nmnist"
    if shape in ((1, 28, 28), (784,)):
        return "mnist"
    raise SnnchipError(f"model input shape {shape} matches no built-in dataset; give --data nmnist|mnist|FILE.npz")


def _positive(name: str, value) -> None:
    if value is not None and value < 1:
        raise SnnchipError(f"{name} must be >= 1, got {value}")


def _encode(x: np.ndarray, encoding: str, steps: int, seed: int, label: str) -> tuple[np.ndarray, bool]:
    from models import datasets

    if encoding not in datasets.ENCODERS:
        raise SnnchipError(f"{label}: unknown encoding {encoding!r}; choose one of {sorted(datasets.ENCODERS)}")
    if encoding == "poisson":
        seq = datasets.encode_poisson(x, steps, seed=seed)
    else:
        seq = datasets.ENCODERS[encoding](x, steps)
    return np.ascontiguousarray(seq, dtype=np.float32), encoding != "direct"


def load_user_npz(path: str | Path, input_shape, *, samples, steps, encoding: str, start: int = 0, seed: int = 0,
                  default_steps: int | None = None):
    """A :class:`Sequences` from the user's ``.npz`` (module docstring); errors name the file and array.

    ``steps`` is the user's (a sequence must have that many); static samples are
    encoded for ``steps``, else ``default_steps`` (the model's), else the project's default.
    """
    from models.datasets import Sequences

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files or "y" not in z.files:
                raise SnnchipError(f"{path}: needs arrays 'x' and 'y', has {sorted(z.files)}")
            x, y = z["x"], z["y"]
    except SnnchipError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise SnnchipError(f"{path}: cannot read as .npz ({err})") from None
    need = tuple(int(d) for d in input_shape)
    if x.dtype.kind not in "biuf":
        raise SnnchipError(f"{path}: x has dtype {x.dtype}, expected numbers")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise SnnchipError(f"{path}: y must be integer labels of shape (B,), got {y.dtype} {y.shape}")
    if tuple(x.shape[1:]) == need:
        static = True
    elif x.ndim >= 2 and tuple(x.shape[2:]) == need:
        static = False
    else:
        raise SnnchipError(f"{path}: x has shape {x.shape}; the model's input is {need}: expected "
                           f"(B, {', '.join(map(str, need))}) or (T, B, {', '.join(map(str, need))})")
    B = x.shape[0] if static else x.shape[1]
    if y.shape[0] != B:
        raise SnnchipError(f"{path}: y has {y.shape[0]} labels for {B} samples in x")
    if not np.all(np.isfinite(x)):
        raise SnnchipError(f"{path}: x holds NaN or infinite values")
    if start < 0 or start >= B:
        raise SnnchipError(f"--start {start} is outside the {B} samples of {path}")
    stop = B if samples is None else min(B, start + samples)
    y = y[start:stop].astype(np.int64)
    if static:
        xs = x[start:stop].astype(np.float32)
        T = steps or default_steps or defaults.STEPS
        if encoding in ("rate", "poisson") and (xs.min(initial=0) < 0 or xs.max(initial=0) > 1):
            raise SnnchipError(f"{path}: {encoding} encoding needs values in [0, 1], x spans "
                               f"[{xs.min():g}, {xs.max():g}]")
        seq, spiking = _encode(xs, encoding, T, seed, str(path))
    else:
        seq = np.ascontiguousarray(x[:, start:stop], dtype=np.float32)
        if steps is not None and steps != seq.shape[0]:
            raise SnnchipError(f"--steps {steps} disagrees with the {seq.shape[0]} steps of x in {path}")
        spiking = bool(np.all(seq >= 0) and np.all(seq == np.floor(seq)))
    return Sequences(seq, y, spiking=spiking)


def load_data(graph, data: str | None, samples: int | None, steps: int | None, encoding: str | None,
              start: int | None = None, seed: int = 0, *, bins: int | None = None,
              frame_us: float | None = None):
    """(kind, Sequences) for ``graph`` (anything with ``input_shape`` and ``metadata``).

    ``data`` is ``nmnist``, ``mnist``, a ``.npz`` path, or None (chosen by the input
    shape). See the module docstring for steps, bins and frames.
    """
    from models import datasets

    _positive("--samples", samples)
    _positive("--steps", steps)
    _positive("--bins", bins)
    if frame_us is not None and not frame_us > 0:
        raise SnnchipError(f"--frame-us must be > 0, got {frame_us}")
    kind = _data_kind(graph, data)
    enc = encoding or str(graph.metadata.get("encoding", "rate"))
    if kind not in DATASETS:
        path = Path(kind)
        if path.suffix != ".npz" or not path.is_file():
            raise SnnchipError(f"--data must be nmnist, mnist or an existing .npz file, got {kind!r}")
        if bins is not None or frame_us is not None:
            raise SnnchipError("--bins and --frame-us apply to event recordings (nmnist), not to an .npz")
        seq = load_user_npz(path, graph.input_shape, samples=samples, steps=steps, encoding=enc, start=start or 0,
                            seed=seed, default_steps=_meta_steps(graph))
        return str(path), seq
    if kind == "nmnist":
        if bins is not None and frame_us is not None:
            raise SnnchipError("give --bins N (equal bins per recording) or --frame-us D (fixed frames), not both")
        if bins is not None:
            if steps is not None and steps != bins:
                raise SnnchipError(f"--steps {steps} disagrees with --bins {bins} (the bins are the steps)")
            seq = datasets.load_nmnist(samples=samples, n_bins=bins)
        else:
            seq = datasets.load_nmnist(samples=samples, bin_us=frame_us or 1000.0)
            T = seq.inputs.shape[0]
            if steps is not None and steps < T:
                raise SnnchipError(
                    f"--steps {steps} would cut recordings of up to {T} frames of {frame_us or 1000.0:g} us; "
                    f"rebin with --bins {steps} (equal bins per recording) or a longer --frame-us")
            if steps is not None and steps > T:
                pad = np.zeros((steps - T,) + seq.inputs.shape[1:], dtype=seq.inputs.dtype)
                seq.inputs = np.concatenate([seq.inputs, pad], axis=0)
    elif kind == "mnist":
        if bins is not None or frame_us is not None:
            raise SnnchipError("--bins and --frame-us apply to event recordings (nmnist), not to MNIST images")
        T = steps or _meta_steps(graph) or defaults.STEPS
        seq = datasets.mnist_sequences(enc, T, start=defaults.HELD_OUT_START if start is None else start,
                                       samples=samples, seed=seed)
    need = int(np.prod(graph.input_shape))
    if int(np.prod(seq.inputs.shape[2:])) != need:
        raise SnnchipError(f"{kind} samples have shape {seq.inputs.shape[2:]}, model input is {graph.input_shape}")
    seq.inputs = seq.inputs.reshape(seq.inputs.shape[:2] + tuple(graph.input_shape))
    return kind, seq


def _meta_steps(graph) -> int | None:
    steps = graph.metadata.get("steps")
    return int(steps) if steps is not None else None


def run_reference(model, seq, reset: str, spikes: str, batch: int = 100, desc: str = "reference", v_min=None):
    """Simulate in batches with a progress bar; returns (predictions, spike totals, sizes)."""
    from tqdm import tqdm

    from models import simulate

    B = seq.inputs.shape[1]
    preds, totals, sizes = [], {}, {}
    with tqdm(total=B, desc=desc, unit="sample", disable=B <= batch and seq.inputs.shape[0] < 50,
              file=sys.stderr) as bar:
        for lo in range(0, B, batch):
            r = simulate(model, seq.inputs[:, lo:lo + batch], reset=reset, spikes=spikes, v_min=v_min)
            preds.append(r.predict())
            for k, v in r.spike_totals.items():
                totals[k] = totals.get(k, 0.0) + v
            sizes.update(r.sizes)
            bar.update(min(batch, B - lo))
    return np.concatenate(preds), totals, sizes
