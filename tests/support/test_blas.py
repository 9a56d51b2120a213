"""OpenBLAS held to one thread in tracebridge, and the programs it starts run in the user's environment."""

from __future__ import annotations

import os
import sys

import pytest

from tracebridge.cputime.workload import Workload
from tracebridge.support import blas


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(blas, "_added", False)
    return monkeypatch


def _seen_by_workload(tmp_path) -> str:
    out = tmp_path / "seen"
    code = f"import os; open({str(out)!r}, 'w').write(os.environ.get({blas.VARIABLE!r}, '<unset>'))"
    workload = Workload([sys.executable, "-c", code])
    assert workload.wait(30)
    return out.read_text()


def test_set_here_and_not_in_a_workload(fresh, tmp_path):
    fresh.delenv(blas.VARIABLE, raising=False)
    blas.hold_to_one_thread()
    assert os.environ[blas.VARIABLE] == "1"
    assert _seen_by_workload(tmp_path) == "<unset>"


def test_the_users_value_is_kept_and_passed_on(fresh, tmp_path):
    fresh.setenv(blas.VARIABLE, "3")
    blas.hold_to_one_thread()
    assert os.environ[blas.VARIABLE] == "3"
    assert blas.user_environment() is None
    assert _seen_by_workload(tmp_path) == "3"


def test_the_cli_holds_it_before_a_command_runs(fresh, capsys):
    from tracebridge.cli import main

    fresh.delenv(blas.VARIABLE, raising=False)
    with pytest.raises(SystemExit):
        main(["symbols", "--help"])
    assert os.environ[blas.VARIABLE] == "1"
    assert blas.VARIABLE not in blas.user_environment()
