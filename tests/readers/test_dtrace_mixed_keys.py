"""Aggregations keyed by strings and numbers beside a stack, before or after it, and a stack
histogram printed after traced firings.

How libdtrace prints an entry (``dt_consume.c``, ``dt_print_aggs`` and
``dt_print_datum``): each key in the order written, then the value, then a
newline.  A string key is ``"  %-50s"``, an 8-byte number ``" %16lld"`` (4
bytes ``" %8d"``), a ``stack()`` key a newline then one frame per line; a
scalar value is printed as a number key is, so it shares the line of a key
printed last, and a ``quantize()`` starts with a newline, then its header.
So ``@[execname, pid, stack()]`` puts its keys on one line before the frames,
``@[stack(), execname]`` its key and count on one line after them.

The stacks are the real module's entries of ``examples/if_rem.stack.txt``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_dtrace_captures import named_stacks
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_inputs
from tracebridge.support.errors import InputError
from truth import DATA

EXAMPLE = (Path(__file__).parents[2] / "examples" / "if_rem.stack.txt").read_text()
#: The example's first two entries: (frames as printed, count).
ENTRIES = [(block.splitlines()[:-1], int(block.splitlines()[-1])) for block in EXAMPLE.strip("\n").split("\n\n")[:2]]
HEADER = "           value  ------------- Distribution ------------- count    \n"
ROWS = ("              16 |                                         0        \n"
        "              32 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 8        \n"
        "              64 |                                         0        \n")


def string_key(text: str) -> str:
    return "  %-50s" % text


def number_key(value: int) -> str:
    return " %16d" % value


def stack(frames: list[str]) -> str:
    """``dt_print_stack``: a newline, then each frame on its own line."""
    return "\n" + "".join(frame + "\n" for frame in frames)


def read(tmp_path, text: str, options: LoadOptions | None = None, name: str = "capture.txt"):
    path = tmp_path / name
    path.write_text(text)
    return load_inputs([path], options)


def folded(loaded) -> dict[tuple[str, ...], float]:
    return named_stacks(loaded.profile)


def expected(tmp_path, keys_of: list[list[str]]) -> dict[tuple[str, ...], float]:
    """The example's two entries, read without keys, under these root keys (keys first, then frames root first)."""
    plain = folded(read(tmp_path, "".join(stack(frames) + number_key(count) + "\n" for frames, count in ENTRIES),
                        name="plain.txt"))
    assert len(plain) == len(keys_of)
    return {tuple(keys) + names: count for keys, (names, count) in zip(keys_of, plain.items())}


def test_string_and_number_keys_before_the_stack(tmp_path):
    """``@[execname, pid, stack()] = count()``: the keys' line ends in a number, yet it is no scalar row."""
    text = "".join(string_key(name) + number_key(pid) + stack(frames) + number_key(count) + "\n"
                   for (frames, count), name, pid in zip(ENTRIES, ("intr", "ifconfig"), (12, 4711)))
    loaded = read(tmp_path, text)
    assert folded(loaded) == expected(tmp_path, [["intr", "12"], ["ifconfig", "4711"]])
    assert loaded.aggregations == []


def test_number_keys_then_string_key_before_the_stack(tmp_path):
    """``@[pid, execname, stack()]`` and ``@[pid, tid, execname, stack()]``: numbers first, so the
    line is indented by their padding."""
    text = "".join(number_key(pid) + string_key(name) + stack(frames) + number_key(count) + "\n"
                   for (frames, count), name, pid in zip(ENTRIES, ("intr", "ifconfig"), (12, 4711)))
    assert folded(read(tmp_path, text)) == expected(tmp_path, [["12", "intr"], ["4711", "ifconfig"]])
    text = "".join(number_key(pid) + number_key(100001) + string_key(name) + stack(frames) + number_key(count) + "\n"
                   for (frames, count), name, pid in zip(ENTRIES, ("intr", "ifconfig"), (12, 4711)))
    assert folded(read(tmp_path, text)) == expected(tmp_path, [["12", "100001", "intr"], ["4711", "100001", "ifconfig"]])


def test_keys_on_both_sides_of_the_stack(tmp_path):
    """``@[execname, stack(), pid] = count()``: the keys in the order written."""
    text = "".join(string_key(name) + stack(frames) + number_key(pid) + number_key(count) + "\n"
                   for (frames, count), name, pid in zip(ENTRIES, ("intr", "ifconfig"), (12, 4711)))
    assert folded(read(tmp_path, text)) == expected(tmp_path, [["intr", "12"], ["ifconfig", "4711"]])


