"""Writing rows as a terminal table, JSON or CSV: one writer for every command.

Rows are plain mappings from column name to a JSON-compatible value; the
column list fixes the order (and the exact JSON keys, which are part of the
documented interface).  rich is imported only for the terminal form, so a
JSON or CSV run does not pay for it.

CSV cells a spreadsheet would evaluate are neutralised
(:mod:`tracebridge.support.csvcells`) unless ``csv_raw``.  JSON and CSV are
encoded in batches of bounded size: a module whose 2,000 functions share one
1 MB name makes 4 GB of CSV, which must never be one string.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import IO, TYPE_CHECKING, Any

from tracebridge.support import native
from tracebridge.support.csvcells import neutral

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("table", "json", "csv")
#: Characters of text cells encoded at once (at least one row is).
BATCH_CHARS = 4 << 20


def write_rows(out: IO[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
               *, title: str | None = None, numeric: Iterable[str] = (), hex_columns: Iterable[str] = (),
               csv_raw: bool = False) -> None:
    """Write ``rows`` to ``out`` in ``fmt`` (``table``, ``json`` or ``csv``).

    ``hex_columns`` are integers shown in hex in the terminal table only;
    JSON and CSV keep them as plain integers for machines.
    """
    if fmt == "table":
        _rich_table(out, rows, columns, title, set(numeric), set(hex_columns))
    else:
        write_chunks(out, (encode_chunk(batch, columns, fmt, csv_raw) for batch in batches(rows, columns)),
                     columns, fmt)


def batches(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Iterable[Sequence[Mapping[str, Any]]]:
    """``rows`` in slices whose text cells hold about :data:`BATCH_CHARS` characters."""
    start, chars = 0, 0
    for index, row in enumerate(rows):
        chars += sum(len(value) for c in columns if isinstance(value := row[c], str))
        if chars >= BATCH_CHARS:
            yield rows[start:index + 1]
            start, chars = index + 1, 0
    if start < len(rows):
        yield rows[start:]


def encode_chunk(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, csv_raw: bool = False) -> str:
    """Rows as a piece of a JSON array (no brackets) or CSV lines (no header), for :func:`write_chunks`.

    Pieces let a command encode the halves of a long list in two processes
    (:func:`tracebridge.support.parallel.split_map`) and write them as one document.
    """
    if fmt == "json":
        if rows and list(rows[0]) != list(columns):
            rows = [{c: row[c] for c in columns} for row in rows]
        # json.dumps (C encoder) rather than json.dump, which encodes in Python.
        return json.dumps(rows, ensure_ascii=False)[1:-1]
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        cell = (lambda value: value) if csv_raw else neutral
        for row in rows:
            writer.writerow(["" if row[c] is None else cell(row[c]) for c in columns])
        return text.getvalue()
    raise ValueError(f"no chunked form of {fmt!r}")  # argparse restricts choices: a programming error


@dataclass(frozen=True, slots=True)
class Attribute:
    """A column given by the objects that hold its values: row ``i``'s value is ``getattr(objects[i], name)``.

    :func:`encode_json_columns` writes it without a list of the values: the
    native core reads each object's slot and takes no reference, so a process
    forked to encode half the rows copies none of the pages it shares with
    its parent (a reference count is a write).
    """

    objects: list
    name: str

    def values(self) -> list:
        return list(map(attrgetter(self.name), self.objects))


def encode_json_columns(columns: Sequence[str], values: Sequence[list[Any] | Attribute]) -> bytes:
    """Rows given column by column (``values[k][i]``: row ``i``'s ``columns[k]``), as :func:`encode_chunk`
    writes JSON, in UTF-8: what :func:`write_chunks` writes to a UTF-8 output as it is.

    With the native core the text is written straight from the columns,
    without a dict per row; the pure-Python path builds the dicts and calls
    :func:`encode_chunk`.  The bytes are the same (tests/render/test_tables_native.py);
    text that UTF-8 cannot hold (a lone surrogate) raises ``UnicodeEncodeError`` on both paths.
    """
    core = native.core
    if core is not None:
        try:
            return core.json_rows(tuple(columns), tuple((v.objects, v.name) if isinstance(v, Attribute) else v
                                                        for v in values))
        except (TypeError, UnicodeEncodeError):  # a value it does not write (NaN, a surrogate): json.dumps decides
            pass
    lists = [v.values() if isinstance(v, Attribute) else v for v in values]
    return encode_chunk([dict(zip(columns, row)) for row in zip(*lists)], columns, "json").encode()


#: Bytes of JSON rows :func:`encode_json_parts` makes at once: small enough that each part's memory is
#: reused by the next (glibc gives it back to the heap, not the system), big enough that the parts are few.
PART_BYTES = 1 << 20
#: Rows the pure-Python path encodes at once in :func:`encode_json_parts`.
PART_ROWS = 2048


def encode_json_parts(columns: Sequence[str], values: Sequence[list[Any] | Attribute]) -> Iterator[bytes]:
    """:func:`encode_json_columns`' text in parts of about :data:`PART_BYTES` (whole rows), for
    :func:`write_chunks` to write each as it comes: the parts joined with ``", "`` are that text.

    librustc_driver's rows are 58 MB of JSON: made whole, each half's text
    was written into 30 MB of fresh memory twice (the native buffer and
    its bytes copy), 15k page faults, on the path every row waits for.
    """
    count = len(values[0].objects if isinstance(values[0], Attribute) else values[0]) if values else 0
    start = 0
    core = native.core
    if core is not None:
        keys, specs = tuple(columns), tuple((v.objects, v.name) if isinstance(v, Attribute) else v for v in values)
        try:
            while start < count:
                text, start = core.json_rows_from(keys, specs, start, PART_BYTES)
                yield text
        except (TypeError, UnicodeEncodeError):  # a value it does not write (NaN, a surrogate): json.dumps decides
            pass
    for at in range(start, count, PART_ROWS):
        part = [v.objects[at:at + PART_ROWS] if isinstance(v, Attribute) else v[at:at + PART_ROWS] for v in values]
        yield encode_json_columns(columns, [Attribute(p, v.name) if isinstance(v, Attribute) else p
                                            for p, v in zip(part, values)])


def write_chunks(out: IO[str], chunks: Iterable[str | bytes | memoryview], columns: Sequence[str], fmt: str) -> None:
    """One JSON array or CSV file from the pieces :func:`encode_chunk` (or, UTF-8, :func:`encode_json_columns`
    and :func:`encode_json_parts`) made, in order (each written as it comes)."""
    if fmt == "json":
        out.write("[")
        first = True
        for chunk in chunks:
            if chunk:
                if not first:
                    out.write(", ")
                _write_text(out, chunk)
                first = False
        out.write("]\n")
    elif fmt == "csv":
        csv.writer(out, lineterminator="\n").writerow(columns)
        for chunk in chunks:
            out.write(chunk)
    else:
        raise ValueError(f"no chunked form of {fmt!r}")


def _write_text(out: IO[str], text: str | bytes | memoryview) -> None:
    """Write text, or UTF-8 bytes (or a view of them): to a UTF-8 stream's own buffer as they are (not
    decoded to be encoded again)."""
    if isinstance(text, str):
        out.write(text)
        return
    buffer = getattr(out, "buffer", None)
    if buffer is None or codecs.lookup(out.encoding or "ascii").name != "utf-8":
        out.write(str(text, "utf-8"))
        return
    out.flush()
    buffer.write(text)


def _rich_table(out: IO[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None,
                numeric: set[str], hex_columns: set[str]) -> None:
    """A boxed table whose name column (the first text column) has priority over the width.

    As ``report`` does: a text column that is empty in every row, or holds
    one value in every row, is left out (a constant's value joins the
    title); names wrap after ``::`` or a space, never inside an identifier;
    when the other columns leave the names too little room, their headings
    wrap after ``_`` (numbers never wrap).
    """
    from rich.markup import escape
    from rich.table import Table

    numbers = numeric | hex_columns
    texts = [[_cell(row[c], c in hex_columns) for c in columns] for row in rows]
    name = next((i for i, c in enumerate(columns) if c not in numbers), None)
    shown, constant = _columns_to_show(columns, texts, name, numbers)
    if constant:
        said = ", ".join(f"{columns[i]} {value}" for i, value in constant)
        title = f"{title}, {said}" if title else said
    terminal = console(out)
    headings = {i: columns[i] for i in shown}
    width = None
    least: dict[int, int] = {}
    if name is not None:
        longest = max((len(row[name]) for row in texts), default=0)
        width = name_width(terminal.width, _widths(headings, texts, name).values())
        if width < longest:  # squeeze the headings, then the other text columns, not the names
            headings = {i: h if i == name else wrap_name(h, max((len(row[i]) for row in texts), default=1),
                                                         _HEADING_BREAKS) for i, h in headings.items()}
            natural = _widths(headings, texts, name)
            least = {i: w if columns[i] in numbers else min(w, _least_width(headings[i], [row[i] for row in texts]))
                     for i, w in natural.items()}
            width = name_width(terminal.width, least.values())
            identifier = max((len(part) for row in texts for part in _BREAKS.split(row[name])), default=0)
            if width < identifier:  # still an identifier cut: the other text columns' words yield first
                least = {i: w if columns[i] in numbers else min(w, max(TEXT_FLOOR, *map(len, headings[i].split())))
                         for i, w in natural.items()}
                width = name_width(terminal.width, least.values())
            width = min(longest, width)
        else:
            width = None  # every name fits on one line: the column takes the width it needs
    table = Table(title=escape(title) if title else None, show_lines=False, header_style="bold")
    for i in shown:
        is_number = columns[i] in numbers
        # Numbers never wrap mid-digit; names fold where they must.
        table.add_column(escape(headings[i]), justify="right" if is_number else "left", overflow="fold",
                         no_wrap=is_number, min_width=width if i == name else None,
                         max_width=width if i == name else least.get(i))
    for row in texts:
        table.add_row(*(escape(wrap_name(row[i], width) if i == name and width else row[i]) for i in shown))
    terminal.print(table)


def _least_width(heading: str, cells: list[str]) -> int:
    """How narrow a text column other than the name may be squeezed: its longest word, heading line,
    or :data:`TEXT_FLOOR`, so a module name or a section name is not cut."""
    words = (len(word) for text in [heading, *cells] for word in text.split())
    return max(TEXT_FLOOR, *words)


def _widths(headings: Mapping[int, str], texts: list[list[str]], name: int) -> dict[int, int]:
    """The natural width of each shown column but the name: its widest heading line or cell."""
    return {i: max(len(line) for text in [heading, *(row[i] for row in texts)] for line in text.split("\n"))
            for i, heading in headings.items() if i != name}


def _cell(value: Any, in_hex: bool) -> str:
    if value is None:
        return ""
    if in_hex and isinstance(value, int):
        return f"{value:#x}"
    return str(value)


def _columns_to_show(columns: Sequence[str], texts: list[list[str]], name: int | None,
                     numbers: set[str]) -> tuple[list[int], list[tuple[int, str]]]:
    """Indices of the columns a terminal table shows, and the (index, value) of the constant ones it leaves out.

    Empty columns go, and constant text columns other than the name, only
    over more than one row: one row's values are its own, not a constant.
    """
    if len(texts) < 2:
        return list(range(len(columns))), []
    shown, constant = [], []
    for i, column in enumerate(columns):
        values = {row[i] for row in texts}
        if i == name or (len(values) > 1 or (column in numbers and values != {""})):
            shown.append(i)
        elif values != {""}:
            constant.append((i, values.pop()))
    return shown, constant


#: Where a Rust or C++ path may break: after ``::`` or a space, never inside an identifier.
_BREAKS = re.compile(r"(?<=::)|(?<= )")
#: Where a column heading (``before_pct``) may break.
_HEADING_BREAKS = re.compile(r"(?<=_)")
#: The narrowest a name column is made, however many other columns there are.
MIN_NAME_WIDTH = 16
#: The narrowest other text columns are squeezed to, for the name column's sake.
TEXT_FLOOR = 8


def wrap_name(name: str, width: int, breaks: re.Pattern[str] = _BREAKS) -> str:
    """``name`` on lines of at most ``width`` characters, broken after ``::`` or a space (or ``breaks``).

    A part longer than ``width`` on its own (one identifier) keeps its line
    whole: the table folds it there, the only place left.
    """
    lines, line = [], ""
    for part in breaks.split(name):
        if line and len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    lines.append(line)
    return "\n".join(lines)


def name_width(total: int, others: Iterable[int]) -> int:
    """The width left to the name column of a boxed rich table ``total`` wide, the other columns'
    contents ``others`` wide (each takes two cells of padding and one of border, plus the last border)."""
    return max(MIN_NAME_WIDTH, total - 1 - sum(w + 3 for w in others) - 3)


#: Line width for a table written to a file or a pipe: wide enough that rows do not fold.
UNFOLDED_WIDTH = 400


def console(out: IO[str]) -> Console:
    """A rich console writing to ``out``: as wide as the terminal, or ``COLUMNS``.

    Rich draws 80 columns when ``out`` is not a terminal, which folds a
    table of Rust names into unreadable fragments in a file; there, without
    ``COLUMNS``, the table takes the width it needs (up to :data:`UNFOLDED_WIDTH`).
    """
    from rich.console import Console

    isatty = getattr(out, "isatty", None)
    terminal = bool(isatty and isatty())
    width = None if terminal or os.environ.get("COLUMNS") else UNFOLDED_WIDTH
    return Console(file=out, soft_wrap=False, width=width)
