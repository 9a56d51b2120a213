"""quantize-family histograms as dtrace(1) prints them: which function printed one, told from its rows
alone (the output does not say), and a histogram cut short after its header.

The rows are those libdtrace's printers write (``dt_print_quantize``, ``dt_print_lquantize``,
``dt_print_llquantize`` in ``dt_consume.c``): each prints the bins from one before the first
non-zero bin to one after the last; ``quantize`` labels every row with its power of two, while
``lquantize`` and ``llquantize`` label their first bin ``< N`` and their last ``>= N`` (and only
print those when they fall inside that range).
"""

from __future__ import annotations

import pytest

from tracebridge.cli import main
from tracebridge.readers.registry import load_inputs

HEADER = "%16s %41s %-9s\n" % ("value", "------------- Distribution -------------", "count")


def histogram(rows: list[tuple[str, int]]) -> str:
    """``@[probefunc] = *quantize(...)`` with one key: its rows as ``"%16s |%-40s %-9lld"``."""
    total = sum(count for _, count in rows)
    text = "\n  %-50s\n" % "rem_ioctl" + HEADER
    for label, count in rows:
        text += "%16s |%-40s %-9d\n" % (label, "@" * (40 * count // total), count)
    return text + "\n"


def kind_of(tmp_path, rows: list[tuple[str, int]]) -> str:
    path = tmp_path / "capture.txt"
    path.write_text(histogram(rows))
    (aggregation,) = load_inputs([path]).aggregations
    assert [b.label for b in aggregation.rows[0].value.buckets] == [label for label, _ in rows]
    return aggregation.kind


@pytest.mark.parametrize(("rows", "kind"), [
    # quantize(x), x = 1..3: bins 0, 1, 2, 4 (the empty ones around the data printed).
    ([("0", 0), ("1", 1), ("2", 2), ("4", 0)], "quantize"),
    # lquantize(x, 0, 3, 1), x = 2, 5, 7: bins "1" (empty, one before), "2", and the overflow ">= 3".
    # Rows 1 and 2 are powers of two, but quantize never prints a ">=" row.
    ([("1", 0), ("2", 1), (">= 3", 2)], "lquantize"),
    # lquantize(x, 0, 4, 2), x = 3, 9: bins "0" (empty, one before), "2" and ">= 4", all three labels
    # powers of two.
    ([("0", 0), ("2", 1), (">= 4", 1)], "lquantize"),
    # lquantize(x, 0, 100, 10), x = 20: bins 10, 20, 30.
    ([("10", 0), ("20", 1), ("30", 0)], "lquantize"),
    # llquantize(x, 10, 0, 1, 10), x = 10..19: steps of 1 below 10, of 10 from 10 on: bins 9, 10, 20.
    ([("9", 0), ("10", 3), ("20", 0)], "llquantize"),
    # llquantize(x, 10, 0, 2, 10), x = 80..99 and 100..199: steps of 10, then of 100: two distinct steps.
    ([("70", 0), ("80", 2), ("90", 1), ("100", 4), ("200", 0)], "llquantize"),
])
def test_kind_from_the_printed_rows(tmp_path, rows, kind):
    assert kind_of(tmp_path, rows) == kind


def test_header_without_rows_is_a_capture_cut_short(tmp_path, capsys):
    """dtrace(1) killed (or its output cut) right after a histogram's header: one line, exit 2."""
    path = tmp_path / "capture.txt"
    path.write_text(histogram([("1", 0), ("2", 1)]).split(HEADER)[0] + HEADER)
    assert main(["fold", str(path)]) == 2
    assert capsys.readouterr().err == (f"tracebridge: {path}:3: histogram header with no rows "
                                       "(the capture is cut short here)\n")
