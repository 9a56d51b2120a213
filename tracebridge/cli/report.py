"""``tracebridge report``: top functions (or crates, modules) by self and total weight.

The weight is what the capture measures, and the heading names it: samples
of a profile probe or pmcstat, calls of an FBT ``count()``, nanoseconds of a
``sum()`` of times (the latency template).

The terminal form is a rich table of the top rows, followed by the
histograms of as many keys of ``quantize``/``lquantize``/``llquantize``
inputs, largest first, drawn as DTrace draws them, and the values of
scalar aggregations that are not samples (``--value-kind avg|min|max``).  ``--format csv|json|parquet`` writes the
whole table chosen by ``--by`` for machines; ``--by bucket`` and
``--by value`` select the histogram buckets and the scalar values.  Parquet
rows start with ``run_id`` and ``host`` (``--run-id``, ``--host``), so the
reports of many runs are one table.
"""

from __future__ import annotations

import argparse
import math
from typing import IO

from tracebridge.cli.common import add_csv_raw_argument, add_run_arguments, require_pyarrow, run_of
from tracebridge.support.errors import UsageError
from tracebridge.cli.inputs import add_input_arguments, input_paths, options_from_args
from tracebridge.readers.registry import load_inputs
from tracebridge.profile.labels import LabelOptions, add_label_arguments, label_options_from_args
from tracebridge.support.outputs import open_output

FORMATS = ("table", "csv", "json", "parquet")
BY = ("function", "crate", "module", "line", "bucket", "value")
BAR_WIDTH = 40


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="tables of self/total weight (samples, calls or time) per function, crate or module "
                       "(and DTrace histograms)",
        description="Read profile inputs like `tracebridge fold` and report where the weight went: self "
                    "(leaf) and total (anywhere on the stack) per function, crate or module, with "
                    "percentages.  The weight is what the capture measures, named in the heading: samples "
                    "(a profile probe's stack(), pmcstat), calls (a count() keyed by function, the count "
                    "template), nanoseconds of time (a sum() of latencies: the latency template).  "
                    "Histograms of quantize-family DTrace aggregations are drawn after the table.")
    add_input_arguments(parser)
    add_label_arguments(parser)
    parser.add_argument("--by", choices=BY, default="function",
                        help="group by function (default), crate, module or source line (file:line from the "
                             "module's DWARF, as --inline: self is the innermost frame's line, total every "
                             "line on the stack, call sites included); or list histogram buckets / scalar "
                             "aggregation values")
    parser.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default table)")
    add_csv_raw_argument(parser)
    parser.add_argument("--top", type=int, default=25, metavar="N",
                        help="rows in the terminal table and histograms drawn after it (default 25; 0: all); "
                             "other formats get all rows")
    parser.add_argument("--sort", choices=("self", "total"), default="self", help="row order (default self)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here instead of standard output (replaced atomically)")
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracebridge.render import report
    if args.top < 0:
        raise UsageError("--top must be 0 (all rows) or more")
    if args.format == "parquet" and not args.output:
        raise UsageError("--format parquet writes a binary file: give it with -o FILE")
    if args.format == "parquet":
        require_pyarrow()
    loaded = load_inputs(args.inputs, options_from_args(args))
    labels = label_options_from_args(args)
    if args.by == "bucket":
        table = report.bucket_table(loaded.aggregations, labels)
    elif args.by == "value":
        table = report.value_table(loaded.aggregations, labels)
    else:
        table = report.summary(loaded.profile, args.by, labels)
        if args.sort == "total":
            table = table.sort_values(["total", "self"], ascending=False, kind="stable").reset_index(drop=True)
    if args.format == "parquet":
        import pandas as pd

        run = run_of(args, loaded.profile.metadata)
        for column, value in (("host", run.host), ("run_id", run.run_id)):  # strings even when unknown
            table.insert(0, column, pd.array([value] * len(table), dtype="string"))
        with open_output(args.output, "wb", inputs=input_paths(args)) as out:
            table.to_parquet(out, index=False)
        return 0
    with open_output(args.output, inputs=input_paths(args)) as out:
        if args.format != "table":
            from tracebridge.render.tables import write_rows

            write_rows(out, _records(table), list(table.columns), args.format, csv_raw=args.csv_raw)
        else:
            _terminal(out, loaded, table, args, labels)
    return 0


def _records(table) -> list[dict]:
    """Rows with plain Python values (integral weights as int, missing as None) for JSON and CSV."""
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and value.is_integer() and not key.endswith("percent"):
                row[key] = int(value)
    return rows


