"""Shared test fixtures: the committed modules and the independent tools' views of them."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MODULES = FIXTURES / "modules"
EXPECTED = FIXTURES / "expected"

#: Every committed module that has a symbol table.
MODULE_NAMES = sorted(p.stem for p in MODULES.glob("*.ko") if p.stem != "rem_stripped")


@pytest.fixture(params=MODULE_NAMES)
def module_name(request) -> str:
    return request.param
