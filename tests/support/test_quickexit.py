"""The command line leaves without freeing what the command built, and nothing else changes.

Run as ``python -m tracebridge``: the same files and exit status as ``main``
called in-process, standard output flushed whole, an error still one line
with status 2; in-process, :func:`quickexit.keep` holds nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

from fixture_paths import MODULES
from tracebridge.cli import main
from tracebridge.support import quickexit

MODULE = str(MODULES / "rem_legacy_fp.ko")


def tracebridge(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "tracebridge", *args], env=env, capture_output=True, **kwargs)


def test_same_files_as_in_process(tmp_path):
    assert main(["gen-probes", MODULE, "-o", str(tmp_path / "in.d"), "--map", str(tmp_path / "in.json")]) == 0
    assert quickexit._kept is None
    run = tracebridge("gen-probes", MODULE, "-o", str(tmp_path / "out.d"), "--map", str(tmp_path / "out.json"))
    assert run.returncode == 0 and run.stderr == b""
    # The script and the map name the file they were written to.
    assert (tmp_path / "out.d").read_bytes().replace(b"out.d", b"in.d") == (tmp_path / "in.d").read_bytes()
    assert (tmp_path / "out.json").read_bytes().replace(b"out.d", b"in.d") == (tmp_path / "in.json").read_bytes()


def test_standard_output_is_flushed_whole():
    run = tracebridge("symbols", "--format", "json", MODULE)
    assert run.returncode == 0 and run.stdout.endswith(b"]\n") and run.stdout.count(b'"name"') == 78


def test_an_error_is_one_line_and_status_2(tmp_path):
    run = tracebridge("symbols", str(tmp_path / "missing.ko"))
    assert run.returncode == 2 and run.stdout == b"" and run.stderr.count(b"\n") == 1

