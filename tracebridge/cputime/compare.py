"""Comparing runs (the C driver against the Rust one) thread by thread.

A run is a CPU series file (CSV or Parquet) or a raw FreeBSD top capture,
recognised by its content, so a capture taken on a test box can be compared
without an import step.  Threads line up across runs by ``(process, thread)``
name (see :mod:`.stats`); the busiest names over all runs are kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracebridge.cputime.series import NotASeries, read_series
from tracebridge.cputime.stats import STATS, is_machine_total, thread_stats
from tracebridge.cputime.top import looks_like_top, read_top
from tracebridge.support.errors import InputError, UsageError, shown

if TYPE_CHECKING:
    import pandas as pd

LONG_COLUMNS = ("run", "process", "thread", *STATS, "samples")


@dataclass(frozen=True)
class Run:
    """One input of a comparison, with its per-thread statistics."""

    label: str
    path: str
    frame: pd.DataFrame
    stats: pd.DataFrame
    notes: tuple[str, ...]


def load_runs(paths: Sequence[str], labels: Sequence[str]) -> list[Run]:
    if labels and len(labels) != len(paths):
        raise UsageError(f"{len(labels)} --label for {len(paths)} runs: give one label per run, or none")
    names = list(labels) or _default_labels(paths)
    if len(set(names)) != len(names):
        raise UsageError(f"run labels must differ: {', '.join(names)}")
    return _pair_unnamed_threads([_load_run(path, label) for path, label in zip(paths, names, strict=True)])


def _pair_unnamed_threads(runs: list[Run]) -> list[Run]:
    """Give a thread known only by its number the name another run knows it by, where that is unambiguous.

    psutil cannot read thread names on FreeBSD, so a series names a thread by
    its id (``iperf3``, ``101872``) where ``top -H`` prints ``iperf3{iperf3}``.
    A process with one such thread in a run, and in another run only its main
    thread (named as the process: ``iperf3{iperf3}``), has one thread: the
    numbered one takes that name, and the run says so.  Threads of processes
    that run many (``kernel``, ``intr``) are never guessed: top lists only
    the busiest of them.
    """
    named: dict[str, set[tuple[str, str]]] = {}
    for run in runs:
        for process, thread in run.stats.index:
            if not thread.isdigit():
                named.setdefault(process, set()).add((process, thread))
    named = {process: keys for process, keys in named.items() if keys == {(process, process)}}
    paired = []
    for run in runs:
        keys = list(run.stats.index)
        unnamed: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            if key[1].isdigit():
                unnamed.setdefault(key[0], []).append(key)
        renames = {only[0]: next(iter(named[process])) for process, only in unnamed.items()
                   if len(only) == 1 and len(named.get(process, ())) == 1}
        if renames:
            import pandas as pd

            stats = run.stats.copy()
            stats.index = pd.MultiIndex.from_tuples([renames.get(key, key) for key in keys],
                                                    names=run.stats.index.names)
            notes = run.notes + ("threads known only by number paired by process with another run's: "
                                 + ", ".join(f"{old[0]} {old[1]} = {new[1]}" for old, new in renames.items()),)
            run = Run(run.label, run.path, run.frame, stats, notes)
        paired.append(run)
    return paired


def _load_run(path: str, label: str) -> Run:
    if os.path.isdir(path):  # a `tracebridge record` bundle, as the other reading commands take it
        path = _bundled_series(path)
    if looks_like_top(path):
        capture = read_top(path)
        frame, notes = capture.frame, capture.notes
    else:
        try:
            frame, notes = read_series(path), ()
        except NotASeries as error:
            raise InputError(path, "neither FreeBSD top output (whose first line is 'last pid: ...') "
                                   f"nor a CPU series ({error.detail})") from None
    if frame.empty:
        raise InputError(path, "the run holds no samples")
    return Run(label, path, frame, thread_stats(frame), notes)


def _bundled_series(directory: str) -> str:
    """The CPU series a bundle holds (``record`` samples the workload's threads beside the tracer)."""
    from tracebridge.readers.bundle import ROLE_CPU, Manifest, bundled_file

    name = Manifest.load(directory).file_with_role(ROLE_CPU)
    if name is None:
        raise InputError(directory, "this bundle holds no CPU series (recorded without a workload to sample?)")
    try:
        return bundled_file(directory, name, "CPU series")
    except FileNotFoundError:
        raise InputError(os.path.join(directory, name), "no such file (the manifest lists it)") from None


def _default_labels(paths: Sequence[str]) -> list[str]:
    """File names without extension, numbered when they collide (run/em.csv, run/rem.csv...)."""
    stems = [os.path.splitext(os.path.basename(shown(path)))[0] for path in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{stem} #{number}" for number, stem in enumerate(stems, start=1)]


def busiest(runs: Sequence[Run], top: int) -> list[tuple[str, str]]:
    """Thread names ordered by their largest mean over the runs; ``top`` 0 keeps all.

    The machine total is not a thread and is left out (see :func:`table_keys`).
    """
    import pandas as pd

    means = pd.concat([run.stats["mean"] for run in runs], axis=1).max(axis=1)
    means = means[[not is_machine_total(key) for key in means.index]]
    keys = list(means.sort_values(ascending=False, kind="stable").index)
    return keys[:top] if top else keys


def table_keys(runs: Sequence[Run], top: int) -> list[tuple[str, str]]:
    """The machine total first (when a run has it), then the ``top`` busiest threads."""
    machine = [key for key in {key for run in runs for key in run.stats.index} if is_machine_total(key)]
    return machine + busiest(runs, top)


def long_rows(runs: Sequence[Run], keys: Sequence[tuple[str, str]]) -> list[dict[str, object]]:
    """Tidy rows (one per run and name) for CSV and JSON; names a run lacks are left out."""
    rows = []
    for key in keys:
        for run in runs:
            if key in run.stats.index:
                values = run.stats.loc[key]
                rows.append({"run": run.label, "process": key[0], "thread": key[1],
                             **{name: round(float(values[name]), 3) for name in STATS},
                             "samples": int(values["samples"])})
    return rows


def table_rows(runs: Sequence[Run], keys: Sequence[tuple[str, str]]) -> tuple[list[dict[str, object]], list[str]]:
    """Rows for the terminal table: for each name, one row per run, the name shown once.

    Runs after the first also get the change of the mean from the first run,
    the number a C-versus-Rust port is judged by.  A name a run lacks cost
    nothing in it (a Rust driver may name its threads differently), so its
    statistics stay blank but the change is still given.
    """
    columns = ["thread", "run", *STATS, "Δ mean"]
    rows = []
    for key in keys:
        baseline = float(runs[0].stats["mean"].get(key, 0.0))
        for index, run in enumerate(runs):
            present = key in run.stats.index
            row: dict[str, object] = {"thread": display_name(key) if index == 0 else None, "run": run.label}
            row.update({name: round(float(run.stats.loc[key, name]), 1) if present else None for name in STATS})
            row["Δ mean"] = (f"{float(run.stats['mean'].get(key, 0.0)) - baseline:+.1f}" if index else None)
            rows.append(row)
    return rows, columns


def display_name(key: tuple[str, str]) -> str:
    """``process{thread}`` as top writes it, the process alone when they coincide, "all CPUs" for the machine."""
    if is_machine_total(key):
        return "all CPUs"
    process, thread = key
    return process if process == thread else f"{process}{{{thread}}}"
