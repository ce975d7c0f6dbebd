"""The snnchip error hierarchy.

Every user-facing failure raises a subclass of :class:`SnnchipError` whose message
names the file, node, field or limit at fault. The CLI prints ``str(err)`` as one
line and exits non-zero. All packages (hwsim, mapper, energy) import from here.
"""

from __future__ import annotations


class SnnchipError(Exception):
    """Base class of every error snnchip raises on purpose."""


class NIRFormatError(SnnchipError):
    """A .nir file cannot be read: missing, truncated, not HDF5, or malformed."""


class GraphError(SnnchipError):
    """A graph is structurally wrong: edge to a missing node, no input, bad cycle."""


class ShapeError(SnnchipError):
    """Shapes of a node's parameters or of connected nodes disagree."""


class ParameterError(SnnchipError):
    """A parameter value is out of range: NaN/inf weights, non-positive threshold."""


class UnsupportedNodeError(SnnchipError):
    """A node type snnchip does not implement."""


class DatasetError(SnnchipError):
    """A data file is missing, corrupt or has the wrong format."""


class SimulationError(SnnchipError):
    """Bad simulation request: wrong input shape, steps <= 0, unknown option."""


class SizeLimitError(SnnchipError):
    """An input declares more data than the memory budget allows (see :mod:`models.limits`)."""
