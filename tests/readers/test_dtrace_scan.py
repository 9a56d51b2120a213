"""The DTrace stack scanner (readers/dtrace_scan.py, src/native/dtrace_scan.h): native and pure Python alike,
and both as the line-by-line parser reads the same capture."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracebridge.cli import main
from tracebridge.readers import dtrace, dtrace_scan, source
from tracebridge.readers.dtrace_scan import (BAD_BYTE, END, NOT_PLAIN, OTHER, StackTable, _scan_lines, scan_stacks,
                                             stack_tuples)
from tracebridge.readers.options import LoadOptions
from tracebridge.support import native
from tracebridge.support.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: Every committed DTrace capture (the flow reader's captures are another format).
CAPTURES = sorted([*(ROOT / "tests" / "data" / "dtrace").glob("*.txt"), *EXAMPLES.glob("*.stack.txt"),
                   *EXAMPLES.glob("if_rem.count.txt"), *EXAMPLES.glob("if_rem.latency.txt"),
                   *EXAMPLES.glob("inl.kinst.txt")])
CAPTURES = [c for c in CAPTURES if "flow" not in c.name]
OPTIONS = {
    "plain": [],
    "speedscope": ["--format", "speedscope"],
    "offsets": ["--include-offset"],
    # Resolves the hex frames and counts the consistency evidence (issue 15) per frame text.
    "module": ["--module", str(EXAMPLES / "if_rem.ko"), "--kldstat", str(EXAMPLES / "kldstat.txt"), "-v"],
}


def fold(tmp_path: Path, capsys, capture: Path, argv: list[str]) -> tuple[int, bytes, str]:
    """Status, output file and standard error of ``tracebridge fold`` in this process."""
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    capsys.readouterr()
    status = main(["fold", str(capture), *argv, "-o", str(out)])
    return status, out.read_bytes() if out.exists() else b"", capsys.readouterr().err


def test_captures_are_found():
    assert len(CAPTURES) >= 10


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_native_and_pure_python_fold_alike(native_core, tmp_path, capsys, monkeypatch, capture, option):
    ours = fold(tmp_path, capsys, capture, OPTIONS[option])
    monkeypatch.setattr(native, "core", None)
    assert fold(tmp_path, capsys, capture, OPTIONS[option]) == ours


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_the_scan_reads_as_the_parser_does(tmp_path, capsys, monkeypatch, capture, option):
    """The fast path gives what parse() and build() give, output, notes and warnings alike."""
    scanned = fold(tmp_path, capsys, capture, OPTIONS[option])
    monkeypatch.setattr(dtrace, "_read_plain_stacks", lambda source, options: None)
    assert fold(tmp_path, capsys, capture, OPTIONS[option]) == scanned


def test_entries_across_small_blocks_read_alike(tmp_path, capsys, monkeypatch):
    """Blocks of 64 bytes cut entries and frames' neighbours apart: the pending frames carry over."""
    capture = EXAMPLES / "if_em.stack.txt"
    whole = fold(tmp_path, capsys, capture, [])
    monkeypatch.setattr(source, "BLOCK", 64)
    assert fold(tmp_path, capsys, capture, []) == whole


# Lines a capture may hold: frames of every printed form, counts, blanks, probe lines, headers,
# notes, keys, odd bytes.
FRAME = st.one_of(
    st.sampled_from(["kernel`foo+0x1", "kernel`foo+0x24", "kernel`bar", "if_rem.ko`0xffffffff82a1cd0f",
                     "0xffffffff82a1cd0f", "kernel`foo+0x10000000000000000", "kernel`foo+0x", "+0x10",
                     "mod`", "kernel`a+0x1+0x2", "k`f+0x00000000000000001", "0x", "a`b+0X1"]),
    st.from_regex(r"[a-z_]{1,6}`[a-zA-Z_:$+0-9x]{1,12}", fullmatch=True),
)
LINE = st.one_of(
    FRAME.map(lambda f: " " * 14 + f),
    FRAME.map(lambda f: " " * 14 + f),
    st.sampled_from(["", "", "   ", "\t"]),
    st.integers(0, 10 ** 21).map(lambda n: " " * 16 + str(n)),
    st.sampled_from(["CPU     ID                    FUNCTION:NAME", "  0  64091                        :tick-60s ",
                     "  1  64091                        :tick-60s", "dtrace: script 'x.d' matched 1 probe", "^C",
                     "  execname  ", "              -5", "              1 2", "  12\t34", "   0 1 a:b `x", "kernel`foo bar", "           value  "
                     "------------- Distribution ------------- count", "  kernel`f\x0c", "  k`caf\xe9",
                     "  k`f\r", " " * 14 + "kernel`foo\0"]),
)

