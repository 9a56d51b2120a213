"""Folded stacks written from a profile: one sorted ``frame;frame;... COUNT`` line per distinct stack.

The format and its escapes are described in :mod:`tracebridge.readers.folded`,
which reads them back to the same stacks.  A 53 MB ``pmcstat -G`` callgraph
folds to 236k distinct stacks, whose joining, sorting and formatting cost as
much as reading it: the native core writes the text in one pass
(src/native/folded_text.h), :func:`folded_lines` being its pure-Python twin.
"""

from __future__ import annotations

from contextlib import closing
from functools import partial
from typing import IO, TYPE_CHECKING, AnyStr, BinaryIO

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Profile
from tracebridge.readers.folded import escape
from tracebridge.support import native

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tracebridge.readers.source import Source


def folded_lines(profile: Profile, labels: LabelOptions = LabelOptions()) -> list[str]:
    """``stack count`` lines, sorted; stacks whose labels are equal are merged."""
    profile.require_widths("folded stacks")
    return _lines(labels.labels(profile), profile)


def folded_text(profile: Profile, labels: LabelOptions = LabelOptions()) -> str:
    """:func:`folded_lines` as the file's text, each line ended by a newline."""
    return _folded(profile, labels, False)


def folded_bytes(profile: Profile, labels: LabelOptions = LabelOptions()) -> bytes:
    """:func:`folded_text` encoded as the file holds it (UTF-8): the native core makes it without the text, for a
    writer that only passes it on (a 53 MB callgraph's folded half is 10 MB to decode and encode again)."""
    return _folded(profile, labels, True)


def _folded(profile: Profile, labels: LabelOptions, encoded: bool) -> str | bytes:
    profile.require_widths("folded stacks")
    names = labels.labels(profile)
    if native.core is not None:
        text = native.core.folded_text(names, profile.stacks, encoded)
        if text is not None:  # None: a weight or name the pure path must decide on
            return text
    lines = _lines(names, profile)
    text = "\n".join(lines) + "\n" if lines else ""
    return text.encode() if encoded else text


def merge_folded(first: AnyStr, second: AnyStr | memoryview) -> AnyStr:
    """Two folded texts (as :func:`folded_text` writes them, or :func:`folded_bytes`: bytes, or a view of them) as
    one: the keys sorted, the counts of a key in both added (integer counts only)."""
    if native.core is not None:
        text = native.core.folded_merge(first, second)
        if text is not None:  # None: a line the pure path must read
            return text
    if isinstance(first, str):
        return _merge_pure(first, second)
    return _merge_pure_bytes(first, second)


def _merge_pure_bytes(first: bytes | memoryview, second: bytes | memoryview) -> bytes:
    """:func:`_merge_pure` of two UTF-8 texts (or views of them), as UTF-8."""
    return _merge_pure(str(first, "utf-8"), str(second, "utf-8")).encode()


def _merge_pure(first: str, second: str) -> str:
    """:func:`merge_folded` in Python, on text."""
    totals: dict[str, int] = {}
    for text in (first, second):
        for line in text.split("\n")[:-1]:
            key, _, count = line.rpartition(" ")
            totals[key] = totals.get(key, 0) + int(count)
    return "".join([f"{key} {totals[key]}\n" for key in sorted(totals)])


def callgraph_folded_parts(source: Source, labels: LabelOptions = LabelOptions()) -> Iterator[bytes | memoryview] | None:
    """The :func:`folded_bytes` of a big ``pmcstat -G`` callgraph read on two cores, each half folded and written by
    its own process (:func:`~tracebridge.readers.pmcgraph.fold_in_parts`: the texts as they come, the second a view
    of the other process's); None when it is not worth cutting.  :func:`write_folded_parts` writes them."""
    from tracebridge.readers.pmcgraph import fold_in_parts  # the reader: only for a callgraph

    return fold_in_parts(source, partial(folded_bytes, labels=labels))


def write_folded_parts(out: BinaryIO, texts: Iterator[bytes | memoryview]) -> None:
    """Write the folded texts of :func:`callgraph_folded_parts` to ``out`` as one (merged, when there are two).

    Bytes from end to end: the second half's text is read where the other process left it, and into a file that can
    be rewound (a regular file, a device: not standard output, which takes the text whole) the merge is written a
    megabyte at a time as it is made (the merged text of a 53 MB callgraph, 20 MB, never lies whole in memory then);
    were a line not one the native merge reads, what it wrote is taken back and the pure merge written.
    """
    with closing(texts):  # the other process is let go once its text is written
        first = next(texts)
        second = next(texts, None)
        if second is None:
            out.write(first)
            return
        if native.core is not None and out.seekable():
            start = out.tell()
            if native.core.folded_merge(first, second, out.write):
                return
            written = out.tell()
            out.seek(start)
            out.write(_merge_pure_bytes(first, second))
            if out.tell() < written:  # what was written outran the whole merge: cut (a device, /dev/null, cannot be)
                out.truncate()
            return
        out.write(merge_folded(first, second))


def _lines(labels: list[str], profile: Profile) -> list[str]:
    names = [escape(label) for label in labels]
    keys = [";".join([names[i] for i in stack]) for stack in profile.stacks]
    merged = dict(zip(keys, profile.stacks.values()))
    if len(merged) != len(keys):  # labels collide (offsets dropped, generic instances): add up
        merged = {}
        for key, weight in zip(keys, profile.stacks.values()):
            merged[key] = merged.get(key, 0) + weight
    return [f"{key} {_count(merged[key])}" for key in sorted(merged)]


def _count(weight: float) -> int | float:
    return int(weight) if type(weight) is int or weight == int(weight) else weight


def write_folded(out: IO[str], profile: Profile, labels: LabelOptions = LabelOptions()) -> None:
    text = folded_text(profile, labels)
    if text:
        out.write(text)
