"""Synthetic traffic for the router model and its load-latency measurement (BookSim style).

This module owns the traffic patterns (BookSim2's ``traffic.cpp`` definitions), the
Bernoulli packet source, and :func:`load_point` / :func:`load_sweep`, which measure one
offered load the way BookSim's ``sim_type = latency`` does: warm up, sample packets
created in a window, let them drain, report averages and mark unstable loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .router import RouterError, RouterParams, check_router_params, simulate_router

__all__ = ["TRAFFIC_PATTERNS", "destinations", "bernoulli_packets", "LoadPoint", "load_point", "load_sweep",
           "saturation_throughput"]

TRAFFIC_PATTERNS = ("uniform", "transpose", "bitcomp", "hotspot")


def _node_bits(n_nodes: int, pattern: str, even: bool) -> int:
    lg = int(n_nodes).bit_length() - 1
    if (1 << lg) != n_nodes or (even and lg % 2):
        need = "an even power of two" if even else "a power of two"
        raise RouterError(f"traffic {pattern}: needs a node count that is {need}, got {n_nodes}")
    return lg


def destinations(pattern: str, src: np.ndarray, n_nodes: int, rng: np.random.Generator,
                 hotspots: tuple[int, ...] = (0,)) -> np.ndarray:
    """Destination node of each packet from ``src`` (node ids ``y * width + x``), as BookSim2:

    * ``uniform``: uniform over all ``n_nodes`` nodes, the source included;
    * ``transpose``: swap the high and low halves of the node id's ``lg = log2(n)`` bits,
      ``d = ((s >> lg/2) & m) | ((s << lg/2) & (m << lg/2))``, ``m = 2**(lg/2) - 1``
      (``(x, y) -> (y, x)`` on a square power-of-two mesh); ``n`` an even power of two;
    * ``bitcomp``: ``d = ~s & (n - 1)``; ``n`` a power of two;
    * ``hotspot``: every packet goes to one of ``hotspots``, chosen uniformly.
    """
    src = np.asarray(src, dtype=np.int64)
    if pattern == "uniform":
        return rng.integers(0, n_nodes, size=src.size, dtype=np.int64)
    if pattern == "transpose":
        half = _node_bits(n_nodes, pattern, True) // 2
        m = (1 << half) - 1
        return ((src >> half) & m) | ((src << half) & (m << half))
    if pattern == "bitcomp":
        _node_bits(n_nodes, pattern, False)
        return (~src) & (n_nodes - 1)
    if pattern == "hotspot":
        hs = np.asarray(hotspots, dtype=np.int64)
        if hs.size == 0 or hs.min() < 0 or hs.max() >= n_nodes:
            raise RouterError(f"traffic hotspot: hotspot nodes must lie in [0, {n_nodes - 1}], got {list(hotspots)}")
        return hs[rng.integers(0, hs.size, size=src.size)]
    raise RouterError(f"traffic: unknown pattern {pattern!r}; choose from {', '.join(TRAFFIC_PATTERNS)}")


def bernoulli_packets(n_nodes: int, rate_packets: float, cycles: int, pattern: str, packet_flits: int, seed: int,
                      hotspots: tuple[int, ...] = (0,)):
    """A Bernoulli source per node: a new packet each cycle with probability ``rate_packets``
    (BookSim's ``injection_process = bernoulli``). Returns ``created, src, dst, flits``."""
    if not 0.0 <= rate_packets <= 1.0:
        raise RouterError(f"injection rate: packets per node per cycle must be in [0, 1], got {rate_packets}")
    rng = np.random.default_rng(seed)
    hit = rng.random((cycles, n_nodes)) < rate_packets
    created, src = np.nonzero(hit)
    created = created.astype(np.int64)
    src = src.astype(np.int64)
    dst = destinations(pattern, src, n_nodes, rng, hotspots)
    return created, src, dst, np.full(created.size, packet_flits, dtype=np.int64)


@dataclass(frozen=True)
class LoadPoint:
    """One offered load: offered and accepted flits/node/cycle, average packet latency
    (creation to tail ejection, source queueing included), network latency (head
    injection to tail ejection), the number of sampled packets, and ``unstable``
    (past saturation: a sampled packet never arrived, or the mesh accepted under 95 %
    of the flits offered in the window; latencies are then lower bounds)."""

    rate_packets: float
    offered_flits: float
    accepted_flits: float
    packet_latency: float
    network_latency: float
    sampled_packets: int
    unstable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def load_point(params: RouterParams, rate_packets: float, *, pattern: str = "uniform", packet_flits: int = 1,
               warmup_cycles: int = 3000, sample_cycles: int = 5000, drain_cycles: int = 5000, seed: int = 1,
               hotspots: tuple[int, ...] = (0,)) -> LoadPoint:
    """Measure one offered load (packets/node/cycle) on ``params``' mesh.

    Sources inject from cycle 0 to ``warmup + sample + drain``; the packets created in
    ``[warmup, warmup + sample)`` are the sample; accepted throughput counts flits
    ejected in that window. Compare BookSim's ``sim_type = latency``.
    """
    check_router_params(params)
    for name, v in (("warmup_cycles", warmup_cycles), ("sample_cycles", sample_cycles),
                    ("drain_cycles", drain_cycles)):
        if not 0 <= int(v) <= 10_000_000 or (name == "sample_cycles" and v < 1):
            raise RouterError(f"{name}: expected a cycle count in [0 or 1, 10,000,000], got {v}")
    if not 1 <= packet_flits <= 1 << 20:
        raise RouterError(f"packet_flits: expected an integer in [1, 1048576], got {packet_flits}")
    n = params.width * params.height
    total = warmup_cycles + sample_cycles + drain_cycles
    if n * total * max(rate_packets, 1e-9) > 20_000_000:
        raise RouterError(f"load point: about {n * total * rate_packets:,.0f} packets exceeds the 20,000,000 budget; "
                          "shorten the windows or the rate")
    created, src, dst, flits = bernoulli_packets(n, rate_packets, total, pattern, packet_flits, seed, hotspots)
    run = simulate_router(params, created, src, dst, flits, max_cycles=total, stop_when_done=True)
    lo, hi = warmup_cycles, warmup_cycles + sample_cycles
    sample = (created >= lo) & (created < hi)
    done = sample & (run.delivery >= 0)
    n_sample = int(sample.sum())
    ej = run.eject_flits
    accepted = float(ej[lo:min(hi, ej.size)].sum()) / (n * sample_cycles)
    offered_window = float(flits[sample].sum()) / (n * sample_cycles)
    unstable = bool(done.sum() < n_sample or accepted < 0.95 * offered_window)
    if done.any():
        pl = float(np.mean(run.delivery[done] - created[done]))
        nl = float(np.mean(run.delivery[done] - run.head_inject[done]))
    else:
        pl = nl = float("nan")
    return LoadPoint(float(rate_packets), float(rate_packets * packet_flits), accepted, pl, nl, n_sample, unstable)


def load_sweep(params: RouterParams, rates_packets, **kw) -> list[LoadPoint]:
    """:func:`load_point` at every rate (packets/node/cycle), in order."""
    return [load_point(params, float(r), **kw) for r in rates_packets]


def saturation_throughput(params: RouterParams, rates_packets, **kw) -> float:
    """Saturation throughput (flits/node/cycle): the highest accepted rate over
    ``rates_packets``, which should reach past saturation (BookSim's throughput plateau)."""
    return max(p.accepted_flits for p in load_sweep(params, rates_packets, **kw))
