"""Numba's on-disk cache, kept consistent with the sources it was compiled from.

Numba (``@njit(cache=True)``) reuses a cached machine-code function as long as the
*function's own* source file is unchanged. The engine's kernels inline functions from
other modules (the neuron steps of :mod:`models.neurons`, the integer helpers of
:mod:`models.intarith`, the record layouts of :mod:`hwsim.engine.layout`, the NoC and
router models): after an edit or a ``git pull`` that changes only one of those, Numba
would load a kernel compiled against the old layout, which can compute wrong values
or crash the process. :func:`check` prevents that: it hashes every source file of the
packages that hold cached kernels (:data:`PACKAGES`) and, when the hash differs from the
one recorded with the cache, deletes those packages' cache files (``*.nbi``,
``*.nbc`` in their ``__pycache__`` folders) before any kernel is loaded, so Numba
compiles afresh once. It runs on ``import models`` (every package imports it first).

Cost: reading about 100 source files (a few ms). Only the default cache location is
managed; with ``$NUMBA_CACHE_DIR`` set the user owns the cache (clear it after an
update). A read-only install (no write access to ``__pycache__``) is left alone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the packages whose modules hold ``cache=True`` kernels or code those kernels inline
PACKAGES = ("models", "hwsim", "mapper")
STAMP = ROOT / "models" / "__pycache__" / "snnchip-jit-sources.sha256"

__all__ = ["check", "sources_digest", "PACKAGES", "STAMP"]


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def sources_digest() -> str:
    """SHA-256 over the relative paths and bytes of every source file of :data:`PACKAGES`."""
    h = hashlib.sha256()
    for p in _sources():
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def check() -> bool:
    """Delete the packages' Numba cache files when the sources changed since they were
    written (module docstring); returns True when it cleared them."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return False
    try:
        digest = sources_digest()
        if STAMP.is_file() and STAMP.read_text().strip() == digest:
            return False
        for pkg in PACKAGES:
            for f in (ROOT / pkg).rglob("__pycache__/*.nb[ic]"):
                f.unlink(missing_ok=True)
        STAMP.parent.mkdir(exist_ok=True)
        tmp = STAMP.with_name(f"{STAMP.name}.{os.getpid()}.tmp")
        tmp.write_text(digest + "\n")
        os.replace(tmp, STAMP)
        return True
    except OSError:  # a read-only install: nothing to manage
        return False
