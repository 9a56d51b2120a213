"""``tracebridge cpu``: per-thread CPU usage -- record it, import top captures, compare runs.

Recording is the command itself (``tracebridge cpu [options] -- COMMAND``),
as the brief form people type during a load test; ``import`` and ``compare``
are words after it, parsed by their own parsers.  argparse cannot mix
optional sub-commands with a ``-- COMMAND`` tail, so the tail is taken whole
(``REMAINDER``) and dispatched here.
"""

from __future__ import annotations

import argparse
import re
import sys

from tracebridge.support import spool
from tracebridge.cli.common import add_csv_raw_argument, int_at_least, positive_number
from tracebridge.support.errors import UsageError
from tracebridge.render.tables import FORMATS, write_rows

DESCRIPTION = """\
Per-thread CPU usage, as used to judge a C driver against its Rust port.

  tracebridge cpu [options] [-- COMMAND ...]
      sample every thread's user and system time with psutil, plus each CPU,
      every --interval seconds: for the processes chosen with --pid/--name/--all
      and, when COMMAND is given, for COMMAND and all its children (until it
      exits, or --duration ends it).  A live table shows the busiest threads
      when standard output is a terminal; a summary follows; Ctrl-C stops and
      keeps what was collected.
  tracebridge cpu import TOP.txt [-o RUN.csv]
      convert a FreeBSD `top -bzSHCP -s 1 -d N all` capture to the same series.
  tracebridge cpu compare RUN RUN ... [--label L ...] [-o CHART.png] [--top N]
      per-thread mean/median/min/max side by side (threads matched by
      process and thread name), and a chart.  A RUN is a .csv/.parquet series
      or a top capture.

The series has the columns time,pid,process,tid,thread,cpu_user,cpu_system,
cpu_percent (percent of ONE cpu; time in seconds since the start).  CPU-wide
rows are in the same file with pid -1, process "[cpu]", thread "cpuN" or "all"
(the sum over CPUs).  See docs/cpu.md."""

# Recording options and their defaults: a change to any of them before "import"/"compare" is a mistake.
RECORD_DEFAULTS = {"pid": [], "name": None, "all": False, "interval": 1.0, "duration": None, "output": None,
                   "top": 15, "csv_raw": False}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cpu", help="per-thread CPU usage: record (psutil), import top captures, compare runs",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] [-- COMMAND ...] | import ... | compare ...")
    parser.set_defaults(**RECORD_DEFAULTS)
    parser.add_argument("--pid", type=int, action="append", metavar="N",
                        help="watch this process (repeatable)")
    parser.add_argument("--name", metavar="REGEX", help="watch processes whose name matches REGEX")
    parser.add_argument("--all", action="store_true", help="watch every process (not this one)")
    parser.add_argument("--interval", type=positive_number, metavar="S",
                        help="seconds between samples (default 1)")
    parser.add_argument("--duration", type=positive_number, metavar="S",
                        help="stop after S seconds (ending COMMAND if it still runs)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the time series to FILE.csv or FILE.parquet ('-': CSV on stdout)")
    add_csv_raw_argument(parser)
    parser.add_argument("--top", type=int_at_least(0), metavar="N",
                        help="threads shown in the live table and the summary (default 15; 0 for all)")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                        help="the workload to start and watch, after '--'")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words and words[0] in NESTED_PARSERS:
        if any(getattr(args, option) != default for option, default in RECORD_DEFAULTS.items()):
            raise UsageError(f"recording options cannot be combined with '{words[0]}'; "
                             f"put its own options after it (tracebridge cpu {words[0]} --help)")
        sub = NESTED_PARSERS[words[0]]()
        options = sub.parse_args(words[1:])
        return options.func(options)
    if words and words[0] != "--":
        raise UsageError(f"unknown word {words[0]!r}: put the workload command after '--' "
                         f"(tracebridge cpu -- {' '.join(words)}), or use 'import' or 'compare'")
    return _record(args, words[1:])


def _record(args: argparse.Namespace, command: list[str]) -> int:
    from rich.console import Console

    from tracebridge.cputime.live import LiveView, QuietView
    from tracebridge.cputime.record import record
    from tracebridge.cputime.sampler import Selection
    from tracebridge.cputime.series import series_format, write_series
    from tracebridge.cputime.summary import print_summary

    if not (command or args.pid or args.name or args.all):
        raise UsageError("nothing to watch: give -- COMMAND, --pid N, --name REGEX or --all")
    if args.output is not None:
        series_format(args.output)  # a bad name fails now, not after the load test
    try:
        name = re.compile(args.name) if args.name is not None else None
    except re.error as exc:
        raise UsageError(f"--name {args.name!r}: not a regular expression: {exc}") from None
    selection = Selection(pids=tuple(args.pid), name=name, everything=args.all)
    # The report goes where the data does not: stderr when the series is on stdout.
    console = Console(stderr=args.output == "-", highlight=False)
    view = LiveView(console, args.duration, args.top) if console.is_terminal else QuietView()
    with view:
        recording = record(selection, command, args.interval, args.duration, view)
    saved_to = None
    if args.output is not None:
        write_series(recording.frame, args.output, csv_raw=args.csv_raw)
        saved_to = "standard output" if args.output == "-" else args.output
    print_summary(console, recording, args.top, saved_to)
    return _exit_status(recording.workload_status)


