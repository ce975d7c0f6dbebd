"""`snnchip noc` (snnchip/cmd_noc.py) and the BookSim2 traffic patterns it uses."""

import argparse
import csv

import numpy as np
import pytest

from hwsim.router import RouterError
from hwsim.router_traffic import destinations
from models.errors import SnnchipError
from snnchip.cmd_noc import add_parser


def parser():
    ap = argparse.ArgumentParser()
    add_parser(ap.add_subparsers())
    return ap


def run(*argv):
    args = parser().parse_args(["noc", *argv])
    return args.func(args)


def test_patterns_follow_booksim_definitions():
    rng = np.random.default_rng(0)
    src = np.arange(16)
    # transpose on 4x4: (x, y) -> (y, x), i.e. id y*4+x -> x*4+y
    assert list(destinations("transpose", src, 16, rng)) == [(s % 4) * 4 + s // 4 for s in range(16)]
    assert list(destinations("bitcomp", src, 16, rng)) == [15 - s for s in range(16)]
    assert set(destinations("hotspot", np.zeros(200, np.int64), 16, rng, (3, 9))) == {3, 9}
    u = destinations("uniform", np.zeros(16000, np.int64), 16, rng)
    assert set(u) == set(range(16))  # the source itself included, as BookSim's RandomInt(nodes - 1)
    with pytest.raises(RouterError, match="transpose: needs a node count that is an even power of two"):
        destinations("transpose", src[:8], 8, rng)
    with pytest.raises(RouterError, match="bitcomp"):
        destinations("bitcomp", src[:9], 9, rng)


def test_command_writes_csv_figure_and_marks_unstable_loads(tmp_path, capsys):
    run("--mesh", "4x4", "--packet-flits", "2", "--vcs", "2", "--buffer", "4", "--rates", "0.02,0.6",
        "--warmup", "200", "--sample", "600", "--drain", "600", "-o", str(tmp_path))
    rows = list(csv.DictReader(open(tmp_path / "noc.csv")))
    assert [r["offered_flits"] for r in rows] == ["0.04", "1.2"]
    low, high = rows
    assert low["unstable"] == "False" and high["unstable"] == "True"
    assert abs(float(low["accepted_flits"]) - 0.04) < 0.01
    assert float(high["accepted_flits"]) < 1.2 * 0.95
    # zero load on 4x4 uniform: mean hops 2 * (16 - 1) / 12 = 2.5; 2 + 3 * 3.5 + 2.5 + 1 + 1 = 17 cycles
    assert abs(float(low["packet_latency"]) - 17.0) < 0.6
    assert (tmp_path / "noc.png").stat().st_size > 0 and (tmp_path / "noc.pdf").stat().st_size > 0
    assert "unstable" in capsys.readouterr().out


def test_chip_settings_are_used_and_options_override_them(tmp_path):
    from snnchip.cmd_noc import router_params_from_args

    args = parser().parse_args(["noc", "--chip", "tianjic", "--set", "noc.credit_cycles=3", "--buffer", "6"])
    p = router_params_from_args(args)
    assert (p.width, p.height, p.credit_cycles, p.buffer_flits, p.vcs) == (12, 13, 3, 6, 1)


@pytest.mark.parametrize("argv, message", [
    (["--mesh", "8by8"], "--mesh"), (["--rates", "0.1,x"], "--rates"), (["--rates", "1.5"], "--rates"),
    (["--vcs", "0"], "vcs"), (["--set", "noc.vcs=2"], "--chip"), (["--traffic", "transpose", "--mesh", "3x3",
                                                                    "--rates", "0.01"], "even power of two")])
def test_bad_options_raise_one_typed_error(argv, message, tmp_path):
    with pytest.raises(SnnchipError, match=message):
        run(*argv, "--warmup", "10", "--sample", "10", "--drain", "10", "-o", str(tmp_path))


def test_every_option_states_its_default():
    sub = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    for action in sub.choices["noc"]._actions:
        if action.dest != "help":
            assert "(default" in action.help, action.dest
