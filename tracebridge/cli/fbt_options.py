"""Command-line options for FBT predictions, shared by ``symbols``, ``inspect`` and ``gen-probes``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracebridge.probes.fbt import FbtOptions


def add_fbt_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("FBT rules of the target kernel")
    group.add_argument("--old-fbt-names", action="store_true",
                       help="the kernel's fbt.c still skips every function whose name starts with '__' "
                            "(old FreeBSD, before fbt_excluded(); default: the rules of HEAD)")
    group.add_argument("--fbt-in-kernel", action="store_true",
                       help="FBT is compiled into the kernel rather than loaded as fbt.ko: "
                            "then functions named fbt_* get no probes either")
    group.add_argument("--fbt-no-tracenext", action="store_true",
                       help="the kernel's FBT predates fbtp_tracenext (no such field in sys/cddl/dev/fbt/fbt.h): "
                            "of symbols at one address only the one listed last fires, entry and return "
                            "(default: as HEAD, on amd64/i386 every alias's entry fires, a shared return site "
                            "only the last's; arm64 and riscv chain nothing)")


def fbt_options_from_args(args: argparse.Namespace, base: int | None) -> FbtOptions:
    from tracebridge.probes.fbt import FbtOptions  # FBT's rules and the module reader: only when a command runs

    return FbtOptions(old_dunder_rule=args.old_fbt_names, fbt_in_kernel=args.fbt_in_kernel,
                      tracenext=not args.fbt_no_tracenext, base=base)
