"""Energy of mapped SNN runs: technology tables, the paper (the SNN papers' formula on the graph as
written), chip-ops (the chip's op counters) and hardware views, analytic estimates from firing rates,
NeuroBench counts on the graph as written and reports (docs/design.md)."""

from .counts import dense_ops, flops, layer_counters, neurobench, neurobench_from_run
from .errors import EnergyError, TechTableError, UnknownTableError
from .estimate import (VIEW_CONVENTIONS, VIEWS, Estimate, analytic, ann_baseline, estimate, estimate_counters,
                       paper_formula, run_rates)
from .graphcounts import layer_labels, layers_of, neurobench_graph
from .readrun import run_counters
from .runstats import RunCounters, runtime_s
from .tables import TechTable, list_tables, load_table


def report(*args, **kwargs):
    """See :func:`energy.reporting.write_report`."""
    from .reporting import write_report

    return write_report(*args, **kwargs)


__all__ = ["EnergyError", "TechTableError", "UnknownTableError", "TechTable", "list_tables", "load_table",
           "Estimate", "estimate", "estimate_counters", "RunCounters", "run_counters", "analytic", "ann_baseline",
           "run_rates", "runtime_s", "VIEWS", "VIEW_CONVENTIONS", "paper_formula", "neurobench_graph", "layers_of",
           "layer_labels",
           "flops", "dense_ops", "layer_counters", "neurobench", "neurobench_from_run", "report"]
