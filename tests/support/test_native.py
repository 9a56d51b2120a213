"""The compiled core's face: how it is switched off and how it says whether it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tracebridge

#: Where the tracebridge under test lives (the installed one in CI, the work tree in development).
ROOT = Path(tracebridge.__file__).resolve().parents[1]


def version(**env: str) -> list[str]:
    # Run from ROOT: `python -m` puts the working directory first on the path, and a checkout's own
    # tracebridge (without the built core) would shadow the installed one CI tests.
    completed = subprocess.run([sys.executable, "-m", "tracebridge", "--version"], capture_output=True, text=True,
                               check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    return completed.stdout.splitlines()


def test_version_says_whether_the_native_core_runs(native_core):
    assert version() == ["tracebridge 0.1.0", "native core: yes"]


def test_environment_variable_forces_pure_python():
    assert version(TRACEBRIDGE_NO_NATIVE="1")[1] == "native core: no (TRACEBRIDGE_NO_NATIVE is set)"


def test_version_imports_little():
    """``--version`` loads no command module (the start-up cost of every command stays off it)."""
    code = ("import sys; from tracebridge.cli import main\n"
            "try: main(['--version'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('tracebridge.cli.', 'numpy', 'elftools', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.splitlines()[-1]
    assert out == "[]"


@pytest.mark.parametrize("starts, sizes", [
    ([0], [17]), ([-1], [1]), ([5], [-1]), ([2**62], [2**62]), ([0, 1], [1]),
])
def test_spans_outside_the_buffer_are_refused(native_core, starts, sizes):
    from array import array

    with pytest.raises(ValueError):
        native_core.fbt_amd64(bytes(16), array("q", starts), array("q", sizes))


def test_columns_must_be_int64(native_core):
    with pytest.raises(ValueError):
        native_core.fbt_amd64(bytes(16), b"\0" * 7, b"\0" * 7)


def outputs(tmp_path, argv: list[str]) -> dict[str, bytes]:
    """Every file one command writes into a fresh directory (named alike, so scripts that name themselves match)."""
    from tracebridge.cli import main

    directory = tmp_path / str(len(list(tmp_path.iterdir())))
    directory.mkdir()
    assert main([*argv, "-o", str(directory / "out")]) == 0
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("argv", [
    ["symbols", "--format", "json"], ["symbols", "--format", "csv"], ["symbols", "--format", "table"],
    ["symbols", "--format", "json", "--base", "0xffffffff82000000"], ["symbols", "--sort", "size"],
    ["gen-probes"], ["gen-probes", "-t", "latency"], ["inspect", "--format", "json"],
])
def test_commands_print_the_same_bytes_on_both_paths(native_core, tmp_path, monkeypatch, module_name, argv):
    from fixture_paths import MODULES
    from tracebridge.support import native

    command = [*argv, str(MODULES / f"{module_name}.ko")]
    ours = outputs(tmp_path, command)
    monkeypatch.setattr(native, "core", None)
    assert outputs(tmp_path, command) == ours
