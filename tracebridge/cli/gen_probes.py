"""``tracebridge gen-probes``: a ready-to-run D script for a module's functions."""

from __future__ import annotations

import argparse

from tracebridge.support import gcpause
from tracebridge.cli.common import add_base_argument, add_module_argument, load_module
from tracebridge.cli.fbt_options import add_fbt_arguments, fbt_options_from_args
from tracebridge.probes.dscript import TEMPLATES, part_files
from tracebridge.probes.generate import generate
from tracebridge.support.errors import UsageError
from tracebridge.support.outputs import check_not_input, open_output
from tracebridge.image.select import add_selection_arguments, selection_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gen-probes", help="write a DTrace script probing a module's functions through FBT",
        description="Write a D script that traces the module's functions with the FBT probes FreeBSD will "
                    "create for them (see 'tracebridge symbols' for which those are), with probe "
                    "descriptions libdtrace accepts even for Rust names ('$' becomes the glob '?', names "
                    "over 191 characters become a checked prefix*suffix glob). Functions without the "
                    "probes the template needs are listed in a comment. Templates: count (calls per "
                    "function), latency (entry-to-return time, recursion-safe), flow (indented calls per "
                    "thread), stack (kernel stacks sampled at 997 Hz in the module), args (arguments and "
                    "return values).")
    add_module_argument(parser)
    parser.add_argument("--template", "-t", choices=TEMPLATES, default="count",
                        help="what the script measures (default count)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the script here (default standard output); a script too large for one "
                             "DTrace program is split into FILE, FILE.part2, ... (named in its header)")
    parser.add_argument("--map", metavar="FILE.json",
                        help="also write the probe map: each traced function's descriptions, mangled and "
                             "demangled names, offset and probes")
    parser.add_argument("--module-name", metavar="NAME",
                        help="FBT's module name if the file will be loaded under another name "
                             "(default: the file name without .ko)")
    add_base_argument(parser)
    add_fbt_arguments(parser)
    add_selection_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Hundreds of thousands of small acyclic objects on a big module: see gcpause.
    with gcpause.paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.module_name is not None and not args.module_name:
        raise UsageError("--module-name must not be empty")
    for path in (args.output, args.map):
        if path not in (None, "-"):
            check_not_input(path, [args.module])
    if args.map is not None and args.map == args.output:
        raise UsageError("--map and -o name the same file")
    generated = generate(load_module(args), args.template, base=args.base, modname=args.module_name,
                         options=fbt_options_from_args(args, args.base), selection=selection_from_args(args))
    files = part_files(args.output, len(generated.script.parts))
    for index, path in enumerate(files):
        with open_output(None if path == "-" else path, inputs=[args.module]) as out:
            out.write(generated.script.text(index, files))
    if args.map is not None:
        generated.probe_map(files).save(args.map, inputs=[args.module])
    return 0
