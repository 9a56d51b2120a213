"""Reading FreeBSD ``top -bzSHCP`` batch captures into the CPU series.

The classic driver benchmark records ``top -bzSHCP -s 1 -d 31 all > top.txt``
on the machine under test while iperf3 runs.  Batch ``top`` writes one
display per interval (usr.bin/top/display.c): a ``last pid: ...; load
averages: ...  up D+HH:MM:SS  HH:MM:SS`` line, the ``N threads:`` line, one
``CPU n:`` line per CPU (``-P``), the ``Mem:``/``ARC:``/``Swap:`` lines, a
blank line, the column header and one row per thread, then a blank line.

Each thread row becomes a series row: ``pid`` from the row, ``tid`` -1 (top
does not show it), ``process`` the command before ``{`` and ``thread`` the
name inside the braces (``intr{irq264: igb0:rxq0}``), or the command itself
for a single-threaded process.  top gives one total, so ``cpu_percent`` holds
the CPU (``-C``) or WCPU column and ``cpu_user``/``cpu_system`` stay empty.
The ``CPU n:`` lines become ``[cpu]`` rows with user+nice as ``cpu_user`` and
system+interrupt as ``cpu_system``.  Time is the uptime (else the clock) on
the first line, in seconds since the first display.

Note that top's *first* display reports CPU states averaged since boot and
thread percentages from the kernel's decaying estimate; only the following
displays are measured over the interval.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracebridge.cputime.series import ALL_CPUS, MAX_NAME, MAX_SHARE, NO_TID, Row, cpu_row, to_frame
from tracebridge.readers.kinds import TOP_DISPLAY_START
from tracebridge.support.errors import InputError
from tracebridge.support.printable import printable

if TYPE_CHECKING:
    import pandas as pd

# Unbounded here so that a field top cannot print is refused (_start_display), not read past.
_UPTIME = re.compile(r"\bup (\d+)\+(\d+):(\d+):(\d+)\b")
_CLOCK = re.compile(r"\b(\d\d):(\d\d):(\d\d)\s*$")
_COUNTS = re.compile(r"^\d+ (processes|threads):")
_CPU_LINE = re.compile(r"^CPU( \d{1,9})?:\s")
# A share starts a run of digits (so a long run is tried once, not from each of its digits) and
# is at most 100.0: unanchored, ``\d+`` made every CPU line with a long run of digits quadratic.
_CPU_STATE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3})?)% (\w+)")
_LINE_END = re.compile(r"\r\n|\r|\n")
_THREAD_COMMAND = re.compile(r"(?P<process>[^{]*)\{(?P<thread>.*)\}")


@dataclass(frozen=True)
class TopCapture:
    """A parsed capture: the series, how many displays it held, and caveats."""

    frame: pd.DataFrame
    snapshots: int
    notes: tuple[str, ...]


@dataclass
class _Display:
    """One top display while it is being read."""

    line: int
    uptime: int | None
    clock: int | None
    cpus: list[tuple[int, float, float]] = field(default_factory=list)
    threads: list[tuple[int, str, str, float]] = field(default_factory=list)
    has_table: bool = False


def looks_like_top(path: str | os.PathLike[str]) -> bool:
    """True when the file starts like ``top`` batch output (for auto-detection)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    for line in head.decode("utf-8", "replace").split("\n"):
        if line.strip():
            return bool(TOP_DISPLAY_START.match(line))
    return False


def read_top(path: str | os.PathLike[str]) -> TopCapture:
    from tracebridge.readers.kinds import binary_kind
    from tracebridge.readers.source import Source

    source = Source(path)
    binary = binary_kind(source.head_bytes)
    if binary is not None:
        raise source.error(f"not top output: this looks like {binary}")
    return parse_top(source.lenient_text(), source.path)


def parse_top(text: str, name: str = "<top>") -> TopCapture:
    """Parse a whole capture; raises :class:`InputError` naming the bad line."""
    notes: list[str] = []
    # Line ends only: str.splitlines() would also split a name at \x1c-\x1e, \x85 or U+2028.
    lines = _LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()
    else:
        lines.pop()
        notes.append("the capture ends in the middle of a line; that line was ignored")
    displays = list(_read_displays(lines, name, notes))
    if displays and not displays[-1].has_table:
        displays.pop()
        notes.append("the last display was cut off before its thread table and was dropped")
    if not displays:
        raise InputError(name, "no complete top display (a 'last pid:' line followed by a thread table)")
    times = _display_times(displays, notes)
    rows: list[Row] = []
    for display, time in zip(displays, times, strict=True):
        for number, user, system in display.cpus:
            rows.append(cpu_row(time, f"cpu{number}", user, system))
        if display.cpus:
            rows.append(cpu_row(time, ALL_CPUS, sum(c[1] for c in display.cpus), sum(c[2] for c in display.cpus)))
        for pid, process, thread, percent in display.threads:
            rows.append(Row(time, pid, process, NO_TID, thread, math.nan, math.nan, percent))
    return TopCapture(to_frame(rows), len(displays), tuple(notes))


def _read_displays(lines: list[str], name: str, notes: list[str]) -> Iterator[_Display]:
    display: _Display | None = None
    row_pattern: re.Pattern[str] | None = None
    in_table = False
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if TOP_DISPLAY_START.match(line):
            if display is not None:
                if not display.has_table:
                    raise InputError(name, "this top display has no thread table", position=display.line)
                yield display
            display, in_table = _start_display(line, name, number), False
        elif not line.strip():
            in_table = False
        elif display is None:
            raise InputError(name, "not FreeBSD top batch output: expected a 'last pid: ...; load averages: ...' "
                                   f"line, found {_excerpt(line)}", position=number)
        elif in_table:
            display.threads.append(_thread_row(row_pattern, line, name, number))
        elif display.has_table:
            raise InputError(name, f"expected a blank line or the next top display, found {_excerpt(line)}",
                             position=number)
        elif _is_header(line):
            row_pattern = _row_pattern(line, name, number)
            display.has_table = in_table = True
        else:
            _summary_line(display, line, notes)
    if display is not None:
        yield display


