"""The functional kernel's layouts for speed (issue 17): neuron state kept in accumulator
order (hwsim.engine.build.state_order), spike lists from 64-bit masks
(hwsim.engine.bitops) and a convolution's run tables (hwsim.engine.build._conv_runs):
by hand, and a conv net whose conv populations are reordered gives the integer reference's
spikes and membranes and the explicit-row program's counters."""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.chip import load_chip
from hwsim.engine import reference_net, simulate
from hwsim.engine.bitops import lowest_bit
from hwsim.engine.build import _conv_runs, kernel_inputs
from hwsim.engine.layout import kernel_field
from hwsim.program import compile
from mapper.mapping import map_model
from models.intref import simulate_int
from models.net import ConvProjection, DenseProjection, Net, Population
from models.ops import ConvGeometry


@njit(cache=True)
def _bits_of(m):
    out = np.zeros(64, np.int64)
    k = 0
    while m != 0:
        out[k] = lowest_bit(m)
        k += 1
        m &= m - 1
    return out[:k]


def test_lowest_bit_lists_a_mask_in_order():
    assert _bits_of(np.int64(0b1011000)).tolist() == [3, 4, 6]
    assert _bits_of(np.int64(1)).tolist() == [0]
    assert _bits_of(np.int64(-(1 << 63))).tolist() == [63]  # the sign bit
    assert _bits_of(np.int64(-1)).tolist() == list(range(64))


def test_conv_runs_by_hand():
    """3x3 kernel, stride 2, padding 1, 5x5 -> 3x3, two output channels. Taps stored by
    residue b mod 2 (residue 0 first, descending b): b = 2, 0, 1 at positions 0, 1, 2.
    Column x reaches outputs j = (x + 1 - b) / 2: x = 0: b = 1 -> j = 0 (one tap from
    position 2); x = 1: b = 2, 0 -> j = 0, 1 (two taps from position 0); x = 2: b = 1 ->
    j = 1; x = 3: b = 2, 0 -> j = 1, 2; x = 4: b = 1 -> j = 2. Row y, kernel row a: output
    row (y + 1 - a) / 2 when an integer in [0, 3)."""
    geom = np.array([1, 5, 5, 2, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2])
    tab = _conv_runs(geom)
    xt, yt = tab[:15].reshape(5, 3), tab[15:].reshape(5, 3)
    assert xt.tolist() == [[0, 1, 2], [0, 2, 0], [1, 1, 2], [1, 2, 0], [2, 1, 2]]
    assert yt.tolist() == [[-1, 0, -1], [1, -1, 0], [-1, 1, -1], [2, -1, 1], [-1, 2, -1]]
    dil = geom.copy()
    dil[13] = 2  # dilated columns: one run per tap, no tables
    grouped = geom.copy()
    grouped[15] = 1  # two groups of one output channel
    assert _conv_runs(dil) is None and _conv_runs(grouped) is None


def _conv_net():
    """in (2, 6, 6) -> conv 3x3 stride 2 pad 1 -> a (3, 3, 3) IF -> conv 2x2 -> b (2, 2, 2)
    IF -> dense -> o (3); distinct thresholds per neuron, so a neuron's state read from
    another's slot shows."""
    rng = np.random.default_rng(7)
    g1 = ConvGeometry(2, 3, (6, 6), (3, 3), (2, 2), (1, 1))
    g2 = ConvGeometry(3, 2, (3, 3), (2, 2))

    def pop(name, shape, thr):
        n = int(np.prod(shape))
        prm = {"v_threshold": np.asarray(thr, np.float64), "r": np.ones(n), "v_reset": np.zeros(n)}
        return Population(name, "IF", shape, prm)

    pops = [Population("in", "input", (2, 6, 6)), pop("a", (3, 3, 3), rng.uniform(0.5, 1.5, 27)),
            pop("b", (2, 2, 2), rng.uniform(0.5, 1.5, 8)), pop("o", (3,), [1.0, 1.2, 0.9])]
    projs = [ConvProjection("c1", "in", "a", rng.normal(0.3, 0.8, (3, 2, 3, 3)), g1),
             ConvProjection("c2", "a", "b", rng.normal(0.3, 0.8, (2, 3, 2, 2)), g2),
             DenseProjection("d", "b", "o", rng.normal(0.4, 1.0, (3, 8)))]
    x = (rng.random((12, 2, 2, 6, 6)) < 0.3).astype(np.float32)
    return Net(pops, projs, "o", input_spiking=True), x


def test_conv_populations_kept_in_accumulator_order():
    """On the geometric path both conv populations keep their state in the (y, x, c)
    order of their accumulators: neuron (c, y, x) of a (C, H, W) population at slot
    (y W + x) C + c, its threshold there too; spikes and membranes equal the integer
    reference's, and counters and outputs equal the explicit-row program's."""
    net, x = _conv_net()
    chip = load_chip("tiny").with_overrides({"core.axons": 64, "core.neurons": 16, "mesh.width": 4,
                                             "mesh.height": 4, "core.memory_bytes": 1 << 16})
    m = map_model(net, chip)
    geo = compile(m, conv_path="geometric")
    kb, ko, _, _ = kernel_inputs(geo, "subtract", "binary", None, 1, False, 1, False)
    order = kernel_field(kb, ko, "pop_acc_order")
    names = list(geo.pop_names)
    assert [bool(order[names.index(p)]) for p in ("a", "b", "o")] == [True, True, False]
    slot, at_slot = kernel_field(kb, ko, "nrn_slot"), kernel_field(kb, ko, "nrn_at_slot")
    thr = kernel_field(kb, ko, "nrn_thr")
    for p, (C, H, W) in (("a", (3, 3, 3)), ("b", (2, 2, 2))):
        off = int(geo.pop_off[names.index(p)])
        n = np.arange(C * H * W)
        c, y, xx = n // (H * W), (n // W) % H, n % W
        assert (slot[off + n] - off).tolist() == ((y * W + xx) * C + c).tolist()
        assert at_slot[slot[off + n]].tolist() == n.tolist()
        assert thr[slot[off + n]].tolist() == geo.nrn_thr[off + n].tolist()
    o = int(geo.pop_off[names.index("o")])
    assert slot[o:o + 3].tolist() == [o, o + 1, o + 2]
    r = simulate(geo, x, record="all", timing=False)
    ref = simulate_int(reference_net(m.net, m.chip.timing.mode), x, record="all")
    assert sum(int(ref.spikes[k].sum()) for k in ("a", "b")) > 0  # the conv layers do fire
    for k in ref.spikes:
        np.testing.assert_array_equal(r.spikes[k], ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(r.membrane[k], ref.membrane[k], err_msg=f"membrane of {k}")
    rows = simulate(compile(m, conv_path="rows"), x, record="all", timing=False)
    np.testing.assert_array_equal(r.output, rows.output)
    np.testing.assert_array_equal(r.counters, rows.counters)
