"""The ``snnchip`` command line: thin wiring over models, mapper, hwsim and energy.

Every command turns a :class:`models.SnnchipError` into one line on stderr and
exit code 2; argparse usage errors also print one line.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from models.errors import SnnchipError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"snnchip: error: {message} (see snnchip -h)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _load(spec: str):
    from models.zoo.catalog import load

    return load(spec)


def _data_kind(graph, requested: str | None) -> str:
    if requested:
        return requested
    shape = tuple(graph.input_shape)
    if shape == (2, 34, 34):
        return "nmnist"
    if shape in ((1, 28, 28), (784,)):
        return "mnist"
    raise SnnchipError(f"model input shape {shape} matches no built-in dataset; give --data")


def load_data(graph, data: str | None, samples: int, steps: int | None, encoding: str | None,
              start: int | None = None, seed: int = 0):
    """Input sequences for ``graph`` from a built-in dataset, checked against its input shape."""
    from models import datasets

    kind = _data_kind(graph, data)
    if samples is not None and samples < 1:
        raise SnnchipError(f"--samples must be >= 1, got {samples}")
    if steps is not None and steps < 1:
        raise SnnchipError(f"--steps must be >= 1, got {steps}")
    if kind == "nmnist":
        seq = datasets.load_nmnist(samples=samples, steps=steps)
    elif kind == "mnist":
        enc = encoding or str(graph.metadata.get("encoding", "rate"))
        T = steps or int(graph.metadata.get("steps", 32))
        seq = datasets.mnist_sequences(enc, T, start=8000 if start is None else start, samples=samples, seed=seed)
    else:
        raise SnnchipError(f"--data must be 'nmnist' or 'mnist', got {kind!r}")
    need = int(np.prod(graph.input_shape))
    if int(np.prod(seq.inputs.shape[2:])) != need:
        raise SnnchipError(f"{kind} samples have shape {seq.inputs.shape[2:]}, model input is {graph.input_shape}")
    seq.inputs = seq.inputs.reshape(seq.inputs.shape[:2] + tuple(graph.input_shape))
    return kind, seq


def run_reference(model, seq, reset: str, spikes: str, batch: int = 100, desc: str = "reference"):
    """Simulate in batches with a progress bar; returns (predictions, spike totals, sizes, steps)."""
    from tqdm import tqdm

    from models import simulate

    B = seq.inputs.shape[1]
    preds, totals, sizes = [], {}, {}
    with tqdm(total=B, desc=desc, unit="sample", disable=B <= batch and seq.inputs.shape[0] < 50,
              file=sys.stderr) as bar:
        for lo in range(0, B, batch):
            r = simulate(model, seq.inputs[:, lo:lo + batch], reset=reset, spikes=spikes)
            preds.append(r.predict())
            for k, v in r.spike_totals.items():
                totals[k] = totals.get(k, 0.0) + v
            sizes.update(r.sizes)
            bar.update(min(batch, B - lo))
    return np.concatenate(preds), totals, sizes


def _modes(graph, args):
    reset = args.reset or str(graph.metadata.get("reset", "subtract"))
    spikes = args.spikes or str(graph.metadata.get("spikes", "binary"))
    return reset, spikes


# ----------------------------------------------------------------- commands -----------

def cmd_info(args):
    g = _load(args.model)
    print(f"model: {args.model}")
    print(g.summary())
    if args.lowered:
        from models import lower

        print()
        print(lower(g).summary())
    return 0


def cmd_simulate(args):
    from models import lower

    g = _load(args.model)
    reset, spikes = _modes(g, args)
    kind, seq = load_data(g, args.data, args.samples, args.steps, args.encoding, args.start, args.seed)
    model = lower(g, input_spiking=seq.spiking) if args.level == "net" else g
    T, B = seq.inputs.shape[:2]
    print(f"model {args.model} | data {kind} | {B} samples x {T} steps | reset={reset} spikes={spikes} | {args.level}")
    t0 = time.perf_counter()
    preds, totals, sizes = run_reference(model, seq, reset, spikes, args.batch)
    dt = time.perf_counter() - t0
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %   ({dt:.1f} s, {B / dt:.1f} samples/s)")
    print("firing rate (spikes per neuron per step):")
    for k, v in totals.items():
        print(f"  {k:<14} {v / (T * B * sizes[k]):.4f}")
    return 0


def cmd_demo(args):
    """End-to-end path on a shipped model: summary -> lowering -> float and integer
    reference accuracy -> mapping on Tianjic (resource report, files)."""
    from hwsim.chip import load_chip
    from mapper.mapping import map_model
    from mapper.quantize import quantize
    from models import lower
    from models.intref import simulate_int
    from models.zoo.catalog import TRAINED, trained_path

    name = next((n for n in ("mnist_cnn", "mnist_mlp") if trained_path(n).exists()), None)
    if name is None:
        raise SnnchipError(f"no shipped model found in {trained_path('mnist_cnn').parent}")
    t0 = time.perf_counter()
    g = _load(name)
    print(f"== snnchip demo: {name} -- {TRAINED[name]}")
    print(g.summary())
    net = lower(g)
    print(f"\n== lowered to {len(net.populations) - 1} populations and {len(net.projections)} projections")
    print(net.summary())
    reset, spikes = _modes(g, args)
    kind, seq = load_data(g, None, args.samples, None, None)
    T, B = seq.inputs.shape[:2]
    print(f"\n== float reference on MNIST test[8000:{8000 + B}] (held out), {T} steps, reset={reset}, spikes={spikes}")
    preds, totals, sizes = run_reference(net, seq, reset, spikes)
    correct = int((preds == seq.labels).sum())
    print(f"accuracy: {correct}/{B} = {100.0 * correct / B:.2f} %")
    rates = {}
    for k, v in totals.items():
        rates[k] = v / (T * B * sizes[k])
        print(f"  firing rate {k:<10} {rates[k]:.4f} spikes/neuron/step")
    chip = load_chip(args.chip)
    qnet, _ = quantize(net, chip)
    r = simulate_int(qnet, seq.inputs, reset=reset, spikes=spikes)
    ci = int((r.predict() == seq.labels).sum())
    print(f"\n== integer reference ({chip.core.weight_bits}-bit weights, {chip.core.membrane_bits}-bit membrane): "
          f"accuracy {ci}/{B} = {100.0 * ci / B:.2f} %")
    print(f"\n== mapping on {chip.name}, traffic weighted by the measured firing rates")
    m = map_model(net, chip, placement="anneal", rates=rates, model=name)
    print(m.report())
    out = args.output
    m.save(out)
    print(f"\nmapping written to {out}/ (mapping.json + mapping.npz)")
    print(f"demo done in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_chip(args):
    from hwsim.chip import describe, list_presets, load_chip, parse_overrides

    if args.chip_command == "list":
        for name in list_presets():
            chip = load_chip(name)
            print(f"{name:<10} {chip.total_cores:>6,} cores  {chip.core.axons}x{chip.core.neurons} crossbars  "
                  f"{chip.core.weight_bits}-bit weights  {chip.description.splitlines()[0] if chip.description else ''}")
        return 0
    chip = load_chip(args.name)
    if args.set:
        chip = chip.with_overrides(parse_overrides(args.set))
    print(describe(chip))
    return 0


def cmd_map(args):
    from hwsim.chip import load_chip, parse_overrides
    from mapper.mapping import map_model
    from models import lower

    g = _load(args.model)
    chip = load_chip(args.chip)
    if args.set:
        chip = chip.with_overrides(parse_overrides(args.set))
    rates = None
    net = lower(g)
    if args.profile:
        reset, spikes = _modes(g, args)
        kind, seq = load_data(g, None, args.profile, None, None)
        net = lower(g, input_spiking=seq.spiking)
        from models import simulate

        r = simulate(net, seq.inputs, reset=reset, spikes=spikes)
        rates = r.firing_rates()
        if seq.spiking:
            rates[net.input.name] = float(seq.inputs.mean())
        print(f"profiled firing rates on {seq.inputs.shape[1]} {kind} samples: "
              + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    if args.fold_sweep:
        from mapper.mapping import fold_sweep

        folds = [int(f) for f in args.fold_sweep.split(",")]
        print(f"{args.model} on {chip.name}: space/time trade-off by fold")
        print("| fold | tiles | cores | chips | cycles x | max state B/core | max memory B/core |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in fold_sweep(net, chip, folds):
            if not r["allowed"]:
                print(f"| {r['fold']} | - | - | - | - | above core.max_fold={chip.core.max_fold} | - |")
                continue
            chips = f"{r['chips']}" + ("" if r["fits"] else f" (> max {chip.mesh.max_chips})")
            print(f"| {r['fold']} | {r['tiles']:,} | {r['cores']:,} | {chips} | {r['cycles_factor']} | "
                  f"{r['state_bytes']:,} | {r['memory_bytes']:,} |")
        return 0
    t0 = time.perf_counter()
    m = map_model(net, chip, placement=args.placement, rates=rates, max_fold=args.max_fold,
                  seed=args.seed, model=args.model)
    dt = time.perf_counter() - t0
    print(m.report())
    if args.output:
        m.save(args.output)
        print(f"\nmapping written to {args.output}/mapping.json + mapping.npz ({dt:.1f} s to map)")
    return 0


def cmd_models(args):
    from models.zoo.catalog import available

    for k, v in available().items():
        print(f"{k:<28} {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snnchip", description="Map, simulate and report SNNs on many-core crossbar chips.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("info", help="print a model's per-node summary table")
    s.add_argument("model", help=".nir path, shipped model (mnist_mlp, mnist_cnn), nir_cnn, or zoo builder (vgg16:imagenet)")
    s.add_argument("--lowered", action="store_true", help="also print populations and projections")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("simulate", help="run the float reference simulator and print accuracy")
    s.add_argument("model")
    s.add_argument("--data", choices=["nmnist", "mnist"], help="dataset (default: from the input shape)")
    s.add_argument("--samples", type=int, default=100)
    s.add_argument("--steps", type=int, help="time steps (N-MNIST: 1 ms frames, default the longest sample)")
    s.add_argument("--encoding", choices=["direct", "rate", "poisson"], help="MNIST encoder (default: model metadata)")
    s.add_argument("--start", type=int, help="first MNIST test image (default 8000, the held-out split)")
    s.add_argument("--reset", choices=["zero", "subtract"], help="default: model metadata, else subtract")
    s.add_argument("--spikes", choices=["binary", "multi"], help="default: model metadata, else binary")
    s.add_argument("--level", choices=["graph", "net"], default="net", help="simulate the graph or the lowered net")
    s.add_argument("--batch", type=int, default=100)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("demo", help="end-to-end run on a shipped model")
    s.add_argument("--samples", type=int, default=500)
    s.add_argument("--chip", default="tianjic")
    s.add_argument("-o", "--output", default="demo_out", help="folder for the demo's files (default demo_out)")
    s.add_argument("--reset", choices=["zero", "subtract"])
    s.add_argument("--spikes", choices=["binary", "multi"])
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("chip", help="list chip presets or show one (a preset name or a YAML/JSON file)")
    chip_sub = s.add_subparsers(dest="chip_command", required=True, parser_class=_Parser)
    c = chip_sub.add_parser("list", help="list the presets")
    c.set_defaults(func=cmd_chip)
    c = chip_sub.add_parser("show", help="print every field of a chip, with sources and assumptions")
    c.add_argument("name", help="preset name (tianjic, loihi, truenorth, tiny) or a .yaml/.json file")
    c.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a field, e.g. core.axons=128")
    c.set_defaults(func=cmd_chip)

    s = sub.add_parser("map", help="quantize, tile, place and route a model on a chip; print the resource report")
    s.add_argument("model")
    s.add_argument("--chip", default="tianjic", help="preset name or YAML/JSON file (default tianjic)")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a chip field, e.g. core.axons=128")
    s.add_argument("--placement", choices=["rowmajor", "hilbert", "partition", "anneal"], default="rowmajor")
    s.add_argument("--max-fold", type=int, help="largest fold (output blocks per core) the mapper may use")
    s.add_argument("--profile", type=int, metavar="N", help="weight traffic by firing rates of N reference samples")
    s.add_argument("--reset", choices=["zero", "subtract"])
    s.add_argument("--spikes", choices=["binary", "multi"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", help="folder for mapping.json + mapping.npz")
    s.add_argument("--fold-sweep", metavar="F1,F2,...", help="print cores/chips per fold (e.g. 1,2,4,8,16) and stop")
    s.set_defaults(func=cmd_map)

    s = sub.add_parser("models", help="list shipped models and zoo builders")
    s.set_defaults(func=cmd_models)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SnnchipError as err:
        print(f"snnchip: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("snnchip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
