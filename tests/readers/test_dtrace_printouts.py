"""Repeated printouts of one DTrace aggregation (a tick probe's printa) combine by --printouts.

The printouts are built from a real capture's entries (freebsd-stack-hex.txt,
probefunc-quantize.txt) framed as dtrace(1) prints a `tick-60s` firing: the
`CPU ID FUNCTION:NAME` header, the probe line, then the aggregation.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tracebridge.cli import main
from tracebridge.readers import dtrace, dtrace_printouts
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_inputs
from tracebridge.readers.source import Source
from truth import DATA

HEADER = "CPU     ID                    FUNCTION:NAME\n"
TICK = "  1  81273                        :tick-60s \n\n"
ENTRIES = (DATA / "freebsd-stack-hex.txt").read_text().split("^C\n", 1)[1]
TOTAL = sum(int(line) for line in ENTRIES.splitlines() if line.strip().isdigit())


def scaled(entries: str, factor: int) -> str:
    """The entries with every count multiplied (a running total a minute later)."""
    return re.sub(r"^( +)(\d+)$", lambda m: f"{m.group(1)}{int(m.group(2)) * factor}", entries, flags=re.M)


def fold(tmp_path, text: str, *options: str, capsys) -> tuple[int, str]:
    path = tmp_path / "ticks.txt"
    path.write_text(text)
    out = tmp_path / "out.folded"
    assert main(["fold", str(path), "-o", str(out), *options]) == 0
    total = sum(int(line.rpartition(" ")[2]) for line in out.read_text().splitlines())
    return total, capsys.readouterr().err


@pytest.mark.parametrize("header", [True, False])
def test_tick_printouts_sum_last_each(tmp_path, capsys, header):
    text = "".join((HEADER if header else "") + TICK + ENTRIES for _ in range(3))
    assert fold(tmp_path, text, "--printouts", "sum", capsys=capsys)[0] == 3 * TOTAL
    assert fold(tmp_path, text, "--printouts", "last", capsys=capsys)[0] == TOTAL
    total, err = fold(tmp_path, text, "--printouts", "each", capsys=capsys)
    assert total == TOTAL and "2 printouts repeat an aggregation printed before" in err
    total, err = fold(tmp_path, text, capsys=capsys)  # the same values again: not running totals
    assert total == 3 * TOTAL
    assert "3 printouts of the stack aggregation, added up: no total grows between them" in err


def test_running_totals_are_recognised(tmp_path, capsys):
    text = HEADER + "".join(TICK + scaled(ENTRIES, factor) for factor in (1, 2, 5))
    total, err = fold(tmp_path, text, capsys=capsys)
    assert total == 5 * TOTAL
    assert "3 printouts of the stack aggregation, the last one is the total: no value ever falls" in err
    assert "(--printouts last;" in err
    assert fold(tmp_path, text, "--printouts", "sum", capsys=capsys)[0] == 8 * TOTAL


def test_quiet_printouts_without_probe_lines(tmp_path, capsys):
    """`dtrace -q` prints no probe lines: a stack seen again starts the next printout (the fast path)."""
    text = "".join(scaled(ENTRIES, factor) for factor in (1, 3))
    total, err = fold(tmp_path, text, capsys=capsys)
    assert total == 3 * TOTAL and "2 printouts of the stack aggregation, the last one is the total" in err
    assert fold(tmp_path, text, "--printouts", "sum", capsys=capsys)[0] == 4 * TOTAL
    assert fold(tmp_path, text, "--printouts", "each", capsys=capsys)[0] == TOTAL
    single, err = fold(tmp_path, ENTRIES, capsys=capsys)
    assert single == TOTAL and "printouts" not in err


def test_histogram_printouts_add_bucket_by_bucket(tmp_path):
    table = (DATA / "probefunc-quantize.txt").read_text()
    path = tmp_path / "ticks.txt"
    path.write_text(HEADER + TICK + table + TICK + table)
    once = load_inputs([DATA / "probefunc-quantize.txt"]).aggregations
    twice = load_inputs([path], LoadOptions(printouts="sum")).aggregations
    assert len(once) == len(twice) == 1
    assert [(r.keys, dtrace.Histogram(r.value.kind, tuple(replace(b, count=2 * b.count) for b in r.value.buckets)))
            for r in once[0].rows] == [(r.keys, r.value) for r in twice[0].rows]
    assert len(load_inputs([path], LoadOptions(printouts="each")).aggregations) == 2


def test_different_aggregations_stay_apart(tmp_path):
    """Two aggregations printed each tick: the first of each firing's printouts is one, the second the other."""
    table = (DATA / "probefunc-count.txt").read_text()
    path = tmp_path / "ticks.txt"
    path.write_text(HEADER + (TICK + ENTRIES + table) * 2)
    loaded = load_inputs([path], LoadOptions(printouts="sum"))
    assert [a.number for a in loaded.aggregations] == [2]
    assert loaded.profile.total == 2 * TOTAL
    once = load_inputs([DATA / "probefunc-count.txt"]).aggregations[0]
    assert [2 * r.value for r in once.rows] == [r.value for r in loaded.aggregations[0].rows]


