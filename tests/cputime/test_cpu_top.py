"""The FreeBSD top batch parser, on a capture shaped exactly as top 14 prints it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tracebridge.cputime.top import looks_like_top, parse_top, read_top
from tracebridge.support.errors import InputError

CAPTURE = Path(__file__).parents[1] / "data" / "top" / "top-bzSHCP-iperf.txt"


def rows_at(frame, time, process, thread):
    return frame[(frame.time == time) & (frame.process == process) & (frame.thread == thread)]


def test_fixture_displays_times_and_columns():
    capture = read_top(CAPTURE)
    assert capture.snapshots == 3
    assert capture.notes == ()
    frame = capture.frame
    assert list(frame.columns) == ["time", "pid", "process", "tid", "thread", "cpu_user", "cpu_system",
                                   "cpu_percent"]
    assert sorted(frame.time.unique()) == [0.0, 1.0, 2.0]  # from "up 0+00:41:17" .. ":19"
    assert (frame[frame.pid >= 0].groupby("time").size() == 24).all()


def test_fixture_thread_rows():
    frame = read_top(CAPTURE).frame
    tqg = rows_at(frame, 1.0, "kernel", "if_io_tqg_1").iloc[0]
    assert (tqg.pid, tqg.tid, tqg.cpu_percent) == (0, -1, 41.28)
    assert math.isnan(tqg.cpu_user) and math.isnan(tqg.cpu_system)
    # iperf3 3.16+ runs a thread per stream, all named like the process: two rows, one name.
    assert list(rows_at(frame, 1.0, "iperf3", "iperf3").cpu_percent) == [37.60, 1.07]
    assert rows_at(frame, 2.0, "intr", "irq264: igb0:rxq0").cpu_percent.item() == 0.01
    assert rows_at(frame, 0.0, "clock", "clock (0)").pid.item() == 2
    sshd = rows_at(frame, 2.0, "sshd", "sshd").iloc[0]  # single-threaded: no braces
    assert (sshd.pid, sshd.cpu_percent) == (1712, 0.0)


def test_fixture_cpu_rows():
    frame = read_top(CAPTURE).frame
    cpu1 = rows_at(frame, 1.0, "[cpu]", "cpu1").iloc[0]
    # "CPU 1:  0.0% user,  0.0% nice, 38.3% system,  7.0% interrupt, 54.7% idle"
    assert (cpu1.pid, cpu1.cpu_user, cpu1.cpu_system, cpu1.cpu_percent) == pytest.approx((-1, 0.0, 45.3, 45.3))
    total = rows_at(frame, 1.0, "[cpu]", "all").iloc[0]
    assert total.cpu_percent == pytest.approx(7.1 + 45.3 + 39.9 + 19.5)


def test_crlf_and_truncated_last_display():
    text = CAPTURE.read_text()
    cut = text.index("   0.98% iperf3{iperf3}")  # in the middle of the third display's table
    capture = parse_top(text[:cut].replace("\n", "\r\n"), "cut.txt")
    assert capture.snapshots == 3
    assert any("middle of a line" in note for note in capture.notes)
    assert len(capture.frame[(capture.frame.time == 2.0) & (capture.frame.pid >= 0)]) == 4


def test_display_cut_before_its_table_is_dropped():
    text = CAPTURE.read_text()
    capture = parse_top(text[:text.index("Mem:", text.index("14:22:07"))], "cut.txt")
    assert capture.snapshots == 2
    assert any("dropped" in note for note in capture.notes)


WITHOUT_Z = """\
last pid: 70412;  load averages:  0.95,  0.41,  0.17  up 12+03:04:05    09:15:01
212 threads:  5 running, 183 sleeping, 24 waiting
CPU 0:  0.0% user,  0.0% nice,  1.2% system, 10.6% interrupt, 88.2% idle
CPU 1:  0.0% user,  0.0% nice,  0.0% system,  0.0% interrupt,  100% idle
Mem: 12M Active, 1021M Inact, 620M Wired, 202M Buf, 2215M Free
Swap: 4096M Total, 4096M Free

  PID USERNAME    PRI NICE   SIZE    RES STATE    C   TIME    WCPU COMMAND
   11 root        155 ki31     0B    32K RUN      1 292.2H 100.00% idle{idle: cpu1}
   11 root        155 ki31     0B    32K CPU0     0 291.9H  88.26% idle{idle: cpu0}
   12 root        -92    -     0B   400K WAIT     0  21:14  10.61% intr{irq264: igb0:rx}
   12 root        -92    -     0B   400K vm map  1   0:00   0.00% intr{swi0: uart}

