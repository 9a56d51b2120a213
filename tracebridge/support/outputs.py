"""Writing results without ever harming what the user owns.

Outputs are written to a temporary file next to the target and renamed into
place, so an interrupted run never leaves half a file; and a target that is
one of the command's own inputs is refused, so ``-o`` cannot eat the data it
was asked to read.  A target that is a device or a pipe (``-o /dev/null``)
is written into, never renamed over.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Generator, Iterable, Iterator
from typing import IO, TypeVar

from tracebridge.support.errors import OutputError

T = TypeVar("T")


@contextlib.contextmanager
def first_made(parts: Generator[T, None, None]) -> Iterator[Generator[T, None, None]]:
    """``parts`` with its first part made on entry, before any output is opened: an input that cannot be
    read is then reported with nothing written, no output file made, no ``-o`` FIFO opened.  Closed (its
    work stopped: a forked process ended) on leaving, however the block ends."""
    with contextlib.closing(parts):
        first = next(parts, _NOTHING)

        def again() -> Generator[T, None, None]:
            if first is not _NOTHING:
                yield first
            yield from parts

        yield again()


#: What :func:`first_made` gets from parts that have none.
_NOTHING = object()


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_not_input(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an output path that names one of the inputs (also via links)."""
    target = os.fspath(path)
    for source in inputs:
        if _same_file(target, os.fspath(source)):
            raise OutputError(f"{target}: refusing to overwrite an input file of this command")


@contextlib.contextmanager
def open_output(
    path: str | os.PathLike[str] | None,
    mode: str = "w",
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[IO]:
    """Open an output for writing; ``None`` or ``-`` means standard output.

    A real file is written under a temporary name in the same directory and
    renamed over the target only when the block finishes without error.
    """
    if path is None or os.fspath(path) == "-":
        if "b" in mode:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        else:
            yield sys.stdout
            sys.stdout.flush()
        return
    target = os.fspath(path)
    check_not_input(target, inputs)
    if os.path.isdir(target):
        raise OutputError(f"{target}: is a directory, expected a file name for the output")
    if os.path.exists(target) and not os.path.isfile(target):
        # A device or a pipe (`-o /dev/null`, a FIFO): renaming over it would
        # replace the device node itself, so write into it.
        with _open_special(target, mode) as handle:
            yield handle
        return
    directory = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tracebridge-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write here: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode, **_text_options(mode)) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_output(
    path: str | os.PathLike[str] | None,
    data: str | bytes,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Write ``data`` atomically to ``path`` (or stdout for ``None``/``-``)."""
    with open_output(path, "wb" if isinstance(data, bytes) else "w", inputs=inputs) as handle:
        handle.write(data)


def _text_options(mode: str) -> dict[str, str]:
    return {} if "b" in mode else {"encoding": "utf-8", "newline": ""}


def _open_special(target: str, mode: str) -> IO:
    try:
        return open(target, mode, **_text_options(mode))
    except OSError as exc:
        raise OutputError(f"{target}: cannot write here: {exc.strerror or exc}") from None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
