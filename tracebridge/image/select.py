"""Choosing functions by what users know: demangled names, crates, Rust or not.

Shared by every command that takes a function selection (``symbols``,
``gen-probes``, ``symmap``), so ``--match`` means the same everywhere.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

from tracebridge.support.errors import UsageError

if TYPE_CHECKING:
    from tracebridge.image.demangle import Demangled
    from tracebridge.image.elf import Function


@dataclass(frozen=True)
class Selection:
    """Filters over (function, demangled name); all given filters must pass."""

    match: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    crates: tuple[str, ...] = ()
    rust_only: bool = False
    exclude: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.match or self.regex or self.crates or self.rust_only or self.exclude)

    def __call__(self, function: Function, name: Demangled) -> bool:
        if self.rust_only and not name.is_rust:
            return False
        if self.crates and name.crate not in self.crates:
            return False
        if self.match and not any(_glob(name.name, p) or _glob(function.name, p) for p in self.match):
            return False
        if self.regex is not None and not self.regex.search(name.name):
            return False
        return not any(_glob(name.name, p) or _glob(function.name, p) for p in self.exclude)

    def apply(self, functions: Sequence[Function], names: Sequence[Demangled]) -> list[int]:
        """Indices of the selected functions."""
        return [i for i, (f, n) in enumerate(zip(functions, names)) if self(f, n)]

    def select(self, functions: Sequence[Function], names: Sequence[Demangled], where: str) -> list[int]:
        """Indices of the selected functions of ``where`` (a module's file name).

        A selection that keeps nothing would make an empty script or table
        with exit status 0; it is a usage error that names the selection and
        the names it probably meant.
        """
        keep = self.apply(functions, names)
        if not keep and self.active:
            raise UsageError(f"{self.describe()} selects no function of {where}"
                             f" ({'; '.join(self._hints(functions, names))})")
        return keep

    def describe(self) -> str:
        """The selection as it was typed."""
        parts = [f"--match {p!r}" for p in self.match]
        if self.regex is not None:
            parts.append(f"--regex {self.regex.pattern!r}")
        parts += [f"--crate {c}" for c in self.crates]
        if self.rust_only:
            parts.append("--rust-only")
        parts += [f"--exclude {p!r}" for p in self.exclude]
        return " ".join(parts)

    def _hints(self, functions: Sequence[Function], names: Sequence[Demangled]) -> list[str]:
        """What the user probably meant: a glob that selects something, the closest names, the crates."""
        import difflib  # here: only a selection that matched nothing needs it

        demangled = sorted({n.name for n in names})
        hints = []
        for pattern in self.match:
            stem = pattern.rstrip("*")
            under = [n for n in demangled if n.startswith(stem + "::")] if not _GLOB.search(stem) else []
            if under:
                hints.append(f"a glob matches the whole name: {stem + '::*'!r} would select {len(under)}, "
                             f"e.g. {under[0]}")
                continue
            close = difflib.get_close_matches(pattern, demangled, n=3, cutoff=0.6)
            if close:
                hints.append(f"closest names to {pattern!r}: {', '.join(close)}")
        if self.crates:
            crates = sorted({n.crate for n in names if n.crate})
            hints.append(f"crates in it: {', '.join(crates) or 'none'}")
        if not hints:
            hints.append(f"it has {len(functions)} functions; `tracebridge symbols` lists them")
        return hints


_GLOB = re.compile(r"[*?\[]")


def _glob(text: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(text, pattern)


def add_selection_arguments(parser: argparse.ArgumentParser, *, regex: bool = True, exclude: bool = True) -> None:
    group = parser.add_argument_group("selecting functions")
    group.add_argument("--match", action="append", default=[], metavar="GLOB",
                       help="keep functions whose demangled (or mangled) name matches this shell glob; repeatable")
    if regex:
        group.add_argument("--regex", metavar="RE", help="keep functions whose demangled name matches this regex")
    group.add_argument("--crate", action="append", default=[], metavar="NAME",
                       help="keep functions of this Rust crate; repeatable")
    group.add_argument("--rust-only", action="store_true", help="keep only Rust functions")
    if exclude:
        group.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                           help="drop functions whose demangled (or mangled) name matches; repeatable")


def selection_from_args(args: argparse.Namespace) -> Selection:
    pattern = getattr(args, "regex", None)
    try:
        compiled = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise UsageError(f"--regex {pattern!r}: {exc}") from None
    return Selection(match=tuple(args.match), regex=compiled, crates=tuple(args.crate),
                     rust_only=args.rust_only, exclude=tuple(getattr(args, "exclude", ()) or ()))
