"""The ``snnchip`` command line: the parser and ``main``; the commands live in ``cmd_*.py``.

Every command turns a :class:`models.SnnchipError` (and a bad file the OS refuses)
into one line on stderr and exit code 2; argparse usage errors also print one line;
any other exception is a bug, still reported in one line (exit 2) naming its type.
``--debug`` shows the traceback instead. Every option's help states its default.
"""

from __future__ import annotations

import argparse
import sys

from models import defaults
from models.errors import SnnchipError

from .cmd_chip import cmd_chip, cmd_map, cmd_report, cmd_run
from .cmd_model import cmd_demo, cmd_info, cmd_models, cmd_simulate
from .cmd_prune import cmd_prune, cmd_prune_sweep
from .cmd_noc import add_parser as add_noc_parser
from .cmd_sweep import add_parser as add_sweep_parser, add_run_options

EXIT_USAGE = 2
MODEL_HELP = ".nir path, shipped model (mnist_mlp, mnist_cnn), nir_cnn, or zoo builder (vgg16:imagenet)"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _v

    try:
        return _v("snnchip")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        print(f"snnchip: error: {message} (see snnchip -h)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# ----------------------------------------------------------------- option groups ----------

def _modes(s) -> None:
    s.add_argument("--reset", choices=["zero", "subtract"], help="reset after a spike (default: the model's "
                   "metadata, else subtract)")
    s.add_argument("--spikes", choices=["binary", "multi"], help="one spike per step, or floor(v/threshold) "
                   "(default: the model's metadata, else binary)")


def _framework(s) -> None:
    from models.frameworks import SOURCES

    s.add_argument("--source", choices=list(SOURCES), help="framework that trained the model: its spike mode, "
                   "reset and membrane floor (models/frameworks.py; default: detected from the file's metadata or "
                   "node names, else none)")
    s.add_argument("--v-min", metavar="V|-threshold|none", help="membrane floor after spike and reset: a number "
                   "<= 0, -threshold or none (default: the model's metadata, else the source's, else none)")


def _dt(s) -> None:
    s.add_argument("--dt", type=float, metavar="SECONDS", help="time step of the graph (default: the file's "
                   "metadata dt, else 1; needed when a time constant is below 1)")


def _data(s, samples: int, *, start: bool = True) -> None:
    s.add_argument("--data", metavar="nmnist|mnist|FILE.npz",
                   help="dataset, or your own .npz with arrays x (B, *input) or (T, B, *input) and y "
                        "(default: chosen by the model's input shape)")
    s.add_argument("--samples", type=int, default=samples, help=f"samples to run (default {samples})")
    s.add_argument("--steps", type=int, help="time steps; pads event recordings, never cuts them (default: the "
                   f"model's metadata, else {defaults.STEPS} for images; N-MNIST: the longest recording)")
    s.add_argument("--bins", type=int, metavar="N", help="cut each event recording into N equal time bins "
                   "(Tonic's n_time_bins; default off: fixed frames)")
    s.add_argument("--frame-us", type=float, metavar="D", help="event frames of D microseconds (default 1000)")
    s.add_argument("--encoding", choices=["direct", "rate", "poisson"],
                   help="how static images become steps (default: the model's metadata, else rate)")
    if start:
        s.add_argument("--start", type=int, help=f"first sample (default {defaults.HELD_OUT_START} for MNIST, "
                       "the held-out split; 0 for an .npz)")
    s.add_argument("--seed", type=int, default=0, help="seed of the poisson encoder (default 0)")


def _chip(s) -> None:
    s.add_argument("--chip", default="tianjic", help="preset name or YAML/JSON file (default tianjic)")
    s.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a chip field, e.g. core.axons=128; repeatable (default: none)")


def _traces(s) -> None:
    g = s.add_argument_group("traces and recordings (default: all off)")
    g.add_argument("--record", action="append", metavar="POP[,POP]|all",
                   help="record spikes and membranes of these populations into the result, for the report's "
                        "spike raster (default: none)")
    g.add_argument("--vcd", metavar="FILE.vcd", help="waveforms of one sample on a cycle timebase: membranes, "
                   "spikes and each core's phase (default off)")
    g.add_argument("--vcd-cores", metavar="C[,C]", help="cores whose neurons go into the VCD (default 0)")
    g.add_argument("--vcd-neurons", action="append", metavar="POP:i",
                   help="also these neurons, e.g. if1:3; repeatable (default: none)")
    g.add_argument("--chrome", metavar="FILE.json", help="Chrome/Perfetto timeline of one sample: core phases, "
                   "NoC packets with flow arrows (default off)")
    g.add_argument("--trace-sample", type=int, default=0, help="the sample the VCD and timeline follow (default 0)")
    g.add_argument("--trace-steps", metavar="A:B", help="only steps A..B-1 in the VCD and timeline "
                   "(default: all steps)")
    g.add_argument("--aer", metavar="FILE.npz", help="every spike of every sample as AER events (default off)")
    g.add_argument("--aer-input", action="store_true", help="include the graph input's events in the AER "
                   "file (default off)")


# ----------------------------------------------------------------- the parser -------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snnchip", description="Map, simulate and report SNNs on many-core crossbar chips.")
    p.add_argument("--version", action="version", version=f"snnchip {version()}")
    p.add_argument("--debug", action="store_true", help="show a traceback on errors (default off)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("info", help="print a model's per-node summary table")
    s.add_argument("model", help=MODEL_HELP)
    s.add_argument("--lowered", action="store_true", help="also print populations and projections (default off)")
    _dt(s)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("simulate", help="run the float reference simulator and print accuracy")
    s.add_argument("model", help=MODEL_HELP)
    _data(s, 100)
    _modes(s)
    _framework(s)
    _dt(s)
    s.add_argument("--level", choices=["graph", "net"], default="net",
                   help="simulate the graph or the lowered net (default net)")
    s.add_argument("--batch", type=int, default=100, help="samples per call (default 100)")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("demo", help="end-to-end run on a shipped model (offline)")
    s.add_argument("--samples", type=int, default=500, help="held-out samples (default 500, the shipped subset)")
    s.add_argument("--data", metavar="FILE.npz", help="your own images instead (default: the shipped MNIST subset)")
    s.add_argument("--chip", default="tianjic", help="preset name or YAML/JSON file (default tianjic)")
    s.add_argument("-o", "--output", default="demo_out", help="folder for the demo's files (default demo_out)")
    _modes(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("chip", help="list chip presets or show one (a preset name or a YAML/JSON file)")
    chip_sub = s.add_subparsers(dest="chip_command", required=True, parser_class=_Parser)
    c = chip_sub.add_parser("list", help="list the presets")
    c.set_defaults(func=cmd_chip)
    c = chip_sub.add_parser("show", help="print every field of a chip, with sources and assumptions")
    c.add_argument("name", help="preset name (tianjic, loihi, truenorth, tiny) or a .yaml/.json file")
    c.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a field, e.g. core.axons=128; marked ! in the listing (default: none)")
    c.set_defaults(func=cmd_chip)

    s = sub.add_parser("map", help="quantize, tile, place and route a model on a chip; print the resource report")
    s.add_argument("model", help=MODEL_HELP)
    _chip(s)
    s.add_argument("--placement", choices=["rowmajor", "hilbert", "partition", "anneal"], default="rowmajor",
                   help="placement strategy (default rowmajor)")
    s.add_argument("--max-fold", type=int, help="largest fold (output blocks per core) the mapper may use "
                   "(default: the chip's core.max_fold)")
    s.add_argument("--profile", type=int, metavar="N", help="weight traffic by firing rates of N reference "
                   "samples (default off: uniform traffic)")
    _modes(s)
    _framework(s)
    s.add_argument("--encoding", choices=["direct", "rate", "poisson"], help="a real-valued input as MACs (direct) "
                   "or as spikes (default: direct on chips with ANN mode, else rate)")
    s.add_argument("--axon-copies", type=int, metavar="K", help="chips with axon types (TrueNorth): axons per "
                   "input, 1 or core.axon_types (default core.axon_types)")
    _dt(s)
    s.add_argument("--seed", type=int, default=0, help="seed of the annealing placement (default 0)")
    s.add_argument("-o", "--output", help="folder for mapping.json + mapping.npz (default: not written)")
    s.add_argument("--fold-sweep", metavar="F1,F2,...", help="print cores/chips per fold (e.g. 1,2,4,8,16) "
                   "and stop (default off)")
    s.set_defaults(func=cmd_map)

    s = sub.add_parser("run", help="run a mapping (from `snnchip map -o`) on the chip simulator: accuracy, "
                       "latency, counters")
    s.add_argument("mapping", help="mapping folder written by `snnchip map -o`")
    _data(s, 100)
    _modes(s)
    _framework(s)
    s.add_argument("--timing-samples", type=int, default=1, metavar="K",
                   help="samples timed cycle by cycle (default 1; 0 = functional only)")
    s.add_argument("--check", type=int, default=100, metavar="N",
                   help="compare the first N samples with the integer reference, spike for spike (default 100; 0 = off)")
    s.add_argument("--batch", type=int, default=128, help="samples per engine call at most (default 128)")
    s.add_argument("--memory-gb", type=float, default=None, metavar="GB",
                   help="memory budget of the run: kernel tables, thread scratch and one chunk of samples; the "
                        "samples per call shrink to fit (default $SNNCHIP_MAX_BYTES, else a quarter of the "
                        "machine's memory)")
    s.add_argument("-o", "--output", help="folder for result.json + result.npz (default MAPPING/run)")
    _traces(s)
    add_run_options(s)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("report", help="energy tables and figures of a saved run (from `snnchip run -o`)")
    s.add_argument("run", help="run folder holding result.json + result.npz")
    s.add_argument("-o", "--output", default="report", help="folder for the report files (default report)")
    s.add_argument("--mapping", help="mapping folder (default: recorded in the run, or the run folder's parent)")
    s.add_argument("--table", action="append", metavar="NAME|FILE.yaml",
                   help="technology table; repeatable; the first one draws the figures (default: "
                        f"{', '.join(defaults.ENERGY_TABLES)})")
    s.add_argument("--raster", action="append", metavar="POP[:i,j,...]",
                   help="neurons of a population recorded with `run --record` for the spike raster; repeatable "
                        "(default: the recorded populations' first neurons)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("prune", help="crossbar-aware pruning: fewer crossbars; accuracy and energy before/after")
    s.add_argument("model", help=MODEL_HELP)
    _chip(s)
    s.add_argument("--grain", default="crossbar", help="crossbar | column (default crossbar)")
    s.add_argument("--target", type=float, required=True, help="fraction of the crossbars to remove, in (0, 1) "
                   "(required, no default)")
    s.add_argument("--reorder", action="store_true", help="reorder input neurons/channels so prunable blocks "
                   "line up (default off)")
    s.add_argument("--finetune", type=int, metavar="EPOCHS", help="L0-constrained fine-tuning of shipped models "
                   "(default off)")
    s.add_argument("--score", default="l1", choices=["l1", "l2", "activation"],
                   help="importance of a crossbar: weight L1 / L2 norm, or L1 x input activity (default l1)")
    _data(s, 2000, start=False)
    _modes(s)
    _framework(s)
    _dt(s)
    s.add_argument("-o", "--output", help="write the pruned model here (.nir; default: not written)")
    s.set_defaults(func=cmd_prune)

    s = sub.add_parser("prune-sweep", help="crossbar savings vs chip accuracy: CSV and figure")
    s.add_argument("model", help=MODEL_HELP)
    _chip(s)
    s.add_argument("--targets", default="0.2,0.35,0.44,0.5,0.6", help="comma-separated fractions "
                   "(default 0.2,0.35,0.44,0.5,0.6)")
    s.add_argument("--grains", default="crossbar,column", help="comma-separated grains (default crossbar,column)")
    s.add_argument("--reorder", choices=["no", "yes", "both"], default="both",
                   help="input reordering (default both)")
    s.add_argument("--finetune", type=int, metavar="EPOCHS", help="fine-tuning epochs per point (default off)")
    _data(s, 2000, start=False)
    _modes(s)
    _framework(s)
    _dt(s)
    s.add_argument("-o", "--output", default="prune_sweep", help="folder for sweep.csv/.json/.png/.pdf "
                   "(default prune_sweep)")
    s.set_defaults(func=cmd_prune_sweep)

    add_sweep_parser(sub)
    add_noc_parser(sub)
    s = sub.add_parser("models", help="list shipped models and zoo builders")
    s.set_defaults(func=cmd_models)
    return p


def _terminate(signum, frame):  # SIGTERM: unwind like Ctrl-C, so temporary files are removed
    raise KeyboardInterrupt


def main(argv=None) -> int:
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (e.g. called from a worker): leave signals alone
        pass
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SnnchipError, OSError) as err:
        if args.debug:
            raise
        text = str(err) if isinstance(err, SnnchipError) else f"{err.filename or ''}: {err.strerror or err}"
        print(f"snnchip: error: {' '.join(text.split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("snnchip: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the contract: one line, never a traceback
        if args.debug:
            raise
        text = " ".join(str(err).split())[:300]
        print(f"snnchip: error: unexpected {type(err).__name__}: {text} (this is a bug in snnchip; "
              f"--debug shows the traceback)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
