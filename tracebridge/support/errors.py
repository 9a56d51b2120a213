"""The one place where bad input becomes a clear, single-line error.

Every reader raises :class:`InputError` (or a subclass) naming the file and,
where it makes sense, the position; the CLI prints ``tracebridge: <message>``
and exits with status 2.  Nothing else should escape as a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tracebridge.support.printable import printable


#: A copy tracebridge made of an input (a spooled pipe) -> the path the user gave for it.
SHOWN_AS: dict[str, str] = {}


def shown(path: str) -> str:
    """The path to show for ``path``: the one the user gave, for a copy made of a pipe."""
    return SHOWN_AS.get(path, path)


#: Files read on the user's behalf that the user did not name: the parts of a bundle.  A message about one
#: quotes none of its text, so a bundle copied off a test machine cannot make tracebridge show what it holds.
UNQUOTED: set[str] = set()


def quotable(path: str | os.PathLike[str]) -> bool:
    """Whether messages about ``path`` may quote its text (the user named it, or it is not part of a bundle)."""
    return os.fspath(path) not in UNQUOTED


def excerpt(path: str | os.PathLike[str], text: str, limit: int = 60) -> str:
    """``text`` read from ``path``, cut to ``limit`` characters and quoted, for a message about that file."""
    return repr(text[:limit]) if quotable(path) else "(text not shown: the file is part of a bundle)"


class TracebridgeError(Exception):
    """Base of every error the CLI reports as one line with exit status 2."""

    exit_status = 2


class UsageError(TracebridgeError):
    """The command line asks for something impossible or contradictory."""


class InputError(TracebridgeError):
    """An input file is missing, unreadable, malformed or of the wrong kind."""

    def __init__(self, path: str | os.PathLike[str] | None, message: str, position: str | int | None = None):
        self.path = shown(os.fspath(path)) if path is not None else None
        self.message = message
        self.position = position
        where = self.path or "<input>"
        if position is not None:
            where = f"{where}:{position}"
        super().__init__(f"{where}: {message}")


class EmptyInput(InputError):
    """An input that holds nothing to read (blank, or DTrace's header lines only).

    Alone it is an error; beside inputs that hold samples it is skipped with a warning.
    """


def warn(message: str) -> None:
    """A line on standard error that does not stop the command."""
    print(f"tracebridge: warning: {printable(message)}", file=sys.stderr)


def note(message: str) -> None:
    """A line on standard error saying how the input was read, where more than one reading was possible."""
    print(f"tracebridge: note: {printable(message)}", file=sys.stderr)


@contextmanager
def reading(path: str | os.PathLike[str], expected: str = "a file") -> Iterator[None]:
    """Opening and reading ``path`` in the body: the OS's refusals become one-line :class:`InputError` s.

    ``expected`` says what a directory given in its place should have been.
    """
    try:
        yield
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except IsADirectoryError:
        raise InputError(path, f"is a directory, expected {expected}") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None


class OutputError(TracebridgeError):
    """An output cannot be written without harming something the user owns."""
