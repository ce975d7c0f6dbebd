"""ChipConfig: presets, derived totals, round trips, overrides and one-line errors."""

from __future__ import annotations

import json

import pytest

from hwsim import ChipConfig, ChipConfigError, describe, list_presets, load_chip, parse_overrides
from hwsim.chip import _is_field_path
from models.errors import SnnchipError

PRESETS = ("crossbar", "loihi", "tianjic", "tiny", "truenorth")


def test_list_presets():
    assert tuple(list_presets()) == PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_cites_and_labels(name):
    chip = ChipConfig.preset(name)
    assert chip.name == name
    assert chip.assumptions, "every preset lists its assumptions"
    if name != "tiny":
        assert chip.sources
    # every assumption that names fields names real ones
    for a in chip.assumptions:
        head, sep, _ = a.partition(": ")
        assert sep, a
        if head != "all fields":
            for p in head.split(","):
                assert _is_field_path(p.strip()), f"{name}: assumption names unknown field {p!r}"


def test_tianjic_totals():
    chip = load_chip("tianjic")
    assert (chip.mesh.width, chip.mesh.height) == (12, 13)
    assert chip.cores_per_chip == chip.total_cores == 156
    assert chip.crossbar_cells == 256 * 256 * 156 == 10_223_616     # "about 10M synapses"
    assert chip.total_neurons == 156 * 256 == 39_936                # "about 40k neurons"
    assert chip.weight_range == (-128, 127)
    assert chip.membrane_range == (-32768, 32767)
    assert chip.cycle_ns == pytest.approx(10 / 3)
    assert chip.timing.step_cycles == 5050
    assert chip.step_ns == pytest.approx(16_833.33, rel=1e-5)     # 16.8 us phase
    assert set(chip.core.modes) == {"ANN", "SNN"}
    assert "core.pe_width" in chip.assumed_fields()
    assert "core.weight_bits" not in chip.assumed_fields()         # published


def test_other_preset_totals():
    tn = load_chip("truenorth")
    assert tn.total_cores == 4096 and tn.total_neurons == 1_048_576
    assert tn.crossbar_cells == 4096 * 65536
    assert tn.weight_range == (-256, 255) and tn.core.spike_payload_bits == 0
    assert tn.step_ns == pytest.approx(1e6)                         # 1 ms tick
    lo = load_chip("loihi")
    assert lo.total_cores == 128 and lo.core.neurons == 1024
    assert lo.core.memory_bytes == 128 * 1024 and "CubaLIF" in lo.core.neuron_models
    assert lo.core.modes == ("SNN",) and lo.timing.step_cycles == "dynamic"
    tiny = load_chip("tiny")
    assert tiny.total_cores == 4 and tiny.crossbar_cells == 4 * 16 * 16
    assert tiny.mesh.max_chips == 4 and tiny.cycle_ns == pytest.approx(10.0)
    assert len(tiny.core.neuron_models) == 9 and tiny.core.state_bits == 16


def test_issue22_fields_of_the_presets():
    """Sparse synapse memory (Loihi), axon types (TrueNorth), weight-stationary conv (crossbar)."""
    lo, tn, xb, tj = (load_chip(n) for n in ("loihi", "truenorth", "crossbar", "tianjic"))
    assert (lo.core.synapse_memory, lo.core.synapse_index_bits, lo.core.conv_mapping) == ("sparse", 8, "unrolled")
    assert "core.synapse_index_bits" in lo.assumed_fields() and "core.synapse_memory" not in lo.assumed_fields()
    assert lo.mesh.width * lo.mesh.height == 128 and lo.core.neurons == 1024   # published
    assert tn.core.axon_types == 4 and "core.axon_types" not in tn.assumed_fields()      # published
    # 256 x 256 binary crossbar + 4 x 9-bit weights per neuron + 256 x 20-bit state fit 256 x 410 bits
    assert 256 * 256 // 8 + 256 * 4 * 9 // 8 + 256 * 20 // 8 == 9_984 <= tn.core.memory_bytes == 13_120
    assert (xb.core.conv_mapping, xb.core.axons, xb.core.neurons, xb.core.crossbars_per_core) == \
        ("weight_stationary", 256, 256, 8)
    assert xb.core.memory_bytes == 8 * 256 * 256 + 64 * 1024
    assert (tj.core.synapse_memory, tj.core.axon_types, tj.core.conv_mapping) == ("dense", 0, "unrolled")
    text = describe(lo)
    assert "synapse_memory" in text and "if every cell were a synapse" in text


