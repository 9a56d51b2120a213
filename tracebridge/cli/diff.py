"""``tracebridge diff``: a differential flame graph and a table of what changed most."""

from __future__ import annotations

import argparse

from tracebridge.cli.common import add_csv_raw_argument
from tracebridge.cli.flamegraph import add_graph_arguments, graph_options
from tracebridge.support.errors import UsageError
from tracebridge.cli.inputs import add_input_arguments, input_paths, options_from_args
from tracebridge.readers.registry import load_profile
from tracebridge.support.outputs import open_output
from tracebridge.render.tables import FORMATS, write_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diff", help="compare two profiles: differential flame graph and top changes",
        description="Compare BEFORE and AFTER (two inputs, in that order; e.g. the C if_em driver and the "
                    "Rust if_rem driver under the same load).  Prints the functions whose samples changed "
                    "most; with -o, also draws a flame graph on AFTER's shape (widths are AFTER's samples, "
                    "as flamegraph.pl's differential graphs) coloured red where a frame grew and blue where "
                    "it shrank; each frame's tooltip gives both profiles' counts and, with --inline, the "
                    "source file:line of frames the module's DWARF resolved.  Frames are matched by "
                    "demangled name.")
    add_input_arguments(parser)
    group = parser.add_argument_group("comparing")
    group.add_argument("--normalize", action="store_true",
                       help="compare shares: scale BEFORE to AFTER's total sample count")
    group.add_argument("--by", choices=("self", "total"), default="self",
                       help="colour and rank by the change in a frame's own samples (self, default, as "
                            "flamegraph.pl) or in everything under it (total)")
    group.add_argument("--shape", choices=("after", "before"), default="after",
                       help="draw on AFTER's shape (default) or BEFORE's (shows what disappeared)")
    group.add_argument("--map-names", metavar="FILE",
                       help="FROM<TAB>TO lines: compare differently named functions as one "
                            "(e.g. em_rxeof and the Rust function that replaced it)")
    group.add_argument("--top", type=int, default=20, metavar="N",
                       help="rows of the table (default 20; 0 for all)")
    add_graph_arguments(parser, title="'Differential Flame Graph'",
                        subtitle="the inputs, the shape drawn and what the colours mean")
    parser.add_argument("--format", "-f", choices=FORMATS, default="table", help="table format (default table)")
    add_csv_raw_argument(parser)
    parser.add_argument("-o", "--output", metavar="FILE.svg", help="write the differential flame graph here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracebridge.render.diffgraph import (CHANGE_COLUMNS, NORMALIZED_COLUMNS, DiffOptions, compare, read_name_map,
                                              render_diff, top_changes)

    if len(args.inputs) != 2:  # a usage error like any other: the usage line first
        args.parser.error(f"diff takes two inputs, BEFORE and AFTER ({len(args.inputs)} given)")
    if args.output == "-":
        raise UsageError("-o - would mix the SVG with the table on standard output: name a file")
    if args.top < 0:
        raise UsageError("--top must be 0 (all) or more")
    options = options_from_args(args)
    options.inline_lines = options.inline  # the SVG's tooltips give each frame's file:line, as flamegraph's do
    before, after = (load_profile([path], options) for path in args.inputs)
    names = read_name_map(args.map_names) if args.map_names else {}
    comparison = compare(before, after, DiffOptions(normalize=args.normalize, shape=args.shape, by=args.by,
                                                    names=names))
    inputs = input_paths(args) + ([args.map_names] if args.map_names else [])
    if args.output is not None:
        svg = render_diff(comparison, graph_options(args))
        with open_output(args.output, inputs=inputs) as out:
            out.write(svg)
    rows = top_changes(comparison, args.top or None)
    unit = after.metadata.unit
    title = (f"Top changes in {args.by} {unit}: {args.inputs[0]} -> {args.inputs[1]}"
             + (" (before_scaled: BEFORE scaled to AFTER's total; delta = after - before_scaled)"
                if args.normalize else ""))
    with open_output(None) as out:
        write_rows(out, rows, NORMALIZED_COLUMNS if args.normalize else CHANGE_COLUMNS, args.format, title=title,
                   numeric=("before", "before_scaled", "after", "delta", "before_pct", "after_pct", "delta_pp"),
                   csv_raw=args.csv_raw)
    return 0
