"""Many records of one slotted dataclass, built at once.

A big Rust module has 100k functions: :mod:`tracebridge.image.elf` makes a
``Function`` record for each before any other work can start, and
:mod:`tracebridge.probes.probeplan` a ``Planned`` one.  Calling a dataclass's
``__init__`` 100k times costs tens of milliseconds; the native core stores
each value straight into its slot instead (``slot_records`` in
``src/native/symbol_records.h``), for classes whose ``__init__`` does nothing
else (``slots=True`` dataclasses without ``__post_init__``).
"""

from __future__ import annotations

from typing import TypeVar

from tracebridge.support import native

T = TypeVar("T")


def slot_records(cls: type[T], columns: tuple[list, ...]) -> list[T]:
    """``cls(*row)`` for each row of ``columns`` (equally long lists, one per field, in field order)."""
    if native.core is not None:
        return native.core.slot_records(cls, columns)
    return [cls(*row) for row in zip(*columns)]
