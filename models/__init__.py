"""Network IR, NIR I/O, lowering to populations and projections, reference
simulators, datasets and the model zoo."""

from . import jitcache as _jitcache

_jitcache.check()  # before any cached Numba kernel loads: drop caches compiled from older sources

from .errors import (  # noqa: F401
    DatasetError, GraphError, NIRFormatError, ParameterError, ShapeError,
    SimulationError, SnnchipError, UnsupportedNodeError,
)
from .graph import Graph  # noqa: F401
from .nirio import read_nir, write_nir  # noqa: F401
from .net import Net, Population  # noqa: F401,E402
from .lowering import lower  # noqa: F401,E402
from .reference import SimResult, simulate  # noqa: F401,E402
