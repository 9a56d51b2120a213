"""The recording loop: sample on a steady beat until something says stop.

A recording ends when the duration is reached, when the wrapped workload
exits (sampled at once, so its last partial interval is not lost to waiting),
when every ``--pid`` has exited, or on Ctrl-C.  However it ends, what was
collected is returned, so the caller always writes the file and the summary.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebridge.cputime.live import LiveView, QuietView
from tracebridge.cputime.sampler import Sampler, SamplerCounts, Selection
from tracebridge.cputime.series import Row, to_frame
from tracebridge.cputime.workload import Workload

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Recording:
    """What a recording produced, and why it stopped."""

    frame: pd.DataFrame
    counts: SamplerCounts
    samples: int
    elapsed: float
    stopped_by: str
    workload_status: int | None  # its exit status when the workload ending was what stopped us


WORKLOAD_EXITED = "the workload exited"


def record(selection: Selection, command: Sequence[str], interval: float, duration: float | None,
           view: LiveView | QuietView) -> Recording:
    """Run ``command`` (if any) and sample ``selection`` (plus the command's process tree)."""
    workload = Workload(command, relay=view.relay) if command else None
    rows: list[Row] = []
    try:
        sampler = Sampler(dataclasses.replace(selection, root=workload.pid) if workload else selection)
        stopped_by = _loop(sampler, workload, interval, duration, view, rows)
    finally:
        if workload is not None:
            workload.stop()
    status = workload.returncode if stopped_by == WORKLOAD_EXITED else None
    return Recording(to_frame(rows), sampler.counts, sampler.samples, sampler.elapsed, stopped_by, status)


def _loop(sampler: Sampler, workload: Workload | None, interval: float, duration: float | None,
          view: LiveView | QuietView, rows: list[Row]) -> str:
    tick = sampler.start
    try:
        while True:
            tick += interval
            if duration is not None:
                tick = min(tick, sampler.start + duration)
            remaining = tick - time.monotonic()
            if workload is not None:
                exited = workload.wait(remaining)
            else:
                time.sleep(max(0.0, remaining))
                exited = False
            batch = sampler.sample()
            rows.extend(batch)
            view.update(batch)
            if exited:
                return WORKLOAD_EXITED
            if duration is not None and sampler.elapsed >= duration:
                return "the duration was reached"
            if sampler.exhausted:
                return "no selected process is left"
            tick = max(tick, time.monotonic() - interval)  # after a slow sample, do not race to catch up
    except KeyboardInterrupt:
        return "Ctrl-C was pressed"
