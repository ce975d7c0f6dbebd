"""Smoke tests of models.train and accuracy checks of the shipped zoo models.

* the ``Conv`` layer (forward :func:`models.ops.conv2d`, input gradient
  :func:`models.ops.conv2d_transpose`, im2col weight gradient) against central
  finite differences on a tiny layer in float64;
* a tiny training epoch (a few hundred images) through the same functions the
  script uses: the loss must go down and the conversion must give a
  :class:`models.Graph` that ``write_nir`` / ``read_nir`` round-trip and the
  official reference (``models.simulate`` on ``models.lower(graph)``) runs;
* the shipped ``models/zoo/trained/mnist_{mlp,cnn}.nir`` must reach their targets
  (97.0 % / 98.0 %) on the 2,000 held-out images MNIST test[8000:10000] at T = 32
  under the official reference (subtractive reset, binary spikes, argmax of
  output spike counts with ties to the lowest index): exactly 1967 and 1980
  correct, the figures recorded in their metadata.

The MNIST tests need the real files in ``shared/data/mnist`` and skip without.
"""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import models  # noqa: E402
from models import train as T  # noqa: E402
from models.datasets import load_mnist, mnist_sequences, shared_data_dir  # noqa: E402

MNIST_DIR = shared_data_dir() / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists()
    and not (MNIST_DIR / "t10k-images-idx3-ubyte").exists(),
    reason=f"MNIST test files not found in {MNIST_DIR} (set SNNCHIP_DATA or provide ../shared/data/mnist)",
)


def test_conv_layer_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    layer = T.Conv(2, 3, 3, rng)
    layer.params = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}  # float64
    x = rng.standard_normal((2, 6, 5, 2))  # (N, H, W, C), channel-last as in the model
    r = rng.standard_normal((2, 4, 3, 3))  # loss = sum(y * r)

    def loss() -> float:
        return float(np.sum(layer.forward(x, True) * r))

    y = layer.forward(x, True)
    direct = np.einsum("ocab,nijabc->nijo", layer.params["weight"],
                       np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))
                       .transpose(0, 1, 2, 4, 5, 3)) + layer.params["bias"]
    np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)
    dx = layer.backward(r)
    grads = dict(layer.grads, x=dx)
    eps = 1e-6
    for name, arr in (("weight", layer.params["weight"]), ("bias", layer.params["bias"]), ("x", x)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = loss()
            arr[idx] = old - eps
            down = loss()
            arr[idx] = old
            num[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-7, err_msg=name)


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
    assert isinstance(graph, models.Graph) and graph.dt == 1.0
    path = tmp_path / f"{kind}.nir"
    models.write_nir(graph, path)
    back = models.read_nir(path)
    assert set(back.nodes) == set(graph.nodes)
    assert back.metadata["theta_out"] == graph.metadata["theta_out"]
    assert any(isinstance(n, nir.IF) for n in back.nodes.values())
    for node in back.nodes.values():
        if isinstance(node, (nir.Affine, nir.Conv2d)):
            assert node.weight.dtype == np.float32
    res = models.simulate(models.lower(back), np.broadcast_to(x[:16], (8,) + x[:16].shape),
                          reset="subtract", spikes="binary")
    assert res.counts.shape == (16, 10) and res.counts.min() >= 0 and res.counts.max() <= 8
    assert res.predict().shape == (16,)
    assert T.snn_accuracy(back, x[:16], y[:16], steps=8) == res.accuracy(y[:16])


def test_if_layer_counts_constant_input_exactly():
    """IF with subtractive reset, constant current I: clip(floor(T I), 0, T) spikes
    under the official reference (the conversion's premise)."""
    current = np.array([0.0, 0.1, 0.26, 0.5, 0.99, 1.0, 1.7, -0.3], np.float32)
    n = len(current)
    graph = models.Graph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "fc": nir.Affine(weight=np.eye(n, dtype=np.float32), bias=np.zeros(n, np.float32)),
            "if": nir.IF(r=np.ones(n, np.float32), v_threshold=np.ones(n, np.float32),
                         v_reset=np.zeros(n, np.float32)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")],
    )
    res = models.simulate(models.lower(graph), np.broadcast_to(current, (32, 1, n)),
                          reset="subtract", spikes="binary")
    expected = np.clip(np.floor(32 * current.astype(np.float64)), 0, 32)
    assert res.counts[0].tolist() == expected.tolist()


#: Correct held-out classifications (of 2,000) under the official reference, T = 32.
SHIPPED_CORRECT = {"mlp": 1967, "cnn": 1980}


@pytest.fixture(scope="module")
def held_out():
    return mnist_sequences("direct", 32, start=8000, stop=10000)


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_shipped_model_reaches_target(kind, held_out):
    path = T.ZOO_DIR / f"mnist_{kind}.nir"
    assert path.exists(), f"{path} is missing: run python -m models.train {kind}"
    assert path.stat().st_size < 2 * 1024 * 1024
    graph = models.read_nir(path)
    assert int(graph.metadata["steps"]) <= 32
    res = models.simulate(models.lower(graph), held_out.inputs, reset="subtract", spikes="binary")
    correct = int(np.sum(res.predict() == held_out.labels))
    acc = correct / len(held_out.labels)
    assert acc >= T.TARGETS[kind], f"{kind}: held-out SNN accuracy {acc:.4f} < {T.TARGETS[kind]}"
    assert correct == SHIPPED_CORRECT[kind]
    assert graph.metadata["snn_accuracy"] == pytest.approx(acc, abs=1e-12)


@needs_mnist
def test_model_from_graph_inverts_the_conversion():
    from models.datasets import load_mnist
    from models.train import TRAIN_SLICE, convert, model_from_graph
    from models.zoo.catalog import load

    g = load("mnist_mlp")
    x, _ = load_mnist(start=TRAIN_SLICE[0], stop=TRAIN_SLICE[1])
    g2 = convert(model_from_graph(g), x, steps=int(g.metadata["steps"]))
    assert g2.metadata["theta_out"] == pytest.approx(g.metadata["theta_out"], rel=1e-6)
    for n in ("fc1", "fc2"):
        a, b = np.asarray(g.nodes[n].weight), np.asarray(g2.nodes[n].weight)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6 * np.abs(a).max())
    with pytest.raises(ValueError, match="no trainer"):
        model_from_graph(models.Graph(g.nodes, g.edges, metadata={}))


@pytest.mark.slow
@needs_mnist
def test_finetune_keeps_the_crossbar_budget_and_recovers():
    import json

    from hwsim.chip import load_chip
    from mapper.mapping import map_model
    from mapper.prune import finetune, prune
    from models.train import snn_accuracy
    from models.zoo.catalog import load

    x, y = load_mnist(start=8000, stop=8500)
    chip = load_chip("tianjic")
    g = load("mnist_mlp")
    r = prune(g, chip, target=0.4)
    before = snn_accuracy(r.graph, x, y)
    r2 = finetune(r, 2)
    after = snn_accuracy(r2.graph, x, y)
    assert r.crossbars_implied == 6
    assert map_model(r2.graph, chip).tiling.n_crossbars == r2.crossbars_implied <= 6
    for s0, s in zip(r.solutions, r2.solutions):  # at most k pairs, the rest exactly zero
        assert s.keep.sum() <= s0.keep.sum()
        w = np.asarray(r2.graph.nodes[s.layer.node].weight)
        assert not w[~s.mask()].any()
    assert after > before
    assert json.loads(r2.graph.metadata["pruning"])["finetune_epochs"] == 2
