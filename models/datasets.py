"""Datasets and spike encoders; everything reads local files, nothing downloads.

Readers:

* :func:`read_nmnist_events` / :func:`load_nmnist` -- N-MNIST (Orchard et al. 2015)
  in its original binary format: 5 bytes per event, 40 bits big-endian
  ``x(8) | y(8) | polarity(1) | timestamp_us(23)``.
* :func:`load_mnist` -- MNIST IDX files (optionally gzip-compressed; :mod:`models.idx` reads them).

Encoders turn static images into a ``(T, B, *shape)`` input sequence:

* :func:`encode_poisson` -- Bernoulli spikes with p = intensity per step (seeded),
* :func:`encode_rate` -- deterministic rate code: a pixel of value ``x`` in [0, 1]
  spikes at step t iff ``floor((t+1) x) > floor(t x)``, i.e. ``floor(T x)`` spikes,
  evenly spaced,
* :func:`encode_direct` -- the real value itself at every step (the first layer then
  does MACs, the ANN mode of a hybrid chip),
* :func:`events_to_frames` -- event streams binned into count frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .defaults import HELD_OUT_SLICE, STEPS, shared_data_dir  # noqa: F401 (shared_data_dir: re-exported)
from .errors import DatasetError
from .idx import read_idx
from .limits import check_bytes

NMNIST_SHAPE = (2, 34, 34)  # (polarity, y, x)
_NMNIST_DTYPE = np.dtype([("x", "u1"), ("y", "u1"), ("p", "u1"), ("t", "i8")])


def read_nmnist_events(path: str | os.PathLike) -> np.ndarray:
    """Read one N-MNIST ``.bs2`` file into a structured array (x, y, p, t).

    Each event is 40 bits, big endian: byte 0 = x, byte 1 = y, bit 7 of byte 2 =
    polarity, the remaining 23 bits = timestamp in microseconds.

    Raises
    ------
    DatasetError
        if the file is missing, its size is not a multiple of 5 bytes, or a
        coordinate lies outside the 34 x 34 sensor.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DatasetError(f"{path}: cannot read N-MNIST file ({err.strerror})") from None
    if raw.size == 0:
        raise DatasetError(f"{path}: empty N-MNIST file (no events)")
    if raw.size % 5 != 0:
        raise DatasetError(
            f"{path}: corrupt N-MNIST file: {raw.size} bytes is not a multiple of "
            f"5 bytes per event"
        )
    ev = raw.reshape(-1, 5).astype(np.int64)
    out = np.empty(ev.shape[0], dtype=_NMNIST_DTYPE)
    out["x"] = ev[:, 0]
    out["y"] = ev[:, 1]
    out["p"] = ev[:, 2] >> 7
    out["t"] = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    back = np.flatnonzero(np.diff(out["t"]) < 0)
    if back.size:
        k = int(back[0]) + 1
        raise DatasetError(f"{path}: corrupt N-MNIST file: event {k} at {int(out['t'][k])} us comes before "
                           f"event {k - 1} at {int(out['t'][k - 1])} us (timestamps must not decrease)")
    if ev.shape[0] and (ev[:, 0].max() >= 34 or ev[:, 1].max() >= 34):
        bad = int(np.argmax((ev[:, 0] >= 34) | (ev[:, 1] >= 34)))
        raise DatasetError(
            f"{path}: corrupt N-MNIST file: event {bad} has x={ev[bad, 0]}, "
            f"y={ev[bad, 1]} outside the 34 x 34 sensor"
        )
    return out


