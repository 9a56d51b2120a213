"""The ``target`` fixture: a FreeBSD machine made of stand-in tools (see standin_target.py)."""

from __future__ import annotations

import pytest

from standin_target import install_target


@pytest.fixture
def target(tmp_path, monkeypatch):
    """A factory: ``target(tools=..., loaded=..., STANDIN_...=...)`` installs the stand-in machine."""
    return lambda **options: install_target(tmp_path, monkeypatch, **options)