def test_retained_state_stays_constant_over_repeated_printouts(tmp_path):
    """What the reader holds after the 60th printout is what it held after the 20th."""
    import tracemalloc

    path = tmp_path / "one.txt"
    path.write_text(HEADER + TICK + ENTRIES)
    records = list(dtrace.parse(Source(path)))

    def held() -> int:
        only = [tracemalloc.Filter(True, module.__file__) for module in (dtrace, dtrace_printouts)]
        return sum(stat.size for stat in tracemalloc.take_snapshot().filter_traces(only).statistics("filename"))

    printouts = dtrace._Printouts(LoadOptions())
    tracemalloc.start()
    try:
        for copy in range(60):
            for record in records:
                printouts.add(replace(record, firings=copy + 1))
            if copy == 19:
                after_twenty = held()
        after_sixty = held()
    finally:
        tracemalloc.stop()
    assert after_sixty - after_twenty < 512
    aggregate, = printouts.aggregates
    assert sum(aggregate.series.result().values()) == 60 * TOTAL


def printout(key: str, rows: list[tuple[str, int]]) -> str:
    """One key's histogram as dtrace(1) prints it (the rows of probefunc-quantize.txt's layout)."""
    body = "".join(f"{label:>16} |{'':<41}{count:<9}\n" for label, count in rows)
    return f"  {key}\n           value  ------------- Distribution ------------- count    \n{body}\n"


def test_histogram_printouts_with_other_rows_merge_in_value_order(tmp_path):
    """dtrace(1) prints a histogram's rows from one below its lowest non-zero bucket to one above its
    highest, so a later printout of the same key can start lower or end higher: its buckets join
    the earlier ones in value order (``< N`` first, ``>= N`` last), and shared buckets add up."""
    table = (DATA / "probefunc-quantize.txt").read_text()
    first, second, _ = [block.split("\n", 1)[0].strip() for block in table.split("\n\n") if block.strip()]
    lquantize = (DATA / "lquantize.txt").read_text()
    path = tmp_path / "ticks.txt"
    path.write_text(HEADER + TICK + table
                    + TICK + printout(first, [("32", 0), ("64", 2), ("128", 0)])
                    + printout(second, [("4096", 0), ("8192", 1), ("16384", 0)])
                    + printout("tick", [("1", 0), ("2", 4), ("4", 0)])
                    + TICK + printout("tick", [("0", 0), ("1", 3), ("2", 0)]))
    values = [r.value for r in load_inputs([path], LoadOptions(printouts="sum")).aggregations[0].rows]
    powers = ["128", "256", "512", "1024", "2048", "4096", "8192"]
    assert values[0] == dtrace.Histogram("quantize", tuple(
        dtrace.Bucket(label, int(label), count) for label, count in
        zip(["32", "64", *powers], [0, 2, 0, 1, 20, 5, 0, 2, 0])))
    assert values[1] == dtrace.Histogram("quantize", tuple(
        dtrace.Bucket(label, int(label), count) for label, count in
        zip([*powers, "16384"], [0, 2, 26, 1, 0, 2, 1, 0])))
    assert values[3] == dtrace.Histogram("quantize", tuple(
        dtrace.Bucket(label, int(label), count) for label, count in zip(["0", "1", "2", "4"], [0, 3, 4, 0])))
    path.write_text(HEADER + TICK + lquantize + TICK + printout("rem_load", [("< 0", 2), ("0", 1), ("10", 0)]))
    load = [(b.label, b.count) for b in
            load_inputs([path], LoadOptions(printouts="sum")).aggregations[0].rows[0].value.buckets]
    assert load == [("< 0", 2), ("0", 4), ("10", 7), ("20", 12), ("30", 0), ("40", 4), ("50", 0), ("60", 0),
                    ("70", 0), ("80", 0), ("90", 0), (">= 100", 1)]