@pytest.mark.parametrize("key, names", [(string_key, ["intr", "ifconfig"]), (number_key, ["7", "4711"])])
def test_key_after_the_stack_shares_the_count_line(tmp_path, key, names):
    """``@[stack(), execname]`` / ``@[stack(), pid]``: the key, then the count on its line."""
    keys = ["intr", "ifconfig"] if key is string_key else [7, 4711]  # (pid 7: indented 16, where annotations are)
    text = "".join(stack(frames) + key(k) + number_key(count) + "\n" for (frames, count), k in zip(ENTRIES, keys))
    loaded = read(tmp_path, text)
    assert folded(loaded) == expected(tmp_path, [[name] for name in names])
    assert loaded.aggregations == []


def test_key_after_the_stack_of_a_histogram(tmp_path):
    """``@[stack(), execname] = quantize(x)``: the key's line, then the histogram's header on the next."""
    text = "".join(stack(frames) + string_key(name) + "\n" + HEADER + ROWS + "\n"
                   for (frames, _), name in zip(ENTRIES, ("intr", "ifconfig")))
    loaded = read(tmp_path, text)
    assert folded(loaded) == {names: 8 for names in expected(tmp_path, [["intr"], ["ifconfig"]])}


def test_a_cut_key_line_still_says_where(tmp_path):
    """Keys and frames with no count at the end: the capture is cut short at the entry's start."""
    frames, count = ENTRIES[0]
    text = string_key("intr") + number_key(12) + stack(frames) + number_key(count) + "\n" + string_key("sshd") + \
        number_key(77) + stack(frames)
    with pytest.raises(InputError) as error:
        read(tmp_path, text)
    # The first entry: its keys' line, the frames, the count; the cut one starts on the next line.
    assert (error.value.message, error.value.position) == ("stack has no count (the capture is cut short here)",
                                                           len(frames) + 3)


#: The firings of freebsd-traced-header.txt that traced a stack (its last line, a tick that traced nothing, left out).
TRACED = (DATA / "freebsd-traced-header.txt").read_text().rpartition("  1  71240")[0]


@pytest.mark.parametrize("traced_value", [False, True])
def test_stack_histogram_after_traced_firings(tmp_path, capsys, traced_value):
    """Firings that trace their stack (``profile-997 { stack(); }``), then at the end the output of
    ``@[stack()] = quantize(x)``: its stack, the histogram's own newline (one blank line) and its
    header.  The histogram's frames are its own, not added to the last firing's stack.  Firings
    tracing a value after the stack (``trace(arg0)``: no blank line closes them) too."""
    firings = (DATA / "freebsd-traced-arg0.txt").read_text() if traced_value else TRACED
    frames, _ = ENTRIES[0]
    loaded = read(tmp_path, firings + stack(frames) + "\n" + HEADER + ROWS + "\n")
    assert folded(loaded) == folded(read(tmp_path, firings, name="firings.txt"))
    own_line = firings.count("\n") + 2  # after the firings' last line and the stack's newline
    assert f"printed from lines 2, {own_line})" in capsys.readouterr().err
    histogram = read(tmp_path, firings + stack(frames) + "\n" + HEADER + ROWS + "\n", LoadOptions(aggregation=2))
    first, _ = expected(tmp_path, [[], []])
    assert folded(histogram) == {first: 8}


def test_keyless_histogram_after_firings_leaves_them_their_stacks(tmp_path):
    """Firings tracing ``stack(); ustack();`` (a blank line between the kernel and the user frames),
    then a histogram without keys: its header follows the firing's closing blank line and its own,
    so every frame before stays the last firing's."""
    kernel, _ = ENTRIES[0]
    user = ["              libc.so.7`__sys_read+0xa", "              a.out`main+0x1c"]
    firing = "%3d %6d %32s " % (0, 71234, ":profile-997") + stack(kernel) + stack(user) + "\n"
    loaded = read(tmp_path, "CPU     ID                    FUNCTION:NAME\n" + firing + "\n" + HEADER + ROWS + "\n")
    first, _ = expected(tmp_path, [[], []])
    assert folded(loaded) == {("main", "__sys_read") + first: 1}



def test_two_keys_after_the_stack_of_a_histogram(tmp_path):
    """``@[stack(), execname, probefunc]`` and ``@[stack(), pid, tid] = quantize(x)``: each key its own root frame."""
    frames, _ = ENTRIES[0]
    for keys, printed in ((["intr", "rem_intr"], string_key("intr") + string_key("rem_intr")),
                          (["12", "100034"], number_key(12) + number_key(100034))):
        loaded = read(tmp_path, stack(frames) + printed + "\n" + HEADER + ROWS + "\n")
        first = next(iter(expected(tmp_path, [keys, []])))
        assert folded(loaded) == {first: 8}