def test_multichip_totals_and_state_bits():
    chip = load_chip("tiny").with_overrides({"mesh.chips_x": 2, "mesh.chips_y": 2,
                                             "core.crossbars_per_core": 2,
                                             "core.state_bits_per_neuron": 24})
    assert chip.chips == 4 and chip.total_cores == 16
    assert chip.core.neurons_per_core == 32
    assert chip.crossbar_cells == 16 * 2 * 16 * 16
    assert chip.core.state_bits == 24


@pytest.mark.parametrize("bits,expected", [(1, (-1, 0)), (4, (-8, 7)), (8, (-128, 127)),
                                           (9, (-256, 255)), (16, (-32768, 32767))])
def test_weight_range(bits, expected):
    assert load_chip("tiny").with_overrides({"core.weight_bits": bits}).weight_range == expected


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("ext", ["yaml", "yml", "json"])
def test_round_trip(tmp_path, name, ext):
    chip = ChipConfig.preset(name)
    path = chip.save(tmp_path / f"c.{ext}")
    back = ChipConfig.from_file(path)
    assert back == chip and back.to_dict() == chip.to_dict()
    assert load_chip(str(path)) == chip and load_chip(path) == chip


def test_to_yaml_text_round_trip(tmp_path):
    chip = load_chip("tianjic")
    p = tmp_path / "t.yaml"
    p.write_text(chip.to_yaml())
    assert ChipConfig.from_file(p) == chip
    q = tmp_path / "t.json"
    q.write_text(json.dumps(chip.to_dict()))
    assert ChipConfig.from_file(q) == chip


def test_overrides_return_new_validated_config():
    base = load_chip("tianjic")
    chip = base.with_overrides({"core.axons": 128, "mesh.width": 8, "timing.step_cycles": "dynamic",
                                "noc": {"multicast": "unicast"}})
    assert (chip.core.axons, chip.mesh.width, chip.noc.multicast) == (128, 8, "unicast")
    assert chip.timing.step_cycles == "dynamic"
    assert chip.cores_per_chip == 8 * 13
    assert base.core.axons == 256 and base.mesh.width == 12          # original untouched
    with pytest.raises(Exception):
        base.core.axons = 1                                          # frozen


def test_override_out_of_range_names_field():
    with pytest.raises(ChipConfigError) as e:
        load_chip("tianjic").with_overrides({"core.axons": 0})
    msg = str(e.value)
    assert "core.axons" in msg and "greater than or equal to 1" in msg and "\n" not in msg


@pytest.mark.parametrize("key", ["core.axon", "cores.axons", "core.axons.x", "bogus"])
def test_override_unknown_field(key):
    with pytest.raises(ChipConfigError, match="unknown field"):
        load_chip("tiny").with_overrides({key: 1})


@pytest.mark.parametrize("overrides,field", [
    ({"core.state_bits_per_neuron": 8}, "core.state_bits_per_neuron"),  # < membrane_bits 16
    ({"mesh.chips_x": 4, "mesh.chips_y": 2}, "mesh.max_chips"),          # 8 chips > max 4
    ({"core.neuron_models": ["IF", "IF"]}, "core.neuron_models"),
    ({"core.neuron_models": ["IF", "Izhikevich"]}, "core.neuron_models[1]"),
    ({"core.modes": []}, "core.modes"),
    ({"timing.step_cycles": 0}, "timing.step_cycles"),
    ({"timing.step_cycles": "fast"}, "timing.step_cycles"),
    ({"timing.clock_hz": 0}, "timing.clock_hz"),
    ({"noc.topology": "torus"}, "noc.topology"),
    ({"core.weight_bits": 17}, "core.weight_bits"),
    ({"core.synapse_index_bits": 4}, "core.synapse_index_bits"),      # needs synapse_memory: sparse
    ({"core.axon_types": 17}, "core.axon_types"),                     # above the 16 allowed
    ({"core.axon_types": 20, "core.axons": 16}, "core.axon_types"),
    ({"core.synapse_memory": "compressed"}, "core.synapse_memory"),
    ({"core.conv_mapping": "im2col"}, "core.conv_mapping"),
])
def test_cross_field_and_range_checks(overrides, field):
    with pytest.raises(ChipConfigError) as e:
        load_chip("tiny").with_overrides(overrides)
    assert f"{field}:" in str(e.value)


