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


def test_normalized_table_shows_the_scaled_before_so_the_columns_add_up(capsys, tmp_path):
    before = tmp_path / "before.folded"
    after = tmp_path / "after.folded"
    before.write_text("main;f 30\nmain;g 10\n")  # 40 samples
    after.write_text("main;f 30\nmain;g 50\n")   # 80 samples: BEFORE scales by 2
    assert main(["diff", str(before), str(after), "--normalize", "--format", "json"]) == 0
    import json

    rows = {r["function"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["f"]["before"] == 30 and rows["f"]["before_scaled"] == 60 and rows["f"]["delta"] == -30
    for row in rows.values():
        assert row["after"] - row["before_scaled"] == row["delta"]
    assert main(["diff", str(before), str(after), "--format", "json"]) == 0
    assert all("before_scaled" not in r for r in json.loads(capsys.readouterr().out))
