"""A selection that matches nothing, or a template left with no probe, is an error: never an empty script.

The function names and their probes come from the committed module; that
``rem::hw::phy::read_mdic`` has no return probe is what GNU objdump shows
of it too (tests/probes/test_fbt_vs_objdump.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.cli import main

MODULE = Path(__file__).parents[2] / "examples" / "if_rem.ko"


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_path_without_its_glob_names_the_glob_that_selects(capsys, tmp_path):
    script = tmp_path / "rx.d"
    status, out, err = run(capsys, "gen-probes", MODULE, "--match", "rem::em::rx", "-o", script)
    assert (status, out) == (2, "") and not script.exists()
    assert err.startswith("tracebridge: --match 'rem::em::rx' selects no function of if_rem.ko (a glob matches "
                          "the whole name: 'rem::em::rx::*' would select ")
    assert run(capsys, "gen-probes", MODULE, "--match", "rem::em::rx::*", "-o", script)[0] == 0


def test_a_misspelt_name_gets_the_closest_names(capsys):
    status, _, err = run(capsys, "gen-probes", MODULE, "--match", "rem::em::rx::Adapter<T>::rx_frme")
    assert status == 2
    assert "closest names to 'rem::em::rx::Adapter<T>::rx_frme': rem::em::rx::Adapter<T>::rx_frame" in err


@pytest.mark.parametrize("argv, hint", [
    (["--crate", "nosuch"], "crates in it: __rustc, core, rem"),
    (["--match", "zzz"], "`tracebridge symbols` lists them"),
])
def test_symbols_refuses_an_empty_selection_too(capsys, argv, hint):
    status, out, err = run(capsys, "symbols", MODULE, *argv)
    assert (status, out) == (2, "")
    assert "selects no function of if_rem.ko" in err and hint in err


def test_a_template_with_no_probe_for_the_selection_says_why(capsys):
    status, out, err = run(capsys, "gen-probes", MODULE, "-t", "latency", "--match", "rem::hw::phy::read_mdic")
    assert (status, out) == (2, "")
    assert err == ("tracebridge: the 'latency' template has no probe for the 1 selected function of if_rem.ko: "
                   "rem::hw::phy::read_mdic: FBT gives it no return probe, and this template needs one "
                   "(`tracebridge symbols if_rem.ko` shows each one's probes)\n")
    # The count template needs only entry probes: the same function is traced.
    status, out, _ = run(capsys, "gen-probes", MODULE, "-t", "count", "--match", "rem::hw::phy::read_mdic")
    assert status == 0 and "fbt:if_rem:" in out
