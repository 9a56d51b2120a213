"""Recording real processes with `tracebridge cpu`: busy threads, churn, exits, denied access."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import psutil
import pytest

from tracebridge.cli import main

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="thread names and timings checked on Linux")

# Two threads that really run in parallel: sha256 of a large buffer releases the GIL.
# Each names itself (PR_SET_NAME) so the recording shows them as busy-a and busy-b.
BUSY = """
import ctypes, hashlib, threading, time
def busy(name):
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
    data, end = b"x" * (1 << 20), time.monotonic() + 8
    while time.monotonic() < end:
        hashlib.sha256(data).digest()
threads = [threading.Thread(target=busy, args=(n,)) for n in ("busy-a", "busy-b")]
for t in threads: t.start()
for t in threads: t.join()
"""

PYTHON = os.path.basename(sys.executable)[:15]  # the name the kernel gives the workload

# A thread that starts and ends while the process lives on, then a short-lived child process.
CHURN = """
import subprocess, threading, time
time.sleep(0.3)
worker = threading.Thread(target=time.sleep, args=(0.4,))
worker.start(); worker.join()
subprocess.run(["sleep", "0.3"])
time.sleep(0.4)
"""


def test_two_busy_threads_near_one_cpu_each(tmp_path, capsys):
    output = tmp_path / "busy.csv"
    status = main(["cpu", "--duration", "5", "-o", str(output), "--", sys.executable, "-c", BUSY])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "busy-a" in out and "stopped because the duration was reached" in out
    frame = pd.read_csv(output)
    busy = frame[frame.thread.isin(["busy-a", "busy-b"])]
    assert set(busy.process) == {PYTHON}
    means = busy.groupby("thread").cpu_percent.mean()
    assert len(means) == 2 and busy.time.max() == pytest.approx(5.0, abs=0.1)
    # On a shared machine other processes take their share: expect most of what they leave.
    machine = frame[frame.thread == "all"].cpu_percent.mean()
    watched = frame[frame.pid >= 0].groupby("time").cpu_percent.sum().mean()
    fair_share = min(100.0, (psutil.cpu_count() * 100.0 - max(0.0, machine - watched)) / 2)
    assert (means > 0.6 * fair_share).all(), (means, fair_share)
    # The file holds three decimals; the total is the sum of the parts as written.
    assert ((busy.cpu_percent - (busy.cpu_user + busy.cpu_system)).abs() < 1e-9).all()


def test_threads_and_processes_coming_and_going(tmp_path, capsys):
    output = tmp_path / "churn.parquet"
    status = main(["cpu", "--interval", "0.1", "-o", str(output), "--", sys.executable, "-c", CHURN])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "stopped because the workload exited" in out
    frame = pd.read_parquet(output)
    assert "sleep" in set(frame.process)  # the child process was found while it ran
    assert frame[frame.process == PYTHON].tid.nunique() >= 2  # and the extra thread
    summary = out[out.index("processes watched"):]
    exited = int(summary.split("exited during the run: ")[1].split(";")[0])
    appeared = int(summary.split("threads appeared: ")[1].split(",")[0])
    vanished = int(summary.split("vanished: ")[1].split()[0])
    assert exited >= 1 and appeared >= 2 and vanished >= 2


def test_watched_pid_exits_mid_run(tmp_path, capsys):
    sleeper = subprocess.Popen(["sleep", "0.5"])
    try:
        status = main(["cpu", "--pid", str(sleeper.pid), "--interval", "0.1", "--duration", "5"])
    finally:
        sleeper.wait()
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "stopped because no selected process is left" in out
    assert "exited during the run: 1" in out


def test_access_denied_is_counted_not_fatal(monkeypatch, capsys):
    sleeper = subprocess.Popen(["sleep", "5"])
    real_threads = psutil.Process.threads

    def threads(process):
        if process.pid == sleeper.pid:
            raise psutil.AccessDenied(process.pid)
        return real_threads(process)

    monkeypatch.setattr(psutil.Process, "threads", threads)
    try:
        status = main(["cpu", "--pid", str(sleeper.pid), "--pid", str(os.getpid()), "--interval", "0.1",
                       "--duration", "0.3"])
    finally:
        sleeper.kill()
        sleeper.wait()
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"access denied to 1 processes (pids {sleeper.pid})" in out


def test_workload_failure_is_the_exit_status(capsys):
    assert main(["cpu", "--interval", "0.1", "--", "sh", "-c", "exit 3"]) == 3
    assert "the workload exited with status 3" in capsys.readouterr().out


UNNAMED = BUSY.replace('    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)\n', '')


def test_unnamed_busy_threads_are_told_apart_by_tid(capsys):
    """Both workers carry the process's name: the summary shows two threads, not one at 200 %."""
    assert main(["cpu", "--duration", "2", "--", sys.executable, "-c", UNNAMED]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if f"{PYTHON} [" in line]
    assert len(rows) >= 2, out
