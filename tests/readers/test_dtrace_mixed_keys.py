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


def test_number_key_then_string_key_before_the_stack(tmp_path):
    """``@[pid, execname, stack()]``: the number first, so the line is indented by its padding."""
    text = "".join(number_key(pid) + string_key(name) + stack(frames) + number_key(count) + "\n"
                   for (frames, count), name, pid in zip(ENTRIES, ("intr", "ifconfig"), (12, 4711)))
    assert folded(read(tmp_path, text)) == expected(tmp_path, [["12", "intr"], ["4711", "ifconfig"]])


@pytest.mark.parametrize("key, names", [(string_key, ["intr", "ifconfig"]), (number_key, ["12", "4711"])])
def test_key_after_the_stack_shares_the_count_line(tmp_path, key, names):
    """``@[stack(), execname]`` / ``@[stack(), pid]``: the key, then the count on its line."""
    keys = ["intr", "ifconfig"] if key is string_key else [12, 4711]
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
def test_stack_histogram_after_traced_firings(tmp_path, traced_value):
    """Firings that trace their stack (``profile-997 { stack(); }``), then at the end the output of
    ``@[stack()] = quantize(x)``: its stack, the histogram's own newline (one blank line) and its
    header.  The histogram's frames are its own, not added to the last firing's stack.  Firings
    tracing a value after the stack (``trace(arg0)``: no blank line closes them) too."""
    firings = (DATA / "freebsd-traced-arg0.txt").read_text() if traced_value else TRACED
    frames, _ = ENTRIES[0]
    loaded = read(tmp_path, firings + stack(frames) + "\n" + HEADER + ROWS + "\n")
    assert folded(loaded) == folded(read(tmp_path, firings, name="firings.txt"))
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
