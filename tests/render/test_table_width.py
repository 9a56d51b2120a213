"""Every write_rows table at 80 columns: the name column first, wrapped at `::`, constant columns in the title."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fixture_paths import MODULES
from tracebridge.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples"
DIFF = ["diff", str(EXAMPLES / "if_rem.stack.txt"), str(EXAMPLES / "if_rem.pmc.txt"), "--module",
        str(EXAMPLES / "if_rem.ko"), "--kldstat", str(EXAMPLES / "kldstat.txt"), "--top", "12"]


def table_rows(out: str, number: int = 1) -> list[list[str]]:
    """The body of a boxed table: per row, the cells with their wrapped lines.

    A row starts on the line whose cell ``number`` (a number column, never wrapped, never empty) is filled.
    """
    rows: list[list[str]] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = line.strip("│").split("│")
        if rows and not cells[number].strip():
            rows[-1] = [a + "\n" + b for a, b in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    return rows


def assert_wrapped(cell: str, name: str) -> None:
    """A name cell's lines are ``name`` broken after `::` or at a space only, unless a line fills
    the column (an identifier longer than the column: folded there, the only place left)."""
    width = len(cell.split("\n")[0]) - 2  # a space of padding on either side
    lines = [line.strip() for line in cell.split("\n") if line.strip()]
    at = 0
    for line in lines:
        assert name.startswith(line, at), (name, lines)
        at += len(line)
        if name[at:at + 1] == " ":
            at += 1
        elif at < len(name):
            assert name[:at].endswith("::") or len(line) == width, (line, name)
    assert at == len(name), (name, lines)


def test_diff_at_80_columns_gives_the_names_the_room(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(DIFF) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    heading = " ".join(out.split("┏")[0].split())
    assert heading.endswith(", module if_rem.ko")      # every row's module: said once, not a column
    assert "┃ module" not in out and "function" in out
    cells = [row[0] for row in table_rows(out)]
    assert main([*DIFF, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(cells) == len(rows)
    for cell, row in zip(cells, rows):
        assert_wrapped(cell, row["function"])
        assert "\n" not in cell or len(row["function"]) > len(cell.split("\n")[0]) - 2
    assert {row["module"] for row in rows} == {"if_rem.ko"}
    assert any("\n" in row[0] for row in table_rows(out)), "some name should have needed a second line"


def test_wide_terminal_keeps_names_on_one_line(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    assert main(DIFF) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows and not any("\n" in row[0] for row in rows)


@pytest.mark.parametrize("module", ["rem_legacy_fp.ko", "rem_v0_fp.ko"])
def test_symbols_at_80_columns_drop_the_empty_address_column(capsys, monkeypatch, module):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["symbols", str(MODULES / module)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "address" not in out.split("┡")[0]            # no --base: every address is empty
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    rows = table_rows(out, [c.strip() for c in header.strip("┃").split("┃")].index("offset"))
    assert main(["symbols", str(MODULES / module), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(rows) == len(listed)
    for row, symbol in zip(rows, listed):
        assert_wrapped(row[0], symbol["demangled"])
    # The other text columns yield to the name: it is wider than any of them.
    assert len(rows[0][0].split("\n")[0]) > max(len(cell.split("\n")[0]) for cell in rows[0][1:])
