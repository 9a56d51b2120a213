"""dtrace(1) aggregation output at its edges: where one table ends, keys that end in a number,
lquantize's underflow row.  The texts are printed the way dtrace(1) prints them
(``%-50s`` string keys, ``%20lld``-style values, a blank line between aggregations)."""

from __future__ import annotations

from pathlib import Path

from tracebridge.readers import dtrace
from tracebridge.readers.registry import LoadOptions, load_inputs
from tracebridge.readers.source import Source


def write(tmp_path, text: str):
    path = tmp_path / "capture.txt"
    path.write_text(text)
    return path


def row(key: str, value: int) -> str:
    return f"  {key:<50}{value:>20}\n"


def test_blank_line_separates_two_scalar_aggregations(tmp_path):
    """`@calls[probefunc] = count(); @bytes[probefunc] = sum(n)`: same shape, different keys."""
    text = "\n" + row("foo", 3) + row("bar", 2) + "\n" + row("qux", 500) + row("baz", 100)
    loaded = load_inputs([write(tmp_path, text)], LoadOptions(value_kinds=("count", "sum")))
    assert [a.kind for a in loaded.aggregations] == ["count", "sum"]
    assert [[r.keys[0].name for r in a.rows] for a in loaded.aggregations] == [["foo", "bar"], ["qux", "baz"]]


def named_stacks(profile) -> dict[tuple[str, ...], float]:
    return {tuple(f.name for f in frames): weight for frames, weight in profile}


def test_string_key_ending_in_a_number_before_a_stack(tmp_path):
    """`@[execname, stack()]`: the key line is padded with spaces, so its number is part of the key."""
    key = "  %-50s\n" % "worker 3"
    text = f"\n{key}              kernel`foo+0x1\n              kernel`bar+0x2\n                5\n"
    assert named_stacks(load_inputs([write(tmp_path, text)]).profile) == {("worker 3", "bar", "foo"): 5}


def test_lquantize_with_power_of_two_steps_is_no_quantize(tmp_path):
    """`lquantize(x, 0, 3, 1)`: rows 0, 1, 2 look like quantize's, but quantize has no `< N` row."""
    text = ("\n  read\n"
            "           value  ------------- Distribution ------------- count\n"
            "             < 0 |                                         0\n"
            "               0 |@@@@@@@@@@                               1\n"
            "               1 |@@@@@@@@@@@@@@@@@@@@                     2\n"
            "               2 |@@@@@@@@@@                               1\n"
            "            >= 3 |                                         0\n")
    (table,) = load_inputs([write(tmp_path, text)]).aggregations
    assert table.kind == "lquantize"
    assert [b.label for b in table.rows[0].value.buckets] == ["< 0", "0", "1", "2", ">= 3"]


def test_stacks_cut_in_two_by_an_empty_stack_are_not_dropped_silently(tmp_path, capsys):
    """`@[ustack()] = count()` firing in a kernel thread prints an entry with no frames: a lone
    value, which reads as a scalar aggregation between two stack aggregations.  Only the first
    makes the profile, so the command must say that the rest was left out, and how to pick it."""
    from tracebridge.cli import main

    real = (Path(__file__).parents[2] / "examples" / "if_rem.stack.txt").read_text()
    first_entry_end = real.index("\n\n", real.index("`")) + 1
    cut = write(tmp_path, real[:first_entry_end] + "\n                5\n" + real[first_entry_end:])
    assert main(["fold", str(cut), "-o", str(tmp_path / "out.folded")]) == 0
    err = capsys.readouterr().err
    assert "2 aggregations hold stacks" in err and "made of aggregation 1 only (--aggregation N" in err, err
    assert "an entry with an empty stack" in err, err
    assert main(["fold", str(cut), "--aggregation", "3", "-o", str(tmp_path / "rest.folded")]) == 0
    assert "aggregations hold stacks" not in capsys.readouterr().err
    whole = tmp_path / "whole.folded"
    assert main(["fold", str(write(tmp_path, real)), "-o", str(whole)]) == 0
    assert "aggregations hold stacks" not in capsys.readouterr().err  # one aggregation: nothing to say
    rest = (tmp_path / "rest.folded").read_text().splitlines()
    assert len(rest) == len(whole.read_text().splitlines()) - 1  # all but the first entry's stack


def test_symbol_keys(tmp_path):
    """`@[func(caller)] = count()`: dt_print_sym prints each key `"  %-50s"` as module`function, the value
    `" %16lld"` after it on the same line.  A key, not a frame: one row per caller."""
    rows = [("kernel`ifhwioctl", 154), ("kernel`ifioctl", 12), ("if_rem.ko`rem_intr", 2931)]
    path = write(tmp_path, "\n" + "".join("  %-50s %16d\n" % row for row in rows))
    loaded = load_inputs([path])
    assert {tuple((f.name, f.module) for f in frames): weight for frames, weight in loaded.profile} == {
        (("ifhwioctl", "kernel"),): 154, (("ifioctl", "kernel"),): 12, (("rem_intr", "if_rem.ko"),): 2931}
    assert [len(a.rows) for a in loaded.aggregations] == [3]


def test_probe_lines_with_a_traced_symbol(tmp_path):
    """`fbt::rem_ioctl:entry { trace(func(caller)); @[stack()] = count(); }`: each firing's probe line
    (`"%3d %6d %32s "`) carries the caller (`"  %-50s"`), a backquote and all; it is no frame.  The
    aggregation printed at the end is the profile, as it is without the probe lines."""
    capture = Path(__file__).parents[2] / "examples" / "if_rem.stack.txt"
    entries = capture.read_text()
    firings = "".join("%3d %6d %32s " % (cpu, 71236, "rem_ioctl:entry") + "  %-50s\n" % caller
                      for cpu, caller in [(1, "kernel`ifhwioctl"), (0, "kernel`ifioctl"), (1, "kernel`ifhwioctl")])
    path = write(tmp_path, "CPU     ID                    FUNCTION:NAME\n" + firings + "\n" + entries)
    alone = named_stacks(load_inputs([capture]).profile)
    assert named_stacks(load_inputs([path]).profile) == alone
    parsed = dtrace.build(Source(path), dtrace.parse(Source(path)), LoadOptions())
    assert named_stacks(parsed.profile) == alone and len(parsed.aggregations) == 0
    assert dtrace._read_plain_stacks(Source(path), LoadOptions()) is not None