def events_to_frames(
    events: np.ndarray,
    *,
    bin_us: float | None = None,
    n_bins: int | None = None,
    t_max_us: float | None = None,
    origin: str = "first",
    shape: tuple[int, int, int] = NMNIST_SHAPE,
) -> np.ndarray:
    """Bin events into count frames ``(T, 2, H, W)``, value = events per pixel per bin.

    Give exactly one of ``bin_us`` (a time window: bin k holds ``k*bin_us <= t <
    (k+1)*bin_us``, ``T = ceil((t_last+1)/bin_us)`` or ``ceil(t_max_us/bin_us)``)
    or ``n_bins`` (the recording, or ``[0, t_max_us)``, cut into that many equal
    windows). Frames are indexed ``[t, polarity, y, x]``.

    ``origin="first"`` measures time from the first event (Tonic's ``ToFrame``
    convention, used by the NIR paper's N-MNIST pipeline); ``origin="zero"`` from
    the recording's timestamp 0. On the NIR paper CNN with single-spike subtract
    reset the choice moves one test100 sample (97 vs 98 correct).
    """
    if (bin_us is None) == (n_bins is None):
        raise DatasetError("events_to_frames: give exactly one of bin_us or n_bins")
    t = events["t"].astype(np.int64)
    if origin == "first" and t.size:
        t = t - t.min()
    elif origin not in ("first", "zero"):
        raise DatasetError(f"events_to_frames: origin must be 'first' or 'zero', got {origin!r}")
    span = float(t_max_us) if t_max_us is not None else float(t.max() + 1 if t.size else 1)
    if bin_us is not None:
        if not bin_us > 0:
            raise DatasetError(f"events_to_frames: bin_us must be > 0, got {bin_us}")
        n = int(np.ceil(span / bin_us))
        idx = (t // bin_us).astype(np.int64)
    else:
        if n_bins < 1:
            raise DatasetError(f"events_to_frames: n_bins must be >= 1, got {n_bins}")
        n = int(n_bins)
        idx = np.floor(t * (n / span)).astype(np.int64)
    keep = idx < n
    check_bytes(n * int(np.prod(shape)) * 4, f"events_to_frames: {n} frames of {tuple(shape)}")
    frames = np.zeros((n,) + tuple(shape), dtype=np.float32)
    np.add.at(frames, (idx[keep], events["p"][keep], events["y"][keep], events["x"][keep]), 1.0)
    return frames


@dataclass
class Sequences:
    """A batch of input sequences with labels.

    ``inputs`` has shape ``(T, B, *sample_shape)``; ``labels`` has shape ``(B,)``.
    ``spiking`` says whether the inputs are spikes/event counts (AC mode) or real
    values (MAC mode on the first layer).
    """

    inputs: np.ndarray
    labels: np.ndarray
    spiking: bool


def _read_labels(path: Path) -> dict[str, int]:
    labels = {}
    try:
        text = path.read_text()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read label file ({err.strerror})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 2:
            raise DatasetError(f"{path}:{lineno}: expected 'sample label', got {line!r}")
        try:
            labels[parts[0]] = int(float(parts[1]))
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: label is not a number: {parts[1]!r}") from None
    return labels


def load_nmnist(
    folder: str | os.PathLike | None = None,
    *,
    split: str = "test",
    samples: int | None = None,
    bin_us: float | None = 1000.0,
    n_bins: int | None = None,
    steps: int | None = None,
) -> Sequences:
    """Load N-MNIST samples from ``folder`` (default ``shared/data/nmnist_small``).

    ``split`` is ``"test"`` (labels in ``test100.txt``) or ``"train"``
    (``train1K.txt``). Each sample is binned with :func:`events_to_frames`; samples
    are padded with empty frames (or cut) to a common length ``steps`` (default:
    the longest sample).
    """
    folder = Path(folder) if folder is not None else shared_data_dir() / "nmnist_small"
    label_file = folder / {"test": "test100.txt", "train": "train1K.txt"}.get(split, "?")
    if split not in ("test", "train"):
        raise DatasetError(f"load_nmnist: split must be 'test' or 'train', got {split!r}")
    labels = _read_labels(label_file)
    names = list(labels)[: samples if samples is not None else None]
    if samples is not None and samples > len(labels):
        raise DatasetError(f"{label_file}: asked for {samples} samples, file lists {len(labels)}")
    if n_bins is not None:
        bin_us = None
    frames = [events_to_frames(read_nmnist_events(folder / f"{n}.bs2"), bin_us=bin_us, n_bins=n_bins)
              for n in names]
    T = steps if steps is not None else max((f.shape[0] for f in frames), default=1)
    check_bytes(T * len(frames) * int(np.prod(NMNIST_SHAPE)) * 4,
                f"{folder}: {len(frames)} N-MNIST samples x {T} frames")
    x = np.zeros((T, len(frames)) + NMNIST_SHAPE, dtype=np.float32)
    for b, f in enumerate(frames):
        k = min(T, f.shape[0])
        x[:k, b] = f[:k]
    return Sequences(x, np.array([labels[n] for n in names], dtype=np.int64), spiking=True)


def load_mnist(
    folder: str | os.PathLike | None = None,
    *,
    split: str = "test",
    start: int = 0,
    stop: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images as float32 in [0, 1], shape (N, 1, 28, 28), and int64 labels.

    Only the test set ships in ``shared/data/mnist``; ``split="test"`` reads
    ``t10k-images-idx3-ubyte.gz``/``t10k-labels-idx1-ubyte.gz``. With no ``folder``
    and no IDX files in the shared data, a slice inside the package's own subset
    (:mod:`models.shipped_data`, test 8000:8500) is read from there. ``start:stop``
    selects a slice (the zoo trains on :data:`models.defaults.TRAIN_SLICE` and scores on
    :data:`models.defaults.HELD_OUT_SLICE`).
    """
    default_folder = folder is None
    folder = Path(folder) if folder is not None else shared_data_dir() / "mnist"
    prefix = {"test": "t10k", "train": "train"}.get(split)
    if prefix is None:
        raise DatasetError(f"load_mnist: split must be 'test' or 'train', got {split!r}")

    def find(kind: str) -> Path | None:
        for name in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte", f"{prefix}-{kind}.idx.gz"):
            if (folder / name).exists():
                return folder / name
        return None

    files = find("images-idx3"), find("labels-idx1")
    if None in files:
        from . import shipped_data

        if default_folder and split == "test" and shipped_data.covers(start, stop):
            images, labels = shipped_data.load_shipped_mnist(start, stop)
            return (images.astype(np.float32) / 255.0)[:, None, :, :], labels
        kind = "images-idx3" if files[0] is None else "labels-idx1"
        hint = (f"; the package ships only test[{shipped_data.SHIPPED_START}:{shipped_data.SHIPPED_STOP}]"
                if default_folder else "")
        raise DatasetError(f"{folder}: no MNIST file {prefix}-{kind}-ubyte[.gz]{hint}")
    images = read_idx(files[0])
    labels = read_idx(files[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetError(f"{files[0]}: MNIST images must be uint8 of shape (N, 28, 28), "
                           f"the header says {images.dtype} {images.shape}")
    if labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{folder}: MNIST images {images.shape} and labels {labels.shape} disagree")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = int(np.flatnonzero((labels < 0) | (labels > 9))[0])
        raise DatasetError(f"{files[1]}: label {int(labels[bad])} of image {bad} is not a digit 0..9")
    sl = slice(start, stop)
    x = (images[sl].astype(np.float32) / 255.0)[:, None, :, :]
    return x, labels[sl].astype(np.int64)


def _check_unit(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)) or x.min(initial=0) < 0 or x.max(initial=0) > 1:
        raise DatasetError(f"{name}: intensities must be finite and in [0, 1]")
    return x


def encode_poisson(x: np.ndarray, steps: int, *, seed: int = 0) -> np.ndarray:
    """Bernoulli rate code: spike at step t with probability x (values in [0, 1]).

    Returns float32 ``(steps, *x.shape)`` of 0/1; reproducible for a given seed.
    """
    x = _check_unit(x, "encode_poisson")
    _check_steps(steps)
    rng = np.random.default_rng(seed)
    return (rng.random((steps,) + x.shape, dtype=np.float32) < x).astype(np.float32)


def encode_rate(x: np.ndarray, steps: int) -> np.ndarray:
    """Deterministic rate code: ``s[t] = floor((t+1) x) - floor(t x)`` for t < steps.

    A value x emits ``floor(steps * x)`` evenly spaced spikes.
    """
    x = _check_unit(x, "encode_rate")
    _check_steps(steps)
    t = np.arange(steps + 1, dtype=np.float64).reshape((-1,) + (1,) * x.ndim)
    acc = np.floor(t * x.astype(np.float64))
    return np.diff(acc, axis=0).astype(np.float32)


def encode_direct(x: np.ndarray, steps: int) -> np.ndarray:
    """Direct (analog) code: the real value x at every step, shape (steps, *x.shape).

    The first projection then carries real values and runs in ANN (MAC) mode.
    """
    x = np.asarray(x, dtype=np.float32)
    _check_steps(steps)
    return np.broadcast_to(x, (steps,) + x.shape)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise DatasetError(f"steps must be an integer >= 1, got {steps!r}")


ENCODERS = {"poisson": encode_poisson, "rate": encode_rate, "direct": encode_direct}


def mnist_sequences(
    encoder: str = "direct",
    steps: int = STEPS,
    *,
    start: int = HELD_OUT_SLICE[0],
    stop: int | None = HELD_OUT_SLICE[1],
    samples: int | None = None,
    seed: int = 0,
    folder: str | os.PathLike | None = None,
) -> Sequences:
    """MNIST test images ``start:stop`` encoded for ``steps`` steps as ``(T, B, 1, 28, 28)``.

    The defaults are the zoo models' held-out set (:data:`models.defaults.HELD_OUT_SLICE`)
    and time steps (:data:`models.defaults.STEPS`).
    """
    if encoder not in ENCODERS:
        raise DatasetError(f"unknown encoder {encoder!r}; choose one of {sorted(ENCODERS)}")
    if samples is not None:
        stop = start + samples
    x, y = load_mnist(folder, start=start, stop=stop)
    if encoder == "poisson":
        seq = encode_poisson(x, steps, seed=seed)
    else:
        seq = ENCODERS[encoder](x, steps)
    return Sequences(np.ascontiguousarray(seq), y, spiking=encoder != "direct")