#: Lines of captures the scan reads through: frames, counts, blanks, probe lines (entries repeat often).
PLAIN_LINE = st.one_of(
    st.sampled_from(["kernel`foo+0x1", "kernel`foo+0x24", "kernel`bar", "0xffffffff82a1cd0f"]).map(lambda f: "  " + f),
    st.integers(0, 99).map(lambda n: " " * 16 + str(n)),
    st.sampled_from(["", "  0  64091                        :tick-60s "]),
)


def capture_text(lines: list[str], probe_first: bool, final_newline: bool) -> bytes:
    head = ["CPU     ID                    FUNCTION:NAME", "  0  64091                        :tick-60s ", ""]
    text = "\n".join((head if probe_first else []) + lines) + ("\n" if final_newline else "")
    return text.encode("utf-8")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(LINE, max_size=40), st.lists(PLAIN_LINE, max_size=60)), st.booleans(), st.booleans(),
       st.booleans())
def test_generated_captures_scan_alike(native_core, lines, probe_first, final_newline, keep_offsets):
    """The native scan and its twin (in chunks, small chunks, line by line) leave the same state and stop at the same line, for
    the same reason."""
    block = capture_text(lines, probe_first, final_newline)
    results = []
    for scan in (native_core.dtrace_stacks, scan_stacks, line_by_line, small_chunks):
        table = StackTable(keep_offsets=keep_offsets)
        stops = []
        pos, after_probe = 0, False
        while True:
            status, pos, after_probe = scan(block, pos, after_probe, table)
            stops.append((status, pos, after_probe))
            if status != OTHER:
                break
            newline = block.find(b"\n", pos)
            pos = newline + 1 if newline >= 0 else len(block)
            after_probe = not after_probe  # both ways, from here on
        results.append((stops, table.texts, table.cut_of, table.cuts, table.entries, table.stacks, table.stack_of,
                        table.pending, table.found, table.counts))
    assert results[0] == results[1] == results[2] == results[3]


def line_by_line(block: bytes, pos: int, after_probe: bool, table: StackTable) -> tuple[int, int, bool]:
    """The pure scan without its bulk path."""
    if table.index is None:
        table.index = ({}, {}, {}, [], {})
    return _scan_lines(block, pos, after_probe, table)


def small_chunks(block: bytes, pos: int, after_probe: bool, table: StackTable) -> tuple[int, int, bool]:
    """The pure scan classifying 16 bytes at a time (lines longer than that alone)."""
    chunk, dtrace_scan.CHUNK = dtrace_scan.CHUNK, 16
    try:
        return scan_stacks(block, pos, after_probe, table)
    finally:
        dtrace_scan.CHUNK = chunk


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(LINE, max_size=30), st.lists(PLAIN_LINE, max_size=40)), st.booleans(), st.booleans())
def test_generated_captures_fold_alike(native_core, tmp_path_factory, lines, probe_first, final_newline):
    """fold gives the same bytes and messages on both paths, and the same as the line parser."""
    from _pytest.monkeypatch import MonkeyPatch
    import contextlib
    import io

    path = tmp_path_factory.mktemp("generated") / "capture.txt"
    path.write_bytes(capture_text(lines, probe_first, final_newline))

    def run() -> tuple[int, bytes, str]:
        out = path.with_suffix(".folded")
        if out.exists():
            out.unlink()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = main(["fold", str(path), "-o", str(out)])
        return status, out.read_bytes() if out.exists() else b"", err.getvalue()

    ours = run()
    with MonkeyPatch.context() as patch:
        patch.setattr(native, "core", None)
        assert run() == ours
        patch.setattr(dtrace, "_read_plain_stacks", lambda source, options: None)
        assert run() == ours


