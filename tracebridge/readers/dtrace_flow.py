"""DTrace flow output turned into call paths with call counts.

Two shapes are read:

* ``dtrace -F``: a ``CPU FUNCTION`` header (``"%3s %-41s"``) and per firing
  ``"%3d %-41s "``: the CPU, the indentation, `` -> `` for an entry or
  `` <- `` for a return (`` => ``/`` <= `` for the syscall provider, ``| ``
  for other probes) and the probe function (``dtrace.c`` ``chew``,
  ``dt_consume.c`` ``dt_flowindent``).  Its indentation is one counter for
  the whole consumer, so it drifts when CPUs interleave, and FBT gives a
  tail-calling ``jmp`` no return probe.  So the nesting is rebuilt from the
  arrows instead, one call stack per CPU: an entry pushes, a return pops
  back to the matching entry (or is ignored when the call began before
  tracing did).
* flow scripts that print a thread id after the CPU (``"%3d %6d %d %*s-> %s"``:
  CPU, thread, timestamp, ``self->``-kept indentation, as ``gen-probes``'s
  flow template does): the indentation is per thread and exact even for
  functions with no return probe, so it gives the depth.  Events are put in
  (thread, timestamp) order first, since a thread's events come from the
  buffers of every CPU it ran on.

Each entry counts its whole call path once: the profile's weights are calls.
"""

from __future__ import annotations

import re

from tracebridge.readers.options import Loaded, LoadOptions

from tracebridge.readers.source import Source
from tracebridge.profile.model import Metadata, Profile
from tracebridge.support.errors import excerpt

_HEADER = re.compile(r"^CPU +FUNCTION\s*$")
# Each leading number is taken whole ((?!\d)): `(?: *\d+)*` alone could split a long
# run of digits every possible way, and a line of them would never finish matching.
# (CPU, thread and depth numbers have at most 20 digits; int() refuses over 4300.)
_FLOW = re.compile(r"^(?P<numbers>(?: *\d{1,20}(?!\d))*)(?P<pad> *)(?P<arrow>->|<-|=>|<=|\|) (?P<function>\S+)")
_ENTRY = ("->", "=>")
_RETURN = ("<-", "<=")
_SKIP = ("dtrace: ", "^C")


def sniff(source: Source) -> bool:
    seen = 0
    for line in source.head.split("\n"):
        if not line.strip() or line.startswith(_SKIP):
            continue
        if _HEADER.match(line):
            return True
        match = _FLOW.match(line)
        if match is None or match.group("arrow") == "|":
            return False
        seen += 1
        if seen == 2:
            return True
    return seen > 0


def read(source: Source, options: LoadOptions) -> Loaded:
    events = _events(source)
    if not any(arrow in _ENTRY for _, _, _, arrow, _ in events):
        raise source.error("holds no function entries (`-> func` lines)")
    per_thread = all(len(numbers) >= 2 for numbers, *_ in events)
    paths = _paths_by_depth(events) if per_thread else _paths_by_arrows(events)
    profile = Profile(Metadata(source=source.path, event="calls", unit="calls"))
    texts = sorted({text for path in paths for text in path})  # frame ids independent of hashing
    ids = {text: profile.intern(frame) for text, frame in zip(texts, options.namer.frames(texts))}
    for path, count in paths.items():
        profile.add_ids(tuple(ids[t] for t in path), count)
    return Loaded(profile)


def _events(source: Source) -> list[tuple[tuple[str, ...], int, int, str, str]]:
    """(leading numbers, indentation, line, arrow, function) per entry/return line."""
    events = []
    for number, line in source.lines():
        if not line.strip() or _HEADER.match(line) or line.startswith(_SKIP):
            continue
        match = _FLOW.match(line)
        if match is None:
            raise source.error(f"not a flow line (expected `-> func` or `<- func`): {excerpt(source.path, line.strip())}", number)
        if match.group("arrow") != "|":
            numbers = tuple(match.group("numbers").split())
            events.append((numbers, len(match.group("pad")) - 1, number, match.group("arrow"),
                           match.group("function")))
    return events


def _paths_by_arrows(events) -> dict[tuple[str, ...], int]:
    stacks: dict[str, list[str]] = {}
    paths: dict[tuple[str, ...], int] = {}
    for numbers, _, _, arrow, function in events:
        stack = stacks.setdefault(numbers[0] if numbers else "", [])
        if arrow in _ENTRY:
            stack.append(function)
            path = tuple(stack)
            paths[path] = paths.get(path, 0) + 1
        else:
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth] == function:
                    del stack[depth:]
                    break
    return paths


def _paths_by_depth(events) -> dict[tuple[str, ...], int]:
    def order(event):
        numbers = event[0]
        return (numbers[1], int(numbers[2]) if len(numbers) > 2 else 0, event[2])

    stacks: dict[str, list[str]] = {}
    paths: dict[tuple[str, ...], int] = {}
    for numbers, indent, _, arrow, function in sorted(events, key=order):
        stack = stacks.setdefault(numbers[1], [])
        del stack[max(indent, 0) // 2:]
        if arrow in _ENTRY:
            stack.append(function)
            path = tuple(stack)
            paths[path] = paths.get(path, 0) + 1
    return paths
