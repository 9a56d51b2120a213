"""Bundles copied off a test machine, made hostile (issue 19, items 2 and 3).

Every case runs ``tracebridge report BUNDLE`` under an alarm: a hang
(``/dev/zero``, a FIFO without a writer) fails the test instead of hanging
the suite.  Each must end within seconds with exit 2 and one line that shows
nothing of a file outside the bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixture_paths import MODULES
from tracebridge.cli import main
from tracebridge.readers import bundle

HERE = Path(__file__).resolve().parents[1]
CAPTURE = HERE / "data" / "dtrace" / "freebsd-hex-only.txt"
KLDSTAT = "Id Refs Address                Size Name\n 2    1 0xffffffff82a1c000     2d90 if_rem.ko\n"
SECRET = "root:$6$hunter2-the-secret-hash:19000:0:99999:7:::"
#: Seconds a refusal may take.
PROMPT = 10


@pytest.fixture
def made(tmp_path) -> Path:
    """A sound bundle: module, kldstat, probe map, a DTrace capture and the manifest."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(MODULES / "rem_legacy_fp.ko", run / "if_rem.ko")
    (run / "kldstat.txt").write_text(KLDSTAT)
    shutil.copyfile(CAPTURE, run / "dtrace.out")
    assert main(["gen-probes", str(run / "if_rem.ko"), "-o", str(tmp_path / "script.d"),
                 "--map", str(run / "probes.json")]) == 0
    roles = {"if_rem.ko": bundle.ROLE_MODULE, "kldstat.txt": bundle.ROLE_KLDSTAT,
             "probes.json": bundle.ROLE_PROBE_MAP, "dtrace.out": bundle.ROLE_PROFILE}
    bundle.Manifest(
        mode="dtrace", template="stack", pmc_event=None,
        module=bundle.ModuleRecord(str(run / "if_rem.ko"), "if_rem.ko", bundle.sha256_of(str(run / "if_rem.ko")),
                                   "if_rem.ko", 0xFFFFFFFF82A1C000, 0x2D90),
        kernel=None, old_kernel_linker=False, host={}, tools={}, commands={},
        times={"started": None, "traced": None, "stopped": None}, stopped_by="Ctrl-C was pressed",
        workload_status=None, tracers={}, files=bundle.describe_files(str(run), roles)).save(str(run))
    return run


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "shadow"
    path.write_text(SECRET + "\n" + SECRET + "\n")
    return path


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


class Hung(Exception):
    pass


def _hung(number, frame):
    raise Hung(f"still reading after {PROMPT} s")


@pytest.fixture
def report(capsys):
    """``tracebridge report RUN ...`` in this process, stopped by SIGALRM if it does not end in time."""
    def run(bundle_dir: Path, *extra: str) -> Done:
        capsys.readouterr()
        previous = signal.signal(signal.SIGALRM, _hung)
        started = time.monotonic()
        signal.alarm(PROMPT)
        try:
            status = main(["report", str(bundle_dir), *extra])
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        assert time.monotonic() - started < PROMPT
        out = capsys.readouterr()
        return Done(status, out.out, out.err)
    return run


@pytest.fixture
def refused(report):
    def run(bundle_dir: Path, *extra: str) -> str:
        return _refused(report(bundle_dir, *extra))
    return run


def _refused(done: Done) -> str:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    return done.stderr


def test_the_sound_bundle_reads(made, report):
    assert report(made).returncode == 0


def replace_with_link(path: Path, target: str | Path) -> None:
    path.unlink()
    path.symlink_to(target)


@pytest.mark.parametrize("name, what", [("if_rem.ko", "module"), ("dtrace.out", "profile"),
                                        ("kldstat.txt", "kldstat listing"), ("probes.json", "probe map"),
                                        ("manifest.json", "bundle manifest")])
def test_link_to_dev_zero_is_refused(made, refused, name, what):
    replace_with_link(made / name, "/dev/zero")
    assert f"{made / name}: the bundle's {what} is a link out of the bundle" in refused(made)


