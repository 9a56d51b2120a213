"""dtrace(1) aggregation output at its edges: where one table ends, keys that end in a number,
lquantize's underflow row.  The texts are printed the way dtrace(1) prints them
(``%-50s`` string keys, ``%20lld``-style values, a blank line between aggregations)."""

from __future__ import annotations

from tracebridge.readers.registry import LoadOptions, load_inputs


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
