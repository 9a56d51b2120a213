"""Where each DTrace record begins: the line an aggregation is said to be printed from, and the line and
words of the error for a capture cut short.

The tables are printed as libdtrace prints them (``dt_consume.c``): ``printa``
(or dtrace(1) at exit) starts with a newline; a string key is ``"  %-50s"``,
an integer key or a scalar value ``" %16lld"``; a key before a histogram ends
its line, and the histogram's ``dt_print_quanthdr`` starts with a newline too
(so the header follows the key directly, or a blank line when there is no
key); rows ``"%16lld |%-40s %-9lld"``.
"""

from __future__ import annotations

import pytest

from tracebridge.readers import dtrace
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_inputs
from tracebridge.readers.source import Source
from tracebridge.support.errors import InputError
from test_dtrace_captures import named_stacks

QUANT_HEADER = "           value  ------------- Distribution ------------- count    \n"


def histogram(rows: list[tuple[int, int]]) -> str:
    return QUANT_HEADER + "".join("%16d |%-40s %-9d\n" % (value, "@" * (count and 10), count)
                                  for value, count in rows)


#: Five aggregations printed at exit: (what, its text).
TABLES = [
    ("@[probefunc] = count()", "\n" + "  %-50s %16d\n" % ("rem_intr", 12) + "  %-50s %16d\n" % ("rem_ioctl", 30)),
    ("@[cpu] = quantize(x)", "\n" + " %16d\n" % 0 + histogram([(0, 0), (1, 3), (2, 0)]) + "\n"
     + " %16d\n" % 1 + histogram([(2, 0), (4, 5), (8, 0)]) + "\n"),
    ("@ = count()", "\n" + " %16d\n" % 4242),
    ("@[probefunc] = quantize(x)", "\n" + "  %-50s\n" % "rem_intr" + histogram([(64, 0), (128, 2), (256, 0)]) + "\n"),
    ("@ = quantize(x)", "\n" + "\n" + histogram([(1024, 0), (2048, 7), (4096, 0)]) + "\n"),
]


def first_lines() -> list[int]:
    """The line each table's first record starts on: its first key, else its value or header."""
    lines, number = [], 1
    for _, text in TABLES:
        body = text.split("\n")
        first = next(i for i, line in enumerate(body) if line.strip())
        lines.append(number + first)
        number += len(body) - 1
    return lines


def test_each_table_names_the_line_it_starts_on(tmp_path):
    path = tmp_path / "tables.txt"
    path.write_text("".join(text for _, text in TABLES))
    loaded = load_inputs([path])
    assert [a.line for a in loaded.aggregations] == first_lines()
    assert [a.kind for a in loaded.aggregations] == ["count", "quantize", "count", "quantize", "quantize"]
    keyless = loaded.aggregations[2]
    assert [(r.keys, r.value) for r in keyless.rows] == [((), 4242)]
    by_cpu = loaded.aggregations[1]
    assert [(r.keys[0].name, r.value.total) for r in by_cpu.rows] == [("0", 3), ("1", 5)]


def cut(tmp_path, text: str) -> InputError:
    path = tmp_path / "cut.txt"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        dtrace.build(Source(path), dtrace.parse(Source(path)), LoadOptions())
    return error.value


STACK = "              kernel`spinlock_exit+0x46\n              kernel`ithread_loop+0x1b4\n"
TICK = "CPU     ID                    FUNCTION:NAME\n  1  81273                        :tick-60s \n\n"


def test_a_stack_cut_short_at_a_probe_line(tmp_path):
    """A tick printout cut after a stack's frames (dtrace killed as it printed), then the next tick."""
    error = cut(tmp_path, TICK + "\n" + STACK + "  1  81273                        :tick-60s \n")
    assert (error.message, error.position) == ("stack has no count (the capture is cut short here)", 5)


def test_a_stack_cut_short_at_the_end(tmp_path):
    error = cut(tmp_path, "\n" + "  %-50s\n" % "sshd" + STACK)
    assert (error.message, error.position) == ("stack has no count (the capture is cut short here)", 2)


def test_a_key_cut_short_at_the_end(tmp_path):
    error = cut(tmp_path, "\n" + "  %-50s\n" % "sshd")
    assert (error.message, error.position) == ("aggregation key has no value (the capture is cut short here)", 2)


