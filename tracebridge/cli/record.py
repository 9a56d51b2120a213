"""``tracebridge record``: trace a module on the FreeBSD target and write a bundle the readers take whole.

``tracebridge record MODULE.ko [options] [-- WORKLOAD ...]``.  argparse
cannot put options after a positional that is followed by a ``-- COMMAND``
tail (the tail would swallow them), so everything from MODULE.ko on is taken
whole and parsed again here, by a parser with the same options: options may
stand before or after MODULE.ko, and the workload is whatever follows ``--``.
"""

from __future__ import annotations

import argparse
import sys

from tracebridge.cli.common import int_at_least, positive_number
from tracebridge.readers.placement import add_old_kernel_linker_argument
from tracebridge.support.errors import UsageError

DESCRIPTION = """\
One command on the target machine (as root): read `kldstat -v` for the module's
load address, write a D script for it with `tracebridge gen-probes` (or, with
--pmc, sample a hardware event with pmcstat), start dtrace / pmcstat, sample
every thread's CPU usage, run WORKLOAD (or wait --duration seconds, or until
Ctrl-C), stop everything (one SIGINT to dtrace, which then prints its
aggregations), and write OUTPUT/: the tracer's output, a copy of the module,
kldstat.txt, the script and probe map, cpu.csv and manifest.json (tool versions,
uname -a, the module's SHA-256 and load address, exact command lines, times).
Then `tracebridge report OUTPUT`, `flamegraph OUTPUT` or `fold OUTPUT` read it
with no further options.  Exit status: the workload's when it fails, 0 when
Ctrl-C ends the recording, 2 when something is missing (nothing is started)."""
PARSER = {"description": DESCRIPTION, "formatter_class": argparse.RawDescriptionHelpFormatter,
          "usage": "%(prog)s MODULE.ko -o OUTPUT [options] [-- WORKLOAD ...]"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record", help="one-command capture on a FreeBSD machine, written as a bundle directory", **PARSER)
    _add_options(parser)
    parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="OUTPUT", help="the bundle directory to create (required)")
    parser.add_argument("--force", action="store_true",
                        help="write into OUTPUT even if it is not empty (files of the bundle's names are "
                             "replaced, other files are kept)")
    parser.add_argument("--template", "-t", metavar="NAME",
                        help="what the D script measures, a `tracebridge gen-probes` template "
                             "(default stack: kernel stacks sampled at 997 Hz while the module runs)")
    parser.add_argument("--pmc", metavar="EVENT",
                        help="instead of DTrace, sample this hwpmc event system-wide with callchains "
                             "(pmcstat -S EVENT -O pmc.log), e.g. CPU_CLK_UNHALTED.THREAD_P")
    parser.add_argument("--pmc-rate", type=int_at_least(0), metavar="N",
                        help="with --pmc: one sample every N events (pmcstat -n; default pmcstat's 65536)")
    parser.add_argument("--duration", type=positive_number, metavar="S",
                        help="stop after S seconds (ending WORKLOAD if it still runs)")
    parser.add_argument("--interval", type=positive_number, default=1.0, metavar="S",
                        help="seconds between CPU samples (default 1)")
    parser.add_argument("--settle", type=positive_number, default=1.0, metavar="S",
                        help="seconds the tracer runs before WORKLOAD starts (default 1); a tracer that "
                             "fails within them stops the recording")
    add_old_kernel_linker_argument(parser)
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="MODULE.ko [...] [-- WORKLOAD ...]",
                        help="the module to trace (as loaded: matched by file name in kldstat -v), and the "
                             "command to run while tracing, after '--'")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tracebridge.capture.session import Request, record
    from tracebridge.cli.cpu import _exit_status
    from tracebridge.cputime.live import LiveView, QuietView
    from tracebridge.probes.dscript import TEMPLATES

    module, workload = _module_and_workload(args)
    if args.output is None:
        raise UsageError("record needs -o OUTPUT, the bundle directory to write")
    if args.pmc is not None and args.template is not None:
        raise UsageError("--pmc samples with pmcstat and --template writes a D script: give one of them")
    if args.pmc_rate is not None and (args.pmc is None or args.pmc_rate == 0):
        raise UsageError("--pmc-rate needs --pmc EVENT, and a rate of at least 1")
    if args.template is not None and args.template not in TEMPLATES:
        raise UsageError(f"unknown template {args.template!r} (known: {', '.join(TEMPLATES)})")
    request = Request(module=module, output=args.output, template=args.template, pmc_event=args.pmc,
                      pmc_rate=args.pmc_rate, duration=args.duration, interval=args.interval,
                      settle=args.settle, workload=workload, force=args.force,
                      old_kernel_linker=args.old_kernel_linker)
    console = Console(stderr=True, highlight=False)
    view = LiveView(console, args.duration, 10) if console.is_terminal else QuietView()
    result = record(request, view)
    manifest = result.manifest
    sizes = ", ".join(f"{f.name} ({f.bytes:,} B)" for f in manifest.files)
    print(f"tracebridge: {manifest.stopped_by}; wrote {args.output}: {sizes}", file=sys.stderr)
    for note in manifest.notes:
        print(f"tracebridge: note: {note}", file=sys.stderr)
    print(f"tracebridge: read it with: tracebridge report {args.output}", file=sys.stderr)
    if result.stop_signal is not None:
        return 128 + result.stop_signal
    return _exit_status(manifest.workload_status)


def _module_and_workload(args: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    """MODULE.ko and the workload from the words argparse left, options among them parsed into ``args``."""
    words = list(args.words)
    if not words or words[0] == "--":
        raise UsageError("record needs MODULE.ko, the module to trace")
    if words[0].startswith("-"):
        raise UsageError(f"unknown option {words[0]!r} (tracebridge record --help)")
    module, rest = words[0], words[1:]
    if rest and rest[0] != "--":
        tail = argparse.ArgumentParser(prog="tracebridge record", **PARSER)
        _add_options(tail)
        tail.parse_args(rest, namespace=args)
        rest = list(args.words)
        if rest and rest[0] != "--":
            raise UsageError(f"unexpected {rest[0]!r}: put the workload command after '--' "
                             f"(tracebridge record {module} ... -- {' '.join(rest)})")
    if rest == ["--"]:
        raise UsageError("nothing after '--': give the workload command, or leave out '--'")
    return module, tuple(rest[1:])