@pytest.mark.parametrize("name, what", [("if_rem.ko", "module"), ("dtrace.out", "profile"),
                                        ("kldstat.txt", "kldstat listing"), ("manifest.json", "bundle manifest")])
def test_fifo_inside_the_bundle_is_refused(made, refused, name, what):
    (made / name).unlink()
    os.mkfifo(made / name)
    assert f"the bundle's {what} is not a regular file" in refused(made)


@pytest.mark.parametrize("name, what", [("dtrace.out", "profile"), ("kldstat.txt", "kldstat listing"),
                                        ("probes.json", "probe map"), ("manifest.json", "bundle manifest")])
def test_link_to_a_file_outside_is_refused_and_not_quoted(made, refused, secret, name, what):
    replace_with_link(made / name, secret)
    err = refused(made)
    assert f"the bundle's {what} is a link out of the bundle: refusing to read it" in err
    assert str(secret) not in err


def test_link_inside_the_bundle_is_read(made, report):
    (made / "dtrace.out").rename(made / "capture.txt")
    (made / "dtrace.out").symlink_to("capture.txt")
    assert report(made).returncode == 0


def test_oversized_manifest_is_refused_unread(made, refused):
    with open(made / "manifest.json", "r+b") as handle:
        handle.truncate(bundle.MAX_MANIFEST + 1)  # sparse: no disk used
    assert "is 16,777,217 bytes, more than the 16 MB any bundle manifest takes" in refused(made)


@pytest.mark.parametrize("kernel", ["/dev/zero", "fifo", "/proc/self/mem"])
def test_kernel_named_in_the_manifest_is_never_read_unless_regular(made, report, kernel, tmp_path):
    if kernel == "fifo":
        kernel = str(tmp_path / "fifo")
        os.mkfifo(kernel)
    data = json.loads((made / "manifest.json").read_text())
    data["kernel"] = {"path": kernel, "sha256": "0" * 64}
    (made / "manifest.json").write_text(json.dumps(data))
    # Not asked for: never opened. Asked for: not a regular file, so not used. Both end at once.
    assert report(made).returncode == 0
    assert report(made, "--bundle-kernel").returncode == 0


@pytest.mark.parametrize("debug", ["/dev/zero", "fifo"])
def test_debug_file_named_in_the_manifest_is_hashed_only_when_regular(made, capsys, debug, tmp_path):
    """``--inline`` compares the recorded debug file, a path in the manifest like the kernel's."""
    if debug == "fifo":
        debug = str(tmp_path / "fifo")
        os.mkfifo(debug)
    data = json.loads((made / "manifest.json").read_text())
    data["module"].update(debug=debug, debug_sha256="0" * 64)
    (made / "manifest.json").write_text(json.dumps(data))
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(PROMPT)
    try:
        main(["fold", str(made), "--inline"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert f"{debug}: the debug file recorded with the bundle cannot be read (or is not a regular file)" in \
        capsys.readouterr().err


@pytest.mark.parametrize("name, text", [
    ("dtrace.out", SECRET + "\n"),                          # no reader takes it: "it starts with ..."
    ("dtrace.out", "CPU     ID                    FUNCTION:NAME\n" + SECRET + "\n"),  # a DTrace line that is not
    ("kldstat.txt", KLDSTAT.splitlines()[0] + "\n" + SECRET + "\n"),
    ("probes.json", json.dumps({"format": "tracebridge-probe-map", "version": SECRET})),
])
def test_a_file_inside_the_bundle_is_not_quoted(made, refused, name, text):
    """The user named the bundle, not its parts: a message about a part shows none of its text."""
    (made / name).write_text(text)
    assert "part of a bundle" in refused(made) or name == "probes.json"


def test_a_file_the_user_names_is_quoted(tmp_path, capsys):
    """The same refusal for a file given directly quotes it: there it helps and shows the user's own file."""
    capture = tmp_path / "dtrace.out"
    capture.write_text(SECRET + "\n")
    assert main(["report", str(capture)]) == 2
    assert "hunter2" in capsys.readouterr().err
