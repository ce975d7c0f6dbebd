"""The first hour of a new user: version, help texts, own data, event binning, chip names, file modes."""

from __future__ import annotations

import argparse
import os
import stat

import numpy as np
import pytest

from snnchip.cli import build_parser, main
from tests.conftest import DATA, need


def _options(parser):
    """(command path, action) for every option of every (sub)command."""
    out = []

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, path + [name])
            elif a.option_strings and not isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
                out.append((" ".join(path), a))

    walk(parser, [])
    return out


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    from importlib.metadata import version

    assert capsys.readouterr().out.strip() == f"snnchip {version('snnchip')}"


def test_every_option_states_its_default():
    opts = _options(build_parser())
    assert len(opts) > 60
    missing = [f"{cmd} {a.option_strings[-1]}" for cmd, a in opts
               if not a.help or ("default" not in a.help and "required" not in a.help)]
    assert missing == []
    # a default given to argparse is the one the help text names
    wrong = [f"{cmd} {a.option_strings[-1]}" for cmd, a in opts
             if a.default not in (None, False) and str(a.default) not in a.help]
    assert wrong == []


@pytest.fixture(scope="module")
def mlp_mapping(tmp_path_factory):
    out = tmp_path_factory.mktemp("newcomer") / "mlp"
    assert main(["map", "mnist_mlp", "-o", str(out)]) == 0
    return out


def _user_npz(path, n, *, sequence=False, shape=(1, 28, 28)):
    from models.shipped_data import load_shipped_mnist

    imgs, labels = load_shipped_mnist(8000, 8000 + n)
    x = (imgs.astype(np.float32) / 255.0)[:, None]
    if shape != (1, 28, 28):
        x = x.reshape((n,) + shape) if int(np.prod(shape)) == 784 else x[:, :, :14]
    if sequence:
        x = np.broadcast_to(x, (5,) + x.shape).copy()
    np.savez(path, x=x, y=labels)
    return labels


