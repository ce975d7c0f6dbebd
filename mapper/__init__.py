"""The mapper: a float network becomes an integer net placed and routed on a chip.

The passes, each a plain function over plain data (docs/design.md)::

    qnet, report = quantize(net, chip)           # mapper.quantize
    tiling = tile(qnet, chip)                    # mapper.tiling
    placement = place(tiling.n_cores, traffic, chip, strategy)   # mapper.placement
    routes = route(placement, flows, chip)       # mapper.routing
    violations = check(tiling, chip, ...)        # mapper.validate (validate() raises)

``map_model`` runs them in order and returns a :class:`Mapping` (saves and loads);
``fold_sweep`` trades cores for cycles. ``spiking_input`` maps a real-valued input as
rate/poisson spikes (chips without ANN mode), ``assign_axon_types`` fits TrueNorth's axon
types, and a chip with ``core.conv_mapping: weight_stationary`` gives a
:class:`StationaryMapping` (:mod:`mapper.stationary`; ``hwsim.simulate`` runs it with
``hwsim.stationary``, ``check_runnable`` refuses it to the unrolled ``hwsim.compile``). Crossbar-aware pruning is the subpackage
:mod:`mapper.prune` (``prune.prune``, ``prune.finetune``): a function named ``prune``
here would hide it. Note that ``mapper.quantize`` and ``mapper.validate`` are the
functions; their modules import as ``from mapper.quantize import ...``.
"""

from . import prune
from .axon_types import assign_axon_types
from .mapping import EncodingError, Mapping, MappingFileError, fold_sweep, map_model, spiking_input
from .stationary import StationaryError, StationaryMapping, check_runnable
from .placement import Placement, PlacementError, place
from .quantize import QuantizationError, quantize
from .routing import Flows, Routes, flows_from_tiling, route
from .tiling import Tile, Tiling, TilingError, tile
from .validate import MappingError, Violation, check, validate

__all__ = ["quantize", "tile", "place", "route", "flows_from_tiling", "check", "validate", "map_model",
           "fold_sweep", "prune", "spiking_input", "assign_axon_types", "check_runnable", "Mapping",
           "StationaryMapping", "Tiling", "Tile", "Placement", "Flows", "Routes", "Violation",
           "QuantizationError", "TilingError", "PlacementError", "MappingError", "MappingFileError",
           "EncodingError", "StationaryError"]
