"""Size budgets: what an input file may make the process allocate, checked before allocating.

A file declares its sizes (HDF5 dataset shapes, npz members' uncompressed sizes,
gzip streams, event time spans) before the data is read; every reader compares
the declared bytes with :func:`max_bytes` first and raises :class:`SizeLimitError`
naming the file, the item, its size and how to raise the limit. The default budget
is a quarter of the machine's physical memory; ``$SNNCHIP_MAX_BYTES`` (bytes, or
with a K/M/G suffix) or :func:`set_max_bytes` change it.
"""

from __future__ import annotations

import os

from .errors import SizeLimitError

_override: int | None = None
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def machine_bytes() -> int:
    """Physical memory of this machine in bytes (8 GiB when the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _parse(text: str) -> int:
    t = text.strip().upper().removesuffix("B")
    mult = _UNITS.get(t[-1:], 1)
    num = t[:-1] if t[-1:] in _UNITS else t
    try:
        value = int(float(num) * mult)
    except ValueError:
        raise SizeLimitError(f"$SNNCHIP_MAX_BYTES={text!r}: expected bytes, e.g. 4G or 500M") from None
    if value <= 0:
        raise SizeLimitError(f"$SNNCHIP_MAX_BYTES={text!r}: must be positive")
    return value


def max_bytes() -> int:
    """The budget in bytes: :func:`set_max_bytes`, else ``$SNNCHIP_MAX_BYTES``, else RAM / 4."""
    if _override is not None:
        return _override
    env = os.environ.get("SNNCHIP_MAX_BYTES")
    return _parse(env) if env else machine_bytes() // 4


def set_max_bytes(n: int | None) -> None:
    """Set the budget for this process (``None``: back to the environment / default)."""
    global _override
    _override = None if n is None else int(n)


def format_bytes(n: int) -> str:
    """``n`` bytes for a message: ``1.5 GiB``, ``12.0 MiB``, ``300 B``."""
    return _fmt(n)


def _fmt(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,} B"


def check_bytes(n: int, where: str) -> None:
    """Raise :class:`SizeLimitError` if ``n`` bytes exceed the budget; ``where`` names the file and item."""
    limit = max_bytes()
    if n > limit:
        need_gib = -(-int(n) // (1 << 30)) + 1
        raise SizeLimitError(f"{where}: {_fmt(int(n))} is more than the memory budget of {_fmt(limit)}; "
                             f"if the file is trusted, raise the budget (SNNCHIP_MAX_BYTES={need_gib}G)")
