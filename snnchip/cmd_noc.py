"""The ``noc`` command: synthetic traffic on the router model, BookSim2 style, for NoC co-design.

``add_parser(sub)`` adds ``snnchip noc``. Per offered load it writes the offered and
accepted flits/node/cycle, the average packet and network latency and whether the
load is past saturation (``noc.csv``), and the latency and throughput curves
(``noc.png`` / ``noc.pdf``). Router settings come from ``--chip`` (its ``noc`` section
and mesh) or ``ChipConfig.noc``'s defaults, then the options given here.
"""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

from models.errors import SnnchipError

__all__ = ["add_parser", "cmd_noc", "noc_figure"]

_FIELDS = ("rate_packets", "offered_flits", "accepted_flits", "packet_latency", "network_latency", "sampled_packets",
           "unstable")


def add_parser(sub) -> None:
    """Add ``snnchip noc`` to the subcommands ``sub``."""
    from hwsim.router_traffic import TRAFFIC_PATTERNS

    s = sub.add_parser("noc", help="synthetic traffic on the router model (BookSim2 style): latency and accepted "
                       "throughput per offered load; CSV and figure")
    s.add_argument("--mesh", metavar="WxH", help="mesh size, e.g. 8x8 (default: the --chip's mesh, else 8x8)")
    s.add_argument("--traffic", default="uniform", choices=TRAFFIC_PATTERNS,
                   help="BookSim2 traffic pattern: uniform (source included), transpose ((x,y)->(y,x), node count an "
                        "even power of two), bitcomp (~id, a power of two), hotspot (all to --hotspots) "
                        "(default uniform)")
    s.add_argument("--hotspots", default="0", metavar="N[,N...]",
                   help="hotspot node ids y*width+x for --traffic hotspot, chosen uniformly (default 0)")
    s.add_argument("--packet-flits", type=int, default=1, metavar="N", help="flits per packet (default 1)")
    s.add_argument("--vcs", type=int, help="virtual channels per input port (default: the chip's noc.vcs, else 1)")
    s.add_argument("--buffer", type=int, metavar="B", help="input buffer per port and VC, flits (default: the "
                   "chip's noc.buffer_flits, else 4)")
    s.add_argument("--rates", default="0.02,0.05,0.1,0.15,0.2,0.25,0.3", metavar="R1,R2,...",
                   help="offered loads, in --rate-unit per node per cycle (default 0.02,0.05,0.1,0.15,0.2,0.25,0.3)")
    s.add_argument("--rate-unit", default="packets", choices=["packets", "flits"],
                   help="unit of --rates: packets (BookSim's injection_rate) or flits per node per cycle "
                        "(default packets)")
    s.add_argument("--chip", help="take the router settings and mesh from this preset or YAML/JSON file "
                   "(default: none, ChipConfig.noc's defaults = BookSim2's iq_router settings, link 1 cycle)")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a chip field, e.g. noc.credit_cycles=2; needs --chip; repeatable (default: none)")
    s.add_argument("--warmup", type=int, default=3000, metavar="CYCLES",
                   help="warm-up cycles before the sample window (default 3000)")
    s.add_argument("--sample", type=int, default=5000, metavar="CYCLES",
                   help="sample window: packets created in it are measured (default 5000)")
    s.add_argument("--drain", type=int, default=5000, metavar="CYCLES",
                   help="cycles after the window for sampled packets to arrive; those that do not mark the load "
                        "unstable (default 5000)")
    s.add_argument("--seed", type=int, default=1, help="seed of the Bernoulli sources and destinations (default 1)")
    s.add_argument("-o", "--output", default="noc_out", help="folder for noc.csv, noc.png and noc.pdf "
                   "(default noc_out)")
    s.set_defaults(func=cmd_noc)


