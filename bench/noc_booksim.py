"""The router model against BookSim2's reference curves (shared/data/booksim): one overlay
figure per configuration (both simulators' latency vs offered load) and the calibration
table (zero-load, saturation, latency at 50/80 % of BookSim's saturation, pass/fail
against issue 20's tolerances), written to bench/results/.

Usage: ``python bench/noc_booksim.py [--data ../shared/data/booksim] [--sample 5000]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hwsim.router_booksim import TOLERANCES, calibrate, read_booksim
from models.fileio import save_figure

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "booksim"


def overlay(cal, cfg, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for label, curve, colour in (("BookSim2", cal.curve_booksim, "k"), ("snnchip router", cal.curve_ours, "C1")):
        x = [c[0] for c in curve]
        y = [c[1] for c in curve]
        ax.plot(x, y, "-", color=colour, lw=1.2, label=label)
        for xi, yi, unstable in curve:
            ax.plot(xi, yi, "o", ms=5, color=colour, mfc="none" if unstable else colour)
    for frac in (0.5, 0.8):
        ax.axvline(frac * cal.saturation_booksim, color="grey", lw=0.6, ls=":")
    ax.axvline(cal.saturation_booksim, color="k", lw=0.8, ls="--", label=f"BookSim saturation {cal.saturation_booksim:.3f}")
    ax.axvline(cal.saturation_ours, color="C1", lw=0.8, ls="--", label=f"ours {cal.saturation_ours:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (flits/node/cycle)")
    ax.set_ylabel("average packet latency (cycles)")
    ax.set_title(f"config {cfg.name}: {cfg.k}x{cfg.k} {cfg.traffic}, {cfg.packet_flits}-flit packets, "
                 f"{cfg.vcs} VC x {cfg.buffer_flits} flits (hollow: unstable)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out / f"noc_booksim_{cfg.name}", formats=("png",), dpi=130)["png"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help=f"BookSim2 curves folder (default {DEFAULT_DATA})")
    ap.add_argument("--sample", type=int, default=5000, help="sample window in cycles (default 5000)")
    ap.add_argument("--out", default=str(HERE / "results"), help="output folder (default bench/results)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = read_booksim(args.data)
    if not configs:
        raise SystemExit(f"no BookSim2 curves in {args.data}")
    tol = ", ".join(f"{k} {v:.0%}" for k, v in TOLERANCES.items())
    lines = ["# Router model vs BookSim2 (shared/data/booksim)", "",
             f"Tolerances: {tol}. Latency at 50/80 %: both curves read at that load by linear interpolation between "
             "BookSim's two bracketing stable loads; 'direct' = ours simulated at exactly that load. "
             f"Windows: warm-up 3000, sample {args.sample}, drain 5000 cycles, seed 1.", "",
             "| config | zero-load BookSim | ours | err | saturation BookSim | ours | err | load 50 % | lat BookSim | "
             "ours | err | ours direct | load 80 % | lat BookSim | ours | err | ours direct | pass |",
             "|---|" + "---:|" * 16 + "---|"]
    t0 = time.perf_counter()
    for name, cfg in configs.items():
        cal = calibrate(cfg, warmup_cycles=3000, sample_cycles=args.sample, drain_cycles=5000, full_curve=True)
        fig = overlay(cal, cfg, out)
        e = cal.errors
        ok = "pass" if all(cal.passed.values()) else "FAIL: " + ", ".join(k for k, v in cal.passed.items() if not v)
        lines.append(
            f"| {name} ({cfg.packet_flits} flit, {cfg.vcs} VC, {cfg.buffer_flits} buf) | {cal.zero_load_booksim:.2f} | "
            f"{cal.zero_load_ours:.2f} | {e['zero_load']:+.1%} | {cal.saturation_booksim:.3f} | {cal.saturation_ours:.3f} | "
            f"{e['saturation']:+.1%} | {cal.load_50:.3f} | {cal.latency_50_booksim:.2f} | {cal.latency_50_ours:.2f} | "
            f"{e['latency_50']:+.1%} | {cal.latency_50_ours_direct:.2f} | {cal.load_80:.3f} | "
            f"{cal.latency_80_booksim:.2f} | {cal.latency_80_ours:.2f} | {e['latency_80']:+.1%} | "
            f"{cal.latency_80_ours_direct:.2f} | {ok} |")
        print(lines[-1], f"  -> {fig.name}", flush=True)
    lines += ["", f"Wall time {time.perf_counter() - t0:.1f} s (shared 2-core machine)."]
    (out / "noc_booksim.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'noc_booksim.md'}")


if __name__ == "__main__":
    main()
