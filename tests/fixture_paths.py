"""Where the committed modules and the independent tools' views of them live.

A plain module, not conftest.py: several test folders have a conftest of
their own, and ``from conftest import`` would pick whichever was loaded first.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
MODULES = FIXTURES / "modules"
EXPECTED = FIXTURES / "expected"

#: Every committed module that has a symbol table.
MODULE_NAMES = sorted(p.stem for p in MODULES.glob("*.ko") if p.stem != "rem_stripped")