def _mesh(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,4})\s*[xX]\s*(\d{1,4})\s*", text or "")
    if not m:
        raise SnnchipError(f"--mesh: expected WIDTHxHEIGHT such as 8x8, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _numbers(text: str, what: str, kind=float) -> list:
    try:
        out = [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise SnnchipError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not out:
        raise SnnchipError(f"{what}: no values in {text!r}")
    return out


def router_params_from_args(args):
    """The :class:`hwsim.router.RouterParams` the options ask for."""
    from hwsim.router import RouterParams, check_router_params, router_params_from_chip

    if args.set and not args.chip:
        raise SnnchipError("--set changes a chip: give --chip as well")
    mesh = _mesh(args.mesh) if args.mesh else None
    if args.chip:
        from .cmd_chip import chip_from_args

        chip = chip_from_args(args)
        p = router_params_from_chip(chip, *(mesh or (None, None)))
    else:
        w, h = mesh or (8, 8)
        p = RouterParams(w, h)
    if args.vcs is not None:
        p = replace(p, vcs=args.vcs)
    if args.buffer is not None:
        p = replace(p, buffer_flits=args.buffer)
    return check_router_params(p)


def cmd_noc(args):
    from hwsim.router_traffic import load_point

    p = router_params_from_args(args)
    rates = _numbers(args.rates, "--rates")
    hotspots = tuple(_numbers(args.hotspots, "--hotspots", int))
    if not 1 <= args.packet_flits <= 1 << 20:
        raise SnnchipError(f"--packet-flits must be in [1, 1048576], got {args.packet_flits}")
    if args.rate_unit == "flits":
        rates = [r / args.packet_flits for r in rates]
    for r in rates:
        if not 0 < r <= 1:
            raise SnnchipError(f"--rates: every load must give 0 < packets per node per cycle <= 1, got {r:g}")
    for name, v, low in (("--warmup", args.warmup, 0), ("--sample", args.sample, 1), ("--drain", args.drain, 0)):
        if v < low:
            raise SnnchipError(f"{name} must be >= {low}, got {v}")
    points = [load_point(p, r, pattern=args.traffic, packet_flits=args.packet_flits, warmup_cycles=args.warmup,
                         sample_cycles=args.sample, drain_cycles=args.drain, seed=args.seed, hotspots=hotspots)
              for r in rates]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    from models.fileio import AtomicFile

    with AtomicFile(out / "noc.csv") as f:
        w = csv.writer(f.open("w"), lineterminator="\n")
        w.writerow(["mesh", "traffic", "packet_flits", "vcs", "buffer_flits", *_FIELDS])
        for pt in points:
            d = pt.as_dict()
            w.writerow([f"{p.width}x{p.height}", args.traffic, args.packet_flits, p.vcs, p.buffer_flits,
                        *[(f"{d[k]:.6g}" if isinstance(d[k], float) else d[k]) for k in _FIELDS]])
    title = (f"{p.width}x{p.height} mesh, {args.traffic}, {args.packet_flits}-flit packets, {p.vcs} VC x "
             f"{p.buffer_flits} flits")
    noc_figure({"ours": points}, out / "noc", title)
    print(title)
    print(f"{'offered':>9} {'accepted':>9} {'packet lat':>11} {'network lat':>12}  (flits/node/cycle, cycles)")
    for pt in points:
        mark = "  unstable (past saturation; latencies are lower bounds)" if pt.unstable else ""
        print(f"{pt.offered_flits:9.4f} {pt.accepted_flits:9.4f} {pt.packet_latency:11.2f} "
              f"{pt.network_latency:12.2f}{mark}")
    print(f"wrote {out / 'noc.csv'}, {out / 'noc.png'}, {out / 'noc.pdf'}")
    return 0


def noc_figure(curves: dict, stem, title: str) -> None:
    """Latency vs offered load and accepted vs offered load, one line per curve; unstable
    points hollow. ``curves``: label -> list of objects with ``offered_flits``,
    ``accepted_flits``, ``packet_latency``, ``unstable``. Writes ``stem.png`` and ``.pdf``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.fileio import save_figure

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.0, 3.8))
    for label, pts in curves.items():
        x = [q.offered_flits for q in pts]
        line, = a1.plot(x, [q.packet_latency for q in pts], "-", lw=1.2, label=label)
        c = line.get_color()
        for q in pts:
            a1.plot(q.offered_flits, q.packet_latency, "o", ms=5, color=c, mfc="none" if q.unstable else c)
        a2.plot(x, [q.accepted_flits for q in pts], "o-", ms=4, lw=1.2, color=c, label=label)
    a1.set_yscale("log")
    a1.set_xlabel("offered load (flits/node/cycle)")
    a1.set_ylabel("average packet latency (cycles)")
    a1.set_title("latency (hollow: unstable)", fontsize=9)
    a2.set_xlabel("offered load (flits/node/cycle)")
    a2.set_ylabel("accepted (flits/node/cycle)")
    a2.set_title("throughput", fontsize=9)
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem, dpi=130)
