"""Command-line entry point: one sub-command per module in this package.

Each module named in :data:`COMMAND_MODULES` provides ``register(subparsers)``,
which adds its parser and sets ``func`` to a ``run(args) -> int``.  Errors that
are the input's or the user's fault arrive here as
:class:`~tracebridge.support.errors.TracebridgeError` and leave as one line on stderr
with exit status 2; an operation the system refuses (standard output on a full
disk) leaves as one line with status 1.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

from tracebridge import __version__
from tracebridge.support import blas

from tracebridge.support import spool
from tracebridge.support.errors import TracebridgeError
from tracebridge.support.printable import printable

COMMAND_MODULES = (
    "symbols",
    "inspect",
    "gen_probes",
    "symmap",
    "lookup",
    "pmcstat_root",
    "pmc",
    "cpu",
    "record",
    "fold",
    "report",
    "flamegraph",
    "diff",
)


def version_text() -> str:
    """What ``--version`` prints: the version, then ``native core: yes`` or why not."""
    from tracebridge.support import native

    return f"tracebridge {__version__}\n{native.status_line()}"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every sub-command, or of ``command`` alone.

    A command line that names its command needs that one only: importing
    and building all of them costs about 40 ms, more than a small command's
    own work.  Anything else (``--help``, a mistyped command) gets them all.
    """
    parser = argparse.ArgumentParser(
        prog="tracebridge",
        description="DTrace FBT and hwpmc support for Rust FreeBSD kernel modules.",
    )
    parser.add_argument("--version", action="version", version=version_text(),
                        help="show the version and whether the native core is in use, and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES if command is None else (command.replace("-", "_"),):
        importlib.import_module(f"tracebridge.cli.{name}").register(subparsers)
    _remember_parsers(parser)
    return parser


def _remember_parsers(parser: argparse.ArgumentParser) -> None:
    """Give every (sub-)command's parser a default ``parser``: itself, the deepest one chosen wins.

    argparse reports options it does not know with the top-level usage; with
    this, the command that was asked for reports them with its own.
    """
    parser.set_defaults(parser=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _remember_parsers(sub)


def entry() -> None:
    """The ``tracebridge`` script: :func:`main`, leaving without freeing what the command built."""
    from tracebridge.support import quickexit

    quickexit.run(main)


def main(argv: list[str] | None = None) -> int:
    # A command builds hundreds of thousands of small acyclic objects (symbols,
    # frames, rows); the default thresholds make the cyclic collector walk
    # them over and over.  Collect far less often instead of never.
    gc.set_threshold(200_000, 50, 100)
    blas.hold_to_one_thread()  # before any command imports numpy
    words = sys.argv[1:] if argv is None else argv
    if words == ["--version"]:
        # Answered before the command modules are imported: well under 0.1 s.
        print(version_text())
        return 0
    commands = {name.replace("_", "-") for name in COMMAND_MODULES}
    parser = build_parser(words[0] if words and words[0] in commands else None)
    try:
        # Inside: an input that is a pipe is copied while the command line is parsed (spool).
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return int(args.func(args) or 0)
    except TracebridgeError as exc:
        # One line whatever the input held: messages quote file names and input text.
        print(f"tracebridge: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("tracebridge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our stdout went away (`| head`); that is not an error.
        sys.stderr.close()
        return 0
    except OSError as exc:
        # The system refused an operation no input check could foresee (standard output on a
        # full disk, a quota): one line and status 1, not a traceback.
        where = f"{printable(str(exc.filename))}: " if exc.filename is not None else ""
        print(f"tracebridge: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        spool.remove_all()
