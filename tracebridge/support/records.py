"""Many records at once: fixed-size binary records read into columns, and slotted dataclasses built in bulk.

A big Rust module has 100k sections and functions: :mod:`tracebridge.image.elf`
reads every section header and makes a ``Function`` record for each function
before any other work can start, and :mod:`tracebridge.probes.probeplan` a
``Planned`` one.  Unpacking 100k headers with :mod:`struct` and calling a
dataclass's ``__init__`` 100k times cost tens of milliseconds each; the native
core (``src/native/symbol_records.h``) reads the fields straight into lists
(``unpack_columns``) and stores each value straight into its slot
(``slot_records``), for classes whose ``__init__`` does nothing else
(``slots=True`` dataclasses without ``__post_init__``); integer attributes of
many records are read back into columns (``uint64_columns``, ``names_starting``).
"""

from __future__ import annotations

import struct
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import TypeVar

from tracebridge.support import native

T = TypeVar("T")


def unpack_columns(layout: str, data: bytes) -> tuple[list[int], ...]:
    """The fields of ``struct.iter_unpack(layout, data)``, one list per field.

    ``layout`` is ``<`` or ``>`` and unsigned fields only (``B``, ``H``,
    ``I``, ``Q``); ``data`` holds whole records (``ValueError`` otherwise).
    """
    if native.core is not None:
        return native.core.unpack_columns(layout, data)
    if len(data) % struct.calcsize(layout):
        raise ValueError("the data is not a whole number of records")
    rows = list(struct.iter_unpack(layout, data))
    return tuple([row[k] for row in rows] for k in range(len(layout) - 1))


def slot_records(cls: type[T], columns: tuple[list, ...]) -> list[T]:
    """``cls(*row)`` for each row of ``columns`` (equally long lists, one per field, in field order)."""
    if native.core is not None:
        return native.core.slot_records(cls, columns)
    return [cls(*row) for row in zip(*columns)]


def uint64_columns(objects: Sequence, names: tuple[str, ...]) -> tuple[bytes, ...]:
    """For each attribute name, the value of it of every object as native uint64s (:func:`uint64s` reads
    such a column in place).

    The native core reads each object's slot without taking a reference, so
    that a forked process reading its half of 100k functions copies none of
    its parent's pages, and without a Python loop per function.
    """
    if native.core is not None:  # it reads a list: a copy would write every object's reference count
        return native.core.uint64_columns(objects if type(objects) is list else list(objects), names)
    return tuple(array("Q", map(attrgetter(name), objects)).tobytes() for name in names)


def uint64s(column) -> memoryview:
    """A uint64 column (bytes from :func:`uint64_columns`, an ``array("Q")``) as a sequence of ints, read in place."""
    return memoryview(column).cast("B").cast("Q")


def int64s(column) -> memoryview:
    """An int64 column (bytes of native int64s, an ``array("q")``) as a sequence of ints, read in place."""
    return memoryview(column).cast("B").cast("q")


def scatter(results: list, positions: Iterable[int], values: Iterable) -> None:
    """``results[positions[k]] = values[k]`` for every k, by C calls rather than a Python step each."""
    deque(map(results.__setitem__, positions, values), maxlen=0)


def names_starting(objects: Sequence, name: str, heads: tuple[str, ...]) -> list[int]:
    """The positions of the objects whose str attribute ``name`` starts with one of ``heads``.

    Natively, read from the slots as :func:`uint64_columns` reads them: FBT's
    name rules start with literal heads that almost no function of a big
    module has, and the Python pass over 50k names was a tenth of the scan.
    """
    if native.core is not None:
        return native.core.names_starting(objects if type(objects) is list else list(objects), name, heads)
    found = []
    for at, text in enumerate(map(attrgetter(name), objects)):
        if not isinstance(text, str):
            raise TypeError("a name is not a str")
        if text.startswith(heads):
            found.append(at)
    return found
