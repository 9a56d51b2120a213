"""Writing rows as a terminal table, JSON or CSV: one writer for every command.

Rows are plain mappings from column name to a JSON-compatible value; the
column list fixes the order (and the exact JSON keys, which are part of the
documented interface).  rich is imported only for the terminal form, so a
JSON or CSV run does not pay for it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

FORMATS = ("table", "json", "csv")


def write_rows(out: IO[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
               *, title: str | None = None, numeric: Iterable[str] = (), hex_columns: Iterable[str] = ()) -> None:
    """Write ``rows`` to ``out`` in ``fmt`` (``table``, ``json`` or ``csv``).

    ``hex_columns`` are integers shown in hex in the terminal table only;
    JSON and CSV keep them as plain integers for machines.
    """
    if fmt == "json":
        # json.dumps (C encoder) rather than json.dump, which encodes in Python.
        if rows and list(rows[0]) != list(columns):
            rows = [{c: row[c] for c in columns} for row in rows]
        out.write(json.dumps(rows, ensure_ascii=False))
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
    elif fmt == "table":
        _rich_table(out, rows, columns, title, set(numeric), set(hex_columns))
    else:  # argparse restricts choices; this is a programming error
        raise ValueError(f"unknown format {fmt!r}")


def _rich_table(out: IO[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None,
                numeric: set[str], hex_columns: set[str]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        is_number = column in numeric | hex_columns
        # Numbers never wrap mid-digit; names fold where they must.
        table.add_column(column, justify="right" if is_number else "left", overflow="fold", no_wrap=is_number)
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            if value is None:
                cells.append("")
            elif column in hex_columns and isinstance(value, int):
                cells.append(f"{value:#x}")
            else:
                # Names come from the module: never let them be read as markup.
                cells.append(escape(str(value)))
        table.add_row(*cells)
    Console(file=out, soft_wrap=False).print(table)
