"""Untrusted text made safe to print: control characters written as escapes.

Symbol names and the text of captures are bytes anyone can write.  A
newline in one would add a line to a symbol map, a table or an error
message; an escape sequence would command the user's terminal.  Every
name people read (:mod:`tracebridge.image.demangle`) and every error line the
CLI prints go through :func:`printable`.  Tabs stay: they break no line,
and names already hold spaces.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with every control character but the tab written as ``\\xNN`` or ``\\uNNNN``."""
    if CONTROL.search(text) is None:
        return text
    return CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)
