"""Per-thread statistics of a run, keyed so that different runs line up.

Runs of the C and the Rust driver have different pids and tids, so a thread
is known by ``(process, thread)`` name.  Several threads may share a name
(iperf3's stream threads are all called ``iperf3``); their usage is added up
at each time point, which is what the comparison needs: the CPU burnt under
that name.  A name absent from a sample (the thread did not exist yet, or top
did not list it) counts as 0 % there, so the mean is the average cost over the
whole run and does not favour a thread that showed up once at 100 %.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracebridge.cputime.series import ALL_CPUS, CPU_PROCESS, cpu_rows, thread_rows

if TYPE_CHECKING:
    import pandas as pd

STATS = ("mean", "median", "min", "max")


def thread_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean, median, min and max ``cpu_percent`` per ``(process, thread)``, busiest first.

    The result is indexed by ``(process, thread)``; ``samples`` counts the
    time points where the name was present.  The machine total appears as
    the row ``([cpu], all)`` when the run has it.
    """
    import pandas as pd

    times = pd.Index(sorted(frame["time"].unique()), name="time")
    rows = pd.concat([thread_rows(frame), machine_rows(frame)])
    if rows.empty:
        empty = pd.MultiIndex.from_tuples([], names=["process", "thread"])
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in (*STATS, "samples")}, index=empty)
    wide = rows.pivot_table(index="time", columns=["process", "thread"], values="cpu_percent", aggfunc="sum")
    samples = wide.notna().sum()
    wide = wide.reindex(times).fillna(0.0)
    stats = pd.DataFrame({"mean": wide.mean(), "median": wide.median(), "min": wide.min(),
                          "max": wide.max(), "samples": samples.astype("int64")})
    return stats.sort_values("mean", ascending=False, kind="stable")


def total_over_time(frame: pd.DataFrame) -> tuple[pd.Series, bool]:
    """The run's total CPU at each time point, and whether it is the machine's.

    The machine total (the ``[cpu] all`` rows) when the run has it; else the
    sum of the thread rows, which is all a top capture without ``-P`` offers.
    """
    machine = machine_rows(frame)
    if not machine.empty:
        return machine.groupby("time")["cpu_percent"].sum(), True
    return thread_rows(frame).groupby("time")["cpu_percent"].sum(), False


def machine_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``[cpu] all`` rows: the whole machine, in percent of one CPU."""
    cpus = cpu_rows(frame)
    return cpus[cpus["thread"] == ALL_CPUS]


def is_machine_total(key: tuple[str, str]) -> bool:
    return key == (CPU_PROCESS, ALL_CPUS)
