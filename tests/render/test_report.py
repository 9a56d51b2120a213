"""`tracebridge report`: self/total per function, crate and module, checked against a plain recount."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from tracebridge.cli import main

DATA = Path(__file__).parent.parent / "data" / "dtrace"


def report_json(capsys, *args) -> list[dict]:
    assert main(["report", "--format", "json", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "stacks.folded"
    path.write_text(text)
    return path


FOLDED = ("main;rem::a;rem::b 10\n"
          "main;rem::a;rem::a;rem::a 5\n"       # recursion: total counts the stack once
          "main;core::fmt::write 3\n"
          "main;rem::b 2\n")


def test_self_and_total_by_function(tmp_path, capsys):
    rows = {r["name"]: r for r in report_json(capsys, write(tmp_path, FOLDED))}
    assert {n: (r["self"], r["total"]) for n, r in rows.items()} == {
        "rem::b": (12, 12), "rem::a": (5, 15), "core::fmt::write": (3, 3), "main": (0, 20)}
    assert rows["rem::a"]["total_percent"] == pytest.approx(75.0)
    assert rows["rem::b"]["self_percent"] == pytest.approx(60.0)
    assert list(rows) == ["rem::b", "rem::a", "core::fmt::write", "main"]  # largest self first


def test_by_crate_and_module_recount(capsys):
    """Against a recount of the capture's truth stacks (names from rustfilt, module from the frame text)."""
    rows = report_json(capsys, DATA / "illumos-stack-ustack.txt", "--by", "module")
    text = (DATA / "illumos-stack-ustack.txt").read_text()
    self_by_module: dict[str, int] = {}
    total_by_module: dict[str, int] = {}
    for frames, count in _entries(text):
        self_by_module[frames[0].split("`")[0]] = self_by_module.get(frames[0].split("`")[0], 0) + count
        for module in {f.split("`")[0] for f in frames}:
            total_by_module[module] = total_by_module.get(module, 0) + count
    assert {r["module"]: (r["self"], r["total"]) for r in rows} == {
        m: (self_by_module.get(m, 0), total_by_module[m]) for m in total_by_module}
    crates = {r["crate"]: r for r in report_json(capsys, DATA / "illumos-stack-ustack.txt", "--by", "crate")}
    assert {"rem", "core", "std", "rem_bench", "[genunix]", "[unix]", "[libc.so.1]", "[rem_bench]"} == set(crates)
    assert crates["[rem_bench]"]["total_percent"] == pytest.approx(100.0)  # _start is on every stack


def _entries(text: str):
    """(frames leaf first, count) per aggregation entry, parsed by hand."""
    frames: list[str] = []
    for line in text.splitlines():
        if line.strip().isdigit():
            yield frames, int(line)
            frames = []
        elif line.strip():
            frames.append(line.strip())


def test_csv_and_parquet_hold_the_same_rows(tmp_path, capsys):
    path = write(tmp_path, FOLDED)
    rows = report_json(capsys, path)
    assert main(["report", str(path), "--format", "csv"]) == 0
    reader = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in reader] == [r["name"] for r in rows]
    assert [float(r["total"]) for r in reader] == [r["total"] for r in rows]
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    out = tmp_path / "report.parquet"
    assert main(["report", str(path), "--format", "parquet", "-o", str(out)]) == 0
    frame = pandas.read_parquet(out)
    assert list(frame["name"]) == [r["name"] for r in rows]
    assert list(frame.columns) == ["run_id", "host", "name", "module", "crate", "self", "self_percent", "total",
                                   "total_percent"]
    assert set(frame["run_id"]) == {path.stem} and frame["host"].isna().all()  # no bundle, no --host


def test_terminal_table_and_histograms(capsys):
    assert main(["report", str(DATA / "lquantize.txt"), str(DATA / "probefunc-quantize.txt")]) == 0
    out = capsys.readouterr().out
    assert "self %" in out and "total %" in out
    assert ">= 100" in out and "|@@@@@@@@@@@@@@@@@@" in out     # rem_load's 20 bucket: 12 of 27 -> 18 @
    assert "__rustc::rust_begin_unwind" in out and "quantize" in out


def test_buckets_and_values_tables(tmp_path, capsys):
    rows = report_json(capsys, DATA / "lquantize.txt", "--by", "bucket")
    assert [(r["bucket"], r["count"]) for r in rows if r["key"] == "rem_modevent"] == [("< 0", 2), ("0", 3),
                                                                                       ("10", 0)]
    assert rows[0]["low"] is None and rows[1]["low"] == 0
    avg = write(tmp_path, "\n  foo                                                             17\n"
                          "  bar                                                              4\n")
    other = tmp_path / "other.txt"
    other.write_text("\n  foo                                                              9\n")
    values = report_json(capsys, avg, other, "--by", "value", "--value-kind", "max")
    assert [(r["key"], r["value"]) for r in values] == [("foo", 17), ("bar", 4)]
    values = report_json(capsys, avg, other, "--by", "value", "--value-kind", "avg")
    assert sorted((r["key"], r["value"]) for r in values) == [("bar", 4), ("foo", 9), ("foo", 17)]
    assert main(["report", str(avg), "--value-kind", "avg"]) == 0
    assert "aggregation values" in capsys.readouterr().out


def test_two_aggregations_of_one_kind_stay_apart(tmp_path, capsys):
    """@calls and @errors, both count() by probefunc: one row per aggregation and key."""
    path = write(tmp_path, "\n  %-50s %16d\n  %-50s %16d\n\n  %-50s %16d\n  %-50s %16d\n\n"
                 % ("rem_intr", 100, "rem_ioctl", 50, "rem_intr", 3, "rem_ioctl", 1))
    values = report_json(capsys, path, "--by", "value")
    assert [(r["aggregation"], r["key"], r["value"]) for r in values] == [
        (1, "rem_intr", 100), (1, "rem_ioctl", 50), (2, "rem_intr", 3), (2, "rem_ioctl", 1)]


