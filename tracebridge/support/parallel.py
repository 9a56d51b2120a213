"""Using the second core for per-function work on big modules.

Demangling and FBT prediction cost a few microseconds per function in
Python; on a 100k-function module that is most of a command's time.  The
work is independent per function, so :func:`split_map` forks once, lets the
child do the second half while the parent does the first, and has the child
leave its result in a file both share (in memory, ``memfd_create``, where the
system has it): a pipe made the two processes take turns 450 times for the
29 MB of JSON of librustc_driver's second half, 0.12-0.19 s on a loaded
machine against 0.02 s through the file.  Fork keeps the loaded module image
(and its mapping) without re-reading anything; :func:`split_prepared` forks
before a big preparation instead, and each process makes its own.
:func:`split_iter` gives the first half's results as soon as they are made,
so that they can be written while the child still works.

Where fork is unavailable, only one CPU is usable, or the input is small,
it simply calls the function once.  If the child fails for any reason the
parent does the second half itself, so errors surface exactly as they would
without the split.
"""

from __future__ import annotations

import bisect
import mmap
import os
import pickle
import signal
import tempfile
from itertools import accumulate, chain
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this many items the fork and the pickling cost more than they save.
MIN_ITEMS = 20_000

#: At most this many items' costs are asked for: beyond, every n-th item's cost stands for the n around it.
#: The cut moves by at most n items, and the estimate costs a few milliseconds, not one call per item
#: (librustc_driver: 106k functions, 0.09 s before the fork).
COST_SAMPLES = 8192

#: True while a split is running: work that itself splits then runs in one
#: process, so two cores never carry four processes.
_splitting = False


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: FreeBSD, macOS
        return os.cpu_count() or 1


def can_split() -> bool:
    """Can work be split over two processes here: fork exists, two CPUs are usable, and no split is
    running (work that itself splits runs in one process)."""
    return not _splitting and usable_cpus() >= 2 and hasattr(os, "fork")


def split_map(work: Callable[[Sequence[T]], list[R]], items: Sequence[T],
              cost: Callable[[T], int] | None = None,
              middle: Callable[[Sequence[T]], int] | None = None, min_items: int | None = None) -> list[R]:
    """``work(items)``, computed as ``work(first half) + work(second half)`` on two cores.

    ``cost`` estimates each item's share of the work (1 each without it):
    the halves are cut where the estimates balance, so that one process does
    not wait long for the other.  ``middle(items)``, given instead, says where
    the first half ends, for a caller that can tell without a cost per item.
    ``min_items`` (default :data:`MIN_ITEMS`): fewer items are worked on in
    one process (items that are big pieces of work, such as two halves of a
    file, need not be many).
    """
    return list(split_iter(work, items, cost, middle, min_items))


def split_iter(work: Callable[[Sequence[T]], Iterable[R]], items: Sequence[T],
               cost: Callable[[T], int] | None = None,
               middle: Callable[[Sequence[T]], int] | None = None, min_items: int | None = None) -> Iterator[R]:
    """:func:`split_map`'s results as they come: the first half's as this process makes them (the
    child may still work on the second), then the second half's.

    ``work`` may also answer with an iterator of bytes chunks instead of a
    list: the child then leaves each chunk as it makes it, and the second
    half's come back as read-only views of them (:func:`_leave`).
    """
    few = len(items) < (MIN_ITEMS if min_items is None else min_items)
    if few or not can_split():
        yield from work(items)
        return
    cut = cost_middle(items, cost) if middle is None else min(max(middle(items), 0), len(items))
    yield from _split(lambda: Prepared(work, items), lambda _: cut)


@dataclass(frozen=True)
class Prepared(Generic[T, R]):
    """What :func:`split_prepared`'s preparation gives each process: ``work(items)`` is to be done."""

    work: Callable[[Sequence[T]], Iterable[R]]
    items: Sequence[T]


def split_prepared(prepare: Callable[[], Prepared[T, R]], cost: Callable[[T], int] | None = None) -> Iterator[R]:
    """:func:`split_iter`'s results of ``work(items)``, for a preparation (``prepare()``) that is itself
    big, such as reading a 100 MB module into 100k objects: the process forks first, and each process
    prepares its own, then works on its half.

    Python writes an object's reference count whenever code takes it (a
    list sliced, an attribute read), so each process copies every page of
    the shared preparation that it touches, and the parent every page it
    touches before the child did: about 2 us a page here.  The halves of
    ``symbols`` on librustc_driver took 7k such faults (16 ms) before their
    first useful step, and as many later.  Preparing twice costs no time:
    both processes do it at once.  ``prepare`` must give both the same items
    (read from the same file).  Fewer than :data:`MIN_ITEMS` are worked on
    in the parent alone (the child is stopped).  The preparation runs when
    the first result is asked for, and its errors are raised then.
    """
    if not can_split():
        prepared = prepare()
        yield from prepared.work(prepared.items)
        return

    def cut(prepared: Prepared[T, R]) -> int | None:
        items = prepared.items
        return None if len(items) < MIN_ITEMS else cost_middle(items, cost)

    yield from _split(prepare, cut)


