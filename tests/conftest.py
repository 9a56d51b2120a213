"""Shared test fixtures (paths are in fixture_paths.py, importable from every folder)."""

from __future__ import annotations

import os
import tempfile

import pytest

from fixture_paths import MODULE_NAMES


# The DWARF index cache (tracebridge.image.dwarfcache) goes to a scratch directory, never the user's ~/.cache.
os.environ.setdefault("TRACEBRIDGE_CACHE_DIR", tempfile.mkdtemp(prefix="tracebridge-test-cache-"))


@pytest.fixture(params=MODULE_NAMES)
def module_name(request) -> str:
    return request.param
