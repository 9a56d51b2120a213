"""Printouts read line by line (keys, traced firings, several aggregations) gather into aggregations, and
the notes say how they combined.

The captures are dtrace(1) output built from freebsd-stack-hex.txt's stacks
and freebsd-traced-header.txt's firings, framed as libdtrace prints them
(``dt_consume.c``): a probe line ``"%3d %6d %32s "`` per firing; ``printa``
prints a newline, then the entries; an ``@[execname, stack()] = count()``
entry is its key ``"  %-50s"``, the stack (a newline, then the frames) and
the count ``" %16lld"``; a ``@[probefunc] = count()`` row the key and the
count on one line; dtrace(1)'s ``chewrec`` ends each firing with a newline
unless ``-q``.  Entries print in ascending order of value.  Such printouts
are not plain ``@[stack()]`` ones, so :func:`dtrace.parse` reads them.
"""

from __future__ import annotations

import re

import pytest

from tracebridge.readers import dtrace
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_inputs
from tracebridge.readers.source import Source
from tracebridge.support.errors import EmptyInput
from test_dtrace_captures import named_stacks
from truth import DATA

HEADER = "CPU     ID                    FUNCTION:NAME\n"
HEX = (DATA / "freebsd-stack-hex.txt").read_text()
#: The stacks of freebsd-stack-hex.txt, each as its printed frame lines.
STACKS = re.findall(r"\n\n((?: {14}\S+\n)+) +\d+\n", HEX)
#: The firings of freebsd-traced-header.txt, each a probe line and its stack.
FIRINGS = re.findall(r"^  \d  71234 +:profile-997 \n(?: {14}\S+\n)+", (DATA / "freebsd-traced-header.txt").read_text(),
                     re.M)
CHOOSE = "choose with --printouts sum|last|each)"


def tick(cpu: int = 1) -> str:
    return "%3d %6d %32s \n" % (cpu, 81273, ":tick-60s")


def keyed(entries: list[tuple[str, int, int]]) -> str:
    """``printa(@)`` of ``@[execname, stack()] = count()``: (execname, index in STACKS, count) per entry."""
    return "\n" + "".join("  %-50s\n%s %16d\n" % (name, STACKS[stack], count) for name, stack, count in entries)


def table(rows: list[tuple[str, int]]) -> str:
    """``printa(@)`` of ``@[probefunc] = count()``."""
    return "\n" + "".join("  %-50s %16d\n" % row for row in rows)


def firing(*printouts: str) -> str:
    """A tick firing: its probe line, what its clause printed, chewrec's newline."""
    return tick() + "".join(printouts) + "\n"


def notes(capsys) -> list[str]:
    return [line.removeprefix("tracebridge: note: ") for line in capsys.readouterr().err.splitlines()]


def read(tmp_path, text: str, **options) -> dtrace.Loaded:
    path = tmp_path / "capture.txt"
    path.write_text(text)
    return load_inputs([path], LoadOptions(**options))


ENTRIES = [("intr", 0, 3), ("if_rem_taskq", 1, 5), ("intr", 2, 8)]


def test_one_keyed_stack_aggregation_printed_twice(tmp_path, capsys):
    """The same entries in two ticks: one aggregation, added up, and the note calls it the stack aggregation."""
    loaded = read(tmp_path, HEADER + 2 * firing(keyed(ENTRIES)))
    assert loaded.profile.total == 2 * 16 and loaded.aggregations == []
    assert notes(capsys) == [f"{tmp_path / 'capture.txt'}: 2 printouts of the stack aggregation, added up: no total "
                             "grows between them, so each holds what came since the one before (as after trunc()) "
                             f"(--printouts sum; {CHOOSE}"]


