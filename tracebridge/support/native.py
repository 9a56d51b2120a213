"""The optional compiled core: whether it is in use, and the module itself.

``setup.py`` builds ``tracebridge.support._native`` from ``src/native/`` when
a C compiler works; a machine without one installs tracebridge all the same
and runs the pure-Python paths, which give byte-identical output (the tests
run both).  ``TRACEBRIDGE_NO_NATIVE=1`` forces the pure-Python paths, to
compare the two or to rule the compiled code out when hunting a bug.

Callers read :data:`core` at call time (``native.core``), never bind it at
import, so that tests can switch the paths within one process.
"""

from __future__ import annotations

import os
from types import ModuleType

#: Environment variable that forces the pure-Python paths when set to anything but "" or "0".
DISABLE_VARIABLE = "TRACEBRIDGE_NO_NATIVE"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return None, f"no ({DISABLE_VARIABLE} is set)"
    try:
        from tracebridge.support import _native
    except ImportError:
        return None, "no (not built: no C compiler when tracebridge was installed)"
    return _native, "yes"


#: The compiled module, or None when the pure-Python paths run.
core, _status = _load()


def status_line() -> str:
    """One line for ``tracebridge --version``: ``native core: yes`` or why not."""
    return f"native core: {_status}"
