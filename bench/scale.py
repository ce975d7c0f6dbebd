"""Scale of the chip simulator (issue 17): map time, compile time, kernel-table time,
program and table bytes, peak RSS, functional and cycle-level samples/s of zoo models
at CIFAR shape, and the same network, weights and steps in snnTorch, each model in a
process of its own (so its peak RSS is its own), with an address-space limit (a model
that does not fit is reported, not killed by the OOM killer).

Activity: the zoo's seeded random weights, threshold-balanced by default
(:func:`models.zoo.balance`: each IF layer's threshold is the 99.9th percentile of its
positive mean pre-activation on ``--calib-samples`` calibration inputs, another seed
than the bench inputs); ``--no-balance`` keeps threshold 1 (deep layers go silent).
Inputs: :func:`models.zoo.calibration_inputs`, rate-coded (Bernoulli) smooth random
images (4x4 blocks), ``--rate`` spikes per pixel and step at full intensity. The
per-layer firing rates of the chip are printed.

Columns: functional = ``simulate(program, x, timing=False)``; cycle-level =
``simulate(program, x, timing=True, timing_samples=all)``; snnTorch =
``bench/snntorch_port.py`` on the CPU with ``torch.set_num_threads`` = Numba's
threads. Functional and cycle-level runs alternate ``--repeat`` times after a
warm-up and the best time of each is kept, so a slow phase of the shared machine
hits both; snnTorch runs after them (best of ``--repeat``, the chip's tables freed). Peak
RSS is the chip's (map, compile, tables, runs), read before the reference checks
and torch. The first ``--exact-samples`` samples are checked against the integer
reference (:func:`models.intref.simulate_int`): every population's spikes and
membranes. snnTorch's output spike counts and per-layer spike totals are compared
with the float reference (:func:`models.simulate`) on all samples.

``--before REPO`` runs the same measurement on another checkout (e.g. the main
branch before this work) in the same run, for the models of ``--before-models``, and
prints the ratios (a checkout without ``models.zoo.balance`` needs ``--no-balance``).

A model is a zoo name (CIFAR shape) or ``NAME:imagenet`` (ImageNet shape, on ``tianjic``
with :data:`IMAGENET_CHIP`'s overrides); ``--light-models`` run functional only (no
cycle-level run, no snnTorch: VGG-16 ImageNet by default). ``--steps 4,8`` runs every
model at each T.

Usage: ``python bench/scale.py [--models lenet5,vgg11,vgg16,resnet18,vgg16:imagenet] [--steps 4,8]
[--samples 4] [--no-balance] [--calib-samples 8] [--repeat 3] [--limit-gb 15]
[--exact-samples 2] [--before /work/main --before-models lenet5]``
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: chip overrides for ``MODEL:imagenet`` specs: VGG-16 ImageNet needs 36,258 cores (64 chips of 12 x 13
#: hold 9,984) and up to 4,096 routing entries per core
IMAGENET_CHIP = {"mesh.max_chips": 1024, "core.routing_entries": 4096}
_NOTES = "<!-- notes: kept by bench/scale.py -->"


def _best_alternating(fns: dict, repeat: int) -> dict:
    """Best wall-clock seconds of each function, run in turn ``repeat`` times, and its last result."""
    best, last = {k: np.inf for k in fns}, {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            last[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best, last


def _child(args) -> dict:
    """One model in this process: every phase timed, RSS after each phase."""
    sys.path.insert(0, str(Path(args.repo).resolve()))
    if args.limit_gb:
        lim = int(args.limit_gb * (1 << 30))
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:  # under a lower outer limit (prlimit), keep it: it cannot be raised
            lim = min(lim, hard)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    import numba

    from hwsim.chip import load_chip
    from hwsim.engine import simulate
    from hwsim.engine.build import kernel_inputs
    from hwsim.program import compile as compile_program
    from mapper.mapping import map_model
    from models import lower, zoo

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    name, _, shape = args.child.partition(":")
    shape = shape or "cifar"
    out = {"model": args.child, "repo": str(args.repo), "threads": numba.get_num_threads(), "steps": args.steps}
    try:
        g = zoo.build(name, shape, seed=0)
        tot = zoo.totals(g)
        out.update(weights=tot["weights"], synapses=tot["synapses"], neurons=tot["neurons"])
        if args.balance:
            if not hasattr(zoo, "balance"):
                out["error"] = f"no models.zoo.balance in {args.repo}: run with --no-balance"
                return out
            t = time.perf_counter()
            xc = zoo.calibration_inputs(g.input_shape, args.calib_samples, args.steps, rate=args.rate, seed=1)
            g = zoo.balance(g, xc)
            out.update(balance_s=time.perf_counter() - t, thresholds=g.metadata["balance"]["thresholds"],
                       calib_samples=args.calib_samples)
        net = lower(g, input_spiking=True)
        t, tc = time.perf_counter(), time.process_time()
        # ImageNet sizes need more chips than tianjic's 64 and more routing entries per core
        chip = load_chip("tianjic") if shape == "cifar" else load_chip("tianjic").with_overrides(IMAGENET_CHIP)
        m = map_model(net, chip)
        del net
        out.update(map_s=time.perf_counter() - t, map_cpu_s=time.process_time() - tc, rss_map_mb=rss_mb(), tiles=len(m.tiling.tiles),
                   cores=len(m.tiling.cores))
        t, tc = time.perf_counter(), time.process_time()
        prog = compile_program(m)
        out["compile_cpu_s"] = time.process_time() - tc  # the shared machine's wall time varies several-fold
        qnet = m.net
        del m  # the tiling's Python objects (VGG-16 ImageNet: 478,560 tiles, most of the 5.5 GB after mapping)
        out.update(compile_s=time.perf_counter() - t, rss_compile_mb=rss_mb(), entries=int(prog.ent_acc.size),
                   program_mb=sum(a.nbytes for a in prog.arrays().values()) / 1e6)
        t = time.perf_counter()
        # the key simulate() uses for a spiking input without timing (hwsim/engine/run.py)
        kin = kernel_inputs(prog, "subtract", "binary", None, 1, bool(prog.input_spiking and prog.payload_bits == 0),
                            -(-int(prog.membrane_bits) // max(prog.flit_bits, 1)), False)
        out.update(tables_s=time.perf_counter() - t, rss_tables_mb=rss_mb(),
                   tables_mb=sum(a.nbytes for a in kin) / 1e6)
        if hasattr(zoo, "calibration_inputs"):
            x = zoo.calibration_inputs(g.input_shape, args.samples, args.steps, rate=args.rate, seed=0)
        else:  # an older checkout (--before): the same generator, written out
            rng = np.random.default_rng(0)
            C, H, W = g.input_shape
            img = rng.random((args.samples, C, H // 4, W // 4), dtype=np.float32).repeat(4, axis=2).repeat(4, axis=3)
            x = (np.random.default_rng(1).random((args.steps,) + img.shape, dtype=np.float32)
                 < img * np.float32(args.rate)).astype(np.float32)
        B = args.samples
        runs = {"functional": lambda: simulate(prog, x, timing=False)}
        cycle = args.cycle and args.child not in args.light_models.split(",")
        if cycle:
            runs["cycle"] = lambda: simulate(prog, x, timing=True, timing_samples=B)
        simulate(prog, x[:, :1], timing=False)  # Numba caches loaded
        if cycle:
            simulate(prog, x[:, :1], timing=True)
        best, last = _best_alternating(runs, args.repeat)
        r = last["functional"]
        cnt = r.counters.sum(axis=0)
        names = list(r.counter_names)
        spikes = cnt[:, names.index("spikes")]
        rates = {}
        for i, p in enumerate(prog.pop_names[1:], start=1):
            cores = [c for c, n in enumerate(r.core_population) if n == p]
            rates[p] = float(spikes[cores].sum()) / (int(prog.pop_size[i]) * args.steps * B)
        out.update(sim_s=best["functional"], samples_s=B / best["functional"], rss_peak_mb=rss_mb(),
                   syn_events=int(cnt[:, names.index("acs")].sum() + cnt[:, names.index("macs")].sum()),
                   rates=rates, input_rate=float(x.mean()), repeat=args.repeat, samples=B)
        if cycle:
            rc = last["cycle"]
            out.update(cycle_s=best["cycle"], cycle_samples_s=B / best["cycle"],
                       cycle_equal=bool(np.array_equal(rc.output, r.output)))
        # exactness on the first samples: every population's spikes and membranes equal
        # the integer reference (models.intref, convolutions never expanded)
        from models.intref import simulate_int

        nx = min(args.exact_samples, B)
        if nx:
            chip_r = simulate(prog, x[:, :nx], timing=False, record="all")
            ref = simulate_int(qnet, x[:, :nx], record="all")
            out["exact"] = bool(np.array_equal(chip_r.output, ref.output) and all(
                np.array_equal(chip_r.spikes[k], ref.spikes[k]) and np.array_equal(chip_r.membrane[k], ref.membrane[k])
                for k in ref.spikes))
            out["exact_samples"] = nx
        del prog, kin, qnet, r, last, runs
        if args.torch and args.child not in args.light_models.split(","):
            out.update(_snntorch(g, x, args.repeat, numba.get_num_threads(), r_chip_s=best["functional"]))
    except MemoryError:
        out["error"] = f"MemoryError under the {args.limit_gb:g} GiB address-space limit"
        out["rss_peak_mb"] = rss_mb()
    return out


def _snntorch(g, x, repeat: int, threads: int, r_chip_s: float) -> dict:
    """snnTorch on the same graph and inputs (same threads as Numba), and its agreement
    with the float reference: output counts per sample, spike totals per layer."""
    try:
        import torch
        from snntorch_port import SnnTorchNet, versions
    except ImportError as e:
        return {"torch_error": f"snnTorch not available ({e}); pip install -e '.[bench]'"}
    from models import simulate as float_simulate

    net = SnnTorchNet(g)
    B = x.shape[1]
    net.run(x[:, :1], 1)  # warm-up
    # torch's OpenMP pool collapses (10-30x slower) when the shared cores are busy:
    # time Numba's thread count (the comparison asked for) and one thread, alternately
    fns = {}
    for nt in dict.fromkeys((threads, 1)):
        fns[nt] = (lambda nt=nt: (torch.set_num_threads(nt), net.run(x, B))[1])
    best, last = _best_alternating(fns, repeat)
    fast = min(best, key=best.get)
    counts, totals = last[threads]
    ref = float_simulate(g, x)
    ref_counts = ref.counts
    layer_dev = {k: (totals[k] - v) / max(v, 1.0) for k, v in ref.spike_totals.items()}
    return {"torch_s": best[threads], "torch_samples_s": B / best[threads], "torch_threads": threads,
            "torch1_samples_s": B / best[1], "torch_best_threads": fast,
            "torch_versions": versions(), "torch_ratio": best[fast] / r_chip_s,
            "torch_equal_samples": int(np.all(counts == ref_counts, axis=1).sum()),
            "torch_equal_counts": float(np.mean(counts == ref_counts)),
            "torch_layer_dev": layer_dev, "float_rates": ref.firing_rates()}


def _run(repo, model, steps: int, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", model, "--repo", str(repo),
           "--steps", str(steps), "--samples", str(_samples(args, model)), "--rate", str(args.rate),
           "--limit-gb", str(args.limit_gb), "--exact-samples", str(args.exact_samples)]
    cmd += ["--calib-samples", str(_samples(args, model, args.calib_samples, "calib")), "--repeat", str(args.repeat),
            "--light-models", args.light_models]
    cmd += [] if args.balance and model not in args.unbalanced_models.split(",") else ["--no-balance"]
    cmd += [] if args.cycle else ["--no-cycle"]
    cmd += [] if args.torch else ["--no-torch"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=str(repo))
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"model": model, "repo": str(repo), "error": f"exit {p.returncode}: {p.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def _samples(args, model: str, default=None, prefix: str = "") -> int:
    """Samples for ``model``: its entry ``[PREFIX:]name=n`` in ``--model-samples``, else
    ``default`` (``--samples``)."""
    key = f"{prefix}:{model}" if prefix else model
    for item in filter(None, args.model_samples.split(",")):
        name, _, n = item.rpartition("=")
        if name == key:
            return int(n)
    return args.samples if default is None else default


def _fmt(r: dict, key: str, spec: str) -> str:
    return format(r[key], spec) if key in r else "-"


def _build_table(rows) -> list:
    lines = ["| model | T | code | weights | synapses | crossbar entries | tiles | balance s | map s (CPU s) | "
             "compile s (CPU s) | tables s | program MB | tables MB | peak RSS MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r.get('steps', '-')} | {r['label']} | {_fmt(r, 'weights', ',')} | {_fmt(r, 'synapses', ',')} | "
                     f"{_fmt(r, 'entries', ',')} | {_fmt(r, 'tiles', ',')} | {_fmt(r, 'balance_s', '.1f')} | "
                     f"{_fmt(r, 'map_s', '.1f')} ({_fmt(r, 'map_cpu_s', '.1f')}) | {_fmt(r, 'compile_s', '.1f')} "
                     f"({_fmt(r, 'compile_cpu_s', '.1f')}) | {_fmt(r, 'tables_s', '.1f')} | "
                     f"{_fmt(r, 'program_mb', ',.1f')} | {_fmt(r, 'tables_mb', ',.1f')} | "
                     f"{_fmt(r, 'rss_peak_mb', ',.0f')} |")
        if "error" in r:
            lines.append(f"| | | | {r['error']} |")
    return lines


def _run_table(rows) -> list:
    lines = ["| model | T | code | samples | functional samples/s | synaptic events/s | cycle-level samples/s | "
             "cycle-level / functional time | snnTorch samples/s | functional / faster snnTorch | = integer reference | "
             "snnTorch = float reference (output counts) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if "sim_s" not in r:
            continue
        ev = f"{r['syn_events'] / r['sim_s'] / 1e6:,.1f} M"
        exact = (("yes" if r["exact"] else "**no**") + f" ({r['exact_samples']} samples, all populations)"
                 if "exact" in r else "-")
        cyc = f"{r['cycle_s'] / r['sim_s']:.2f}x" if "cycle_s" in r else "-"
        if "torch_s" in r:
            tr = f"{r['torch_ratio']:.2f}x"
            ts = f"{r['torch_samples_s']:,.2f} ({r['torch_threads']} thr); {r['torch1_samples_s']:,.2f} (1 thr)"
            n = r["samples"]
            agree = (f"{r['torch_equal_samples']} of {n} samples equal ({r['torch_equal_counts']:.1%} of counts)")
        else:
            tr, ts, agree = "-", r.get("torch_error", "-"), "-"
        lines.append(f"| {r['model']} | {r.get('steps', '-')} | {r['label']} | {r['samples']} | {_fmt(r, 'samples_s', ',.2f')} | {ev} | "
                     f"{_fmt(r, 'cycle_samples_s', ',.2f')} | {cyc} | {ts} | {tr} | {exact} | {agree} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lenet5,vgg11,vgg16,resnet18")
    ap.add_argument("--steps", default="4", help="time steps, a comma-separated list: each model runs at each "
                    "(default 4)")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--model-samples", default="lenet5=32,vgg16:imagenet=1,calib:vgg16:imagenet=2",
                    help="per-model samples overriding --samples (``calib:MODEL=n``: --calib-samples) (default "
                         "lenet5=32: 4 LeNet-5 samples take milliseconds, below the run's fixed cost; "
                         "vgg16:imagenet=1, with 2 calibration samples)")
    ap.add_argument("--model-steps", default="vgg16:imagenet=4",
                    help="per-model time steps, restricting --steps (``MODEL=4/8``) (default vgg16:imagenet=4)")
    ap.add_argument("--unbalanced-models", default="",
                    help="models kept at the zoo's threshold 1 (default none; balancing runs the float reference "
                         "once per IF layer on the calibration inputs: 32 min for vgg16:imagenet on 2 samples here "
                         "(2-core VM), against 5.4 min to map and compile it)")
    ap.add_argument("--light-models", default="vgg16:imagenet",
                    help="models run functional only: no cycle-level run, no snnTorch (default vgg16:imagenet)")
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--no-balance", dest="balance", action="store_false",
                    help="keep the zoo's threshold 1 (default: models.zoo.balance on calibration inputs)")
    ap.add_argument("--calib-samples", type=int, default=8, help="calibration samples for balancing (default 8)")
    ap.add_argument("--no-cycle", dest="cycle", action="store_false", help="skip the cycle-level run")
    ap.add_argument("--no-torch", dest="torch", action="store_false", help="skip snnTorch")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each kind, best kept (default 3)")
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
        args.steps = int(args.steps)
        print(json.dumps(_child(args)))
        return
    rows = []
    steps = [int(v) for v in args.steps.split(",")]
    only = dict(item.rpartition("=")[::2] for item in filter(None, args.model_steps.split(",")))
    for model, T in ((m, T) for m in args.models.split(",") for T in steps):
        if model in only and str(T) not in only[model].split("/"):
            continue
        if args.before and model in args.before_models.split(","):
            b = _run(args.before, model, T, args)
            b["label"] = "before"
            rows.append(b)
            print(json.dumps(b), flush=True)
        a = _run(ROOT, model, T, args)
        a["label"] = "this"
        rows.append(a)
        print(json.dumps(a), flush=True)
        _write(rows, args, final=False)  # the tables so far (a long run stopped early keeps its rows)
    _write(rows, args, final=True)


def _write(rows: list, args, final: bool) -> None:
    """The markdown of ``rows`` to ``--out`` (the hand-written notes below the marker kept); printed when ``final``."""
    import numba

    tv = next((r["torch_versions"] for r in rows if "torch_versions" in r), {"torch": "not run"})
    machine = (f"cpu {_cpu()}; cores {os.cpu_count()}; numba threads {numba.get_num_threads()}; python "
               f"{platform.python_version()}; numpy {np.__version__}; numba {numba.__version__}; "
               + "; ".join(f"{k} {v}" for k, v in tv.items() if k != "torch threads"))
    own = sorted({f"{r['model']}: {r['calib_samples']}" for r in rows
                  if r.get("calib_samples", args.calib_samples) != args.calib_samples})
    activity = (f"thresholds balanced by `models.zoo.balance` (99.9th percentile, {args.calib_samples} calibration "
                f"samples of another seed{' (' + ', '.join(own) + ')' if own else ''}; "
                f"{args.unbalanced_models or 'none'}: the zoo's threshold 1)" if args.balance
                else "the zoo's threshold 1, no balancing")
    md = ["# Scale of the chip simulator (bench/scale.py, issue 17)", "",
          f"Machine: {machine}. Chip `tianjic` (ImageNet: with {IMAGENET_CHIP}), zoo models at CIFAR shape "
          f"(`MODEL:imagenet`: ImageNet shape), spiking input, T = {args.steps} (column T), samples per model as "
          f"shown, rate-coded smooth random images (input rate per pixel "
          f"and step shown below); each model in its own process under a {args.limit_gb:g} GiB address-space "
          f"limit. Activity: the zoo's seeded random weights, {activity}. Times: best of {args.repeat}.", ""]
    md += _build_table(rows) + [""] + _run_table(rows)
    md += ["", "Firing rates per population on the chip (spikes per neuron and step):", ""]
    for r in rows:
        if "rates" in r:
            rs = ", ".join(f"{k} {v:.1%}" for k, v in r["rates"].items())
            md.append(f"- {r['model']}, T = {r.get('steps', '-')} ({r['label']}): input {r['input_rate']:.1%}; {rs}")
    dev = [r for r in rows if "torch_layer_dev" in r]
    if dev:
        md += ["", "snnTorch against the float reference, spike totals per layer (relative difference):", ""]
        for r in dev:
            md.append(f"- {r['model']}, T = {r.get('steps', '-')}: " + ", ".join(f"{k} {v:+.2%}" for k, v in r["torch_layer_dev"].items()))
    pairs = {}
    for r in rows:
        pairs.setdefault((r["model"], r.get("steps")), {})[r["label"]] = r
    ratio = []
    for model, d in pairs.items():
        if "before" in d and "this" in d and "compile_s" in d["before"] and "compile_s" in d["this"]:
            b, a = d["before"], d["this"]
            ratio.append(f"- {model[0]}, T = {model[1]}: compile {b['compile_s'] / a['compile_s']:.2f}x faster, program "
                         f"{b['program_mb'] / a['program_mb']:.2f}x smaller, kernel tables built "
                         f"{b['tables_s'] / a['tables_s']:.2f}x faster, peak RSS {b['rss_peak_mb']:,.0f} -> "
                         f"{a['rss_peak_mb']:,.0f} MB")
    if ratio:
        md += ["", f"Same run, `--before {args.before}`:", ""] + ratio
    text = "\n".join(md) + "\n"
    if final:
        print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # hand-written notes below the marker (analysis, what remains) survive a new run
    old = out.read_text() if out.exists() else ""
    notes = old[old.index(_NOTES):] if _NOTES in old else _NOTES + "\n"
    out.write_text(text + "\n" + notes)


def _cpu() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
