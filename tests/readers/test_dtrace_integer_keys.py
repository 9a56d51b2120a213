"""A lone number in dtrace(1)'s output: an integer key when a stack or a histogram follows it
(``@[pid, stack()]``, ``@[cpu] = quantize(x)``), else a value without keys (``@ = count()``).

An integer key prints as ``" %16lld"``; a ``stack()`` key after it prints each frame indented
``stackindent`` spaces (14 by default; ``-x stackindent=N`` sets it), as ``` module`func+0xoff ```,
``` module`0xADDR ``` or a bare ``0xADDR`` when no module holds the address (freebsd-facts.md
section 5).
"""

from __future__ import annotations

import pytest

from tracebridge.readers.registry import load_inputs

LEAF = "0xffffffff80b1c2d3"  # in no module: printed bare


def read(tmp_path, text: str):
    path = tmp_path / "capture.txt"
    path.write_text(text)
    return load_inputs([path])


def entry(indent: int, frames: list[str], pid: int = 1234, count: int = 5) -> str:
    """One `@[pid, stack()] = count()` entry printed with `-x stackindent=<indent>`."""
    return f"\n {pid:16d}\n" + "".join(" " * indent + f + "\n" for f in frames) + f" {count:16d}\n"


@pytest.mark.parametrize("indent", [14, 1, 0])
def test_pid_key_before_a_stack(tmp_path, indent):
    loaded = read(tmp_path, entry(indent, ["kernel`foo+0x1", "kernel`bar+0x2"]))
    assert {tuple(f.name for f in frames): w for frames, w in loaded.profile} == {("1234", "bar", "foo"): 5}
    assert loaded.aggregations == []  # no keyless value read out of the pid


@pytest.mark.parametrize("indent", [14, 0])
def test_pid_key_before_a_stack_whose_leaf_is_a_bare_address(tmp_path, indent):
    loaded = read(tmp_path, entry(indent, [LEAF, "kernel`bar+0x2"]))
    assert {tuple(f.name for f in frames): w for frames, w in loaded.profile} == {("1234", "bar", LEAF): 5}
    assert loaded.aggregations == []


def test_keyless_values_are_not_keys(tmp_path):
    """`@a = count(); @b = count(); @c[stack()] = count()` at END: two lone values, then a stack
    aggregation: neither value is a key of what follows it."""
    loaded = read(tmp_path, f"\n {7:16d}\n\n {9:16d}\n\n              kernel`foo+0x1\n {5:16d}\n")
    assert [[row.value for row in a.rows] for a in loaded.aggregations] == [[7], [9]]
    assert {tuple(f.name for f in frames): w for frames, w in loaded.profile} == {("foo",): 5}


def test_keyless_value_printed_last(tmp_path):
    """`@[stack()] = count(); @total = count()` at END: the lone value is the last line."""
    loaded = read(tmp_path, f"\n              kernel`foo+0x1\n {5:16d}\n\n {12:16d}\n")
    assert [[row.value for row in a.rows] for a in loaded.aggregations] == [[12]]
    assert {tuple(f.name for f in frames): w for frames, w in loaded.profile} == {("foo",): 5}


@pytest.mark.parametrize("indent", [14, 1])
def test_pid_key_before_a_user_stack_with_a_space_in_a_frame(tmp_path, indent):
    """`@[pid, ustack()] = count()` on macOS: an Objective-C method's frame holds a space."""
    frames = ["AppKit`-[NSApplication run]+0x2d0", "AppKit`NSApplicationMain+0x330", "libdyld.dylib`start+0x1"]
    loaded = read(tmp_path, entry(indent, frames, pid=811))
    ((stack, weight),) = list(loaded.profile)
    assert stack[0].name == "811" and len(stack) == 4 and weight == 5
    assert loaded.aggregations == []


def test_keyless_value_before_a_dtrace_note_with_a_backtick(tmp_path):
    """A terminal log of several runs (`dtrace ... 2>&1 | tee -a log`): a run ending with
    `@total = count()`, then a run the D compiler refused (its message quotes the symbol with a
    backtick, at column 0), then a run printing a stack aggregation.  The value is no key."""
    note = ("dtrace: invalid probe specifier fbt::rem_ioctl:entry { trace(`rem_softc); }: "
            "in action list: failed to resolve `rem_softc: Unknown symbol name")
    loaded = read(tmp_path, f"\n {12:16d}\n{note}\n\n              kernel`foo+0x1\n {5:16d}\n")
    assert [[row.value for row in a.rows] for a in loaded.aggregations] == [[12]]
    assert {tuple(f.name for f in frames): w for frames, w in loaded.profile} == {("foo",): 5}
