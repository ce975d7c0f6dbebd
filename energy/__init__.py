"""Energy of mapped SNN runs: technology tables, the paper and hardware views, analytic
estimates from firing rates, NeuroBench counts and reports (DESIGN.md section 7)."""

from .counts import dense_ops, flops, layer_counters, neurobench, neurobench_from_run
from .errors import EnergyError, TechTableError, UnknownTableError
from .estimate import VIEWS, Estimate, analytic, ann_baseline, estimate, estimate_counters, run_rates
from .runstats import RunCounters, run_counters, runtime_s
from .tables import TechTable, list_tables, load_table


def report(*args, **kwargs):
    """See :func:`energy.reporting.write_report`."""
    from .reporting import write_report

    return write_report(*args, **kwargs)


__all__ = ["EnergyError", "TechTableError", "UnknownTableError", "TechTable", "list_tables", "load_table",
           "Estimate", "estimate", "estimate_counters", "RunCounters", "run_counters", "analytic", "ann_baseline",
           "run_rates", "runtime_s", "VIEWS",
           "flops", "dense_ops", "layer_counters", "neurobench", "neurobench_from_run", "report"]
