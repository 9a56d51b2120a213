"""DTrace flow output (``dtrace -F``) turned into call paths with call counts.

With ``flowindent``, dtrace(1) prints a ``CPU FUNCTION`` header
(``"%3s %-41s"``) and per firing ``"%3d %-41s "``: the CPU, then the
indentation, `` -> `` for an entry or `` <- `` for a return (`` => ``/
`` <= `` for the syscall provider, ``| `` for other probes) and the probe
function (``dtrace.c`` ``chew``, ``dt_consume.c`` ``dt_flowindent``).
Hand-written flow scripts print the same arrows with their own indentation
and often without the CPU.

The printed indentation is one global counter, so it drifts when CPUs
interleave or a function returns by tail call (FBT gives a tail-calling
``jmp`` no return probe).  So the nesting is rebuilt from the arrows
instead, one call stack per CPU: an entry pushes and counts its whole path
once; a return pops back to the matching entry, or is ignored when the
call began before tracing did.  The result is a profile whose weights are
call counts per path.
"""

from __future__ import annotations

import re

from tracebridge.inputs import Loaded, LoadOptions, Source
from tracebridge.profile import Metadata, Profile

_HEADER = re.compile(r"^CPU +FUNCTION\s*$")
_FLOW = re.compile(r"^ *(?:(\d+)(?: +\d+)* )? *(->|<-|=>|<=|\|) (\S+)")


def sniff(source: Source) -> bool:
    seen = 0
    for line in source.head.split("\n"):
        if not line.strip() or line.startswith("dtrace: "):
            continue
        if _HEADER.match(line):
            return True
        match = _FLOW.match(line)
        if match is None or match.group(2) == "|":
            return False
        seen += 1
        if seen == 2:
            return True
    return seen > 0


def read(source: Source, options: LoadOptions) -> Loaded:
    stacks: dict[str, list[str]] = {}   # per CPU: function texts, root first
    paths: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(source.text.split("\n"), 1):
        if not line.strip() or _HEADER.match(line) or line.startswith(("dtrace: ", "^C")):
            continue
        match = _FLOW.match(line)
        if match is None:
            raise source.error(f"not a flow line (expected `-> func` or `<- func`): {line.strip()[:60]!r}", number)
        cpu, arrow, function = match.groups()
        stack = stacks.setdefault(cpu or "", [])
        if arrow in ("->", "=>"):
            stack.append(function)
            path = tuple(stack)
            paths[path] = paths.get(path, 0) + 1
        elif arrow in ("<-", "<="):
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth] == function:
                    del stack[depth:]
                    break
    if not paths:
        raise source.error("holds no function entries (`-> func` lines)")
    profile = Profile(Metadata(source=source.path, event="calls", unit="calls"))
    texts = {text for path in paths for text in path}
    ids = {text: profile.intern(frame) for text, frame in zip(texts, options.namer.frames(texts))}
    for path, count in paths.items():
        profile.add_ids(tuple(ids[t] for t in path), count)
    return Loaded(profile)