def test_run_on_user_npz_equals_builtin_data(mlp_mapping, tmp_path, capsys):
    """The user's own .npz of the held-out images gives the built-in run's exact output."""
    from hwsim.result import RunResult

    _user_npz(tmp_path / "mine.npz", 12)
    assert main(["run", str(mlp_mapping), "--data", str(tmp_path / "mine.npz"), "--samples", "12",
                 "--check", "12", "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "identical to the integer reference: yes (12 of 12 samples checked)" in out
    assert main(["run", str(mlp_mapping), "--samples", "12", "--check", "0", "-o", str(tmp_path / "b")]) == 0
    assert "skipped (--check 0)" in capsys.readouterr().out
    a, b = RunResult.load(tmp_path / "a"), RunResult.load(tmp_path / "b")
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.counters, b.counters)


def test_user_npz_sequence_and_bad_shapes(mlp_mapping, tmp_path, capsys):
    _user_npz(tmp_path / "seq.npz", 4, sequence=True)
    assert main(["simulate", "mnist_mlp", "--data", str(tmp_path / "seq.npz")]) == 0
    assert "4 samples x 5 steps" in capsys.readouterr().out
    _user_npz(tmp_path / "bad.npz", 4, shape=(1, 14, 28))
    assert main(["run", str(mlp_mapping), "--data", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(4, 1, 14, 28)" in err[0] and "(1, 28, 28)" in err[0]
    np.savez(tmp_path / "noy.npz", x=np.zeros((2, 1, 28, 28)))
    assert main(["simulate", "mnist_mlp", "--data", str(tmp_path / "noy.npz")]) == 2
    assert "needs arrays 'x' and 'y'" in capsys.readouterr().err


def test_bins_rebin_each_recording(capsys):
    need(DATA / "nmnist_small" / "test100.txt")
    from models.datasets import load_nmnist, read_nmnist_events
    from snnchip.inputs import load_data
    from types import SimpleNamespace

    g = SimpleNamespace(input_shape=(2, 34, 34), metadata={})
    kind, seq = load_data(g, None, 5, None, None, bins=30)
    assert seq.inputs.shape[:2] == (30, 5)
    for b in range(5):
        ev = read_nmnist_events(DATA / "nmnist_small" / f"{60001 + b}.bs2")
        assert seq.inputs[:, b].sum() == ev.size  # every event in a bin
    ref = load_nmnist(samples=5)  # 1 ms frames
    np.testing.assert_array_equal(seq.inputs.sum(axis=0), ref.inputs.sum(axis=0))
    assert main(["simulate", "nir_cnn", "--samples", "2", "--steps", "30"]) == 2
    assert "--bins 30" in capsys.readouterr().err
    assert main(["simulate", "nir_cnn", "--samples", "2", "--bins", "30", "--frame-us", "100"]) == 2
    assert "not both" in capsys.readouterr().err


def test_chip_names_say_what_changed(tmp_path, capsys):
    from hwsim.chip import load_chip

    assert main(["chip", "show", "tianjic", "--set", "core.axons=128"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("tianjic+core.axons=128:")
    assert "  !axons" in out and "  *neurons" in out
    (tmp_path / "c.yaml").write_text("base: tianjic\ncore:\n  axons: 128\n")
    chip = load_chip(str(tmp_path / "c.yaml"))
    assert chip.name == "tianjic+core.axons=128" and chip.core.axons == 128
    assert chip.overrides == ("core.axons=128",) and chip.core.neurons == load_chip("tianjic").core.neurons
    (tmp_path / "d.yaml").write_text("base: c.yaml\nname: mine\nnoc:\n  multicast: unicast\n")
    d = load_chip(str(tmp_path / "d.yaml"))
    assert d.name == "mine" and d.core.axons == 128 and d.noc.multicast == "unicast"
    assert d.overrides == ("core.axons=128", "noc.multicast=unicast")
    (tmp_path / "e.yaml").write_text("base: tianjic\ncores: 3\n")
    with pytest.raises(Exception, match="cores: unknown field"):
        load_chip(str(tmp_path / "e.yaml"))


def test_mapping_and_report_carry_the_chip_name(tmp_path, capsys):
    assert main(["map", "mnist_mlp", "--set", "core.axons=128", "-o", str(tmp_path / "m")]) == 0
    from mapper.mapping import Mapping

    assert Mapping.load(tmp_path / "m").chip.name == "tianjic+core.axons=128"
    assert "on tianjic+core.axons=128" in capsys.readouterr().out


def _modes(folder):
    return {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in folder.rglob("*") if p.is_file()}


def test_written_files_are_readable_by_colleagues(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["map", "mnist_mlp", "-o", str(tmp_path / "m")]) == 0
        assert main(["run", str(tmp_path / "m"), "--samples", "3", "--record", "if1", "-o",
                     str(tmp_path / "r")]) == 0
        assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "rep"), "--table", "loihi"]) == 0
    finally:
        os.umask(old)
    modes = {**_modes(tmp_path / "m"), **_modes(tmp_path / "r"), **_modes(tmp_path / "rep")}
    assert {"mapping.json", "mapping.npz", "result.json", "result.npz", "energy.md", "energy.tex",
            "spike_raster.png"} <= set(modes)
    assert {k: v for k, v in modes.items() if v != 0o644} == {}
    assert not [p for p in tmp_path.rglob(".*")]  # no temporaries left


def test_run_checks_a_pipelined_mapping_against_its_own_reference(tmp_path, capsys):
    """Pipelined mode delays every layer by a step: the agreement check must compare with that reference."""
    assert main(["map", "mnist_mlp", "--set", "timing.mode=pipelined", "-o", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["run", str(tmp_path / "m"), "--samples", "4", "--check", "4", "-o", str(tmp_path / "r")]) == 0
    assert "identical to the integer reference: yes (4 of 4 samples checked)" in capsys.readouterr().out
