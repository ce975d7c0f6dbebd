"""Atomic file writing: a reader never sees a half-written file.

:func:`atomic_write` writes into a temporary file in the target's folder and
renames it over the target (``os.replace`` is atomic on POSIX); if anything
raises -- including KeyboardInterrupt -- the temporary file is removed and the
previous target, if any, is left untouched. The file gets the usual
``0666 & ~umask`` permissions (``mkstemp`` alone would leave it 0600).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable, *, binary: bool = False) -> Path:
    """Call ``write(handle)`` on a temp file (text, or binary if ``binary``), then rename it to ``path``.

    ``write`` may also be given the temp file's *name* by passing ``binary=None``
    (for libraries that insist on opening the file themselves, such as h5py).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if binary is None:
            os.close(fd)
            write(tmp)
        else:
            with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
                write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
