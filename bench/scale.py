"""Scale of the chip simulator (issue 17): map time, compile time, kernel-table time,
program and table bytes, peak RSS and functional samples/s of zoo models at CIFAR
shape, each in a process of its own (so its peak RSS is its own), with an
address-space limit (a model that does not fit is reported, not killed by the OOM
killer).

``--before REPO`` runs the same measurement on another checkout (e.g. the main branch
before this work) in the same run, for the models of ``--before-models``, and prints
the ratios. Inputs: rate-coded (Bernoulli) frames of smooth random images (a 4x4
block-upsampled uniform image, so neighbouring pixels are correlated as in natural
images), ``--rate`` spikes per pixel and step at full intensity. The activity is
that of the zoo's seeded random weights (no data-based threshold balancing yet); the
per-layer firing rates are printed so the reader can judge it.

The first ``--exact-samples`` samples are checked against the integer reference
(:func:`models.intref.simulate_int`): every population's spikes and membranes.

Usage: ``python bench/scale.py [--models lenet5,vgg11] [--steps 4] [--samples 4]
[--before /work/main --before-models lenet5] [--limit-gb 15] [--exact-samples 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NOTES = "<!-- notes: kept by bench/scale.py -->"


def _child(args) -> dict:
    """One model in this process: every phase timed, RSS after each phase."""
    sys.path.insert(0, str(Path(args.repo).resolve()))
    if args.limit_gb:
        lim = int(args.limit_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    import numba
    import numpy as np

    from hwsim.chip import load_chip
    from hwsim.engine import simulate
    from hwsim.engine.build import kernel_inputs
    from hwsim.program import compile as compile_program
    from mapper.mapping import map_model
    from models import lower, zoo

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    out = {"model": args.child, "repo": str(args.repo), "threads": numba.get_num_threads()}
    try:
        g = zoo.build(args.child, "cifar", seed=0)
        tot = zoo.totals(g)
        out.update(weights=tot["weights"], synapses=tot["synapses"], neurons=tot["neurons"])
        net = lower(g, input_spiking=True)
        t = time.perf_counter()
        m = map_model(net, load_chip("tianjic"))
        out.update(map_s=time.perf_counter() - t, rss_map_mb=rss_mb(), tiles=len(m.tiling.tiles),
                   cores=len(m.tiling.cores))
        t = time.perf_counter()
        prog = compile_program(m)
        out.update(compile_s=time.perf_counter() - t, rss_compile_mb=rss_mb(), entries=int(prog.ent_acc.size),
                   program_mb=sum(a.nbytes for a in prog.arrays().values()) / 1e6)
        t = time.perf_counter()
        # the key simulate() uses for a spiking input without timing (hwsim/engine/run.py)
        kin = kernel_inputs(prog, "subtract", "binary", None, 1, bool(prog.input_spiking and prog.payload_bits == 0),
                            -(-int(prog.membrane_bits) // max(prog.flit_bits, 1)), False)
        out.update(tables_s=time.perf_counter() - t, rss_tables_mb=rss_mb(),
                   tables_mb=sum(a.nbytes for a in kin) / 1e6)
        rng = np.random.default_rng(0)
        C, H, W = net.input.shape
        img = rng.random((args.samples, C, H // 4, W // 4)).repeat(4, axis=2).repeat(4, axis=3)
        x = (rng.random((args.steps,) + img.shape) < args.rate * img).astype(np.float32)
        simulate(prog, x[:, :1], timing=False)  # Numba caches loaded
        t = time.perf_counter()
        r = simulate(prog, x, timing=False)
        dt = time.perf_counter() - t
        cnt = r.counters.sum(axis=0)
        names = list(r.counter_names)
        spikes = cnt[:, names.index("spikes")]
        rates = {}
        for i, p in enumerate(prog.pop_names[1:], start=1):
            cores = [c for c, n in enumerate(r.core_population) if n == p]
            rates[p] = float(spikes[cores].sum()) / (int(prog.pop_size[i]) * args.steps * args.samples)
        # exactness on the first samples: every population's spikes and membranes equal
        # the integer reference (models.intref, convolutions never expanded)
        from models.intref import simulate_int

        nx = min(args.exact_samples, args.samples)
        if nx:
            chip_r = simulate(prog, x[:, :nx], timing=False, record="all")
            ref = simulate_int(m.net, x[:, :nx], record="all")
            out["exact"] = bool(np.array_equal(chip_r.output, ref.output) and all(
                np.array_equal(chip_r.spikes[k], ref.spikes[k]) and np.array_equal(chip_r.membrane[k], ref.membrane[k])
                for k in ref.spikes))
            out["exact_samples"] = nx
        out.update(sim_s=dt, samples_s=args.samples / dt, rss_peak_mb=rss_mb(),
                   syn_events=int(cnt[:, names.index("acs")].sum() + cnt[:, names.index("macs")].sum()),
                   rates=rates, input_rate=float(x.mean()))
    except MemoryError:
        out["error"] = f"MemoryError under the {args.limit_gb:g} GiB address-space limit"
        out["rss_peak_mb"] = rss_mb()
    return out


def _run(repo, model, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", model, "--repo", str(repo),
           "--steps", str(args.steps), "--samples", str(args.samples), "--rate", str(args.rate),
           "--limit-gb", str(args.limit_gb), "--exact-samples", str(args.exact_samples)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=str(repo))
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"model": model, "repo": str(repo), "error": f"exit {p.returncode}: {p.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _fmt(r: dict, key: str, spec: str) -> str:
    return format(r[key], spec) if key in r else "-"


def _table(rows) -> list:
    lines = ["| model | code | weights | synapses | crossbar entries | tiles | map s | compile s | tables s | "
             "program MB | tables MB | peak RSS MB | functional samples/s | synaptic events/s | = integer reference |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ev = f"{r['syn_events'] / r['sim_s'] / 1e6:,.1f} M" if "sim_s" in r else "-"
        exact = (("yes" if r["exact"] else "**no**") + f" ({r['exact_samples']} samples, all populations)"
                 if "exact" in r else "-")
        lines.append(f"| {r['model']} | {r['label']} | {_fmt(r, 'weights', ',')} | {_fmt(r, 'synapses', ',')} | "
                     f"{_fmt(r, 'entries', ',')} | {_fmt(r, 'tiles', ',')} | {_fmt(r, 'map_s', '.1f')} | "
                     f"{_fmt(r, 'compile_s', '.1f')} | {_fmt(r, 'tables_s', '.1f')} | {_fmt(r, 'program_mb', ',.1f')} | "
                     f"{_fmt(r, 'tables_mb', ',.1f')} | {_fmt(r, 'rss_peak_mb', ',.0f')} | "
                     f"{_fmt(r, 'samples_s', ',.2f')} | {ev} | {exact} |")
        if "error" in r:
            lines.append(f"| | | {r['error']} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lenet5,vgg11")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--limit-gb", type=float, default=15.0)
    ap.add_argument("--exact-samples", type=int, default=2,
                    help="samples checked against the integer reference, every population (default 2)")
    ap.add_argument("--before", default=None, help="another checkout measured in the same run (default: none)")
    ap.add_argument("--before-models", default="lenet5")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.md"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--repo", default=str(ROOT), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    rows = []
    for model in args.models.split(","):
        if args.before and model in args.before_models.split(","):
            b = _run(args.before, model, args)
            b["label"] = "before"
            rows.append(b)
            print(json.dumps(b), flush=True)
        a = _run(ROOT, model, args)
        a["label"] = "this"
        rows.append(a)
        print(json.dumps(a), flush=True)
    import numba
    import numpy as np

    machine = (f"cpu {platform.processor() or platform.machine()}; cores {os.cpu_count()}; numba threads "
               f"{numba.get_num_threads()}; python {platform.python_version()}; numpy {np.__version__}; "
               f"numba {numba.__version__}")
    md = ["# Scale of the chip simulator (bench/scale.py, issue 17)", "",
          f"Machine: {machine}. Chip `tianjic`, zoo models at CIFAR shape, spiking input, "
          f"T = {args.steps}, {args.samples} samples, rate-coded smooth random images (input rate per pixel "
          f"and step shown below); each model in its own process under a {args.limit_gb:g} GiB address-space "
          f"limit. Activity: the zoo's seeded random weights, no data-based threshold balancing.", ""]
    md += _table(rows)
    md += ["", "Firing rates per population (spikes per neuron and step):", ""]
    for r in rows:
        if "rates" in r:
            rs = ", ".join(f"{k} {v:.1%}" for k, v in r["rates"].items())
            md.append(f"- {r['model']} ({r['label']}): input {r['input_rate']:.1%}; {rs}")
    pairs = {}
    for r in rows:
        pairs.setdefault(r["model"], {})[r["label"]] = r
    ratio = []
    for model, d in pairs.items():
        if "before" in d and "this" in d and "compile_s" in d["before"] and "compile_s" in d["this"]:
            b, a = d["before"], d["this"]
            ratio.append(f"- {model}: compile {b['compile_s'] / a['compile_s']:.2f}x faster, program "
                         f"{b['program_mb'] / a['program_mb']:.2f}x smaller, kernel tables built "
                         f"{b['tables_s'] / a['tables_s']:.2f}x faster, peak RSS {b['rss_peak_mb']:,.0f} -> "
                         f"{a['rss_peak_mb']:,.0f} MB")
    if ratio:
        md += ["", f"Same run, `--before {args.before}`:", ""] + ratio
    text = "\n".join(md) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # hand-written notes below the marker (analysis, what remains) survive a new run
    old = out.read_text() if out.exists() else ""
    notes = old[old.index(_NOTES):] if _NOTES in old else _NOTES + "\n"
    out.write_text(text + "\n" + notes)


if __name__ == "__main__":
    main()