def test_a_bare_address_at_column_0_after_a_key(tmp_path):
    """``dtrace -x stackindent=0`` and ``@[execname, stack()]``: frames at column 0, a bare ``0x`` address too."""
    path = tmp_path / "keyed.txt"
    path.write_text("\n" + "  %-50s\n" % "sshd" + "kernel`foo+0x1\n0xffffffff80a0b0c0\n" + " %16d\n" % 12)
    assert named_stacks(load_inputs([path]).profile) == {("sshd", "0xffffffff80a0b0c0", "foo"): 12}


def test_keys_around_an_empty_user_stack(tmp_path):
    """``@[execname, ustack(), probefunc]`` (and ``..., stack()]``) in a kernel thread: ``dt_print_ustack`` prints
    its newline and no frame, so the key before it ends its own line; the entry starts at that key."""
    path = tmp_path / "keys.txt"
    path.write_text("\n" + "  %-50s\n" % "intr" + "  %-50s %16d\n" % ("rem_intr", 12))
    assert named_stacks(load_inputs([path]).profile) == {("intr", "rem_intr"): 12}
    path.write_text("\n" + "  %-50s\n" % "intr" + "  %-50s\n" % "rem_intr" + STACK + " %16d\n" % 5)
    assert named_stacks(load_inputs([path]).profile) == {("intr", "rem_intr", "ithread_loop", "spinlock_exit"): 5}
    for key in ("  %-50s\n" % "rem_intr", " %16d\n" % 1234):  # ``..., probefunc, stack()]``, ``..., pid, stack()]``
        error = cut(tmp_path, "\n" + "  %-50s\n" % "intr" + key + STACK)
        assert (error.message, error.position) == ("stack has no count (the capture is cut short here)", 2)


#: ``@[ustack()] = count()`` of a process with a JIT and a ustack helper (``dt_print_ustack``): a frame in
#: writable memory named by the helper's own string, printed as given (here made up: no module, no
#: address), and a helper annotation (a string starting ``@``) printed under its frame as ``"  [ %s ]"``.
USTACK = ("              (jit) fib\n"
          "              a.out`main+0x1c\n"
          "                [ app.js line 3 ]\n"
          "              libc.so.7`__libc_start1+0x12a\n")


def test_helper_frames_and_annotations(tmp_path):
    path = tmp_path / "ustack.txt"
    path.write_text("\n\n" + USTACK + " %16d\n" % 7)
    ((stack, weight),) = named_stacks(load_inputs([path]).profile).items()
    # The annotation describes the frame above it: no frame of its own.
    assert (stack, weight) == (("__libc_start1", "main", "(jit) fib"), 7)
    text = "\n\n" + USTACK + " %16d\n" % 7 + "\n" + USTACK.rpartition("              libc")[0]
    error = cut(tmp_path, text)
    second = text[:text.rindex("(jit) fib")].count("\n") + 1  # the cut entry's first frame
    assert (error.message, error.position) == ("stack has no count (the capture is cut short here)", second)


def test_helper_frames_after_kernel_frames(tmp_path):
    """``@[stack(), ustack()] = count()``: the kernel frames, ``dt_print_ustack``'s newline (a blank line), then the
    user frames, a helper's first: one entry."""
    path = tmp_path / "both.txt"
    path.write_text("\n\n" + STACK + "\n" + USTACK + " %16d\n" % 7)
    loaded = load_inputs([path])
    ((stack, weight),) = named_stacks(loaded.profile).items()
    assert (stack[0], stack[-1], weight) == ("__libc_start1", "spinlock_exit", 7)
    assert "(jit) fib" in stack


def test_traced_user_stacks_with_helper_frames(tmp_path):
    """``profile-997 /arg1/ { ustack(); }``: each firing's probe line, ``dt_print_ustack``'s newline ending it, the
    frames (a helper's first), and ``chewrec``'s newline: one sample each."""
    firing = "%3d %6d %32s \n" % (0, 71234, ":profile-997") + USTACK + "\n"
    path = tmp_path / "traced.txt"
    path.write_text("CPU     ID                    FUNCTION:NAME\n" + 2 * firing)
    ((stack, weight),) = named_stacks(load_inputs([path]).profile).items()
    assert (stack, weight) == (("__libc_start1", "main", "(jit) fib"), 2)


def test_a_line_of_words_at_column_0_is_refused(tmp_path):
    """``printf("%s %d\\n", execname, pid)`` output among the entries is no aggregation row (a row's key is indented):
    parse says which line it cannot read."""
    error = cut(tmp_path, "\n" + "  %-50s %16d\n" % ("rem_intr", 12) + "sshd 812\n")
    assert (error.message, error.position) == ("unrecognised line in DTrace output: 'sshd 812'", 3)
