"""What ``tracebridge record`` refuses: one line, exit status 2, and nothing started or written."""

from __future__ import annotations

import os

import pytest

from standin_target import MODULE, MODULE_NAME
from tracebridge.capture import preflight, session
from tracebridge.cli import main


def refused(capsys, argv: list[str]) -> str:
    assert main(["record", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("tools, extra, missing", [
    (("pmcstat", "kldstat"), [], "dtrace not found on PATH"),
    (("dtrace", "kldstat"), ["--pmc", "instructions"], "pmcstat not found on PATH"),
    (("dtrace", "pmcstat"), [], "kldstat not found on PATH"),
    ((), [], "dtrace and kldstat not found on PATH"),
])
def test_missing_tools_are_named_before_anything_starts(target, tmp_path, capsys, tools, extra, missing):
    machine = target(tools=tools)
    run = tmp_path / "run"
    err = refused(capsys, [str(MODULE), "-o", str(run), *extra, "--", "sleep", "1"])
    assert err == (f"tracebridge: {missing}: tracebridge record runs as root on the FreeBSD machine where "
                   "the module is loaded")
    assert machine.calls() == [] and not run.exists()


def test_not_root(target, tmp_path, capsys, monkeypatch):
    machine = target()
    monkeypatch.setattr(session, "require_root", preflight.require_root)
    monkeypatch.setattr(os, "geteuid", lambda: 1001)
    err = refused(capsys, [str(MODULE), "-o", str(tmp_path / "run")])
    assert err == "tracebridge: dtrace needs root: run tracebridge record as root (e.g. with sudo or doas)"
    assert machine.calls() == []


def test_module_not_loaded(target, tmp_path, capsys):
    machine = target(loaded=False)
    run = tmp_path / "run"
    err = refused(capsys, [str(MODULE), "-o", str(run)])
    assert err == (f"tracebridge: {MODULE_NAME}.ko is not loaded (kldstat -v lists: kernel, dtrace.ko): "
                   "kldload it first")
    assert machine.calls() == [["kldstat", "-v"]] and not run.exists()


def test_missing_workload_command(target, tmp_path, capsys):
    machine = target()
    err = refused(capsys, [str(MODULE), "-o", str(tmp_path / "run"), "--", "no-such-load-generator", "-t", "5"])
    assert err == ("tracebridge: workload command 'no-such-load-generator' not found (not on PATH, "
                   "or not executable)")
    assert machine.calls() == []


def test_existing_output_directory_is_refused(target, tmp_path, capsys):
    machine = target()
    run = tmp_path / "run"
    run.mkdir()
    (run / "dtrace.out").write_text("an earlier capture\n")
    err = refused(capsys, [str(MODULE), "-o", str(run)])
    assert err.startswith(f"tracebridge: {run}: directory is not empty; choose a new one, or --force")
    assert os.listdir(run) == ["dtrace.out"] and (run / "dtrace.out").read_text() == "an earlier capture\n"
    assert machine.calls() == []


def test_output_that_is_a_file_is_refused(target, tmp_path, capsys):
    target()
    (tmp_path / "run").write_text("x")
    assert refused(capsys, [str(MODULE), "-o", str(tmp_path / "run")]).endswith("exists and is not a directory")


def test_not_a_module(target, tmp_path, capsys):
    machine = target()
    text = tmp_path / "notes.ko"
    text.write_text("not ELF\n")
    assert str(text) in refused(capsys, [str(text), "-o", str(tmp_path / "run")])
    assert machine.calls() == []


@pytest.mark.parametrize("argv, message", [
    ([str(MODULE)], "record needs -o OUTPUT"),
    (["-o", "run"], "record needs MODULE.ko"),
    (["-o", "run", "--", "sleep", "1"], "record needs MODULE.ko"),
    ([str(MODULE), "-o", "run", "--pmc", "instructions", "--template", "count"], "give one of them"),
    ([str(MODULE), "-o", "run", "--pmc-rate", "100"], "--pmc-rate needs --pmc EVENT"),
    ([str(MODULE), "-o", "run", "--template", "histogram"], "unknown template 'histogram'"),
    ([str(MODULE), "-o", "run", "sleep", "1"], "unexpected 'sleep': put the workload command after '--'"),
    ([str(MODULE), "-o", "run", "--"], "nothing after '--'"),
])
def test_usage_errors(target, capsys, argv, message):
    machine = target()
    assert message in refused(capsys, argv)
    assert machine.calls() == []


def test_options_may_come_before_and_after_the_module(target, tmp_path, capsys):
    target()
    run = tmp_path / "run"
    assert main(["record", "--settle", "0.2", "-o", str(run), str(MODULE), "--interval", "0.1",
                 "--duration", "0.3"]) == 0
    assert (run / "manifest.json").exists()