def _exit_status(status: int | None) -> int:
    """The workload's own failure is ours, as with time(1); a signal maps to 128+N like a shell."""
    if not status:
        return 0
    return 128 - status if status < 0 else status


def import_parser() -> argparse.ArgumentParser:
    """The parser of ``tracebridge cpu import`` (also read by docs/generate_reference.py)."""
    parser = argparse.ArgumentParser(
        prog="tracebridge cpu import",
        description="Convert a FreeBSD `top -bzSHCP` batch capture into the CPU series "
                    "(cpu_percent from top's CPU/WCPU column, cpu_user/cpu_system empty, tid -1).")
    parser.add_argument("capture", metavar="TOP.txt", type=spool.readable,
                        help="output of e.g. top -bzSHCP -s 1 -d 31 all")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="FILE.csv or FILE.parquet (default: CSV on standard output)")
    add_csv_raw_argument(parser)
    parser.set_defaults(func=_import)
    return parser


def _import(args: argparse.Namespace) -> int:
    from tracebridge.cputime.series import series_format, write_series
    from tracebridge.cputime.top import read_top

    output = args.output or "-"
    series_format(output)
    capture = read_top(args.capture)
    write_series(capture.frame, output, inputs=[args.capture], csv_raw=args.csv_raw)
    for note in capture.notes:
        print(f"tracebridge: note: {args.capture}: {note}", file=sys.stderr)
    print(f"tracebridge: {args.capture}: {capture.snapshots} displays, {len(capture.frame)} rows",
          file=sys.stderr)
    return 0


def compare_parser() -> argparse.ArgumentParser:
    """The parser of ``tracebridge cpu compare`` (also read by docs/generate_reference.py)."""
    from tracebridge.cli.common import add_format_argument  # pulls in the ELF reader: only when needed

    parser = argparse.ArgumentParser(
        prog="tracebridge cpu compare",
        description="Compare runs thread by thread (matched by process and thread name): mean, median, "
                    "min and max CPU per thread in percent of one CPU, and optionally a chart.")
    parser.add_argument("runs", nargs="+", metavar="RUN", type=spool.readable,
                        help="a series (.csv/.parquet from `tracebridge cpu`), a top -bzSHCP capture, or a bundle "
                             "directory written by `tracebridge record` (its CPU series)")
    parser.add_argument("--label", action="append", default=[], metavar="NAME",
                        help="name of each run, in order (default: the file names)")
    parser.add_argument("-o", "--output", metavar="CHART",
                        help="also draw the chart into CHART.png, .svg or .pdf")
    parser.add_argument("--top", type=int_at_least(0), default=10, metavar="N",
                        help="busiest thread names to show (default 10; 0 for all)")
    add_format_argument(parser, FORMATS)
    parser.set_defaults(func=_compare)
    return parser


def _compare(args: argparse.Namespace) -> int:
    from tracebridge.cputime.chart import chart_format, draw_comparison
    from tracebridge.cputime.compare import LONG_COLUMNS, busiest, load_runs, long_rows, table_keys, table_rows

    if args.output is not None:
        chart_format(args.output)
    runs = load_runs(args.runs, args.label)
    for run in runs:
        for note in run.notes:
            print(f"tracebridge: note: {run.path}: {note}", file=sys.stderr)
    keys = table_keys(runs, args.top)
    if args.format == "table":
        rows, columns = table_rows(runs, keys)
        write_rows(sys.stdout, rows, columns, "table", numeric=columns[2:],
                   title=f"CPU per thread, % of one CPU (Δ: change of the mean from {runs[0].label})")
    else:
        write_rows(sys.stdout, long_rows(runs, keys), LONG_COLUMNS, args.format, csv_raw=args.csv_raw)
    if args.output is not None:
        draw_comparison(runs, busiest(runs, args.top), args.output)
        print(f"tracebridge: wrote {args.output}", file=sys.stderr)
    return 0


#: The words after ``tracebridge cpu`` that have their own parser, and how to build it.  argparse
#: cannot attach them as sub-commands (see the module docstring), so documentation tools read them here.
NESTED_PARSERS = {"import": import_parser, "compare": compare_parser}