def test_what_the_scan_reads(native_core):
    block = (b"CPU     ID                    FUNCTION:NAME\n  0  1  :tick-1s \n\n"
             b"  kernel`a+0x1\n  kernel`b+0x2\n  3\n\n  kernel`a+0x4\n  kernel`b+0x2\n  5\n")
    for scan in (native_core.dtrace_stacks, scan_stacks):
        table = StackTable()
        assert scan(block, 0, False, table) == (OTHER, 0, False)
        assert scan(block, 44, False, table) == (OTHER, 44, False)
        assert scan(block, block.index(b"\n\n") + 1, True, table) == (END, len(block), False)
        assert table.texts == ["kernel`a+0x1", "kernel`b+0x2", "kernel`a+0x4"]
        assert table.cuts == ["kernel`a", "kernel`b"]
        assert table.found == [0, 1] and table.counts == [3, 5]
        assert stack_tuples(table.stacks, bytes(8)) == [(0, 0)]
        assert [list(memoryview(s).cast("i")) for s in table.stacks] == [[1, 0]]  # one stack without offsets
        assert list(memoryview(table.stack_of).cast("i")) == [0, 0]


@pytest.mark.parametrize("block, status", [
    (b"  kernel`a\n  12\n  7\n", NOT_PLAIN),          # a number after a count: a key
    (b"  3\n", NOT_PLAIN),                            # a value without a stack
    (b"  kernel`a\n  kernel`\xe9\n  1\n", BAD_BYTE),   # not printable ASCII: the text path decides
    (b"  kernel`a\0\n", BAD_BYTE),
    (b"  kernel`a b\n", OTHER),                        # a name with a space
    (b"  123456789012345678901\n", OTHER),             # 21 digits are no count
    (b"  kernel`a\n  1 2\n", OTHER),                  # two numbers are no count (the native scan read -58)
    (b"  kernel`a\n  1\t2\n", OTHER),
    (b"  kernel`a\n1\n", OTHER),                     # at column 0: a value a quiet firing traced, no count
    (b"  kernel`a\n  1\n  kernel`a\n12  \n", OTHER),
])
def test_where_the_scan_stops(native_core, block, status):
    for scan in (native_core.dtrace_stacks, scan_stacks, line_by_line):
        assert scan(block, 0, False, StackTable())[0] == status


def test_counts_of_twenty_digits(native_core):
    for scan in (native_core.dtrace_stacks, scan_stacks):
        table = StackTable()
        scan(b"  k`a\n  99999999999999999999\n  k`a\n  000000000000000000007\n", 0, False, table)
        assert table.counts == [99999999999999999999]


def test_an_entry_of_too_many_frames_goes_to_the_parser(native_core):
    block = b"  k`a\n" * (1 << 16) + b"  k`b\n  1\n"
    for scan in (native_core.dtrace_stacks, scan_stacks, line_by_line):
        assert scan(block, 0, False, StackTable())[:2] == (NOT_PLAIN, len(b"  k`a\n") * (1 << 16))