def test_running_totals_where_a_new_entry_prints_first(tmp_path, capsys):
    """Without trunc() each tick prints everything so far, smallest value first: a stack new in the second
    tick comes before the ones already seen.  The new firing starts the printout, not the repeated key:
    the last printout is the total."""
    text = HEADER + firing(keyed([("intr", 0, 5)])) + firing(keyed([("intr", 1, 1), ("intr", 0, 9)]))
    loaded = read(tmp_path, text)
    assert sorted(named_stacks(loaded.profile).values()) == [1, 9]
    assert notes(capsys) == [f"{tmp_path / 'capture.txt'}: 2 printouts of the stack aggregation, the last one is the "
                             "total: no value ever falls between them, so each holds everything so far "
                             f"(--printouts last; {CHOOSE}"]


def test_two_aggregations_printed_by_each_tick(tmp_path, capsys):
    """``tick-60s { printa(@s); printa(@f); }``: the notes name each aggregation by number, the stack one so."""
    rows = [("rem_ioctl", 2), ("rem_intr", 7)]
    loaded = read(tmp_path, HEADER + 2 * firing(keyed(ENTRIES), table(rows)))
    assert loaded.profile.total == 32
    assert [(a.number, [(r.keys[0].name, r.value) for r in a.rows]) for a in loaded.aggregations] == [
        (2, [("rem_ioctl", 4), ("rem_intr", 14)])]
    path = tmp_path / "capture.txt"
    why = "added up: no total grows between them, so each holds what came since the one before (as after trunc())"
    assert notes(capsys) == [f"{path}: 2 printouts of aggregation 1 (stacks), {why} (--printouts sum; {CHOOSE}",
                             f"{path}: 2 printouts of aggregation 2, {why} (--printouts sum; {CHOOSE}"]


def line_numbers(text: str, start: str) -> list[int]:
    """The numbers of the lines that start with ``start``."""
    return [number for number, line in enumerate(text.split("\n"), 1) if line.startswith(start)]


def test_each_printout_kept_apart(tmp_path, capsys):
    text = HEADER + 3 * firing(keyed(ENTRIES), table([("rem_intr", 7)]))
    loaded = read(tmp_path, text, printouts="each")
    assert [a.number for a in loaded.aggregations] == [2, 4, 6]
    firsts = ", ".join(map(str, line_numbers(text, "  intr")[::2]))
    assert notes(capsys) == [f"{tmp_path / 'capture.txt'}: 4 printouts repeat an aggregation printed before, each "
                             "kept apart as its own aggregation (--printouts each; choose with --printouts "
                             "sum|last|each)",
                             f"{tmp_path / 'capture.txt'}: 3 aggregations hold stacks (printed from lines {firsts}); "
                             "the profile is made of aggregation 1 only (--aggregation N picks another)"]


def test_traced_firings_between_the_ticks(tmp_path, capsys):
    """``profile-997 { stack(); @[execname, stack()] = count(); } tick-60s { printa(@); }``: the traced firings
    are one aggregation whatever comes between them, and always added up (every firing is a sample);
    only the printed aggregation's printouts get a note."""
    text = HEADER + "\n".join(FIRINGS[:3]) + "\n" + firing(keyed(ENTRIES)) + "\n".join(FIRINGS) + "\n" + firing(
        keyed(ENTRIES))
    loaded = read(tmp_path, text)
    assert loaded.profile.total == 3 + 6
    path = tmp_path / "capture.txt"
    second = text.count("\n", 0, text.index("  intr")) + 1
    assert notes(capsys) == [
        f"{path}: 2 printouts of aggregation 2 (stacks), added up: no total grows between them, so each holds what "
        f"came since the one before (as after trunc()) (--printouts sum; {CHOOSE}",
        f"{path}: 2 aggregations hold stacks (printed from lines 2, {second}); the profile is made of aggregation 1 "
        "only (--aggregation N picks another)"]


def test_quiet_printouts_of_keyed_stacks(tmp_path, capsys):
    """``dtrace -q``: no probe lines, no newline after a firing; each ``printa`` still starts with one.  Two
    printouts of the same keyed stacks are one aggregation."""
    loaded = read(tmp_path, 2 * keyed(ENTRIES))
    assert loaded.profile.total == 32
    assert notes(capsys) == [f"{tmp_path / 'capture.txt'}: 2 printouts of the stack aggregation, added up: no total "
                             "grows between them, so each holds what came since the one before (as after trunc()) "
                             f"(--printouts sum; {CHOOSE}"]


