"""Simulation semantics on every command (issue 19 item 4): ``--source`` / ``--reset`` /
``--spikes`` / ``--v-min`` resolved by one rule (:func:`snnchip.inputs.source_modes`),
recorded by ``map`` in the mapping and inherited by ``run``, the membrane floor reaching
the chip simulator and the integer reference it is checked against."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from models.errors import SnnchipError
from snnchip.cli import main
from snnchip.inputs import source_modes

from tests.conftest import DATA, NIR_CNN, need


def _args(**kw):
    return SimpleNamespace(**{k: kw.get(k) for k in ("source", "reset", "spikes", "v_min")})


def _meta(**kw):
    return SimpleNamespace(metadata=kw)


def test_precedence_option_source_metadata_detected_default():
    # 5. nothing anywhere: subtract / binary / no floor
    s = source_modes(_meta(), _args())
    assert (s.reset, s.spikes, s.v_min, s.source) == ("subtract", "binary", None, None)
    # 4. detected from the metadata: the framework's defaults
    s = source_modes(_meta(source="sinabs"), _args())
    assert (s.reset, s.spikes, s.v_min, s.source) == ("subtract", "multi", "-threshold", "sinabs")
    assert s.note.startswith("source sinabs (metadata source")
    # 3. the file's explicit fields beat a detected framework's defaults ("none" = no floor)
    s = source_modes(_meta(source="sinabs", reset="zero", v_min="none"), _args())
    assert (s.reset, s.spikes, s.v_min) == ("zero", "multi", None)
    # 2. a source given on the command line beats the file's fields
    s = source_modes(_meta(reset="zero", spikes="binary", v_min=-0.5), _args(source="speck"))
    assert (s.reset, s.spikes, s.v_min, s.note) == ("subtract", "multi", "-threshold", "source speck (given)")
    # 1. an option beats everything
    s = source_modes(_meta(source="sinabs", v_min=-0.5), _args(source="sinabs", v_min="-2", reset="zero"))
    assert (s.reset, s.spikes, s.v_min) == ("zero", "multi", -2.0)
    assert source_modes(_meta(v_min=-0.25), _args()).v_min == -0.25
    # a recorded semantics round-trips
    s = source_modes(_meta(source="sinabs", reset="zero"), _args(v_min="-1.5"))
    assert source_modes(_meta(**s.record()), _args()) == s._replace(note="source sinabs (metadata source = 'sinabs')")


@pytest.mark.parametrize("bad, where", [("0.5", "--v-min"), ("x", "--v-min"), ("nan", "--v-min")])
def test_bad_floor_option_is_refused(bad, where):
    with pytest.raises(SnnchipError, match=where):
        source_modes(_meta(), _args(v_min=bad))


def test_bad_floor_in_metadata_names_the_field():
    with pytest.raises(SnnchipError, match="metadata v_min"):
        source_modes(_meta(v_min=3), _args())


def _counter(out: str, name: str) -> int:
    (line,) = [ln for ln in out.splitlines() if ln.strip().startswith(name + " ")]
    return int(line.split()[-2].replace(",", ""))


def test_map_records_sinabs_semantics_and_run_inherits_the_floor(tmp_path, capsys):
    need(NIR_CNN)
    need(DATA / "nmnist_small" / "test100.txt")
    m = tmp_path / "m"
    assert main(["map", str(NIR_CNN), "-o", str(m)]) == 0
    out = capsys.readouterr().out
    assert "reset=subtract spikes=multi v_min=-threshold | source sinabs (node names" in out
    meta = json.loads((m / "mapping.json").read_text())["net"]["metadata"]
    assert {k: meta[k] for k in ("reset", "spikes", "v_min", "source")} == {
        "reset": "subtract", "spikes": "multi", "v_min": "-threshold", "source": "sinabs"}
    run = ["run", str(m), "--samples", "3", "--check", "3", "--timing-samples", "0"]
    assert main(run + ["-o", str(tmp_path / "floor")]) == 0
    floor = capsys.readouterr().out
    assert "spikes=multi v_min=-threshold | source sinabs" in floor
    assert "identical to the integer reference: yes (3 of 3" in floor
    assert main(run + ["--v-min", "none", "-o", str(tmp_path / "free")]) == 0
    free = capsys.readouterr().out
    assert "v_min" not in free.splitlines()[0] and "identical to the integer reference: yes (3 of 3" in free
    # the floor binds on this network: without it the membranes run deeper and fewer spikes come out
    assert _counter(floor, "spikes") != _counter(free, "spikes")
    rec = json.loads((tmp_path / "floor" / "result.json").read_text())["meta"]["semantics"]
    assert rec == {"reset": "subtract", "spikes": "multi", "v_min": "-threshold", "source": "sinabs"}


def test_map_refuses_a_bad_floor_in_one_line(tmp_path, capsys):
    need(NIR_CNN)
    assert main(["map", str(NIR_CNN), "--v-min", "2"]) != 0
    err = capsys.readouterr().err
    assert "--v-min must be a number <= 0, -threshold or none, got '2'" in err and "Traceback" not in err