def _start_display(line: str, name: str, number: int) -> _Display:
    """The display's first line: its uptime in seconds, and its clock.

    top prints the uptime as ``up %d+%02d:%02d:%02d`` of an ``int`` day count
    and the hours, minutes and seconds left over (usr.bin/top/display.c,
    ``i_uptime``); anything else (a day count of 400 digits, which no float
    holds, or hour 99) is not top's and is refused rather than turned into
    times no capture has.
    """
    uptime = _UPTIME.search(line)
    if uptime and not (len(uptime[1]) <= 10 and all(len(part) == 2 for part in uptime.groups()[1:])
                       and int(uptime[2]) < 24 and int(uptime[3]) < 60 and int(uptime[4]) < 60):
        raise InputError(name, f"not an uptime top prints (up DAYS+HH:MM:SS): {_excerpt(uptime[0])}",
                         position=number)
    clock = _CLOCK.search(line)
    return _Display(
        line=number,
        uptime=(int(uptime[1]) * 86400 + int(uptime[2]) * 3600 + int(uptime[3]) * 60 + int(uptime[4])
                if uptime else None),
        clock=int(clock[1]) * 3600 + int(clock[2]) * 60 + int(clock[3]) if clock else None,
    )


def _summary_line(display: _Display, line: str, notes: list[str]) -> None:
    """Take what matters from the lines above the table; ignore Mem/ARC/Swap."""
    counts = _COUNTS.match(line)
    if counts and counts[1] == "processes":
        _note(notes, "captured without -H: one row per process, named after the process")
    cpu = _CPU_LINE.match(line)
    if cpu is None:
        return
    if cpu[1] is None:
        _note(notes, "captured without -P: no per-CPU lines, so no [cpu] rows")
        return
    states = {state: float(value) for value, state in _CPU_STATE.findall(line)}
    display.cpus.append((int(cpu[1]), states.get("user", 0.0) + states.get("nice", 0.0),
                         states.get("system", 0.0) + states.get("interrupt", 0.0)))


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _is_header(line: str) -> bool:
    words = line.split()
    return len(words) > 2 and words[0] in ("PID", "THR") and words[-1] == "COMMAND"


def _row_pattern(header: str, name: str, number: int) -> re.Pattern[str]:
    """Build the row pattern from the header, so -j (JID), -w (SWAP) and UP kernels all parse.

    The fields before STATE never hold spaces; STATE (a wait channel such as
    ``vm map``) and COMMAND may, so they are found between fixed anchors.
    """
    columns = header.split()
    if columns[0] == "THR":
        raise InputError(name, "top -T shows thread ids instead of pids; capture without -T", position=number)
    if "VCSW" in columns:
        raise InputError(name, "this is top -m io output; capture CPU usage with -m cpu (the default)",
                         position=number)
    if "STATE" not in columns or not {"CPU", "WCPU"} & set(columns):
        raise InputError(name, f"unknown top column header {_excerpt(header)}", position=number)
    fixed = columns.index("STATE")
    processor = r"(?P<processor>\d+)\s+" if "C" in columns else ""
    return re.compile(r"^\s*(?P<pid>\d{1,10})\s+" + r"\S+\s+" * (fixed - 1) + r"(?:(?P<state>\S(?:.*?\S)?)\s+)?"
                      + processor + r"(?P<time>\S+)\s+(?P<percent>\d+(?:\.\d+)?)%\s(?P<command>.+)$")


def _thread_row(pattern: re.Pattern[str] | None, line: str, name: str,
                number: int) -> tuple[int, str, str, float]:
    match = pattern.match(line) if pattern else None
    if match is None:
        raise InputError(name, f"not a top thread row: {_excerpt(line)}", position=number)
    command = match["command"].strip()
    if command.startswith("[") and command.endswith("]"):  # -a shows system processes in brackets
        command = command[1:-1]
    if len(command) > MAX_NAME:
        raise InputError(name, f"a command of {len(command):,} characters, longer than a top line holds "
                               f"({MAX_NAME}): not top output", position=number)
    command = printable(command)  # names people read: no control characters (tables, charts)
    braces = _THREAD_COMMAND.fullmatch(command)
    process, thread = (braces["process"], braces["thread"]) if braces else (command, command)
    percent = float(match["percent"])
    if percent > MAX_SHARE:
        raise InputError(name, f"a CPU share above {MAX_SHARE:,.0f} %, more than top can print: "
                               f"{_excerpt(match['percent'])}", position=number)
    return int(match["pid"]), process, thread, percent


def _display_times(displays: list[_Display], notes: list[str]) -> list[float]:
    """Seconds since the first display, from the uptime, else the clock, else the display number."""
    if all(d.uptime is not None for d in displays):
        return [float(d.uptime - displays[0].uptime) for d in displays]
    if all(d.clock is not None for d in displays):
        times, day = [], 0
        for previous, current in zip([None, *displays[:-1]], displays, strict=True):
            if previous is not None and current.clock < previous.clock:
                day += 86400  # the capture ran past midnight
            times.append(float(current.clock + day - displays[0].clock))
        return times
    notes.append("the displays carry no time of day: time is the display number")
    return [float(i) for i in range(len(displays))]


def _excerpt(line: str) -> str:
    line = line.strip()
    return repr(line if len(line) <= 60 else line[:57] + "...")