def test_hostile_arguments_are_refused(native_core):
    with pytest.raises(ValueError):
        native_core.dtrace_stacks(b"  k`a\n", 7, False, StackTable())
    with pytest.raises(ValueError):
        native_core.dtrace_stacks(b"  k`a\n", -1, False, StackTable())
    with pytest.raises(TypeError):
        native_core.dtrace_stacks(b"", 0, False, StackTable(texts={}))
    with pytest.raises(AttributeError):
        native_core.dtrace_stacks(b"", 0, False, object())
    table = StackTable()
    native_core.dtrace_stacks(b"  k`a\n  1\n", 0, False, table)
    table.texts.append("k`b")  # out of step with the native index
    with pytest.raises(ValueError):
        native_core.dtrace_stacks(b"  k`b\n", 0, False, table)
    table = StackTable(index=({}, {}, {}, [], {}))  # the pure scanner's index
    with pytest.raises(ValueError):
        native_core.dtrace_stacks(b"", 0, False, table)
    with pytest.raises(ValueError):
        native_core.dtrace_stack_tuples([b"\1\0\0\0"], b"\0\0\0\0")
    with pytest.raises(ValueError):
        native_core.dtrace_stack_tuples([b"\xff\xff\xff\xff"], b"\0\0\0\0")
    with pytest.raises(TypeError):
        native_core.dtrace_stack_tuples([b"\0\0\0"], b"\0\0\0\0")
    with pytest.raises(TypeError):
        native_core.dtrace_stack_tuples(["abcd"], b"\0\0\0\0")


def test_two_values_on_the_count_line_read_alike(native_core, tmp_path, capsys, monkeypatch):
    """``printa(@a, @b)`` prints both values on the line under the stack: the native scan once read
    ``1        1`` as one count (the blanks as digits: a negative count), not as the parser reads it."""
    text = (EXAMPLES / "if_rem.stack.txt").read_text()
    reshaped = re.sub(r"\n( +)(\d+)\n", r"\n\1\2        \2\n", text)
    assert reshaped != text
    capture = tmp_path / "two-values.txt"
    capture.write_text(reshaped)
    ours = fold(tmp_path, capsys, capture, [])
    monkeypatch.setattr(native, "core", None)
    assert fold(tmp_path, capsys, capture, []) == ours
    monkeypatch.setattr(dtrace, "_read_plain_stacks", lambda source, options: None)
    assert fold(tmp_path, capsys, capture, []) == ours
    assert "negative" not in ours[2]


#: The captures made of ``@[stack(), ...] = count()`` entries alone: the ones the fast path must read.
PLAIN = {"if_em.stack.txt", "if_rem.stack.txt", "inl.stack.txt", "freebsd-hex-only.txt", "freebsd-stack-hex.txt",
         "illumos-stack-ustack.txt", "macos-ustack.txt"}


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_the_fast_path_reads_the_plain_captures(capture):
    """Declining is always safe (parse reads it alike), so only this tells that the fast path works at all:
    the stack captures are read by it, the ones with keys, histograms or traced stacks are not."""
    loaded = dtrace._read_plain_stacks(source.Source(capture), LoadOptions())
    assert (loaded is not None) == (capture.name in PLAIN)


@pytest.mark.parametrize("probe", [True, False])
def test_the_fast_path_reads_repeated_printouts(tmp_path, capsys, probe):
    """A tick clause's printouts (the probe line, then the entries again; or, with ``dtrace -q``, the
    entries again alone) stay on the fast path, added up, and its note names the capture."""
    capture = ROOT / "tests" / "data" / "dtrace" / "freebsd-stack-hex.txt"
    entries = capture.read_text().split("^C\n", 1)[1]
    tick = "  1  81273                        :tick-60s \n\n" if probe else ""
    path = tmp_path / "ticks.txt"
    path.write_text(("CPU     ID                    FUNCTION:NAME\n" if probe else "") + tick + entries + tick + entries)
    once = dtrace.read(source.Source(capture), LoadOptions())
    capsys.readouterr()
    twice = dtrace._read_plain_stacks(source.Source(path), LoadOptions(printouts="sum"))
    assert twice is not None and twice.profile.total == 2 * once.profile.total
    assert capsys.readouterr().err.startswith(f"tracebridge: note: {path}: 2 printouts of the stack aggregation")


