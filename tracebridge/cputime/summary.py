"""The end-of-run report: per-thread mean and max, and everything that went on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracebridge.cputime.record import Recording
from tracebridge.cputime.stats import is_machine_total, thread_stats

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console


def _threads_apart(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with threads that share a name in one process told apart by tid: ``python [4242]``.

    Comparisons match threads of two runs by name (tids differ between runs),
    but within one run two busy unnamed threads of a Python or Rust workload
    (both named after the process on Linux) are two threads, not one of 200 %.
    """
    threads = frame[frame["tid"] >= 0]
    tids = threads.groupby(["pid", "thread"])["tid"].transform("nunique")
    shared = tids[tids > 1].index
    if not len(shared):
        return frame
    frame = frame.copy()
    frame.loc[shared, "thread"] = (frame.loc[shared, "thread"] + " [" + frame.loc[shared, "tid"].astype("string")
                                   + "]")
    return frame


def print_summary(console: Console, recording: Recording, shown: int, saved_to: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    stats = thread_stats(_threads_apart(recording.frame))
    machine = [key for key in stats.index if is_machine_total(key)]
    threads = stats.drop(index=machine)
    shown = shown or len(threads)
    if len(threads):
        table = Table(title="CPU per thread, % of one CPU", title_justify="left", caption_justify="left")
        table.add_column("process")
        table.add_column("thread")
        for heading in ("mean", "max", "samples"):
            table.add_column(heading, justify="right")
        for (process, thread), values in threads.head(shown).iterrows():
            table.add_row(Text(process), Text(thread), f"{values['mean']:.1f}", f"{values['max']:.1f}",
                          str(int(values["samples"])))
        if len(threads) > shown:
            table.caption = f"{len(threads) - shown} quieter thread names not shown"
        console.print(table)
    else:
        say("no thread was sampled")
    for key in machine:
        say(f"all CPUs: mean {stats.loc[key, 'mean']:.1f} %, max {stats.loc[key, 'max']:.1f} % (of one CPU)")
    counts = recording.counts
    say(f"{recording.samples} samples over {recording.elapsed:.1f} s; stopped because {recording.stopped_by}")
    say(f"processes watched: {len(counts.processes)}, exited during the run: {counts.exited}; "
        f"threads appeared: {counts.threads_appeared}, vanished: {counts.threads_vanished}")
    if counts.denied:
        pids = ", ".join(str(pid) for pid in sorted(counts.denied)[:10])
        say(f"access denied to {len(counts.denied)} processes (pids {pids}"
            f"{', ...' if len(counts.denied) > 10 else ''}): run as root to include them")
    status = recording.workload_status
    if status:
        say(f"the workload exited with status {status}" if status > 0
            else f"the workload was killed by signal {-status}")
    if saved_to is not None:
        say(f"wrote {len(recording.frame)} rows to {saved_to}")
    else:
        say("the time series was not saved: add -o run.csv to keep it")