def plain(entries: list[tuple[int, int]]) -> str:
    """``printa(@)`` of ``@[stack()] = count()``: (index in STACKS, count) per entry."""
    return "\n" + "".join(f"\n{STACKS[stack]} {count:>16}\n" for stack, count in entries)


def test_a_keyed_stack_aggregation_between_two_others_splits_nothing(tmp_path, capsys):
    """``printa(@a); printa(@k); printa(@b);``, three stack aggregations, the middle one keyed: no hint of
    an empty stack splitting one in two (that is for a lone value between stack entries)."""
    text = HEADER + firing(plain([(0, 2), (1, 4)]), keyed(ENTRIES), plain([(2, 6)]))
    read(tmp_path, text)
    frame = STACKS[2].split("\n", 1)[0]
    firsts = [line_numbers(text, STACKS[0].split("\n", 1)[0])[0], line_numbers(text, "  intr")[0],
              line_numbers(text, frame)[-1]]
    assert notes(capsys) == [f"{tmp_path / 'capture.txt'}: 3 aggregations hold stacks (printed from lines "
                             f"{', '.join(map(str, firsts))}); the profile is made of aggregation 1 only "
                             "(--aggregation N picks another)"]


def test_the_profile_holds_only_the_frames_it_shows(tmp_path):
    """Two stack aggregations, the second keyed by names the first does not hold: the profile, made of the
    first, holds only its own frames (what speedscope lists)."""
    text = HEADER + "\n".join(FIRINGS) + "\n" + firing(keyed([("sshd", 0, 1), ("ntpd", 1, 2)]))
    profile = read(tmp_path, text).profile
    assert set(profile.frames) == {frame for stack, _ in profile for frame in stack}
    assert not {"sshd", "ntpd"} & {frame.name for frame in profile.frames}


def test_an_empty_capture_holds_nothing(tmp_path):
    """``dtrace -o out`` stopped before anything fired leaves an empty file: the reader says it holds nothing."""
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(EmptyInput, match="holds no stacks and no aggregation values"):
        dtrace.read(Source(path), LoadOptions())


@pytest.mark.parametrize("printed", ["keyed-stacks", "table"])
def test_keys_printed_at_exit_after_traced_firings(tmp_path, capsys, printed):
    """``profile-997 { stack(); @[execname, stack()] = count(); }`` (or ``@[probefunc] = count()``), stopped:
    the firings, each closed by a blank line, then dtrace(1)'s newline and the aggregation, whose first key
    follows that blank line.  The key starts an entry: no frame of the last firing, nor of its own stack."""
    rows = [("rem_ioctl", 2), ("rem_intr", 7)]
    text = HEADER + "\n".join(FIRINGS) + "\n" + (keyed(ENTRIES) if printed == "keyed-stacks" else table(rows))
    path = tmp_path / "capture.txt"
    path.write_text(text)
    traced = load_inputs([DATA / "freebsd-traced-header.txt"]).profile
    loaded = load_inputs([path])
    assert named_stacks(loaded.profile) == named_stacks(traced)
    if printed == "table":
        assert [[(r.keys[0].name, r.value) for r in a.rows] for a in loaded.aggregations] == [rows]
        return
    second = load_inputs([path], LoadOptions(aggregation=2)).profile
    by_root: dict[str, float] = {}
    for frames, weight in second:
        by_root[frames[0].name] = by_root.get(frames[0].name, 0) + weight
    assert by_root == {"intr": 11, "if_rem_taskq": 5}
    assert notes(capsys)[-1].endswith(f"2 aggregations hold stacks (printed from lines 2, "
                                      f"{line_numbers(text, '  intr')[0]}); the profile is made of aggregation 1 "
                                      "only (--aggregation N picks another)")
