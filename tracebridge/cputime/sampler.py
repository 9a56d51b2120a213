"""Sampling per-thread and per-CPU usage with psutil.

Each call to :meth:`Sampler.sample` reads the user and system time of every
thread of the chosen processes and of every CPU, and turns the change since the
previous call into percent of one CPU over the time that really passed (not
the nominal interval, which a slow sample or an early stop would falsify).

Threads and processes come and go during a load test; none of that is an
error.  A thread that appears inside a process we already watch is charged its
whole CPU time (it was born during the interval), and so is a process that
started after the previous sample -- the same rule FreeBSD top applies.  A
thread or process that vanishes takes its last partial interval with it.
Processes we may not read (``AccessDenied``) are skipped.  All of it is
counted in :class:`SamplerCounts` for the summary.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil

from tracebridge.cputime.series import ALL_CPUS, Row, cpu_row
from tracebridge.support.errors import UsageError

# A process first seen after the start counts from zero only if it is not much
# older than the previous sample; the slack covers Linux's create_time, whose
# boot-time base is rounded to the second.
_CREATE_TIME_SLACK = 2.0
_TASK_DIR = "/proc/self/task"


@dataclass(frozen=True)
class Selection:
    """Which processes to watch; the union of everything given.

    ``root`` is the wrapped workload: it and all its descendants, found anew
    at every sample because the workload may start children at any time.
    ``name`` is matched (``re.search``) against the process name.  ``everything``
    watches every process.  The sampling process itself is never watched.
    """

    pids: tuple[int, ...] = ()
    name: re.Pattern[str] | None = None
    everything: bool = False
    root: int | None = None

    @property
    def fixed(self) -> bool:
        """True when the set can only shrink (just ``--pid``), so it can run out."""
        return self.name is None and not self.everything and self.root is None


@dataclass
class SamplerCounts:
    """What happened to the watched processes and threads during the run."""

    processes: set[tuple[int, float]] = field(default_factory=set)
    exited: int = 0
    threads_appeared: int = 0
    threads_vanished: int = 0
    denied: set[int] = field(default_factory=set)


class Sampler:
    """Turns successive psutil readings into :class:`Row` objects.

    The constructor takes the baseline reading; it is the run's time zero.
    """

    def __init__(self, selection: Selection, clock: Callable[[], float] = time.monotonic):
        self._selection = selection
        self._clock = clock
        self._self_pid = os.getpid()
        self._named_threads = os.path.isdir(_TASK_DIR)
        self._fixed = {pid: _process(pid, "--pid") for pid in selection.pids}
        self._root = _process(selection.root, "workload") if selection.root is not None else None
        self.counts = SamplerCounts()
        self._watched: dict[int, psutil.Process] = {}
        self._threads: dict[tuple[int, int], tuple[float, float]] = {}
        self._cpus = psutil.cpu_times(percpu=True)
        self.samples = 0
        self.start = self._clock()
        self._previous = self.start
        self._previous_wall = time.time()
        self._read_threads(0.0, 0.0)

    @property
    def elapsed(self) -> float:
        """Seconds from the baseline to the latest sample."""
        return self._previous - self.start

    @property
    def exhausted(self) -> bool:
        """True when only fixed pids were asked for and all of them have exited."""
        return self._selection.fixed and not self._watched

    def sample(self) -> list[Row]:
        now = self._clock()
        interval = now - self._previous
        rows = self._read_threads(now - self.start, interval) if interval > 0 else []
        rows += self._read_cpus(now - self.start)
        self._previous, self._previous_wall = now, time.time()
        self.samples += 1
        return rows

    def _read_threads(self, at: float, interval: float) -> list[Row]:
        rows: list[Row] = []
        threads: dict[tuple[int, int], tuple[float, float]] = {}
        watched: dict[int, psutil.Process] = {}
        for process in self._candidates():
            pid = process.pid
            try:
                with process.oneshot():
                    if process.status() == psutil.STATUS_ZOMBIE:
                        continue  # exited, only not yet reaped by its parent
                    name = process.name()
                    readings = process.threads()
                    started = process.create_time()
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied:
                self.counts.denied.add(pid)
                continue
            known = self._watched.get(pid) == process
            # Baseline only for a process that was already running when we
            # first saw it; everything else was born during this interval.
            from_zero = interval > 0 and (known or started >= self._previous_wall - _CREATE_TIME_SLACK)
            watched[pid] = process
            self.counts.processes.add((pid, started))
            for thread in readings:
                key = (pid, thread.id)
                now = (thread.user_time, thread.system_time)
                threads[key] = now
                before = self._threads.get(key)
                if before is None:
                    if interval > 0:
                        self.counts.threads_appeared += 1
                    if not from_zero:
                        continue
                    before = (0.0, 0.0)
                user = max(0.0, now[0] - before[0]) * 100.0 / interval
                system = max(0.0, now[1] - before[1]) * 100.0 / interval
                rows.append(Row(at, pid, name, thread.id, self._thread_name(pid, thread.id), user, system,
                                user + system))
        self.counts.exited += sum(1 for pid in self._watched if pid not in watched)
        self.counts.threads_vanished += sum(1 for key in self._threads if key not in threads)
        self._watched, self._threads = watched, threads
        return rows

    def _candidates(self) -> Iterator[psutil.Process]:
        """The processes to read this time, each once."""
        chosen: dict[int, psutil.Process] = dict(self._fixed)
        selection = self._selection
        if self._root is not None and self._root.is_running():
            chosen[self._root.pid] = self._root
            # The workload may be exiting; its orphans are then found no more.
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                chosen.update((child.pid, child) for child in self._root.children(recursive=True))
        if selection.everything or selection.name is not None:
            for process in psutil.process_iter(["name"]):
                if process.pid == self._self_pid:
                    continue
                if selection.everything or selection.name.search(process.info["name"] or ""):
                    chosen.setdefault(process.pid, process)
        yield from chosen.values()

    def _thread_name(self, pid: int, tid: int) -> str:
        """The kernel's name for the thread (Linux); elsewhere psutil has none, so the tid."""
        if self._named_threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm", encoding="utf-8", errors="replace") as handle:
                    return handle.read().rstrip("\n")
            except OSError:
                pass
        return str(tid)

    def _read_cpus(self, at: float) -> list[Row]:
        current = psutil.cpu_times(percpu=True)
        previous, self._cpus = self._cpus, current
        if len(current) != len(previous):  # a CPU went on- or offline: skip one interval
            return []
        rows = []
        for number, (before, after) in enumerate(zip(previous, current, strict=True)):
            delta = {name: getattr(after, name) - getattr(before, name) for name in after._fields}
            # Linux counts guest time inside user and nice already.
            total = sum(delta.values()) - delta.get("guest", 0.0) - delta.get("guest_nice", 0.0)
            if total <= 0:
                continue
            user = (delta["user"] + delta.get("nice", 0.0)) * 100.0 / total
            system = (delta["system"] + delta.get("irq", 0.0) + delta.get("softirq", 0.0)) * 100.0 / total
            rows.append(cpu_row(at, f"cpu{number}", user, system))
        if rows:
            rows.append(cpu_row(at, ALL_CPUS, sum(r.cpu_user for r in rows), sum(r.cpu_system for r in rows)))
        return rows


def _process(pid: int, what: str) -> psutil.Process:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        raise UsageError(f"{what} {pid}: no such process") from None