def _terminal(out: IO[str], loaded, table, args: argparse.Namespace, labels: LabelOptions) -> None:
    from rich.markup import escape
    from rich.table import Table

    from tracebridge.render import report, tables
    from tracebridge.render.report import key_text
    from tracebridge.render.tables import write_rows

    shown = table if args.top == 0 else table.head(args.top)
    if args.by in ("bucket", "value"):
        write_rows(out, _records(shown), list(shown.columns), "table", numeric=("aggregation", "low", "count", "value"))
        return
    console = tables.console(out)
    profile = loaded.profile
    histograms = [(row, a.kind) for a in loaded.aggregations if a.histograms for row in a.rows]
    if profile.stacks:
        columns, constant = _columns_to_show(shown, report.GROUPS[args.by])
        unit = report.unit_heading(profile.metadata.unit)
        title = (f"{escape(profile.metadata.source)}: {_number(profile.total)} {unit}{profile.metadata.over}, "
                 f"top {len(shown)} of {len(table)} by {args.by}"
                 + "".join(f", {escape(c)} {escape(str(v))}" for c, v in constant.items() if v))
        # The heading on a line of its own: as a table title it would wrap to a narrow table's width.
        console.print(title, highlight=False)
        suffix = report.column_suffix(profile.metadata.unit)
        headings = {c: c.replace("_percent", " %") + (suffix if c in ("self", "total") else "") for c in columns}
        cells = [[escape(str(v)) if c not in report.MEASURES else
                  f"{v:.1f}%" if c.endswith("percent") else _number(v) for c, v in zip(table.columns, row)
                  if c in headings] for row in shown.itertuples(index=False)]
        # The name column (the first) has priority: the others keep their width, names wrap at `::`.
        others = [max(len(headings[c]), *(len(r[i]) for r in cells)) for i, c in enumerate(columns) if i]
        width = tables.name_width(console.width, others)
        rich_table = Table(header_style="bold")
        for i, column in enumerate(columns):
            rich_table.add_column(headings[column], justify="right" if column in report.MEASURES else "left",
                                  overflow="fold", no_wrap=bool(i), max_width=None if i else width)
        for row in cells:
            rich_table.add_row(tables.wrap_name(row[0], width), *row[1:])
        console.print(rich_table)
        _row_histograms(out, console, histograms, list(shown["name"]) if args.by == "function" else [], labels)
    else:
        # No table: the histograms alone, largest first, ties by key (DTrace prints all, smallest first).
        histograms.sort(key=lambda pair: (-pair[0].value.total, key_text(pair[0].keys, labels)))
        for row, kind in histograms if args.top == 0 else histograms[:args.top]:
            console.print(_histogram(row, kind, labels))
    values = report.value_table([a for a in loaded.aggregations if a.kind in ("avg", "min", "max")], labels)
    if len(values):
        write_rows(out, _records(values), list(values.columns), "table", title="aggregation values",
                   numeric=("aggregation", "value"))


def _columns_to_show(shown, keys: tuple[str, ...]) -> tuple[list[str], dict]:
    """The columns of the terminal table: the first key and the measures always; another key column
    only when its shown rows differ (an empty or constant one is dropped, its value said in the heading)."""
    constant = {c: shown[c].iloc[0] for c in keys[1:] if len(shown) > 1 and shown[c].nunique(dropna=False) == 1}
    return [c for c in shown.columns if c not in constant], constant


def _row_histograms(out: IO[str], console, histograms: list, names: list[str], labels: LabelOptions) -> None:
    """Under a table, the histograms of its rows only, in its order: a histogram keyed by another
    grouping (``--by crate``, several keys) is said to be left out, not drawn as if it were a row's."""
    from tracebridge.render.report import key_text

    by_key: dict[str, list] = {}
    for row, kind in histograms:
        by_key.setdefault(key_text(row.keys, labels), []).append((row, kind))
    for name in names:
        for row, kind in by_key.pop(name, []):
            console.print(_histogram(row, kind, labels))
    left = sum(map(len, by_key.values()))
    if left:
        print(f"{left} histogram(s) of keys that are not rows shown above left out "
              "(--top 0 shows every row; --by bucket lists every histogram)", file=out)


def _histogram(row, kind: str, labels: LabelOptions):
    """One histogram as DTrace draws it: value, a 40-column bar, count."""
    from rich.markup import escape
    from rich.table import Table

    from tracebridge.render.report import key_text

    histogram = row.value
    total = sum(abs(b.count) for b in histogram.buckets) or 1
    key = key_text(row.keys, labels) or "(no key)"
    table = Table(title=f"{escape(key)}  [dim]{kind}, {histogram.total} values[/dim]", header_style="bold",
                  box=None, title_justify="left")
    table.add_column("value", justify="right")
    table.add_column("distribution", no_wrap=True)
    table.add_column("count", justify="right")
    for bucket in histogram.buckets:
        depth = math.floor(abs(bucket.count) * BAR_WIDTH / total + 0.5)
        table.add_row(escape(bucket.label), "|" + "@" * depth + " " * (BAR_WIDTH - depth), str(bucket.count))
    return table


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
