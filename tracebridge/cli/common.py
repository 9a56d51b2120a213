"""Options and helpers shared by several sub-commands.

Command modules are all imported to build the argument parser, so they (and
this module) import heavy libraries only inside ``run``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from tracebridge.support.errors import UsageError

if TYPE_CHECKING:
    from tracebridge.image.elf import ModuleImage
    from tracebridge.profile.model import Metadata
    from tracebridge.render.parquet_profile import Run


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}: {text!r}")
        return value
    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a finite number above zero (seconds, rates)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def non_negative_number(text: str) -> float:
    """An argparse type: a finite number, zero or more."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more: {text!r}")
    return value


def add_module_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE.ko", help="the kernel module (or kernel) ELF file")
    from tracebridge.readers.placement import add_old_kernel_linker_argument

    add_old_kernel_linker_argument(parser)


def add_base_argument(parser: argparse.ArgumentParser) -> None:
    from tracebridge.readers.placement import parse_base_spec

    parser.add_argument("--base", type=parse_base_spec, metavar="[MODULE=]ADDR",
                        help="load address of the module as kldstat shows it (hex), to print run-time addresses; "
                             "MODULE=ADDR is accepted too, as by the commands that take several modules")


def load_module(args: argparse.Namespace) -> ModuleImage:
    """The module of ``args.module``; a ``--base`` of :func:`add_base_argument` becomes its address."""
    from tracebridge.image.elf import open_module  # the module reader: only when a command runs
    from tracebridge.readers.placement import one_module

    spec = getattr(args, "base", None)
    if spec is not None and not isinstance(spec, int):
        ((_, args.base),) = one_module([spec], [args.module])
    image = open_module(args.module, init_fini_arrays=not args.old_kernel_linker)
    base = getattr(args, "base", None)
    if base is not None and base + image.size > 1 << 64:
        # No kernel maps it there; its addresses would pass 2**64 (gen-probes wrote such a D predicate).
        from tracebridge.profile.resolve import past_the_top  # here: gen-probes needs no resolver otherwise

        raise past_the_top(image.filename, base, image.size)
    return image


def add_format_argument(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str = "table") -> None:
    parser.add_argument("--format", "-f", choices=choices, default=default, help=f"output format (default {default})")
    if "csv" in choices:
        add_csv_raw_argument(parser)


def add_csv_raw_argument(parser: argparse.ArgumentParser) -> None:
    """``--csv-raw``: CSV cells as they are, without the ``'`` that keeps spreadsheets from evaluating them."""
    parser.add_argument("--csv-raw", action="store_true",
                        help="write CSV cells as they are: by default a cell starting with = + - @ tab or CR "
                             "(not a number) gets a leading ' so that a spreadsheet does not run it as a formula")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here instead of standard output (replaced atomically)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run-id`` and ``--host``: what tags each row of a Parquet output, so many runs' files are one table."""
    group = parser.add_argument_group("tagging Parquet rows (many runs, many machines)")
    group.add_argument("--run-id", metavar="ID",
                       help="the run_id column of --format parquet (default: the input's name without its "
                            "extension; several inputs joined with '+')")
    group.add_argument("--host", metavar="NAME",
                       help="the host column of --format parquet (default: the node name a bundle's manifest "
                            "recorded, else empty)")


def run_of(args: argparse.Namespace, metadata: Metadata) -> Run:
    """The run the rows are tagged with: the options, else what the inputs say."""
    from tracebridge.render.parquet_profile import Run
    from tracebridge.support.errors import shown

    run_id = args.run_id or "+".join(_stem(shown(path)) for path in args.inputs)
    return Run(run_id, args.host or metadata.host)


def _stem(path: str) -> str:
    """``runs/if_rem.stack.txt`` -> ``if_rem.stack``; a bundle directory ``runs/42/`` -> ``42``."""
    name = os.path.basename(os.path.normpath(path))
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def require_pyarrow(option: str = "--format parquet") -> None:
    """Say plainly that Parquet needs pyarrow (an optional dependency) before anything is read."""
    try:
        import pyarrow  # noqa: F401  (only its presence matters)
    except ImportError:
        raise UsageError(f"{option} needs pyarrow: pip install 'tracebridge[parquet]'") from None
