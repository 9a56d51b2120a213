"""``tracebridge fold``: any profile input to folded stacks (or speedscope, pprof, Parquet).

``--format speedscope|pprof|parquet`` writes the same stacks as a
speedscope file, a pprof profile (``go tool pprof``, Pyroscope, Parca) or a
Parquet table of one row per stack (DuckDB, Spark) instead of folded text:
all are "the stacks, labelled", with the same label options, so one command
serves them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os

from tracebridge.cli.common import add_run_arguments, require_pyarrow, run_of
from tracebridge.support import gcpause, heap, quickexit
from tracebridge.support.errors import UsageError
from tracebridge.cli.inputs import add_input_arguments, input_paths, options_from_args
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_profile, lone_callgraph
from tracebridge.profile.labels import add_label_arguments, label_options_from_args
from tracebridge.support.outputs import first_made, open_output

FORMATS = ("folded", "speedscope", "pprof", "parquet")
#: Formats written as bytes, never to a terminal.
BINARY = ("pprof", "parquet")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fold", help="convert profile inputs to folded stacks, speedscope JSON, pprof or Parquet",
        description="Read DTrace stack/aggregation/flow output, folded stacks or pmcstat output, name every frame "
                    "(rustc-demangle names; hex frames resolved from --module/--base or --kldstat) and write "
                    "folded stacks (root first, ';'-separated, a space, the count; ';' inside a name is "
                    "written '\\;' and a backslash '\\\\'), a speedscope JSON file, a gzip-compressed pprof "
                    "profile.proto (go tool pprof, Grafana Pyroscope, Parca) or a Parquet table of one row "
                    "per stack tagged with --run-id/--host (DuckDB, Spark; schema in docs/formats.md).")
    add_input_arguments(parser)
    add_label_arguments(parser)
    parser.add_argument("--format", "-f", choices=FORMATS, default="folded",
                        help="output format (default folded); pprof and parquet are binary: give -o FILE")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here instead of standard output (replaced atomically)")
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # A big input is read in blocks of megabytes and folded to texts of megabytes: see heap.
    heap.keep_freed()
    # A big input's distinct frames and stacks are hundreds of thousands of small acyclic objects: see gcpause.
    with gcpause.paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.format in BINARY and not args.output:
        raise UsageError(f"--format {args.format} writes a binary file: give it with -o FILE")
    if args.format == "parquet":
        require_pyarrow()
    options = options_from_args(args)
    if args.format == "folded" and _folded_in_parts(args, options):
        return 0
    if args.format == "pprof":
        # pprof keeps each sample's CPU and process where the input says, each location's address
        # (the frame's offset), and with --inline each inlined line's file:line.
        options = dataclasses.replace(options, sample_labels=True, offsets=True, inline_lines=options.inline)
    profile = load_profile(args.inputs, options)
    if not profile.stacks:
        raise UsageError("the inputs hold no stacks to fold, only aggregations whose values are not samples "
                         "(see them with `tracebridge report`, or pick one with --aggregation N)")
    labels = label_options_from_args(args)
    if args.format in BINARY:
        _write_binary(args, profile, labels)
        return 0
    with open_output(args.output, inputs=input_paths(args)) as out:
        if args.format == "speedscope":
            from tracebridge.render.speedscope import write_speedscope

            write_speedscope(out, profile, labels)
        else:
            from tracebridge.render.folded import write_folded

            write_folded(out, profile, labels)
    quickexit.keep(profile)  # its frames and stacks, not to free one by one
    return 0


def _folded_in_parts(args: argparse.Namespace, options: LoadOptions) -> bool:
    """Write a big ``pmcstat -G`` callgraph's folded stacks made on two cores, if the input is one (else False).

    Its size is looked at first: any other input is read once, by :func:`load_profile`, not also detected here."""
    from tracebridge.readers.pmcgraph import worth_cutting

    if len(args.inputs) != 1 or not os.path.isfile(args.inputs[0]) or not worth_cutting(args.inputs[0]):
        return False
    source = lone_callgraph(args.inputs, options)
    if source is None:
        return False
    from tracebridge.render.folded import callgraph_folded_parts, write_folded_parts

    texts = callgraph_folded_parts(source, label_options_from_args(args))
    if texts is None:
        return False
    # The first text is made (the input read, its errors raised) before the output is opened.
    with first_made(texts) as texts:
        if args.output in (None, "-"):  # standard output's own encoding, as write_folded writes it there
            text = io.BytesIO()
            write_folded_parts(text, texts)
            with open_output(args.output) as out:
                out.write(text.getvalue().decode())
            return True
        with open_output(args.output, "wb", inputs=input_paths(args)) as out:  # the text's UTF-8, as it is
            write_folded_parts(out, texts)
    return True


def _write_binary(args: argparse.Namespace, profile, labels) -> None:
    with open_output(args.output, "wb", inputs=input_paths(args)) as out:
        if args.format == "pprof":
            from tracebridge.render.pprof import write_pprof

            write_pprof(out, profile, labels)
        else:
            from tracebridge.render.parquet_profile import write_profile_parquet

            write_profile_parquet(out, profile, run_of(args, profile.metadata), labels)
