"""``tracebridge diff``'s command line: usage errors look like every other, the help says the real defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.cli import main

STACKS = Path(__file__).parents[2] / "examples" / "if_rem.stack.txt"


def test_one_input_prints_the_usage_first(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["diff", str(STACKS)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tracebridge diff ")
    assert err.endswith("tracebridge diff: error: diff takes two inputs, BEFORE and AFTER (1 given)\n")


def test_help_names_the_title_diff_draws(capsys):
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "heading (default 'Differential Flame Graph')" in out
    assert "Icicle" not in out
