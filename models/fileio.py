"""Atomic file writing, the project's one way to write a file: a reader never sees a half file.

:class:`AtomicFile` owns a hidden temporary file in the target's folder; ``commit()``
gives it the usual ``0666 & ~umask`` permissions (``mkstemp`` alone would leave it
0600, unreadable to a colleague) and renames it over the target (``os.replace`` is
atomic on POSIX); ``abort()`` -- or any exception inside ``with`` -- removes it and
leaves the previous target, if any, untouched. :func:`atomic_write` is the one-call
form for files written at once; streaming writers (traces) hold an ``AtomicFile``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicFile:
    """A temporary sibling of ``path`` (``.NAME.XXXX.tmp``) that becomes ``path`` on :meth:`commit`.

    ``tmp`` is its path; open it yourself, or use the handle :meth:`open` returns.
    Usable as a context manager: commits on a clean exit, aborts on an exception.
    """

    def __init__(self, path: str | os.PathLike, suffix: str = ".tmp"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=suffix)
        os.close(fd)
        self.tmp = Path(tmp)
        self._handle = None

    def open(self, mode: str = "w"):
        """The temporary file opened for writing (text mode is UTF-8)."""
        self._handle = open(self.tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        return self._handle

    def _close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()

    def commit(self) -> Path:
        """Give the file the umask's permissions and move it over ``path``."""
        self._close()
        os.chmod(self.tmp, 0o666 & ~_umask())
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Remove the temporary file; ``path`` is left as it was."""
        self._close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_write(path: str | os.PathLike, write: Callable, *, binary: bool = False) -> Path:
    """Call ``write(handle)`` on a temp file (text, or binary if ``binary``), then rename it to ``path``.

    ``write`` may also be given the temp file's *name* by passing ``binary=None``
    (for libraries that insist on opening the file themselves, such as h5py).
    """
    f = AtomicFile(path)
    try:
        if binary is None:
            write(str(f.tmp))
        else:
            with f.open("wb" if binary else "w") as fh:
                write(fh)
        return f.commit()
    except BaseException:
        f.abort()
        raise