def split_columns(work: Callable[[Sequence[T]], tuple[list, ...]], items: Sequence[T],
                  middle: Callable[[Sequence[T]], int] | None = None) -> tuple[list, ...]:
    """:func:`split_map` for work that answers in columns: a tuple of lists, each with one entry per item.

    Each half's columns come back whole and are joined column by column: no
    tuple per item to build, pickle, send and take apart again.
    """
    halves = split_map(lambda part: [work(part)], items, middle=middle)
    return tuple(list(chain.from_iterable(column)) for column in zip(*halves))


def cost_middle(items: Sequence[T], cost: Callable[[T], float] | None, share: float = 0.5) -> int:
    """Where the first half ends: half the items, or ``share`` of the estimated cost, summed over every
    n-th item only (:data:`COST_SAMPLES` at most), each standing for the n around it."""
    if cost is None:
        return len(items) // 2
    step = -(-len(items) // COST_SAMPLES)
    running = list(accumulate(map(cost, items[::step])))
    return min(len(items), (bisect.bisect_left(running, running[-1] * share) + 1) * step)


def _split(prepare: Callable[[], Prepared[T, R]], cut: Callable[[Prepared[T, R]], int | None]) -> Iterator[R]:
    """Fork; each process takes ``prepare()`` and ``middle = cut(prepared)``: the child works on
    ``items[middle:]``, the parent on ``items[:middle]`` and then gives the child's results.  A middle of
    None: the parent works on all, and the child on nothing (both prepared the same)."""
    global _splitting
    _splitting = True
    try:
        with _shared_file() as shared:
            done, told = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: compute the second half, leave it in the file, leave without cleanup handlers
                status = 1
                try:
                    os.close(done)
                    prepared = prepare()
                    middle = cut(prepared)
                    if middle is not None:
                        _leave(prepared.work(prepared.items[middle:]), shared)
                        shared.flush()
                        os.write(told, b"\0")  # the results are in: the parent need not wait for this process to end
                    status = 0
                finally:
                    os._exit(status)
            os.close(told)
            try:
                prepared = prepare()
                work, items, middle = prepared.work, prepared.items, cut(prepared)
                if middle is None:  # the child prepared for nothing: it need not finish
                    os.kill(pid, signal.SIGKILL)
                    yield from work(items)
                    return
                yield from work(items[:middle])
                # The child's byte says its results are in (b"": it ended without them): they are read while it
                # is torn down (freeing a child's 150 MB takes 10-25 ms), and it is waited for once they are.
                if os.read(done, 1) == b"\0":
                    shared.seek(0)  # the child's writes moved the offset both processes share
                    yield from _taken(shared)
                    return
            except BaseException:  # the parent's own work failed (or its caller stopped reading): the child's is moot
                os.kill(pid, signal.SIGKILL)
                raise
            finally:  # no child outlives the call
                os.close(done)
                os.waitpid(pid, 0)
        yield from work(items[middle:])
    finally:
        _splitting = False


#: How the child's results start in the shared file: a pickled list, or bytes chunks each after its length.
_PICKLED, _CHUNKS = b"P", b"C"


def _leave(results: Iterable[R], shared: BinaryIO) -> None:
    """The child's results, in the shared file: a list pickled whole; any other iterable, of bytes, a
    chunk at a time as it is made, each after its length (8 bytes, little-endian).

    Chunks of text (``symbols``' 30 MB of JSON rows, a megabyte at a time)
    then never lie whole in the child's memory, nor are copied into the
    parent's: :func:`_taken` gives views of the file's pages.
    """
    if isinstance(results, list):
        shared.write(_PICKLED)
        pickle.dump(results, shared, protocol=pickle.HIGHEST_PROTOCOL)
        return
    shared.write(_CHUNKS)
    for chunk in results:
        shared.write(len(chunk).to_bytes(8, "little"))
        shared.write(chunk)


def _taken(shared: BinaryIO) -> Iterator:
    """What :func:`_leave` left in the file: the list's items, or a read-only view of each chunk in
    the file mapped (released once the caller asks for the next)."""
    if shared.read(1) == _PICKLED:
        yield from pickle.load(shared)
        return
    size = os.fstat(shared.fileno()).st_size
    with mmap.mmap(shared.fileno(), size, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as view:
        at = len(_CHUNKS)
        while at < size:
            length = int.from_bytes(view[at:at + 8], "little")
            with view[at + 8:at + 8 + length] as chunk:
                yield chunk
            at += 8 + length


def _shared_file() -> BinaryIO:
    """An anonymous file the child writes and the parent then reads: in memory where the system has memfd."""
    try:
        return os.fdopen(os.memfd_create("tracebridge-split"), "w+b")
    except (AttributeError, OSError):  # no memfd_create (macOS), or the system refuses it
        return tempfile.TemporaryFile()
