"""Small nets, chips and the exactness check shared by the engine's tests (public so test
modules import them without reaching into each other's private names)."""

from __future__ import annotations

import numpy as np

from hwsim.chip import load_chip
from models.net import ConvProjection, DenseProjection, Net, Population
from models.ops import ConvGeometry

__all__ = ["SMALL", "same", "pop", "random_net", "toy", "toy_chip"]

SMALL = {"core.axons": 64, "core.neurons": 64, "mesh.width": 4, "mesh.height": 4, "mesh.max_chips": 16,
         "core.memory_bytes": 1 << 16, "core.routing_entries": 1024}


def same(ref, r):
    assert set(ref.spikes) == set(r.spikes)
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(r.membrane[k], ref.membrane[k], err_msg=f"membrane of {k}")
    np.testing.assert_array_equal(r.output, ref.output)


def pop(name, model, n, shape=None, **params):
    return Population(name, model, shape or (n,),
                      {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy() for k, v in params.items()})


def random_net(seed):
    rng = np.random.default_rng(seed)
    C, H = 2, 6
    spiking = bool(seed % 2)
    geom = ConvGeometry(C, 4, (H, H), (3, 3), (1, 1), (1, 1))
    inp = Population("in", "input", (C, H, H))
    a = pop("a", "LIF" if seed % 3 else "IF", 4 * H * H, (4, H, H), r=1.0, tau=3.0, v_leak=0.0,
             v_threshold=rng.uniform(0.5, 1.5, 4 * H * H), v_reset=0.0)
    b = pop("b", "IF", 12, r=1.0, v_threshold=1.0, v_reset=0.0)
    o = pop("o", "LIF", 5, r=1.0, tau=2.0, v_leak=0.0, v_threshold=0.8, v_reset=0.0)
    w1 = rng.normal(0, 0.6, (4, C, 3, 3)) * (rng.random((4, C, 3, 3)) < 0.8)
    projs = [ConvProjection("c", "in", "a", w1, geom),
             DenseProjection("d1", "a", "b", rng.normal(0, 0.3, (12, 4 * H * H))),
             DenseProjection("d2", "b", "o", rng.normal(0, 0.8, (5, 12))),
             DenseProjection("sk", "a", "o", rng.normal(0, 0.1, (5, 4 * H * H)), delay_steps=1)]
    net = Net([inp, a, b, o], projs, "o", input_spiking=spiking)
    x = rng.random((10, 4, C, H, H))
    if spiking:
        x = (x < 0.3).astype(np.float32)
    return net, x


def toy():
    inp = Population("in", "input", (3,))
    h = pop("h", "IF", 2, r=1.0, v_threshold=1.0, v_reset=0.0)
    o = pop("o", "IF", 1, r=1.0, v_threshold=1.5, v_reset=0.0)
    return Net([inp, h, o], [DenseProjection("in->h", "in", "h", np.array([[1.0, 0, 2], [0, 3, 1]])),
                             DenseProjection("h->o", "h", "o", np.array([[1.0, 1.0]]))], "o")


def toy_chip():
    return load_chip("tiny").with_overrides({
        **SMALL, "core.pe_width": 1, "core.event_overhead_cycles": 2, "core.crossbars_per_core": 1,
        "noc.router_cycles": 1, "noc.link_cycles": 1, "timing.barrier_cycles": 5, "noc.flit_bits": 32})
