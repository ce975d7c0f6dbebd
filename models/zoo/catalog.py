"""Find a model by name: a .nir path, a shipped trained model, or a zoo builder.

``load("mnist_cnn")`` reads the shipped file, ``load("nir_cnn")`` the NIR paper's
CNN from the shared data, ``load("vgg16:imagenet")`` builds VGG-16 with seeded
random weights, anything else is read as a path.
"""

from __future__ import annotations

from pathlib import Path

from ..datasets import shared_data_dir
from ..errors import NIRFormatError
from ..graph import Graph
from ..nirio import read_nir

TRAINED_DIR = Path(__file__).resolve().parent / "trained"
TRAINED = {
    "mnist_mlp": "MNIST MLP, ANN-to-SNN converted IF network (shipped)",
    "mnist_cnn": "MNIST conv net, ANN-to-SNN converted IF network (shipped)",
    "mnist_hybrid": "MNIST conv net, hybrid: conv1 an ANN layer (8-bit activations), conv2/fc IF (shipped)",
    "mnist_ann": "MNIST conv net, every layer an ANN layer, T = 1 (shipped)",
}
SHARED = {"nir_cnn": ("nir_paper/cnn_sinabs.nir", "NIR paper N-MNIST CNN (Sinabs export, shared data)")}


def trained_path(name: str) -> Path:
    return TRAINED_DIR / f"{name}.nir"


def available() -> dict:
    """Names that :func:`load` understands, with a one-line description."""
    out = dict(TRAINED)
    out.update({k: v[1] for k, v in SHARED.items()})
    try:
        from .builders import BUILDERS
        for k in BUILDERS:
            out[f"{k}[:cifar|:imagenet]"] = "zoo builder, seeded random weights"
    except ImportError:  # builders are optional at this layer
        pass
    return out


def load(spec: str, *, seed: int = 0, dt: float | None = None) -> Graph:
    """A :class:`Graph` for ``spec`` (see the module docstring); ``dt`` overrides a file's time step."""
    if spec in TRAINED:
        return read_nir(trained_path(spec), dt=dt)
    if spec in SHARED:
        return read_nir(shared_data_dir() / SHARED[spec][0], dt=dt)
    name, _, shape = spec.partition(":")
    try:
        from .builders import BUILDERS, build
    except ImportError:
        BUILDERS = {}
    if name in BUILDERS:
        return build(name, shape=shape or "cifar", seed=seed)
    path = Path(spec)
    if path.suffix == ".nir" or path.exists():
        return read_nir(path, dt=dt)
    raise NIRFormatError(f"{spec}: not a file, shipped model or zoo builder (known: {', '.join(available())})")
