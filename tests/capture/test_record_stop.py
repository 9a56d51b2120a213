"""Stopping: Ctrl-C and SIGTERM keep what was collected; a tracer that fails to start stops everything.

Nothing may be left running afterwards: the tests list the recording's
process family while it runs and check every member is gone at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from standin_target import MODULE, RECORD_PROCESS
from tracebridge.readers.bundle import Manifest
from tracebridge.cli import main


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def family_once_running(pid: int, machine, timeout: float = 20.0) -> dict[psutil.Process, str]:
    """The recording's descendants and their names, once the workload (``sleep``) has been started
    and the dtrace stand-in takes signals as dtrace does (before, a Ctrl-C would find it starting up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        family = {member: member.name() for member in psutil.Process(pid).children(recursive=True)}
        if "sleep" in family.values():
            machine.wait_ready("dtrace", {member.pid for member in family})
            return family
        time.sleep(0.05)
    raise AssertionError("the workload never started")


def _as_from_a_terminal() -> None:
    """SIGINT as a foreground job has it.  A test run started in the background by a non-interactive
    shell inherits SIGINT ignored; Python then installs no KeyboardInterrupt handler, and tracebridge,
    like dtrace(1), keeps ignoring it, as a background job should."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("number, group, status, stopped_by", [
    # Ctrl-C at a terminal: SIGINT to the whole foreground process group (tracebridge and the workload).
    (signal.SIGINT, True, 0, "Ctrl-C was pressed"),
    (signal.SIGTERM, False, 128 + signal.SIGTERM, "SIGTERM was received"),
])
def test_a_signal_stops_everything_and_keeps_the_data(target, tmp_path, capsys, number, group, status,
                                                      stopped_by):
    machine = target()
    run = tmp_path / "run"
    recording = subprocess.Popen([*RECORD_PROCESS, str(MODULE), "-o", str(run), "--settle", "0.2",
                                  "--interval", "0.2", "--", "sleep", "60"],
                                 stderr=subprocess.PIPE, text=True, start_new_session=True,
                                 preexec_fn=_as_from_a_terminal)
    try:
        family = family_once_running(recording.pid, machine)
        time.sleep(0.7)  # a few CPU samples
        if group:
            os.killpg(recording.pid, number)
        else:
            recording.send_signal(number)
        _, err = recording.communicate(timeout=60)
    finally:
        recording.kill()
    assert recording.returncode == status, err
    assert len(family) == 2 and "sleep" in family.values()  # the workload and the dtrace stand-in
    assert not [member for member in family if alive(member)]
    manifest = Manifest.load(str(run))
    assert manifest.stopped_by == stopped_by
    # dtrace (in a process group of its own) got exactly one SIGINT, from tracebridge, and printed.
    assert [call for call in machine.calls() if call[0] == "dtrace-signal"] == [["dtrace-signal", "SIGINT"]]
    assert manifest.tracers["dtrace"].signals == ("SIGINT",) and manifest.tracers["dtrace"].exit_status == 0
    assert {f.name for f in manifest.files} >= {"dtrace.out", "cpu.csv"}
    assert main(["fold", str(run)]) == 0
    assert "rem::em::rx::Adapter<T>::rx_frame 40" in capsys.readouterr().out


def test_a_second_ctrl_c_while_stopping_kills_the_tracer(target, tmp_path):
    machine = target(STANDIN_DTRACE="slow")
    run = tmp_path / "run"
    recording = subprocess.Popen([*RECORD_PROCESS, str(MODULE), "-o", str(run), "--settle", "0.2",
                                  "--", "sleep", "60"], stderr=subprocess.PIPE, text=True,
                                 start_new_session=True, preexec_fn=_as_from_a_terminal)
    try:
        family = family_once_running(recording.pid, machine)
        recording.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while ["dtrace-signal", "SIGINT"] not in machine.calls():  # dtrace is "printing" now
            assert time.monotonic() < deadline
            time.sleep(0.05)
        recording.send_signal(signal.SIGINT)
        _, err = recording.communicate(timeout=30)
    finally:
        recording.kill()
    assert recording.returncode == 130 and err.endswith("tracebridge: interrupted\n")
    assert not [member for member in family if alive(member)]
    manifest = Manifest.load(str(run))
    assert manifest.tracers["dtrace"].signals == ("SIGINT", "SIGKILL")
    assert manifest.tracers["dtrace"].exit_status == -signal.SIGKILL


def test_a_tracer_that_fails_to_start_stops_the_recording(target, tmp_path, capsys):
    target(STANDIN_DTRACE="fail")
    run = tmp_path / "run"
    marker = tmp_path / "workload-ran"
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    assert main(["record", str(MODULE), "-o", str(run), "--settle", "5", "--", "touch", str(marker)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "dtrace exited with status 1 as it started: dtrace: failed to initialize dtrace: DTrace device " \
           "not available on system" in err
    assert not marker.exists()
    assert not [c for c in psutil.Process().children(recursive=True) if c.pid not in before and alive(c)]
    manifest = Manifest.load(str(run))
    assert manifest.stopped_by.startswith("dtrace exited with status 1")
    assert manifest.tracers["dtrace"].exited_early and manifest.file_with_role("cpu") is None


def test_an_unknown_pmc_event_fails_with_pmcstats_message(target, tmp_path, capsys):
    target()
    run = tmp_path / "run"
    assert main(["record", str(MODULE), "--pmc", "NO_SUCH_EVENT", "-o", str(run), "--settle", "5",
                 "--", "sleep", "0.1"]) == 2
    err = capsys.readouterr().err
    assert 'pmcstat exited with status 71 as it started: pmcstat: ERROR: Cannot allocate system-mode pmc ' \
           'with specification "NO_SUCH_EVENT"' in err
    assert Manifest.load(str(run)).file_with_role("profile") is None
