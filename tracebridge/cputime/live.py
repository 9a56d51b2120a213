"""What the user sees while a recording runs.

On a terminal: a live table of the busiest threads of the last interval, with
a progress bar when the duration is known, and the workload's own output
printed above it.  Anywhere else (a pipe, a file, CI) nothing is drawn, so
logs stay clean and the workload writes straight to our stdout/stderr.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracebridge.cputime.series import ALL_CPUS, CPU_PID, Row

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

_REFRESH_PER_SECOND = 4


class QuietView:
    """No live display; the workload inherits our standard streams."""

    relay = None

    def __enter__(self) -> QuietView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, rows: Sequence[Row]) -> None:
        return None


class LiveView:
    """The live table; use as a context manager around the recording."""

    def __init__(self, console: Console, duration: float | None, shown: int):
        self._console = console
        self._duration = duration
        self._shown = shown
        self._rows: Sequence[Row] = ()
        self._start = time.monotonic()

    def __enter__(self) -> LiveView:
        from rich.live import Live

        self._start = time.monotonic()
        # The view renders itself through __rich__, so the bar moves between samples.
        self._live = Live(self, console=self._console, refresh_per_second=_REFRESH_PER_SECOND, transient=True)
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.stop()

    def update(self, rows: Sequence[Row]) -> None:
        self._rows = rows
        self._live.refresh()

    def relay(self, line: str) -> None:
        """Print one line of the workload's output above the live table."""
        from rich.text import Text

        self._console.print(Text(line), soft_wrap=True)

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self._start
        status = Table.grid(padding=(0, 1))
        if self._duration:
            status.add_row(ProgressBar(total=self._duration, completed=min(elapsed, self._duration), width=40),
                           Text(f"{elapsed:5.1f} s of {self._duration:g} s  (Ctrl-C stops and keeps the data)"))
        else:
            status.add_row(Text(f"{elapsed:5.1f} s  (Ctrl-C stops and keeps the data)"))
        threads = sorted((r for r in self._rows if r.pid != CPU_PID), key=lambda r: -r.cpu_percent)
        machine = next((r for r in self._rows if r.pid == CPU_PID and r.thread == ALL_CPUS), None)
        table = Table(title="busiest threads, last interval (% of one CPU)", title_justify="left",
                      caption=f"all CPUs: {machine.cpu_percent:.1f} %" if machine else None,
                      caption_justify="left")
        for heading in ("pid", "tid"):
            table.add_column(heading, justify="right")
        table.add_column("process")
        table.add_column("thread")
        for heading in ("user", "system", "cpu"):
            table.add_column(heading, justify="right")
        for row in threads[:self._shown or None]:
            table.add_row(str(row.pid), str(row.tid), Text(row.process), Text(row.thread),
                          f"{row.cpu_user:.1f}", f"{row.cpu_system:.1f}", f"{row.cpu_percent:.1f}")
        return Group(status, table)
