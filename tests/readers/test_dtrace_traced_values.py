"""Values a clause traces beside its stack (``stack(); trace(arg0);``) are data of the firing, not counts.

What dtrace(1) prints for a firing (libdtrace ``dt_consume.c``, ``dt_consume_cpu``,
and dtrace.c's ``chew``/``chewrec``): the probe line ``"%3d %6d %32s "``, then
each record in clause order: ``stack()`` as a newline and one frame per line
(``dt_print_stack``), an 8-byte ``trace()`` as ``" %16lld"`` (4 bytes ``" %8d"``)
with no newline of its own; after the last record ``chewrec`` prints one
newline.  So a value traced after the stack sits on the line after the frames,
values traced before it on the probe line, and no blank line closes a firing
whose last record is a value.  An aggregation's count, printed the same
``" %16lld"`` way, always follows a blank line or a key there.

freebsd-traced-arg0.txt is ``profile-997 /arg0/ { stack(); trace(arg0); }``
(made by tests/data/dtrace/make_freebsd_captures.py, ``arg0`` the interrupted PC):
the six firings of freebsd-traced-header.txt, each with its ``arg0``.
"""

from __future__ import annotations

import re
import shutil

import pytest

from fixture_paths import MODULES
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_inputs
from test_dtrace_captures import named_stacks
from truth import DATA

BASE = 0xFFFFFFFF82E1C000
ARG0 = (DATA / "freebsd-traced-arg0.txt").read_text()
#: The same firings, tracing nothing but the stack (each closed by a blank line).
STACKS_ONLY = DATA / "freebsd-traced-header.txt"
_VALUE_LINE = re.compile(r"^ +-?\d+$", re.M)


@pytest.fixture
def options(tmp_path) -> LoadOptions:
    path = tmp_path / "if_rem.ko"
    shutil.copy(MODULES / "rem_legacy_fp.ko", path)
    return LoadOptions(modules=(str(path),), bases=(BASE,))


def stacks(path, options: LoadOptions) -> dict[tuple[str, ...], float]:
    return named_stacks(load_inputs([path], options).profile)


def write(tmp_path, text: str):
    path = tmp_path / "capture.txt"
    path.write_text(text)
    return path


def test_the_capture_traces_each_leaf_pc():
    """The capture is what it says: after each stack, its leaf's PC as a signed 64-bit number."""
    firings = ARG0.split("\n")[1:]
    values = [int(line) for line in firings if _VALUE_LINE.match(line)]
    assert len(values) == 6 and all(v < 0 for v in values)
    leaves = [firings[i + 1].strip() for i, line in enumerate(firings) if line.endswith(":profile-997 ")]
    for value, leaf in zip(values, leaves):
        if "`0x" in leaf or leaf.startswith("0x"):
            assert value + (1 << 64) == int(leaf.rpartition("0x")[2], 16)


def test_a_traced_value_after_the_stack_is_no_count(tmp_path, options):
    """Each firing is one sample of its stack, as without the traced value (the value was read as the
    weight of an aggregation entry: six entries weighing about -2e9 each)."""
    expected = stacks(STACKS_ONLY, options)
    assert sum(expected.values()) == 6
    assert stacks(DATA / "freebsd-traced-arg0.txt", options) == expected
    loaded = load_inputs([DATA / "freebsd-traced-arg0.txt"], options)
    assert loaded.aggregations == []


def test_several_traced_values_on_the_line(tmp_path, options):
    """``stack(); trace(arg0); trace(arg1);``: both values on the line after the frames (a profile
    probe's ``arg1``, the user PC, is 0 in the kernel)."""
    text = _VALUE_LINE.sub(lambda m: m[0] + " %16d" % 0, ARG0)
    assert text.count("                0\n") == 6
    assert stacks(write(tmp_path, text), options) == stacks(STACKS_ONLY, options)


@pytest.mark.parametrize("printed", ["%d\n", "%d  "], ids=["own-line", "trailing-spaces"])
def test_a_number_printed_after_the_stack(tmp_path, options, printed):
    """``stack(); printf("%d\\n", arg0);``: the number at the start of its own line, then the firing's
    newline (a blank line); ``printf("%d  ", arg0)``: the firing's newline ends the number's line."""
    text = _VALUE_LINE.sub(lambda m: printed.replace("%d", m[0].strip()), ARG0)
    assert stacks(write(tmp_path, text), options) == stacks(STACKS_ONLY, options)


def test_a_value_traced_before_the_stack(tmp_path, options):
    """``trace(arg0); stack();``: the value ends the probe line, the stack's newline follows, and the
    firing ends with a blank line."""
    firings = re.findall(r"^(  \d  71234 +:profile-997 )\n((?: {14}\S+\n)+)( +-?\d+)$", ARG0, re.M)
    assert len(firings) == 6
    text = ARG0.split("\n")[0] + "\n" + "".join(f"{probe}{value}\n{frames}\n" for probe, frames, value in firings)
    assert stacks(write(tmp_path, text), options) == stacks(STACKS_ONLY, options)


def test_the_aggregation_printed_after_traced_values(tmp_path, options):
    """``profile-997 /arg0/ { stack(); trace(arg0); @[stack()] = count(); }``, stopped: the firings, then the
    aggregation, each entry a blank line, its frames and its count.  The counts stay counts."""
    firings = re.findall(r"^  \d  71234 +:profile-997 \n((?: {14}\S+\n)+)", ARG0, re.M)
    counted: dict[str, int] = {}
    for frames in firings:
        counted[frames] = counted.get(frames, 0) + 1
    text = ARG0 + "".join(f"\n{frames}{count * 10:>17}\n" for frames, count in counted.items())
    loaded = load_inputs([write(tmp_path, text)], options)
    traced = stacks(STACKS_ONLY, options)
    assert named_stacks(loaded.profile) == traced
    second = load_inputs([write(tmp_path, text)], LoadOptions(modules=options.modules, bases=options.bases,
                                                              aggregation=2))
    assert named_stacks(second.profile) == {
        stack: 10 * weight for stack, weight in traced.items()}


def test_a_capture_with_crlf_line_ends(tmp_path, options):
    """The same capture saved with CRLF line ends (copied through another system): the same firings."""
    path = tmp_path / "crlf.txt"
    path.write_bytes(ARG0.replace("\n", "\r\n").encode())
    assert stacks(path, options) == stacks(STACKS_ONLY, options)


def test_quiet_firings_are_samples_too():
    """freebsd-quiet-arg0.txt: the same firings as ``dtrace -q`` prints them (no probe lines, the
    value ``%lld`` at column 0 right after the frames): one sample each, never a count of ``arg0``."""
    quiet = load_inputs([DATA / "freebsd-quiet-arg0.txt"])
    assert named_stacks(quiet.profile) == named_stacks(load_inputs([DATA / "freebsd-traced-arg0.txt"]).profile)
    assert sum(weight for _, weight in quiet.profile) == len(_VALUE_LINE.findall(ARG0))