def test_parse_overrides():
    ov = parse_overrides(["core.axons=128", "timing.mode=pipelined", "core.modes=[SNN]"])
    assert ov == {"core.axons": 128, "timing.mode": "pipelined", "core.modes": ["SNN"]}
    assert load_chip("tiny").with_overrides(ov).core.modes == ("SNN",)
    with pytest.raises(ChipConfigError, match="FIELD=VALUE"):
        parse_overrides(["core.axons"])


def _write_preset_copy(tmp_path, name, edit):
    text = ChipConfig.preset("tianjic").to_yaml()
    p = tmp_path / name
    p.write_text(edit(text))
    return p


def test_file_value_error_names_file_and_field(tmp_path):
    p = _write_preset_copy(tmp_path, "tianjic.yaml", lambda t: t.replace("axons: 256", "axons: 0"))
    with pytest.raises(ChipConfigError) as e:
        ChipConfig.from_file(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and msg.endswith(
        "tianjic.yaml: core.axons: Input should be greater than or equal to 1 (got 0)")
    assert isinstance(e.value, SnnchipError)


def test_unknown_field_in_file(tmp_path):
    p = _write_preset_copy(tmp_path, "x.yaml", lambda t: t.replace("  axons: 256", "  axons: 256\n  axon: 3"))
    with pytest.raises(ChipConfigError) as e:
        ChipConfig.from_file(p)
    assert "x.yaml: core.axon: unknown field (allowed: axons, neurons" in str(e.value)


def test_missing_field_in_file(tmp_path):
    p = _write_preset_copy(tmp_path, "m.json", lambda t: t)
    d = ChipConfig.preset("tianjic").to_dict()
    del d["noc"]["flit_bits"]
    p.write_text(json.dumps(d))
    with pytest.raises(ChipConfigError, match=r"m\.json: noc\.flit_bits: required field missing"):
        ChipConfig.from_file(p)


def test_bad_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ncore:\n  axons: [1, 2\n")
    with pytest.raises(ChipConfigError) as e:
        ChipConfig.from_file(p)
    assert "bad.yaml: YAML syntax error at line" in str(e.value) and "\n" not in str(e.value)


def test_duplicate_yaml_key(tmp_path):
    p = _write_preset_copy(tmp_path, "dup.yaml", lambda t: t.replace("  axons: 256", "  axons: 256\n  axons: 128"))
    with pytest.raises(ChipConfigError, match="dup.yaml: YAML error.*duplicate key 'axons'"):
        ChipConfig.from_file(p)


def test_bad_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"name": "x",}')
    with pytest.raises(ChipConfigError, match=r"bad\.json: JSON syntax error at line 1"):
        ChipConfig.from_file(p)


def test_unsafe_yaml_tag_rejected(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ChipConfigError, match="evil.yaml: YAML error at line 1"):
        ChipConfig.from_file(p)


def test_top_level_not_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ChipConfigError, match="list.yaml: top level must be a mapping"):
        ChipConfig.from_file(p)


def test_missing_file_and_bad_extension(tmp_path):
    with pytest.raises(ChipConfigError, match="nope.yaml: file not found"):
        ChipConfig.from_file(tmp_path / "nope.yaml")
    with pytest.raises(ChipConfigError, match="unknown extension '.txt'"):
        ChipConfig.from_file(tmp_path / "chip.txt")
    with pytest.raises(ChipConfigError, match="nope.yaml: file not found"):
        load_chip(str(tmp_path / "nope.yaml"))


def test_unknown_preset():
    with pytest.raises(ChipConfigError, match="unknown chip preset 'loihi3'; available: crossbar, loihi, tianjic"):
        ChipConfig.preset("loihi3")
    with pytest.raises(ChipConfigError, match="unknown chip 'loihi3': not a preset"):
        load_chip("loihi3")
    with pytest.raises(ChipConfigError, match="unknown chip preset"):
        ChipConfig.preset("../pyproject")


def test_describe_lists_fields_units_totals_and_assumptions():
    chip = load_chip("tianjic")
    text = describe(chip)
    for field in ("axons", "pe_width", "routing_entries", "interchip_bits", "barrier_cycles", "clock_hz"):
        assert field in text
    assert "300 MHz" in text and "73,728 bytes" in text and "5,050 cycles" in text
    assert "156 (12 x 13)" in text and "10,223,616" in text and "39,936" in text
    assert "[-128, 127]" in text
    assert "  *pe_width" in text and "   weight_bits" in text               # assumption marks
    assert all(s in text for s in chip.sources) and all(a in text for a in chip.assumptions)
