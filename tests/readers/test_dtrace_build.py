"""What dtrace.build makes of the aggregations read: which one is the profile and what its weights
count, the note when several hold stacks, and where each table was printed.

The captures are written as dtrace(1) prints at ``END`` (freebsd-facts.md section 5, libdtrace's
``dt_consume.c``): a blank line before each aggregation entry of a stack aggregation and between
aggregations, string keys ``"  %-50s"``, values ``" %16lld"``, ``stack()`` frames indented 14
spaces.  tests/data/dtrace holds the longer captures (the count and latency templates' output).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.readers.registry import LoadOptions, load_inputs
from tracebridge.support.errors import InputError

DATA = Path(__file__).parents[1] / "data" / "dtrace"
FRAMES = ["kernel`foo+0x1", "kernel`bar+0x2"]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "capture.txt"
    path.write_text(text)
    return path


def stacks(count: int, key: str | None = None) -> str:
    """One aggregation of ``@[stack()]`` (or ``@[execname, stack()]`` with ``key``) with one entry."""
    return "\n" + ("  %-50s\n" % key if key else "") + "".join(f"              {f}\n" for f in FRAMES) + f" {count:16d}\n"


def table(*rows: tuple[str, int]) -> str:
    """``@[execname] = sum(...)``-like: string keys and values, no blank line between rows."""
    return "\n" + "".join(f"  {key:<50s} {value:16d}\n" for key, value in rows)


def lone(value: int) -> str:
    """``@total = count()``: an aggregation without keys prints its value alone."""
    return f"\n {value:16d}\n"


def notes(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("tracebridge: note:")]


# -- what the weights count (_counts_calls, the latency template) ------------------------------------

def test_count_keyed_by_function_names_counts_calls():
    """The count template's `@[probefunc] = count()` over FBT entry probes: each is a call.  The
    capture holds Rust names (demangled) and names DTrace cut at strsize (plain symbols)."""
    profile = load_inputs([DATA / "probefunc-count.txt"]).profile
    assert (profile.metadata.event, profile.metadata.unit) == ("calls", "calls")


def test_count_keyed_by_process_names_stays_samples(tmp_path):
    """`profile-997 { @[execname] = count(); }`: process names (all plain words, none a Rust
    function) are no function names, so the counts are samples."""
    path = write(tmp_path, table(("kernel", 412), ("idle", 9871), ("sshd", 3), ("rem_test", 57)))
    profile = load_inputs([path]).profile
    assert (profile.metadata.event, profile.metadata.unit) == ("samples", "samples")
    assert {frames[0].name: weight for frames, weight in profile} == {"kernel": 412, "idle": 9871, "sshd": 3,
                                                                       "rem_test": 57}


def test_count_with_stacks_stays_samples(tmp_path):
    """`@[probefunc, stack()] = count()`: keyed by a function name, but not by names alone; a
    count of stacks is read as samples, as every stack aggregation is."""
    text = ("\n  %-50s\n" % "_ZN3rem2em2rx16Adapter$LT$T$GT$6refill17h29ccc8912b2d18f1E"
            + "".join(f"              {f}\n" for f in FRAMES) + f" {14:16d}\n")
    profile = load_inputs([write(tmp_path, text)]).profile
    assert (profile.metadata.event, profile.metadata.unit) == ("samples", "samples")
    ((frames, weight),) = list(profile)
    assert [f.name for f in frames] == ["rem::em::rx::Adapter<T>::refill", "bar", "foo"] and weight == 14


def test_count_keyed_by_a_kinst_offset_is_no_call_count(tmp_path):
    """`kinst::f:<offset> { @[probefunc, probename] = count(); }`: probename is the offset in decimal
    (freebsd-facts.md section 7), so the counts are hits of one instruction, not calls of ``f``."""
    function = "_ZN3rem2em2rx16Adapter$LT$T$GT$6refill17h29ccc8912b2d18f1E"
    text = "\n" + "".join(f"  {function:<50s}  {offset:<50s} {hits:16d}\n" for offset, hits in (("12", 30), ("47", 5)))
    loaded = load_inputs([write(tmp_path, text)])
    assert (loaded.profile.metadata.event, loaded.profile.metadata.unit) == ("samples", "samples")
    (aggregation,) = loaded.aggregations
    assert [[k.name for k in row.keys] for row in aggregation.rows] == [
        ["rem::em::rx::Adapter<T>::refill", "12"], ["rem::em::rx::Adapter<T>::refill", "47"]]
    # An offset is printed text, kept as printed: its symbol is its name.
    assert [row.keys[1].symbol for row in aggregation.rows] == ["12", "47"]


def test_latency_template_weights_are_nanoseconds(capsys):
    """The latency template's output: the profile is the third table (the sum of nanoseconds per
    function), in time."""
    loaded = load_inputs([DATA / "latency.txt"])
    assert notes(capsys) == [
        f"tracebridge: note: {DATA / 'latency.txt'}: read as the latency template (a quantize, then avg and sum "
        "of the same keys): ranked by aggregation 3, the sum of nanoseconds (--aggregation and --value-kind "
        "choose otherwise)"]
    profile = loaded.profile
    assert (profile.metadata.event, profile.metadata.unit) == ("time", "nanoseconds")
    assert {frames[0].name: weight for frames, weight in profile} == {
        "rem::em::ioctl::set_mtu": 189044, "rem::em::ioctl::dispatch": 860006,
        "rem::em::ioctl::corrupt_state": 879461}


def test_no_aggregation_that_adds_up_gives_an_empty_profile_of_samples(tmp_path):
    """`@[probefunc] = avg(...)` alone: nothing makes the profile; the table is kept."""
    loaded = load_inputs([write(tmp_path, table(("foo", 17), ("bar", 4)))], LoadOptions(value_kinds=("avg",)))
    assert not loaded.profile.stacks
    assert (loaded.profile.metadata.event, loaded.profile.metadata.unit) == ("samples", "samples")
    assert [a.kind for a in loaded.aggregations] == ["avg"]


# -- --aggregation N ---------------------------------------------------------------------------------

def test_aggregation_one_is_the_first_printed(tmp_path):
    """`--aggregation 1` and `--aggregation 2` of a table and a stack aggregation; the bounds are 1 and
    the number printed."""
    path = write(tmp_path, table(("foo", 2), ("bar", 9)) + stacks(5))
    first = load_inputs([path], LoadOptions(aggregation=1)).profile
    assert {tuple(f.name for f in frames): weight for frames, weight in first} == {("foo",): 2, ("bar",): 9}
    second = load_inputs([path], LoadOptions(aggregation=2)).profile
    assert {tuple(f.name for f in frames): weight for frames, weight in second} == {("bar", "foo"): 5}
    for outside in (0, 3):
        with pytest.raises(InputError, match=f"--aggregation {outside}: it holds 2 aggregation"):
            load_inputs([path], LoadOptions(aggregation=outside))


# -- the note when several aggregations hold stacks (and _split_hint) ----------------------------------

def stack_note(path: Path, lines: str, count: int, hint: bool = False) -> str:
    return (f"tracebridge: note: {path}: {count} aggregations hold stacks (printed from lines {lines}); the profile "
            "is made of aggregation 1 only (--aggregation N picks another)"
            + (". A lone value between stack entries, as here, is an entry with an empty stack (ustack() in a "
               "kernel thread): it splits one aggregation in two" if hint else ""))


def test_note_names_the_first_four_stack_aggregations(tmp_path, capsys):
    """`@a[stack()]`, `@b[execname, stack()]`, ... printed one after the other: five aggregations,
    the lines of the first four and `...`; with four, all four and no `...`."""
    five = write(tmp_path, stacks(1) + stacks(2, "sshd") + stacks(3) + stacks(4, "sshd") + stacks(5))
    load_inputs([five])
    assert notes(capsys) == [stack_note(five, "2, 6, 11, 15, ...", 5)]
    four = write(tmp_path, stacks(1) + stacks(2, "sshd") + stacks(3) + stacks(4, "sshd"))
    load_inputs([four])
    assert notes(capsys) == [stack_note(four, "2, 6, 11, 15", 4)]


def test_lone_value_between_stack_aggregations_is_explained(tmp_path, capsys):
    """`@[ustack()] = count()` in a kernel thread prints an entry with no frames: a lone value
    between the stack entries, which reads as three aggregations; the note says why."""
    path = write(tmp_path, stacks(3) + lone(7) + stacks(4))
    load_inputs([path])
    assert notes(capsys) == [stack_note(path, "2, 8", 2, hint=True)]


@pytest.mark.parametrize("between", [
    pytest.param(stacks(4, "sshd"), id="keyed-stacks"),                        # @a[stack()] @b[execname, stack()] @c[stack()]
    pytest.param(lone(7) + table(("sshd", 2), ("cron", 1)), id="lone-then-table"),  # @total after the stacks
    pytest.param(table(("sshd", 2), ("cron", 1)) + lone(7), id="table-then-lone"),  # @total before the stacks
])
def test_no_split_hint_without_a_lone_value_between_stacks(tmp_path, capsys, between):
    """A table, a keyed stack aggregation or a keyless value next to only one stack aggregation is
    no entry with an empty stack: the note says nothing of a split."""
    path = write(tmp_path, stacks(3) + between + stacks(5))
    load_inputs([path])
    (note,) = notes(capsys)
    assert note.endswith("(--aggregation N picks another)"), note
    assert "lone value" not in note


# -- the tables ----------------------------------------------------------------------------------------

def test_tables_say_where_they_were_printed(tmp_path):
    """`@calls[probefunc] = count(); @bytes[probefunc] = sum(n)`: each table's first line."""
    path = write(tmp_path, table(("foo", 3), ("bar", 2)) + table(("qux", 500), ("baz", 100)))
    aggregations = load_inputs([path], LoadOptions(value_kinds=("count", "sum"))).aggregations
    assert [(a.source, a.line, a.number) for a in aggregations] == [(str(path), 2, 1), (str(path), 5, 2)]