def test_the_fast_path_leaves_a_cut_entry_to_the_parser(tmp_path):
    """Frames with no count after them (the capture cut short): parse says what is wrong."""
    capture = ROOT / "tests" / "data" / "dtrace" / "freebsd-stack-hex.txt"
    path = tmp_path / "cut.txt"
    path.write_text(capture.read_text().rstrip("\n").rpartition("\n")[0] + "\n")
    assert dtrace._read_plain_stacks(source.Source(path), LoadOptions()) is None


def test_read_takes_the_fast_path_for_the_first_aggregation_only(monkeypatch, capsys):
    """read() gives a plain capture to the scan (the parser is never asked), unless another aggregation
    than the first is asked for: that one is parse's, and a capture of one says so."""
    capture = ROOT / "tests" / "data" / "dtrace" / "freebsd-stack-hex.txt"
    expected = dtrace.build(source.Source(capture), dtrace.parse(source.Source(capture)), LoadOptions()).profile
    real_parse = dtrace.parse

    def refused(src):
        raise AssertionError("parse() called for a plain capture")

    monkeypatch.setattr(dtrace, "parse", refused)
    for aggregation in (None, 1):
        assert list(dtrace.read(source.Source(capture), LoadOptions(aggregation=aggregation)).profile) == list(expected)
    monkeypatch.setattr(dtrace, "parse", real_parse)
    with pytest.raises(InputError, match=r"--aggregation 2: it holds 1 aggregation\(s\)"):
        dtrace.read(source.Source(capture), LoadOptions(aggregation=2))


STACK_HEX = ROOT / "tests" / "data" / "dtrace" / "freebsd-stack-hex.txt"
TRACED = ROOT / "tests" / "data" / "dtrace" / "freebsd-traced-header.txt"


def read_both_ways(path: Path) -> tuple[dtrace.Loaded | None, list, list]:
    """The fast path's answer, and the profiles read() and parse give (as (frames, weight) lists)."""
    fast = dtrace._read_plain_stacks(source.Source(path), LoadOptions())
    read = list(dtrace.read(source.Source(path), LoadOptions()).profile)
    parsed = list(dtrace.build(source.Source(path), dtrace.parse(source.Source(path)), LoadOptions()).profile)
    return fast, read, parsed


def test_a_capture_without_its_preamble(tmp_path):
    """The note, ``^C`` and blank line above the first entry cut off (``sed 1,3d``): the first line is a
    frame, which the fast path reads as any other."""
    path = tmp_path / "cut.txt"
    path.write_text(STACK_HEX.read_text().split("\n", 3)[3])
    assert path.read_text().startswith("              if_rem.ko`")
    fast, read, parsed = read_both_ways(path)
    assert fast is not None and read == parsed == list(fast.profile)


@pytest.mark.parametrize("printed", ["at-exit", "by-tick"])
def test_traced_firings_then_the_aggregation(tmp_path, capsys, printed):
    """``profile-997 { stack(); @[stack()] = count(); }`` with ``exit(0)`` on the first firing (its traced
    stack, then at exit the aggregation), or ``tick-10s { printa(@); }`` after twelve firings (six stacks,
    twice each; the tick's probe line, then the aggregation).  The traced stacks are not entries of the
    aggregation: the fast path leaves it all to parse, which keeps them apart: the firings are one
    aggregation, the printout another, and both count the same stacks alike."""
    header = "CPU     ID                    FUNCTION:NAME\n"
    parts = TRACED.read_text().removeprefix(header).split("\n\n")
    firings = [part for part in parts if ":profile-997" in part]  # a probe line and its stack each
    tick = next(part for part in parts if ":tick-10s" in part)
    if printed == "at-exit":
        firings = firings[:1]
        before = header + firings[0] + "\n\n"
    else:
        firings = firings * 2
        before = header + "\n\n".join(firings) + "\n\n" + tick + "\n\n"
    stacks = Counter("\n".join(line for line in firing.splitlines() if line.startswith(" " * 14)) for firing in firings)
    path = tmp_path / "traced.txt"
    path.write_text(before + "".join(f"\n{stack}\n{count:>17}\n" for stack, count in stacks.items()))
    fast, read, parsed = read_both_ways(path)
    assert fast is None and read == parsed
    capsys.readouterr()
    first = dtrace.read(source.Source(path), LoadOptions()).profile
    assert (f"2 aggregations hold stacks (printed from lines 2, {before.count(chr(10)) + 2}); the profile is made "
            "of aggregation 1 only") in capsys.readouterr().err
    second = dtrace.read(source.Source(path), LoadOptions(aggregation=2)).profile
    assert sum(weight for _, weight in first) == len(firings)
    assert {names(frames): weight for frames, weight in first} == {names(frames): weight for frames, weight in second}


