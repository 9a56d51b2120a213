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
