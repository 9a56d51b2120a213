"""The command-line face of reading inputs: the arguments every reading command shares, and the options they give."""

from __future__ import annotations

import argparse
import os

from tracebridge.readers.placement import BASE_HELP, add_old_kernel_linker_argument, one_module, parse_base_spec
from tracebridge.readers.dtrace_printouts import RULES
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import format_names
from tracebridge.support import spool


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The inputs and the options that say how to read them, for every reading command."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=spool.readable,
                        help="profile files: folded stacks, DTrace output, pmcstat output (auto-detected), "
                             "or a bundle directory written by `tracebridge record`; - for standard input")
    group = parser.add_argument_group("reading inputs")
    group.add_argument("--input-format", choices=format_names(), dest="input_format",
                       help="read every input as this format instead of detecting it")
    group.add_argument("--module", action="append", default=[], metavar="MODULE.ko", dest="modules",
                       help="kernel module whose hex frames should be named (repeatable)")
    group.add_argument("--base", action="append", default=[], type=parse_base_spec, metavar="[MODULE=]ADDR",
                       dest="bases", help=BASE_HELP)
    group.add_argument("--inline", action="store_true",
                       help="expand every module frame into its inline chain from the module's DWARF (inlined "
                            "frames end in _[i]); DWARF from --debug, else NAME.ko.debug or NAME.ko.full beside "
                            "the module, else /usr/lib/debug")
    group.add_argument("--debug", action="append", default=[], metavar="FILE", dest="debug",
                       help="debug file (NAME.ko.debug) of each --module, in order, for --inline")
    group.add_argument("--kldstat", metavar="FILE", help="saved `kldstat -v` output giving the load addresses")
    group.add_argument("--probe-map", metavar="FILE",
                       help="probe map from `tracebridge gen-probes` to name probes written with `?` for `$`")
    add_old_kernel_linker_argument(group)
    group.add_argument("--bundle-kernel", action="store_true",
                       help="with a bundle: also name kernel PCs from the kernel its manifest names, when that "
                            "path holds a regular file with the recorded SHA-256 (read on the machine that ran)")
    group.add_argument("--value-kind", type=_value_kinds, default=("count",), metavar="KIND[,KIND...]",
                       help="what the values of DTrace scalar aggregations are, in the order printed: count "
                            "(default), sum, avg, min or max; the last one given repeats.  avg/min/max values "
                            "are not samples; all decide how equal keys combine")
    group.add_argument("--strict", action="store_true",
                       help="a module the capture does not fit (wrong load address, another build) is an error "
                            "(exit 2), not a warning")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="print how each module's frames were checked against the capture (standard error)")
    group.add_argument("--aggregation", type=int, metavar="N",
                       help="make the profile of the Nth aggregation printed (default: the first whose values "
                            "add up: count, sum or a histogram)")
    group.add_argument("--printouts", choices=RULES,
                       help="how printouts of one DTrace aggregation (a tick probe's printa) combine: sum (each is "
                            "a delta, as after trunc()), last (each is a running total) or each (kept apart as "
                            "aggregations of their own). Default: last when no value ever falls from one printout "
                            "to the next, else sum; the rule applied is named on standard error")


def _value_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(","))
    unknown = [k for k in kinds if k not in ("count", "sum", "avg", "min", "max")]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown value kind {unknown[0]!r} (count, sum, avg, min, max)")
    return kinds


def options_from_args(args: argparse.Namespace) -> LoadOptions:
    """Reading options from :func:`add_input_arguments`'s; offsets are kept if ``--include-offset`` asks."""
    placed = dict(one_module(args.bases, args.modules))
    return LoadOptions(format=args.input_format, modules=tuple(args.modules),
                       bases=tuple(placed.get(m) for m in args.modules) if placed else (),
                       kldstat=args.kldstat, probe_map=args.probe_map,
                       old_kernel_linker=args.old_kernel_linker, bundle_kernel=args.bundle_kernel,
                       offsets=getattr(args, "include_offset", False),
                       inline=args.inline or getattr(args, "by", None) == "line",
                       inline_lines=getattr(args, "by", None) == "line", debug=tuple(args.debug),
                       value_kinds=args.value_kind, aggregation=args.aggregation,
                       strict=args.strict, verbose=args.verbose, printouts=args.printouts)


def input_paths(args: argparse.Namespace) -> list[str]:
    """Every file the command reads (outputs must not overwrite any of them)."""
    extra = [p for p in (args.kldstat, args.probe_map) if p]
    if not any(os.path.isdir(p) for p in args.inputs):  # no bundle among them: its reader need not be imported
        return list(args.inputs) + list(args.modules) + extra
    from tracebridge.readers.bundle import bundle_paths

    return [f for p in args.inputs for f in bundle_paths(p)] + list(args.modules) + extra
