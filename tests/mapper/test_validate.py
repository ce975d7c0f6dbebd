"""mapper.validate: the rules are a list of named functions, and repeated violations read as one."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.chip import load_chip
from mapper.tiling import tile
from mapper.validate import RULES, MappingError, check, validate
from models.net import DenseProjection, Net, Population

TIANJIC = load_chip("tianjic")  # 256 x 256 crossbars


def _wide_net(n_post=600):
    """10 inputs -> 600 neurons: on 256-neuron crossbars, tiles of 256, 256 and 88 neurons."""
    w = np.random.default_rng(0).standard_normal((n_post, 10))
    return Net([Population("input", "input", (10,)), Population("out", "IF", (n_post,))],
               [DenseProjection("in->out", "input", "out", w)], "out")


def test_rules_are_a_list_of_named_functions():
    assert [r.__name__ for r in RULES] == [
        "rule_axons", "rule_neurons", "rule_mode", "rule_crossbars", "rule_fold", "rule_memory",
        "rule_neuron_model", "rule_activation_payload", "rule_weight_bits", "rule_axon_types", "rule_cores", "rule_routing_entries"]


def test_repeated_violations_of_one_layer_read_as_one():
    t = tile(_wide_net(), TIANJIC)
    assert [x.n_neurons for x in t.tiles] == [256, 256, 88]
    small = TIANJIC.with_overrides({"core.neurons": 128, "core.neuron_models": ["LIF"]})
    v = check(t, small, net=_wide_net())
    # every violation is still listed; the text groups the two tiles of 'out' over 128 neurons
    assert [(x.rule, x.where) for x in v] == [("neurons", "out tile (0, 0) on core 0"),
                                              ("neurons", "out tile (1, 0) on core 1"),
                                              ("neuron_model", "out")]
    with pytest.raises(MappingError) as err:
        validate(t, small, net=_wide_net(), context="wide")
    assert str(err.value) == (
        "wide: mapping violates 3 chip limit(s): "
        "neurons: out tile (0, 0) on core 0: needs 256 neurons, core has 128 "
        "(1 of 2 tiles of layer out that exceed 128 neurons); "
        "neuron_model: out: neuron model IF not supported (core has ['LIF'])")
    # a single violation reads as before: 300 neurons are tiles of 256 and 44
    with pytest.raises(MappingError) as err:
        validate(tile(_wide_net(300), TIANJIC), TIANJIC.with_overrides({"core.neurons": 200}))
    assert str(err.value) == "mapping violates 1 chip limit(s): neurons: out tile (0, 0) on core 0: needs 256 " \
                             "neurons, core has 200"
