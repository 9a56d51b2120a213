"""``tracebridge flamegraph``: an interactive SVG flame graph of any profile input."""

from __future__ import annotations

import argparse

from tracebridge.cli.common import int_at_least, non_negative_number
from tracebridge.cli.inputs import add_input_arguments, input_paths, options_from_args
from tracebridge.readers.registry import load_profile
from tracebridge.profile.labels import add_label_arguments, label_options_from_args
from tracebridge.support.outputs import open_output
from tracebridge.render.palettes import PALETTES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flamegraph", help="draw an interactive SVG flame graph (Rust frames coloured apart)",
        description="Draw the stacks of the inputs as an interactive SVG flame graph: click a frame to zoom, "
                    "'Reset Zoom' to go back, 'Search' (or Ctrl-F) for a regular expression or, with '.*' "
                    "switched off, plain text, with the share of samples matched; each frame's tooltip has "
                    "the demangled and mangled names, the module, samples and percent; the instances of a "
                    "generic that share a name are one frame and the tooltip lists their symbols; with "
                    "--inline, a frame the module's DWARF resolved gives its source file:line too.  With "
                    "the default 'rust' colours, Rust frames are orange, kernel C crimson, other C yellow "
                    "and unresolved addresses grey.  Folded input holds names only: there, a name with a "
                    "'::' path counts as Rust and other names as C of no known module (pale yellow).")
    add_input_arguments(parser)
    add_label_arguments(parser)
    add_graph_arguments(parser)
    parser.add_argument("--colors", choices=PALETTES, default="rust",
                        help="palette: rust (by language, default) or one of flamegraph.pl's")
    parser.add_argument("-o", "--output", metavar="FILE.svg",
                        help="write here instead of standard output (replaced atomically)")
    parser.set_defaults(func=run)


def add_graph_arguments(parser: argparse.ArgumentParser, *,
                        title: str = "'Flame Graph', 'Icicle Graph' when inverted",
                        subtitle: str = "the inputs and the sample count") -> None:
    """The look of a graph, as flamegraph.pl names it; shared with ``tracebridge diff``.

    ``title`` and ``subtitle`` say what the command draws when none is given.
    """
    group = parser.add_argument_group("drawing")
    group.add_argument("--title", help=f"heading (default {title})")
    group.add_argument("--subtitle", help=f"second line (default: {subtitle})")
    group.add_argument("--width", type=int_at_least(40), default=1200, metavar="PX",
                       help="image width in pixels (default 1200)")
    group.add_argument("--minwidth", type=non_negative_number, default=0.1, metavar="PX",
                       help="leave out frames narrower than this, merging runs of them into one grey box "
                            "(default 0.1)")
    group.add_argument("--inverted", action="store_true", help="icicle graph: root at the top")
    group.add_argument("--count-name", metavar="WORD", help="what the counts are (default: the input's unit)")


def graph_options(args: argparse.Namespace, **extra):
    from tracebridge.render.flamegraph import GraphOptions

    return GraphOptions(title=args.title, subtitle=args.subtitle, width=args.width, min_width=args.minwidth,
                        inverted=args.inverted, count_name=args.count_name, **extra)


def run(args: argparse.Namespace) -> int:
    from tracebridge.render.flamegraph import render_flamegraph

    options = options_from_args(args)
    options.inline_lines = options.inline  # the tooltips give each frame's file:line
    profile = load_profile(args.inputs, options)
    svg = render_flamegraph(profile, graph_options(args, colors=args.colors), label_options_from_args(args))
    with open_output(args.output, inputs=input_paths(args)) as out:
        out.write(svg)
    return 0