def test_two_stack_aggregations_printed_by_one_tick(tmp_path):
    """``tick-60s { printa(@k); printa(@all); }``, both ``@[stack()] = count()`` of the same samples: one
    firing prints the same entries twice, which the fast path leaves to parse (two aggregations)."""
    entries = STACK_HEX.read_text().split("^C\n", 1)[1]
    path = tmp_path / "two.txt"
    path.write_text("CPU     ID                    FUNCTION:NAME\n  1  81273                        :tick-60s \n\n"
                    + entries + entries)
    fast, read, parsed = read_both_ways(path)
    assert fast is None and read == parsed
    assert sum(weight for _, weight in read) == sum(int(n) for n in re.findall(r"^ +(\d+)$", entries, re.M))


@pytest.mark.parametrize("where", ["before-a-tick", "at-the-end"])
def test_a_printout_cut_short(tmp_path, where):
    """A tick's printout whose first entry has lost its count (the output cut, then the next firing printed;
    or dtrace killed while printing): the frames are not added to the next entry nor taken for a traced
    stack, parse says where the stack lost its count."""
    entries = STACK_HEX.read_text().split("^C\n", 1)[1]
    tick = "  1  81273                        :tick-60s \n\n"
    cut = entries.split("\n\n")[1].rpartition("\n")[0] + "\n"  # the first entry, without its count line
    first = "CPU     ID                    FUNCTION:NAME\n" + tick + entries + tick + "\n"
    path = tmp_path / "cut.txt"
    path.write_text(first + cut + (tick + entries if where == "before-a-tick" else ""))
    assert dtrace._read_plain_stacks(source.Source(path), LoadOptions()) is None
    with pytest.raises(InputError, match="stack has no count") as error:
        dtrace.read(source.Source(path), LoadOptions())
    assert error.value.position == first.count("\n") + 1


def test_a_capture_ending_on_a_probe_line(tmp_path):
    """dtrace killed as a tick fired: the last line is its probe line, with no newline after it.  The
    printouts before it read as they do without it."""
    entries = STACK_HEX.read_text().split("^C\n", 1)[1]
    tick = "  1  81273                        :tick-60s "
    whole = tmp_path / "whole.txt"
    whole.write_text("CPU     ID                    FUNCTION:NAME\n" + (tick + "\n\n" + entries) * 2)
    killed = tmp_path / "killed.txt"
    killed.write_text(whole.read_text() + tick)
    fast, read, parsed = read_both_ways(killed)
    assert fast is not None and list(fast.profile) == read == parsed == list(dtrace.read(source.Source(whole),
                                                                                          LoadOptions()).profile)


def probe_line(cpu: int, probe: int, function_name: str) -> str:
    """A firing as dt_consume.c prints it: ``"%3d %6d %32s "``."""
    return "%3d %6d %32s " % (cpu, probe, function_name)