def test_parquet_needs_an_output_file(tmp_path, capsys):
    assert main(["report", str(write(tmp_path, FOLDED)), "--format", "parquet"]) == 2
    assert "-o FILE" in capsys.readouterr().err


@pytest.mark.parametrize("capture, module, unit", [
    ("if_rem.count.txt", None, "calls"),       # @[probefunc] = count() of FBT entries: calls
    ("if_rem.count.txt", "if_rem.ko", "calls"),
    ("if_rem.stack.txt", "if_rem.ko", "samples"),  # @[stack()] = count() of profile-997: samples
    # probefunc keys DTrace cut at strsize: mangled names that do not demangle, still calls
    (DATA / "probefunc-count.txt", None, "calls"),
])
def test_the_heading_says_what_a_count_counts(capsys, capture, module, unit):
    examples = Path(__file__).parents[2] / "examples"
    capture = examples / capture
    argv = ["report", str(capture)]
    if module:
        argv += ["--module", str(examples / module), "--base", "ffffffff82a1c000"]
    assert main(argv) == 0
    heading = capsys.readouterr().out.splitlines()[0]
    assert re.match(rf"^{re.escape(str(capture))}: [\d,]+ {unit}, top ", heading), heading


def test_help_names_every_unit_not_only_samples(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "report where the samples went" not in text
    assert all(unit in text for unit in ("samples", "calls", "nanoseconds of time"))


@pytest.mark.parametrize("capture", [DATA / "latency.txt", Path(__file__).parents[2] / "examples" / "if_rem.latency.txt"])
def test_a_latency_capture_ranks_by_time(capsys, monkeypatch, capture):
    """The latency template's @total_ns (a sum of nanoseconds) is the profile: headed as time, never samples."""
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["report", str(capture), "--top", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert re.match(rf"^{re.escape(str(capture))}: [\d,]+ ns of time, top 2 of ", lines[0]), lines[0]
    header = next(line for line in lines if line.startswith("┃"))
    assert "self (ns)" in header and "total (ns)" in header and "samples" not in captured.out
    assert "read as the latency template" in captured.err
    rows = report_json(capsys, capture)
    summed = report_json(capsys, capture, "--value-kind", "avg,sum", "--aggregation", "3")
    assert [(r["name"], r["self"]) for r in rows] == [(r["name"], r["self"]) for r in summed]
    assert rows[0]["self"] > rows[1]["self"] and rows[0]["self"] > 1000  # nanoseconds, not the calls


def test_histograms_under_the_table_are_its_rows(capsys):
    """Only the shown rows' histograms, in the table's order, each titled with the row's name."""
    capture = Path(__file__).parents[2] / "examples" / "if_rem.latency.txt"
    assert main(["report", str(capture), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split("│")[1].strip() for line in out if line.startswith("│")][:3]
    titles = [line.split("  quantize,")[0] for line in out if "  quantize, " in line]
    assert titles == names and len(names) == 3
    assert any(line.startswith("3 histogram(s) of keys that are not rows shown") for line in out)


def test_a_bundle_with_its_own_module_given_again_is_one_module(tmp_path, capsys):
    """examples/run holds if_rem.ko; --module of the same file (same SHA-256, another path) adds nothing."""
    examples = Path(__file__).parents[2] / "examples"
    alone = report_json(capsys, examples / "run")
    again = report_json(capsys, examples / "run", "--module", examples / "if_rem.ko")
    assert again == alone and any(r["module"] == "if_rem.ko" for r in alone)
    assert main(["diff", str(examples / "run"), str(examples / "run"), "--module", str(examples / "if_rem.ko"),
                 "--format", "json"]) == 0
    assert "overlaps" not in capsys.readouterr().err
    copy = tmp_path / "if_rem.ko"  # another file of other bytes is still another module: refused
    copy.write_bytes((examples / "if_rem_merged.ko").read_bytes())
    assert main(["report", str(examples / "run"), "--module", str(copy)]) == 2


def test_an_80_column_table_gives_the_name_column_the_room(capsys, monkeypatch):
    """COLUMNS=80: constant module/crate columns are dropped (said in the heading), names wrap after `::`."""
    monkeypatch.setenv("COLUMNS", "80")
    examples = Path(__file__).parents[2] / "examples"
    assert main(["report", str(examples / "run"), "--top", "6"]) == 0
    out = capsys.readouterr().out
    heading, table = out.split("\n┏")
    assert "module if_rem.ko, crate rem" in " ".join(heading.split())
    lines = ["┏" + table.split("\n", 1)[0]] + table.split("\n")[1:]
    assert all(len(line) <= 80 for line in lines if line)
    assert "┃ module" not in out and "┃ crate" not in out
    names = [line.split("│")[1].rstrip() for line in lines if line.startswith("│")]
    rows = [r["name"] for r in report_json(capsys, examples / "run")][:6]
    # Each row's name, its lines put back together, is whole; every break falls after `::` or a space.
    joined, current = [], ""
    for cell in names:
        if current and not current.endswith(("::", " ")):
            joined.append(current.strip())
            current = ""
        current += cell.strip() + (" " if cell.strip().endswith(" as") else "")
    joined.append(current.strip())
    assert [" ".join(j.split()) for j in joined] == rows


def test_columns_that_differ_stay(capsys, monkeypatch):
    """Rows of several crates keep the crate column (the module, [unknown] in every row, goes)."""
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["report", str(DATA / "probefunc-count.txt")]) == 0
    out = capsys.readouterr().out
    assert "┃ crate" in out and "┃ module" not in out and ", module [unknown]" in out
