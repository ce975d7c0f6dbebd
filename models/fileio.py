"""Atomic file writing, the project's one way to write a file: a reader never sees a half file.

:class:`AtomicFile` owns a hidden temporary file in the target's folder; ``commit()``
gives it the usual ``0666 & ~umask`` permissions (``mkstemp`` alone would leave it
0600, unreadable to a colleague) and renames it over the target (``os.replace`` is
atomic on POSIX); ``abort()`` -- or any exception inside ``with`` -- removes it and
leaves the previous target, if any, untouched. :func:`atomic_write` is the one-call
form for files written at once; streaming writers (traces) hold an ``AtomicFile``.
:func:`read_npz` is the one way to read a project ``.npz`` back: sizes checked against
the memory budget before any array is read, never unpickled.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .limits import check_bytes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Unit:
    """Commits on a clean exit from ``with``, aborts on an exception."""

    def commit(self):
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class AtomicFile(_Unit):
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


# ----------------------------------------------------------------- folders -----------------

def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderBusyError(OSError):
    """Another process is writing the same output folder."""


class AtomicFolder(_Unit):
    """Write the files of a folder as a unit: a reader sees the old folder or the new one, never a mix.

    The files go into a hidden sibling ``.NAME.PID.new`` (:attr:`tmp`); :meth:`commit`
    swaps it with ``NAME`` in one atomic step (``renameat2(RENAME_EXCHANGE)`` on Linux;
    elsewhere two renames), then moves the old folder's other entries (a ``run/``
    subfolder the new one does not write) into the new one and removes the rest of
    the old. A lock file (``.NAME.lock``, ``flock``) makes a second writer of the same
    folder fail at once with :class:`FolderBusyError`; leftovers of a writer that was
    killed (its process is gone) are cleaned up by the next writer: an unfinished new
    folder is removed, an old one's other entries are moved back first.
    """

    def __init__(self, path: str | os.PathLike):
        import fcntl

        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder", str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.parent / f".{self.path.name}.lock"
        while True:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderBusyError(16, "another snnchip process is writing this folder", str(self.path)) from None
            try:  # the lock file may have been removed by the previous holder: lock the live one
                if os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._lock_fd = fd
        self._clean_stale()
        self.tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.new"
        if self.tmp.exists():
            _rmtree(self.tmp)
        self.tmp.mkdir()
        self._done = False

    def _clean_stale(self) -> None:
        for p in self.path.parent.glob(f".{self.path.name}.*.*"):
            pid, _, kind = p.name[len(self.path.name) + 2:].partition(".")
            if not pid.isdigit() or kind not in ("new", "old") or _pid_alive(int(pid)):
                continue
            if kind == "old" and self.path.is_dir():
                self._move_leftovers(p)
            _rmtree(p)

    def _move_leftovers(self, old: Path) -> None:
        for entry in old.iterdir():
            if not (self.path / entry.name).exists() and not entry.name.startswith("."):
                os.replace(entry, self.path / entry.name)

    def commit(self) -> Path:
        os.chmod(self.tmp, 0o777 & ~_umask())
        if not self.path.exists():
            os.replace(self.tmp, self.path)
        else:
            old = self.path.parent / f".{self.path.name}.{os.getpid()}.old"
            if _exchange(self.tmp, self.path):
                os.replace(self.tmp, old)
            else:
                os.replace(self.path, old)
                os.replace(self.tmp, self.path)
            self._move_leftovers(old)
            _rmtree(old)
        self._done = True
        self._unlock()
        return self.path

    def abort(self) -> None:
        if not self._done:
            _rmtree(self.tmp)
            self._done = True
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            try:
                os.unlink(self._lock_path)
            except FileNotFoundError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None


def save_figure(fig, stem: str | os.PathLike, formats=("png", "pdf"), **savefig_kw) -> dict:
    """Write a matplotlib figure as ``stem.png``, ``stem.pdf`` ... atomically, then close it; {format: path}."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    kw = {"dpi": 150, **savefig_kw}
    try:
        return {ext: atomic_write(stem.with_name(f"{stem.name}.{ext}"),
                                  lambda name, ext=ext: fig.savefig(name, format=ext, **kw), binary=None)
                for ext in formats}
    finally:
        plt.close(fig)


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)


def read_npz(path: str | os.PathLike) -> dict:
    """The arrays of an ``.npz`` file: its uncompressed size checked against the memory
    budget (:func:`models.limits.check_bytes`, ``SizeLimitError``) before any array is
    read, loaded with ``allow_pickle=False``. A damaged file raises what zipfile/numpy
    raise (``OSError``, ``ValueError``, ``zipfile.BadZipFile``, ``EOFError``, ...): the
    caller names the file in its own error."""
    with zipfile.ZipFile(path) as zf:
        check_bytes(sum(i.file_size for i in zf.infolist()), f"{path}: uncompressed arrays")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
