"""The command line ``python -m models.train mlp|cnn``: train a zoo model, convert it,
score it on the held-out images and write ``models/zoo/trained/mnist_<model>.nir``.

Usage::

    python -m models.train mlp            # -> models/zoo/trained/mnist_mlp.nir
    python -m models.train cnn            # -> models/zoo/trained/mnist_cnn.nir
    python -m models.train cnn --dev      # hyper-parameter work: train 0:7000, score 7000:8000
    python -m models.train hybrid         # mnist_cnn.nir -> mnist_hybrid.nir + mnist_ann.nir (no training)

Data: only the MNIST *test* set ships (``shared/data/mnist``). The models are trained
on :data:`models.defaults.TRAIN_SLICE` (test images ``0:8000``) and scored on
:data:`models.defaults.HELD_OUT_SLICE` (``8000:10000``), which training never sees
(with ``--dev`` not even the final score is computed on them:
:data:`models.defaults.DEV_SLICES`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..datasets import load_mnist
from ..defaults import DEV_SLICES, HELD_OUT_SLICE, STEPS, TRAIN_SLICE
from ..nirio import read_nir, write_nir
from ..zoo.catalog import TRAINED_DIR as ZOO_DIR
from .conversion import convert, hybridize, snn_accuracy
from .layers import ARCHITECTURES, QCFS
from .loop import TrainConfig, train

DESCRIPTION = "Train the zoo's spiking MNIST classifiers in pure numpy and export them as NIR."
#: held-out SNN accuracy below which the command warns (the zoo's published targets).
TARGETS = {"mlp": 0.970, "cnn": 0.980}
#: the most time steps a conversion may target (the project's latency budget).
MAX_STEPS = 32


def _span(sl: tuple) -> str:
    """``(a, b)`` as the slice ``a:b``."""
    return f"{sl[0]}:{sl[1]}"


DEFAULTS = {
    "mlp": dict(epochs=60, lr=2e-3, levels=8),
    "cnn": dict(epochs=30, lr=2e-3, levels=8),
}


#: the hybrid variants of the shipped CNN (:func:`write_hybrids`): name -> (ANN layers, output ANN, T)
HYBRIDS = {"mnist_hybrid": ((0,), False, None), "mnist_ann": ((0, 1), True, 1)}


def write_hybrids(src: Path | None = None, out_dir: Path | None = None) -> dict:
    """Write the hybrid and all-ANN versions of the shipped CNN (:func:`hybridize`; no
    training: the same trained QCFS network) and score them on the held-out images with
    the float reference; returns ``{name: accuracy}``.

    * ``mnist_hybrid``: conv1 an ANN layer (8-bit activations on the chip, MACs into
      conv2), conv2 and fc1 IF layers, T = the CNN's steps (Tianjic's hybrid paradigm);
    * ``mnist_ann``: every layer an ANN layer, T = 1.
    """
    src = src or ZOO_DIR / "mnist_cnn.nir"
    out_dir = out_dir or ZOO_DIR
    g = read_nir(src)
    x_te, y_te = load_mnist(start=HELD_OUT_SLICE[0], stop=HELD_OUT_SLICE[1])
    scores = {}
    for name, (ann, ann_out, steps) in HYBRIDS.items():
        h = hybridize(g, ann, ann_output=ann_out, steps=steps)
        T = int(h.metadata["steps"])
        acc = snn_accuracy(h, x_te, y_te, T)
        h.metadata.update({"snn_accuracy": acc, "scored_on": f"MNIST test[{_span(HELD_OUT_SLICE)}]",
                           "derived_from": "mnist_cnn.nir (python -m models.train hybrid)",
                           "command": "python -m models.train hybrid"})
        path = out_dir / f"{name}.nir"
        write_nir(h, path)
        read_nir(path)
        scores[name] = acc
        print(f"{name}: ANN layers {h.metadata['ann_layers']}, T = {T}: held-out accuracy {acc:.4f} -> {path}")
    return scores


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        import sys

        argv = sys.argv[1:]
    if argv[:1] == ["hybrid"]:
        write_hybrids()
        return 0
    ap = argparse.ArgumentParser(prog="python -m models.train", description=DESCRIPTION)
    ap.add_argument("model", choices=sorted(DEFAULTS), help="which zoo model to train (or 'hybrid': write the "
                    "hybrid and all-ANN versions of the shipped CNN)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default per model)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--steps", type=int, default=STEPS,
                    help=f"SNN time steps T the conversion targets (default {STEPS}, at most {MAX_STEPS})")
    ap.add_argument("--levels", type=int, default=None, help="QCFS quantisation levels L")
    ap.add_argument("--lr", type=float, default=None, help="peak Adam learning rate")
    ap.add_argument("--out", type=Path, default=None,
                    help="output .nir path (default models/zoo/trained/mnist_<model>.nir)")
    ap.add_argument("--dev", action="store_true",
                    help=f"hyper-parameter mode: train on {_span(DEV_SLICES[0])}, score on "
                         f"{_span(DEV_SLICES[1])}, write nothing unless --out is given")
    args = ap.parse_args(argv)
    if not 1 <= args.steps <= MAX_STEPS:
        ap.error(f"--steps must be between 1 and {MAX_STEPS}")
    d = DEFAULTS[args.model]
    cfg = TrainConfig(epochs=args.epochs if args.epochs is not None else d["epochs"],
                      lr=args.lr if args.lr is not None else d["lr"],
                      levels=args.levels if args.levels is not None else d["levels"],
                      seed=args.seed)
    tr, te = DEV_SLICES if args.dev else (TRAIN_SLICE, HELD_OUT_SLICE)
    x_tr, y_tr = load_mnist(start=tr[0], stop=tr[1])
    x_te, y_te = load_mnist(start=te[0], stop=te[1])
    print(f"{args.model}: {ARCHITECTURES[args.model]}")
    print(f"train on MNIST test[{_span(tr)}], score on [{_span(te)}]; {cfg}", flush=True)

    t0 = time.perf_counter()
    model = train(args.model, x_tr, y_tr, cfg)
    train_s = time.perf_counter() - t0
    ann_acc = float(np.mean(model.predict(x_te) == y_te))
    lams = [float(l.params["lam"][0]) for l in model.layers if isinstance(l, QCFS)]
    print(f"training took {train_s:.0f} s; ANN (QCFS, L={cfg.levels}) accuracy {ann_acc:.4f}; "
          f"lambdas {lams}", flush=True)

    graph = convert(model, x_tr, steps=args.steps)
    t1 = time.perf_counter()
    snn_acc = snn_accuracy(graph, x_te, y_te, args.steps)
    print(f"SNN accuracy at T={args.steps}: {snn_acc:.4f} ({time.perf_counter() - t1:.0f} s), "
          f"theta_out {graph.metadata['theta_out']:.4g}", flush=True)
    for t in (16, 8):
        if t < args.steps:
            print(f"  same file run for T={t}: {snn_accuracy(graph, x_te, y_te, t):.4f}", flush=True)

    out = args.out if args.out is not None else (None if args.dev else ZOO_DIR / f"mnist_{args.model}.nir")
    if out is not None:
        score = "dev_" if args.dev else ""
        graph.metadata.update({
            f"{score}ann_accuracy": ann_acc, f"{score}snn_accuracy": snn_acc,
            "scored_on": f"MNIST test[{_span(te)}]", "seed": int(args.seed),
            "epochs": int(cfg.epochs),  # no timings: the file must be reproducible
            "command": f"python -m models.train {args.model}" + (
                f" --epochs {cfg.epochs}" if args.epochs is not None else "") + (
                f" --seed {args.seed}" if args.seed else ""),
        })
        write_nir(graph, out)  # atomic
        read_nir(out)  # must load back
        print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
        if not args.dev and snn_acc < TARGETS[args.model]:
            print(f"WARNING: SNN accuracy {snn_acc:.4f} below the target {TARGETS[args.model]:.3f}")
    return 0
