"""Calibration of the router model against BookSim2 reference curves (issue 20).

This module owns reading BookSim2's curves (Jiang et al., ISPASS 2013; a folder of
``latency_<C>_*.csv`` and ``throughput_<C>.csv`` with the columns BookSim reports, one
configuration per letter), running the router model with the same settings and traffic,
and the comparison the tolerances are stated on:

* zero-load packet latency: both simulators at BookSim's lowest offered load;
* saturation throughput: the highest accepted flits/node/cycle over the throughput
  file's offered loads, in each simulator;
* average packet latency at 50 % and 80 % of BookSim's saturation throughput: both
  curves are sampled at BookSim's loads and read at that load by the same linear
  interpolation between the two stable loads that bracket it (the latency of our model
  simulated at exactly that load is reported beside it).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .router import RouterError, RouterParams
from .router_traffic import load_point

__all__ = ["TOLERANCES", "BooksimConfig", "read_booksim", "booksim_params", "Calibration", "calibrate"]

TOLERANCES = {"zero_load": 0.05, "saturation": 0.10, "latency_50": 0.15, "latency_80": 0.15}


@dataclass(frozen=True)
class BooksimConfig:
    """One BookSim configuration: its settings and its two curves (rows as dicts of floats;
    ``status`` kept as text)."""

    name: str
    k: int
    traffic: str
    packet_flits: int
    vcs: int
    buffer_flits: int
    latency: list = field(repr=False)
    throughput: list = field(repr=False)

    @property
    def saturation(self) -> float:
        return max(r["accepted_flits_per_node_cycle"] for r in self.throughput if r["status"] == "ok")


def _rows(path: Path) -> list[dict]:
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            row = {}
            for k, v in r.items():
                if k in ("config", "traffic", "status"):
                    row[k] = v
                else:
                    row[k] = float(v) if v not in ("", None) else float("nan")
            out.append(row)
    if not out:
        raise RouterError(f"{path}: no rows")
    return out


def read_booksim(folder: str | Path) -> dict[str, BooksimConfig]:
    """Every configuration in ``folder`` that has both a latency and a throughput file."""
    folder = Path(folder)
    configs = {}
    for lat in sorted(folder.glob("latency_*.csv")):
        name = lat.name.split("_")[1]
        thr = folder / f"throughput_{name}.csv"
        if not thr.exists():
            continue
        lrows, trows = _rows(lat), _rows(thr)
        r0 = lrows[0]
        configs[name] = BooksimConfig(name, int(r0["k"]), r0["traffic"], int(r0["packet_size"]), int(r0["num_vcs"]),
                                      int(r0["vc_buf_size"]), lrows, trows)
    return configs


def booksim_params(cfg: BooksimConfig) -> RouterParams:
    """Our router with the configuration's settings; the delays are BookSim's as run
    (routing 0, VC and switch allocation 1, switch traversal 1, credit 1, link 1) and
    the injection channel 2 cycles (the one calibrated number, see ``ChipConfig.noc``)."""
    return RouterParams(cfg.k, cfg.k, vcs=cfg.vcs, buffer_flits=cfg.buffer_flits, routing_cycles=0, vc_alloc_cycles=1,
                        sw_alloc_cycles=1, switch_cycles=1, link_cycles=1, credit_cycles=1, inject_cycles=2,
                        eject_cycles=1)


@dataclass
class Calibration:
    """Both simulators' figures for one configuration; ``*_err`` are relative errors of
    ours against BookSim; ``passed`` per criterion against :data:`TOLERANCES`."""

    config: str
    zero_load_booksim: float
    zero_load_ours: float
    saturation_booksim: float
    saturation_ours: float
    load_50: float
    latency_50_booksim: float
    latency_50_ours: float
    latency_50_ours_direct: float
    load_80: float
    latency_80_booksim: float
    latency_80_ours: float
    latency_80_ours_direct: float
    curve_booksim: list = field(default_factory=list)   # (offered flits, packet latency, unstable)
    curve_ours: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)
    passed: dict = field(default_factory=dict)

    def row(self) -> dict:
        d = asdict(self)
        d.pop("curve_booksim")
        d.pop("curve_ours")
        return d


def _interp(rows: list[dict], load: float) -> tuple[int, int, float]:
    """Indices of the two stable latency rows bracketing ``load`` (offered flits) and the weight."""
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
    x = [rows[i]["offered_flits_per_node_cycle"] for i in ok]
    for a, b in zip(range(len(ok) - 1), range(1, len(ok))):
        if x[a] <= load <= x[b]:
            return ok[a], ok[b], (load - x[a]) / (x[b] - x[a])
    raise RouterError(f"load {load:.4f} is not bracketed by BookSim's stable loads {x}")


def calibrate(cfg: BooksimConfig, *, warmup_cycles: int = 2000, sample_cycles: int = 4000, drain_cycles: int = 3000,
              seed: int = 1, full_curve: bool = False) -> Calibration:
    """Run the router model against one BookSim configuration (see the module docstring).

    ``full_curve`` also simulates every offered load of BookSim's latency file (for the
    figure); otherwise only the loads the criteria need."""
    p = booksim_params(cfg)
    kw = dict(pattern=cfg.traffic, packet_flits=cfg.packet_flits, warmup_cycles=warmup_cycles,
              sample_cycles=sample_cycles, drain_cycles=drain_cycles, seed=seed)
    cache: dict[float, object] = {}

    def ours(offered_flits: float):
        if offered_flits not in cache:
            cache[offered_flits] = load_point(p, offered_flits / cfg.packet_flits, **kw)
        return cache[offered_flits]

    lat = cfg.latency
    x0 = lat[0]["offered_flits_per_node_cycle"]
    zl_b, zl_o = lat[0]["packet_latency_avg"], ours(x0).packet_latency
    sat_b = cfg.saturation
    sat_o = max(ours(r["offered_flits_per_node_cycle"]).accepted_flits for r in cfg.throughput)
    res = {}
    for frac in (0.5, 0.8):
        load = frac * sat_b
        i, j, w = _interp(lat, load)
        xb = (lat[i]["packet_latency_avg"], lat[j]["packet_latency_avg"])
        xo = (ours(lat[i]["offered_flits_per_node_cycle"]).packet_latency,
              ours(lat[j]["offered_flits_per_node_cycle"]).packet_latency)
        direct = load_point(p, load / cfg.packet_flits, **kw).packet_latency
        res[frac] = (load, (1 - w) * xb[0] + w * xb[1], (1 - w) * xo[0] + w * xo[1], direct)
    if full_curve:
        for r in lat:
            ours(r["offered_flits_per_node_cycle"])
    cal = Calibration(cfg.name, zl_b, zl_o, sat_b, sat_o, *res[0.5], *res[0.8])
    cal.curve_booksim = [(r["offered_flits_per_node_cycle"], r["packet_latency_avg"], r["status"] != "ok") for r in lat]
    cal.curve_ours = sorted((x, lp.packet_latency, lp.unstable) for x, lp in cache.items())
    pairs = {"zero_load": (zl_o, zl_b), "saturation": (sat_o, sat_b), "latency_50": (cal.latency_50_ours,
             cal.latency_50_booksim), "latency_80": (cal.latency_80_ours, cal.latency_80_booksim)}
    for k, (o, b) in pairs.items():
        cal.errors[k] = float((o - b) / b)
        cal.passed[k] = bool(np.isfinite(o) and abs(o - b) <= TOLERANCES[k] * b)
    return cal