"""


def test_idle_threads_wcpu_header_and_odd_states():
    capture = parse_top(WITHOUT_Z)
    frame = capture.frame
    assert list(frame[frame.process == "idle"].cpu_percent) == [100.0, 88.26]
    assert rows_at(frame, 0.0, "intr", "irq264: igb0:rx").cpu_percent.item() == 10.61
    assert rows_at(frame, 0.0, "intr", "swi0: uart").pid.item() == 12  # a wait channel with a space
    assert rows_at(frame, 0.0, "[cpu]", "cpu1").cpu_percent.item() == 0.0  # " 100% idle"


def test_not_top_output_is_one_error_with_the_line():
    dtrace = "dtrace: description 'fbt::em_*:entry' matched 96 probes\nCPU     ID      FUNCTION:NAME\n"
    with pytest.raises(InputError) as caught:
        parse_top(dtrace, "trace.txt")
    assert str(caught.value).startswith("trace.txt:1: not FreeBSD top batch output")


def test_garbage_inside_a_table_names_its_line():
    lines = CAPTURE.read_text().splitlines(keepends=True)
    lines[14] = "  this is not a top row at all\n"
    with pytest.raises(InputError) as caught:
        parse_top("".join(lines), "top.txt")
    assert str(caught.value).startswith("top.txt:15: not a top thread row")


def test_thread_id_and_io_displays_are_refused():
    for header in ("   THR USERNAME    PRI NICE   SIZE    RES STATE    C   TIME     CPU COMMAND",
                   "  PID USERNAME     VCSW  IVCSW   READ  WRITE  FAULT  TOTAL PERCENT COMMAND"):
        with pytest.raises(InputError, match="capture"):
            parse_top(WITHOUT_Z.replace(WITHOUT_Z.splitlines()[7], header), "top.txt")


def test_sniffing():
    assert looks_like_top(CAPTURE)
    assert not looks_like_top(Path(__file__))


@pytest.mark.parametrize("uptime", ["up 0+" + "9" * 400 + ":41:17",  # no float holds the seconds
                                    "up 0+" + "9" * 5000 + ":41:17",  # past int()'s 4300 digits
                                    "up " + "1" * 11 + "+00:41:17", "up 0+24:41:17", "up 0+00:60:17",
                                    "up 0+00:41:60", "up 0+0:41:17"])
def test_an_uptime_top_cannot_print_is_refused_on_its_line(uptime):
    """top prints ``up %d+%02d:%02d:%02d``: days of an int, then hours, minutes, seconds left over."""
    text = CAPTURE.read_text()
    second = text.index("last pid:", 1)
    bad = text[:second] + text[second:].replace("up 0+00:41:18", uptime, 1)
    with pytest.raises(InputError) as caught:
        parse_top(bad, "top.txt")
    assert str(caught.value).startswith(f"top.txt:{text[:second].count(chr(10)) + 1}: not an uptime top prints "
                                        "(up DAYS+HH:MM:SS): 'up ")


def test_the_longest_uptime_top_prints_is_read():
    text = CAPTURE.read_text()
    late = text.replace("up 0+00:41:", "up 2147483647+23:59:", 3)
    assert sorted(parse_top(late).frame.time.unique()) == [0.0, 1.0, 2.0]


def test_a_cpu_share_top_cannot_print_is_refused_on_its_line():
    """top's weighted share is below 4.4e9 % (series.MAX_SHARE); near 1e308 cpu compare's sums overflowed."""
    lines = CAPTURE.read_text().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if "41.28% kernel{if_io_tqg_1}" in line)
    for share in ("9" * 308 + ".28", "9" * 309 + ".28", "10000000000.01"):
        lines[row] = lines[row].replace("41.28%", share + "%")
        with pytest.raises(InputError) as caught:
            parse_top("".join(lines), "top.txt")
        assert str(caught.value) == (f"top.txt:{row + 1}: a CPU share above 10,000,000,000 %, more than top can print: "
                                     f"{share if len(share) <= 60 else share[:57] + '...'!r}")
        lines[row] = lines[row].replace(share + "%", "41.28%")
    lines[row] = lines[row].replace("41.28%", "10000000000.00%")
    assert parse_top("".join(lines)).frame.cpu_percent.max() == 1e10