def test_numbers_wider_than_their_columns(tmp_path):
    """``@[cpu, timestamp] = count()``: a 19-digit number overflows its 16 columns, so one space parts the keys."""
    stamps = (1733547123456789012, 1733547123456790000)
    loaded = read(tmp_path, "\n" + "".join(number_key(3) + number_key(t) + number_key(1) + "\n" for t in stamps))
    assert [[tuple(f.name for f in row.keys) for row in a.rows] for a in loaded.aggregations] == [
        [("3", str(stamps[0])), ("3", str(stamps[1]))]]


def test_frames_that_look_like_keys(tmp_path):
    """Frames printed with ``-x stackindent=2`` may hold a space (macOS), and a ustack helper's
    frame may end in a number: after the stack's first frame they stay frames, in their places."""
    user = ["  AppKit`NSApplicationMain+0x330", "  AppKit`-[NSApplication run]+0x2d0", "  libdyld.dylib`start+0x1"]
    loaded = read(tmp_path, stack(user) + number_key(5) + "\n")
    assert folded(loaded) == {("start", "-[NSApplication run]", "NSApplicationMain"): 5}
    frames, count = ENTRIES[0]
    for helper in ("(jit) fib at app.js line 12", "(jit) fib [ tier 2 ]"):
        loaded = read(tmp_path, stack([frames[0], " " * 14 + helper, *frames[1:]]) + number_key(count) + "\n")
        ((names, weight),) = folded(loaded).items()
        assert (names[-2], weight) == (helper, count)


def test_what_a_firing_prints_after_its_stack_is_its_own(tmp_path):
    """``profile-997 { stack(); trace(execname); trace(pid); }``: the traced string and number on
    the line after the frames are the firing's, which stays one sample, never an aggregation's key and count."""
    frames, _ = ENTRIES[0]
    firing = "%3d %6d %32s " % (0, 71234, ":profile-997") + stack(frames) + string_key("intr") + " %8d" % 12 + "\n"
    loaded = read(tmp_path, "CPU     ID                    FUNCTION:NAME\n" + 2 * firing)
    assert list(folded(loaded).values()) == [2] and loaded.aggregations == []


def test_keyed_stacks_after_traced_firings(tmp_path, capsys):
    """Firings tracing their stacks, then at the end ``@[stack(), execname] = count()``: the
    aggregation's frames begin after the blank line, the firings keep theirs."""
    frames, count = ENTRIES[0]
    loaded = read(tmp_path, TRACED + stack(frames) + string_key("intr") + number_key(count) + "\n")
    assert folded(loaded) == folded(read(tmp_path, TRACED, name="firings.txt"))
    assert f"printed from lines 2, {TRACED.count(chr(10)) + 2})" in capsys.readouterr().err
    keyed = read(tmp_path, TRACED + stack(frames) + string_key("intr") + number_key(count) + "\n",
                 LoadOptions(aggregation=2))
    assert folded(keyed) == {next(iter(expected(tmp_path, [["intr"], []]))): count}


def test_quiet_firings_then_an_aggregation(tmp_path, capsys):
    """``dtrace -q`` firings, then ``@[stack()] = count()`` printed at the end: the firings are one
    aggregation of samples, from the first line, the entries another, from the blank line on."""
    quiet = (DATA / "freebsd-quiet-arg0.txt").read_text()
    frames, count = ENTRIES[0]
    loaded = read(tmp_path, quiet + "\n" + stack(frames) + number_key(count) + "\n")
    assert folded(loaded) == folded(read(tmp_path, quiet, name="quiet.txt"))
    assert f"printed from lines 2, {quiet.count(chr(10)) + 3})" in capsys.readouterr().err


def test_helper_frames_after_keys(tmp_path):
    """``@[execname, ustack()] = count()`` whose stack starts with helpers' frames (no module, no
    address): the entry still starts at its key's line, which a cut entry's error names."""
    helpers = [" " * 14 + "(jit) fib", " " * 14 + "(jit) fib_inner", " " * 14 + "a.out`main+0x1c"]
    loaded = read(tmp_path, string_key("node") + stack(helpers) + number_key(3) + "\n")
    assert folded(loaded) == {("node", "main", "(jit) fib_inner", "(jit) fib"): 3}
    with pytest.raises(InputError) as error:
        read(tmp_path, "\n" + string_key("node") + stack(helpers))
    assert (error.value.message, error.value.position) == ("stack has no count (the capture is cut short here)", 2)


def test_counts_at_column_zero_without_the_first_blank_line(tmp_path):
    """``printa("%k%@d\\n", @)`` output whose first line was cut off (``tail``): a number at column 0
    followed by a blank line is a count, from the first entry on."""
    frames, _ = ENTRIES[0]
    text = "".join(frame.strip() + "\n" for frame in frames) + "12\n\n" + "".join(
        frame.strip() + "\n" for frame in frames) + "3\n"
    assert list(folded(read(tmp_path, text)).values()) == [15]
