"""``tracebridge fold``: any profile input to folded stacks (or speedscope JSON).

``--format speedscope`` writes the same stacks as a speedscope file
instead of folded text: both are "the stacks, labelled", with the same
label options, so one command serves both.
"""

from __future__ import annotations

import argparse

from tracebridge.support.errors import UsageError
from tracebridge.cli.inputs import add_input_arguments, input_paths, options_from_args
from tracebridge.readers.registry import load_profile
from tracebridge.profile.labels import add_label_arguments, label_options_from_args
from tracebridge.support.outputs import open_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fold", help="convert profile inputs to folded stacks or speedscope JSON",
        description="Read DTrace stack/aggregation/flow output, folded stacks or pmcstat output, name every frame "
                    "(rustc-demangle names; hex frames resolved from --module/--base or --kldstat) and write "
                    "folded stacks (root first, ';'-separated, a space, the count; ';' inside a name is "
                    "written '\\;' and a backslash '\\\\') or a speedscope JSON file.")
    add_input_arguments(parser)
    add_label_arguments(parser)
    parser.add_argument("--format", "-f", choices=("folded", "speedscope"), default="folded",
                        help="output format (default folded)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here instead of standard output (replaced atomically)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.inputs, options_from_args(args))
    if not profile.stacks:
        raise UsageError("the inputs hold no stacks to fold, only aggregations whose values are not samples "
                         "(see them with `tracebridge report`, or pick one with --aggregation N)")
    labels = label_options_from_args(args)
    with open_output(args.output, inputs=input_paths(args)) as out:
        if args.format == "speedscope":
            from tracebridge.render.speedscope import write_speedscope

            write_speedscope(out, profile, labels)
        else:
            from tracebridge.render.folded import write_folded

            write_folded(out, profile, labels)
    return 0
