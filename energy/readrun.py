"""Which reading of a run's counters an energy estimate uses: the engine's core axis for an
unrolled mapping (:func:`energy.runstats.unrolled_counters`), the stationary simulator's for a
weight-stationary one (:func:`energy.stationary.stationary_counters`). Its own module so that
both readers depend only on :mod:`energy.runstats` and nothing depends back."""

from __future__ import annotations

from .errors import EnergyError
from .runstats import RunCounters, unrolled_counters
from .stationary import stationary_counters

__all__ = ["run_counters"]


def run_counters(result, mapping) -> RunCounters:
    """Read a run's counters once (see :class:`~energy.runstats.RunCounters`) with the reader
    its mapping's ``core.conv_mapping`` calls for; raises :class:`EnergyError` without a
    mapping, or when the run has no counters, lacks one an estimate needs, or does not belong
    to ``mapping``."""
    if mapping is None:
        raise EnergyError("estimate: pass mapping= (the Mapping the run simulated)")
    if getattr(getattr(getattr(mapping, "chip", None), "core", None), "conv_mapping", "") == "weight_stationary":
        return stationary_counters(result, mapping)
    return unrolled_counters(result, mapping)
