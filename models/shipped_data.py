"""The small MNIST subset that ships with the package, so the demo runs on a clone alone.

``models/data/mnist_test_8000_8500.npz`` holds MNIST test images 8000..8499 (the
first 500 of the held-out slice the shipped models are scored on) as uint8
``images`` (500, 28, 28) and int64 ``labels`` (500,), compressed. The JSON beside it
records the source files and their MD5 sums, the slice, and the SHA-256 of both
arrays; :func:`load_shipped_mnist` checks those sums on every load.

Rebuild it from the IDX files (the shared data, or any MNIST copy) with::

    python -m models.shipped_data [IDX_FOLDER]

The larger data for tests and benchmarks stays outside the package (``../shared/data``
or ``$SNNCHIP_DATA``); :func:`models.datasets.load_mnist` falls back to this subset
only when no IDX files are found and the requested slice lies inside it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from .defaults import HELD_OUT_START, shared_data_dir
from .errors import DatasetError
from .fileio import atomic_write
from .idx import read_idx

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_START = HELD_OUT_START
SHIPPED_STOP = HELD_OUT_START + 500
SHIPPED_MNIST = DATA_DIR / f"mnist_test_{SHIPPED_START}_{SHIPPED_STOP}.npz"
SHIPPED_MNIST_META = SHIPPED_MNIST.with_suffix(".json")


def _sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def covers(start: int, stop: int | None) -> bool:
    """True when MNIST test ``start:stop`` lies inside the shipped subset."""
    stop = SHIPPED_STOP if stop is None else stop
    return SHIPPED_START <= start < stop <= SHIPPED_STOP


def load_shipped_mnist(start: int = SHIPPED_START, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST test ``start:stop`` from the shipped subset: uint8 images (N, 28, 28), int64 labels.

    Raises :class:`DatasetError` if the slice is outside the subset or a checksum
    differs from the one recorded at build time.
    """
    if not covers(start, stop):
        raise DatasetError(f"{SHIPPED_MNIST}: the shipped subset holds MNIST test[{SHIPPED_START}:{SHIPPED_STOP}], "
                           f"not [{start}:{stop}]; point $SNNCHIP_DATA at a folder holding mnist/t10k-*-ubyte.gz")
    try:
        meta = json.loads(SHIPPED_MNIST_META.read_text())
        with np.load(SHIPPED_MNIST, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, KeyError, ValueError) as err:
        raise DatasetError(f"{SHIPPED_MNIST}: cannot read the shipped MNIST subset ({err})") from None
    for name, arr in (("images", images), ("labels", labels)):
        if _sha256(arr) != meta.get("sha256", {}).get(name):
            raise DatasetError(f"{SHIPPED_MNIST}: {name} checksum differs from {SHIPPED_MNIST_META.name}")
    stop = SHIPPED_STOP if stop is None else stop
    sl = slice(start - SHIPPED_START, stop - SHIPPED_START)
    return images[sl], labels[sl].astype(np.int64)


def build(idx_folder: str | Path) -> Path:
    """Write the shipped subset (npz + json) from MNIST IDX files in ``idx_folder``."""
    folder = Path(idx_folder)
    files = {k: folder / f"t10k-{k}-ubyte.gz" for k in ("images-idx3", "labels-idx1")}
    images = read_idx(files["images-idx3"])[SHIPPED_START:SHIPPED_STOP].astype(np.uint8)
    labels = read_idx(files["labels-idx1"])[SHIPPED_START:SHIPPED_STOP].astype(np.int64)
    meta = {
        "what": f"MNIST test set, images {SHIPPED_START}..{SHIPPED_STOP - 1} (held-out slice of the shipped models)",
        "source": "MNIST (LeCun, Cortes, Burges), t10k IDX files",
        "source_md5": {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in files.values()},
        "split": "test", "start": SHIPPED_START, "stop": SHIPPED_STOP,
        "arrays": {"images": "uint8 (N, 28, 28)", "labels": "int64 (N,)"},
        "sha256": {"images": _sha256(images), "labels": _sha256(labels)},
        "made_by": "python -m models.shipped_data IDX_FOLDER",
    }
    atomic_write(SHIPPED_MNIST, lambda fh: np.savez_compressed(fh, images=images, labels=labels), binary=True)
    atomic_write(SHIPPED_MNIST_META, lambda fh: fh.write(json.dumps(meta, indent=2) + "\n"))
    return SHIPPED_MNIST


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    out = build(sys.argv[1] if len(sys.argv) > 1 else shared_data_dir() / "mnist")
    print(f"wrote {out} ({out.stat().st_size:,} bytes) and {SHIPPED_MNIST_META.name}")
