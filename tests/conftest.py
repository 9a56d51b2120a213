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


@pytest.fixture
def pure_python(monkeypatch):
    """Run the test body on the pure-Python paths (as TRACEBRIDGE_NO_NATIVE=1 does)."""
    from tracebridge.support import native

    monkeypatch.setattr(native, "core", None)


@pytest.fixture(params=["native", "pure"])
def each_path(request, monkeypatch) -> str:
    """Run the test body twice: on the compiled core (skipped where it is not built) and on the pure-Python paths."""
    if request.param == "native":
        request.getfixturevalue("native_core")
    else:
        request.getfixturevalue("pure_python")
    return request.param


@pytest.fixture(scope="session")
def native_core():
    """The compiled core; skips without it, fails without it where CI requires it."""
    import os

    from tracebridge.support import native

    if native.core is None:
        if os.environ.get("TRACEBRIDGE_REQUIRE_NATIVE"):
            pytest.fail(f"TRACEBRIDGE_REQUIRE_NATIVE is set but {native.status_line()}")
        pytest.skip(native.status_line())
    return native.core
