"""Shared test fixtures (paths are in fixture_paths.py, importable from every folder)."""

from __future__ import annotations

import pytest

from fixture_paths import MODULE_NAMES


@pytest.fixture(params=MODULE_NAMES)
def module_name(request) -> str:
    return request.param
