"""Which files auto-detection takes for DTrace output (``dtrace.sniff``): every printed shape of a
capture, and none of the texts beside it (other tools' outputs, DTrace's own probe listing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracebridge.readers import dtrace
from tracebridge.readers.source import Source
from truth import DATA

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CAPTURES = sorted([p for p in DATA.glob("*.txt") if p.name != "flow.txt"]
                  + [EXAMPLES / f"{name}.txt" for name in ("if_rem.stack", "if_em.stack", "inl.stack", "if_rem.count",
                                                           "if_rem.latency", "inl.kinst")])


def sniffed(tmp_path: Path, text: str) -> bool:
    path = tmp_path / "input.txt"
    path.write_text(text)
    return dtrace.sniff(Source(path))


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_capture_is_taken_for_dtrace_output(capture):
    assert dtrace.sniff(Source(capture))


@pytest.mark.parametrize("capture", ["freebsd-hex-only.txt", "freebsd-stack-hex.txt"])
def test_stackindent_zero_captures(tmp_path, capture):
    """``-x stackindent=0`` prints the frames at column 0: a bare ``0x`` address, or ``module`func``."""
    text = re.sub(r"^ {14}", "", (DATA / capture).read_text(), flags=re.M)
    assert sniffed(tmp_path, text)


@pytest.mark.parametrize("frames", [
    ["kernel`spinlock_exit+0x46", "kernel`ithread_loop+0x1b4", "kernel`fork_exit+0x80"],
    ["0xffffffff82e1db54", "0xffffffff82e1d50e", "0xffffffff8104e10e"],
], ids=["named", "hex"])
def test_quiet_traced_stacks(tmp_path, frames):
    """``dtrace -q`` with ``stack();`` in the clause prints the frames alone: no header, no probe line, no
    count.  The DTrace reader takes it (and says what it lacks), whatever the frames look like."""
    firing = "\n" + "".join(" " * 14 + f + "\n" for f in frames)
    assert sniffed(tmp_path, firing * 2)


def test_several_string_keys(tmp_path):
    """``@[execname, probefunc] = count()``: each key ``"  %-50s"``, the value ``" %16lld"``."""
    rows = [("intr", "rem_intr", 2931), ("if_rem_taskq", "rem_ioctl", 154)]
    assert sniffed(tmp_path, "\n" + "".join(f"  {e:<50}  {f:<50} {n:>16}\n" for e, f, n in rows))


#: ``dtrace -l -P dtrace`` (dtrace.c's ``"%5d %10s %17s %33s %s\n"`` rows under their header): DTrace's own
#: output, every line indented, but no capture.
PROBE_LIST = ("   ID   PROVIDER            MODULE                          FUNCTION NAME\n"
              "    1     dtrace                                                     BEGIN\n"
              "    2     dtrace                                                     END\n"
              "    3     dtrace                                                     ERROR\n")
#: Lines FlameGraph's stackcollapse.pl prints for freebsd-stack-hex.txt and freebsd-hex-only.txt: each frame
#: keeps its module, or is a bare address.
STACKCOLLAPSE = ("kernel`0xffffffff8104e10e;kernel`fork_exit;kernel`gtaskqueue_thread_loop;kernel`gtaskqueue_run_locked;"
                 "kernel`_task_fn_rx;kernel`iflib_rxeof;kernel`ether_input;kernel`netisr_dispatch_src;"
                 "kernel`ether_nh_input;kernel`ether_demux;if_rem.ko`0xffffffff82e1c896;0xffffffff82e1d50e;"
                 "if_rem.ko`0xffffffff82e1db54 36\n")
STACKCOLLAPSE_HEX = ("0xffffffff8104e10e;0xffffffff80b0803c;0xffffffff80b0703c;0xffffffff80b0603c;0xffffffff80b0503c;"
                     "0xffffffff80b0403c;0xffffffff80b0303c;0xffffffff80b0203c;0xffffffff80b0103c;0xffffffff80b0003c;"
                     "0xffffffff80b0b03c;0xffffffff82e1d934;0xffffffff82e1c6f6;0xffffffff82e1d371 215\n")
#: A terminal session pasted whole: the root prompt and command line above the output.
TRANSCRIPT = ("# dtrace -x stackindent=0 -n 'profile-997 { @[stack()] = count(); }'\n"
              "dtrace: description 'profile-997 ' matched 1 probe\n^C\n\nkernel`spinlock_exit+0x46\n"
              "kernel`fork_exit+0x80\n               12\n")


@pytest.mark.parametrize("text", [
    PROBE_LIST,
    STACKCOLLAPSE,
    STACKCOLLAPSE_HEX,
    TRANSCRIPT,
    (EXAMPLES / "if_em.pmc.graph").read_text(),
    (EXAMPLES / "kldstat.txt").read_text(),
    (EXAMPLES / "if_rem.pmc.txt").read_text(),
], ids=["dtrace-l", "stackcollapse", "stackcollapse-hex", "transcript", "pmcstat-G", "kldstat", "pmcstat-R"])
def test_other_texts_are_not(tmp_path, text):
    assert not sniffed(tmp_path, text)
