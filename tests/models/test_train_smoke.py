"""Smoke tests of models.train and accuracy checks of the shipped zoo models.

* a tiny training epoch (a few hundred images) through the same functions the
  script uses: the loss must go down and the conversion must give a NIR graph
  that ``nir.write`` / ``nir.read`` round-trip and :func:`models.train.simulate` runs;
* the shipped ``models/zoo/trained/mnist_{mlp,cnn}.nir`` must reach their targets
  (97.0 % / 98.0 %) on the 2,000 held-out images MNIST test[8000:10000] at T = 32
  with the float SNN semantics of :func:`models.train.simulate`.

All of them need the real MNIST files in ``shared/data/mnist`` and skip without.
"""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from models import train as T  # noqa: E402
from models.datasets import load_mnist, shared_data_dir  # noqa: E402

MNIST_DIR = shared_data_dir() / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists()
    and not (MNIST_DIR / "t10k-images-idx3-ubyte").exists(),
    reason=f"MNIST test files not found in {MNIST_DIR} (set SNNCHIP_DATA or provide ../shared/data/mnist)",
)


@pytest.fixture(scope="module")
def small_train():
    return load_mnist(start=0, stop=384)


@needs_mnist
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_one_tiny_epoch_lowers_loss_and_converts(kind, small_train, tmp_path):
    x, y = small_train
    before = T.mean_loss(T.build_model(kind, seed=0, levels=8), x, y)
    cfg = T.TrainConfig(epochs=1, batch=64, seed=0, log=False, augment=True)
    model = T.train(kind, x, y, cfg)
    after = T.mean_loss(model, x, y)
    assert after < before, f"{kind}: loss did not decrease ({before:.3f} -> {after:.3f})"
    assert len(cfg.history) == 1

    graph = T.convert(model, x, steps=8)
    path = tmp_path / f"{kind}.nir"
    nir.write(str(path), graph)
    back = nir.read(str(path))
    assert set(back.nodes) == set(graph.nodes)
    assert any(isinstance(n, nir.IF) for n in back.nodes.values())
    for node in back.nodes.values():
        if isinstance(node, (nir.Affine, nir.Conv2d)):
            assert node.weight.dtype == np.float32
    counts, v = T.simulate(back, x[:16], steps=8)
    assert counts.shape == (16, 10) and counts.min() >= 0 and counts.max() <= 8
    assert T.predict_from_output(counts, v).shape == (16,)


def test_prediction_tie_rule():
    counts = np.array([[3, 5, 5, 1], [0, 0, 0, 0], [2, 2, 2, 2]], np.float32)
    v = np.array([[9.0, 0.1, 0.4, 0.0], [0.2, 0.5, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    assert T.predict_from_output(counts, v).tolist() == [2, 1, 0]


def test_if_layer_counts_constant_input_exactly():
    """IF with subtractive reset, constant current I in [0, 1]: floor(T I) spikes."""
    current = np.array([0.0, 0.1, 0.26, 0.5, 0.99, 1.0, 1.7, -0.3], np.float32)
    n = len(current)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "fc": nir.Affine(weight=np.eye(n, dtype=np.float32), bias=np.zeros(n, np.float32)),
            "if": nir.IF(r=np.ones(n, np.float32), v_threshold=np.ones(n, np.float32)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")],
    )
    counts, v = T.simulate(graph, current[None], steps=32)
    expected = np.clip(np.floor(32 * current.astype(np.float64)), 0, 32)
    assert counts[0].tolist() == expected.tolist()


@pytest.fixture(scope="module")
def held_out():
    return load_mnist(start=8000, stop=10000)


@needs_mnist
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_shipped_model_reaches_target(kind, held_out):
    path = T.ZOO_DIR / f"mnist_{kind}.nir"
    assert path.exists(), f"{path} is missing: run python -m models.train {kind}"
    assert path.stat().st_size < 2 * 1024 * 1024
    graph = nir.read(str(path))
    assert int(graph.metadata["steps"]) <= 32
    x, y = held_out
    acc = T.snn_accuracy(graph, x, y, steps=32)
    assert acc >= T.TARGETS[kind], f"{kind}: held-out SNN accuracy {acc:.4f} < {T.TARGETS[kind]}"