@pytest.mark.parametrize("line, expected", [
    ("CPU     ID                    FUNCTION:NAME", False),
    ("dtrace: description 'profile-997 ' matched 1 probe", False),
    ("^C", False),
    (probe_line(0, 71234, ":profile-997"), True),
    (probe_line(12, 81273, ":tick-60s"), True),
    (probe_line(127, 81273, ":tick-60s"), True),
    # `trace(func(caller))`: dt_print_sym's "  %-50s" after the probe, on its line.
    (probe_line(1, 71236, "rem_ioctl:entry") + "  %-50s" % "kernel`ifhwioctl", True),
    # `printf("%6d %6d %s:%s %a\n", pid, tid, probemod, probefunc, caller)` under -q: parse reads it as a frame.
    ("%6d %6d %s:%s %s" % (812, 100123, "if_rem", "rem_ioctl", "kernel`ifhwioctl+0x12a"), None),
    ("              libc++.so.1`std::__1::basic_string<char, std::__1::char_traits<char> >::append(char const*)+0x1c",
     None),
    ("           value  ------------- Distribution ------------- count", None),
    ("  rem_load                                          ", None),
    ("               -5", None),
])
def test_what_a_line_between_entries_is(line, expected):
    """The lines the scan hands back: probe lines and notes the fast path passes, all else is parse's."""
    assert dtrace._between_entries(line) is expected


def names(frames) -> tuple[str, ...]:
    return tuple(frame.name for frame in frames)


def test_entries_differing_in_offsets_only_add_up(tmp_path):
    """Two call sites in one caller (``ifioctl+0x9e2`` and ``+0x9e7``) are one frame without
    --include-offset, so their entries add up, as stackcollapse.pl (which cuts ``+0x...`` too) adds them."""
    text = (EXAMPLES / "if_rem.stack.txt").read_text()
    moved = re.sub(r"(kernel`\w+\+0x)([0-9a-f]+)", lambda m: m[1] + format(int(m[2], 16) + 5, "x"), text)
    assert moved != text
    path = tmp_path / "sites.txt"
    path.write_text(text + moved)
    once = dtrace.read(source.Source(EXAMPLES / "if_rem.stack.txt"), LoadOptions()).profile
    fast, read, parsed = read_both_ways(path)
    assert fast is not None and read == parsed
    assert {names(frames): 2 * weight for frames, weight in once} == {names(frames): weight for frames, weight in read}
    kept = dtrace.read(source.Source(path), LoadOptions(offsets=True)).profile
    assert len(kept.stacks) == 2 * len(once.stacks)


def test_the_last_printout_only_names_its_own_frames(tmp_path):
    """``tick-60s { printa(@); trunc(@); }`` read with ``--printouts last``: the frames of the stacks only
    earlier printouts held are not in the profile's frame table (speedscope and pprof list every frame)."""
    entries = STACK_HEX.read_text().split("^C\n", 1)[1]
    tick = "  1  81273                        :tick-60s \n\n"
    last = "\n\n".join(entries.split("\n\n")[:2]) + "\n"
    path = tmp_path / "trunc.txt"
    path.write_text("CPU     ID                    FUNCTION:NAME\n" + tick + entries + tick + last)
    options = LoadOptions(printouts="last")
    fast = dtrace._read_plain_stacks(source.Source(path), options)
    parsed = dtrace.build(source.Source(path), dtrace.parse(source.Source(path)), options).profile
    assert fast is not None and list(fast.profile) == list(parsed) and fast.profile.frames == parsed.frames
    assert len(parsed.frames) < len(dtrace.read(source.Source(STACK_HEX), LoadOptions()).profile.frames)


def test_what_a_stack_capture_counts():
    """``@[stack()] = count()`` of a profile probe counts samples: so say the profile's event and unit, on
    both paths, with the capture named as its source."""
    for loaded in (dtrace._read_plain_stacks(source.Source(STACK_HEX), LoadOptions()),
                   dtrace.build(source.Source(STACK_HEX), dtrace.parse(source.Source(STACK_HEX)), LoadOptions())):
        metadata = loaded.profile.metadata
        assert (metadata.source, metadata.event, metadata.unit) == (str(STACK_HEX), "samples", "samples")
