"""``record`` runs as root: a directory someone else controls must not steer what it writes or runs.

Each attack of issue 19 (item 1) against the stand-in machine: an output
directory owned by another user (made with ``chown`` to an unused uid: the
suite runs as root), one writable by others, a path through someone else's
symlink, a symlink planted under every name ``record`` writes (before the
run with ``--force``, and during it), and the D script swapped between its
writing and dtrace reading it.  Each is refused with one line, or harmless.
"""

from __future__ import annotations

import os
import stat

import pytest

from standin_target import MODULE, MODULE_NAME
from tracebridge.capture import outdir, tracer
from tracebridge.cli import main
from tracebridge.readers.bundle import Manifest

QUICK = ["--settle", "0.2", "--interval", "0.1"]
#: A uid no account on the CI machine has.
STRANGER = 54321
DTRACE_FILES = [f"{MODULE_NAME}.ko", "kldstat.txt", "script.d", "probes.json", "dtrace.out", "dtrace.stderr",
                "cpu.csv", "manifest.json"]
PMC_FILES = ["pmc.log", "pmc.txt", "pmcstat.stderr", "pmcstat-print.stderr"]
PMC = ["--pmc", "CPU_CLK_UNHALTED.THREAD_P"]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root (CI runs as root)")


def refused(capsys, argv: list[str]) -> str:
    assert main(["record", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.fixture
def victim(tmp_path):
    """A file of someone else's that root must not overwrite."""
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


@needs_root
def test_directory_owned_by_another_user_is_refused(target, tmp_path, capsys):
    machine = target()
    run = tmp_path / "run"
    run.mkdir(mode=0o755)
    os.chown(run, STRANGER, STRANGER)
    err = refused(capsys, [str(MODULE), "-o", str(run), "--", "sleep", "0.1"])
    assert f"directory belongs to uid {STRANGER}, not to you" in err
    assert machine.calls() == [] and os.listdir(run) == []
    # --force does not change whose directory it is.
    assert "belongs to uid" in refused(capsys, [str(MODULE), "-o", str(run), "--force"])


def test_directory_writable_by_others_is_refused(target, tmp_path, capsys):
    machine = target()
    run = tmp_path / "run"
    run.mkdir()
    os.chmod(run, 0o1777)  # like /tmp itself
    err = refused(capsys, [str(MODULE), "-o", str(run)])
    assert "directory is writable by group or others (mode 1777)" in err
    assert machine.calls() == []


def test_output_that_is_a_symlink_is_refused(target, tmp_path, capsys):
    target()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run").symlink_to(tmp_path / "elsewhere")
    assert "is a symbolic link" in refused(capsys, [str(MODULE), "-o", str(tmp_path / "run")])
    assert os.listdir(tmp_path / "elsewhere") == []


@needs_root
def test_path_through_another_users_symlink_is_refused(target, tmp_path, capsys):
    target()
    (tmp_path / "real").mkdir()
    link = tmp_path / "shared"
    link.symlink_to(tmp_path / "real")
    os.lchown(link, STRANGER, STRANGER)
    err = refused(capsys, [str(MODULE), "-o", str(link / "run")])
    assert f"{link} is a symbolic link owned by uid {STRANGER}" in err
    assert os.listdir(tmp_path / "real") == []


def test_new_directory_is_private(target, tmp_path, capsys):
    target()
    run = tmp_path / "run"
    old = os.umask(0)  # a umask that would leave it open to all
    try:
        assert main(["record", str(MODULE), "-o", str(run), *QUICK, "--", "sleep", "0.1"]) == 0
    finally:
        os.umask(old)
    info = os.stat(run)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()


@pytest.mark.parametrize("name, mode", [(name, []) for name in DTRACE_FILES] + [(name, PMC) for name in PMC_FILES])
def test_force_replaces_planted_links_without_following_them(target, tmp_path, capsys, victim, name, mode):
    target()
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / name).symlink_to(victim)
    assert main(["record", str(MODULE), "-o", str(run), "--force", *mode, *QUICK, "--", "sleep", "0.1"]) == 0
    assert victim.read_text() == "precious\n"
    assert not (run / name).is_symlink() and (run / name).is_file()


@pytest.mark.parametrize("name, mode", [(name, []) for name in DTRACE_FILES] + [(name, PMC) for name in PMC_FILES])
def test_links_planted_while_recording_are_refused(target, tmp_path, capsys, monkeypatch, victim, name, mode):
    """Someone who could write into the directory after it was made (the race the issue won 3 of 3)."""
    target()
    run = tmp_path / "run"
    made = outdir.OutputDirectory.__init__

    def plant(self, path, force):
        made(self, path, force)
        os.symlink(victim, name, dir_fd=self.fd)

    monkeypatch.setattr(outdir.OutputDirectory, "__init__", plant)
    assert main(["record", str(MODULE), "-o", str(run), *mode, *QUICK, "--", "sleep", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"tracebridge: {run / name}: appeared while recording"), err
    assert victim.read_text() == "precious\n" and (run / name).is_symlink()


def test_script_swapped_before_dtrace_reads_it_stops_the_recording(target, tmp_path, capsys, monkeypatch):
    machine = target()
    run = tmp_path / "run"
    started = tracer.Tracer.__init__

    def swap_then_start(self, name, argv, directory, messages):
        script = run / "script.d"
        script.write_text(script.read_text() + '\n#pragma D option destructive\nBEGIN { system("id"); }\n')
        started(self, name, argv, directory, messages)

    monkeypatch.setattr(tracer.Tracer, "__init__", swap_then_start)
    assert main(["record", str(MODULE), "-o", str(run), *QUICK, "--", "sleep", "5"]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'script.d'} changed after it was written (SHA-256 differs)" in err, err
    # dtrace was killed at once, not asked to print; the workload never ran.  (The fixture waits for
    # the stand-in to be ready before --settle, so it got that far before SIGKILL, loaded machine or not.)
    tools = [call[0] for call in machine.calls()]
    assert tools == ["kldstat", "dtrace", "dtrace", "dtrace-ready"], tools
    manifest = Manifest.load(str(run))
    assert "changed after it was written" in manifest.stopped_by
    assert manifest.tracers["dtrace"].signals == ("SIGKILL",)


@needs_root
def test_parent_directory_of_another_user_is_refused(target, tmp_path, capsys):
    """Its owner could rename OUTPUT away once made and put a directory of their own in its place."""
    target()
    shared = tmp_path / "theirs"
    shared.mkdir()
    os.chown(shared, STRANGER, STRANGER)
    err = refused(capsys, [str(MODULE), "-o", str(shared / "run")])
    assert f"directory {shared} belongs to uid {STRANGER}, who could rename run away" in err
    assert os.listdir(shared) == []


def test_parent_writable_by_others_is_refused_unless_sticky(target, tmp_path, capsys):
    target()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    err = refused(capsys, [str(MODULE), "-o", str(shared / "run")])
    assert f"directory {shared} is writable by group or others (mode 0777, not sticky)" in err
    os.chmod(shared, 0o1777)  # like /tmp: others cannot rename what is not theirs
    assert main(["record", str(MODULE), "-o", str(shared / "run"), *QUICK, "--", "sleep", "0.1"]) == 0
