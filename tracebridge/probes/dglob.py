"""The DTrace kernel's glob matcher, for checking probe descriptions before DTrace does.

A probe description field that contains ``*``, ``?``, ``[`` or ``\\`` is a glob
in the kernel (``dtrace_probekey_func`` picks ``dtrace_match_glob``), any other
field is compared with ``strcmp`` (``dtrace_match_string``).  tracebridge writes
globs for names it cannot spell literally, and must know *exactly* which
functions such a glob selects: a description that also catches a neighbour
would silently merge two functions' data.  So this module follows
``dtrace_match_glob`` in ``sys/cddl/contrib/opensolaris/uts/common/dtrace/dtrace.c``
rule for rule, including its quirks:

* ``*`` never matches at the very end of the string unless it ends the pattern
  (the loop stops at the string's NUL), consecutive ``*`` count as one;
* ``[...]`` sets take ranges (``a-z``; a ``-`` first, last or after a range is
  literal) and ``!`` negation; ``\\`` quotes the next character, inside a set too;
  ranges compare plain C ``char`` values, which are signed on amd64 and i386 and
  unsigned on arm64 and riscv (:data:`SIGNED_CHAR`): it matters above 0x7f;
* an escaped ``\\*`` is a literal star, not a wildcard;
* more than :data:`MAX_DEPTH` nested ``*`` make the whole match an error.

Strings are Latin-1 decoded (one character per byte), as everywhere in tracebridge.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: ``DTRACE_PROBEKEY_MAXDEPTH``: nesting limit of ``*`` before the kernel gives up.
MAX_DEPTH = 8

#: Characters that turn a description field into a glob (``dtrace_probekey_func``).
GLOB_CHARS = frozenset("*?[\\")

NUL = "\0"

#: Machines whose C ``char`` is signed in the FreeBSD ABI (range tests differ above 0x7f).
SIGNED_CHAR = {"amd64": True, "i386": True, "arm64": False, "riscv": False}


class GlobDepthError(ValueError):
    """The pattern nests more ``*`` than the kernel allows: DTrace reports an error."""


def is_glob(field: str) -> bool:
    """True when the kernel compares ``field`` as a glob rather than with ``strcmp``."""
    return not GLOB_CHARS.isdisjoint(field)


def matches(name: str, field: str, *, signed_char: bool = True) -> bool:
    """Does the kernel select ``name`` with description field ``field``?

    An empty field matches everything (``dtrace_match_nul``); a field without
    glob characters must equal the name.  Raises :class:`GlobDepthError` where
    the kernel would return its depth error.
    """
    return matcher(field, signed_char=signed_char)(name)


def matcher(field: str, *, signed_char: bool = True) -> Callable[[str], bool]:
    """:func:`matches` for one field, prepared once for testing many names.

    In ``dtrace_match_glob`` ``?`` takes exactly one character and ``*`` any
    run including the empty one (the loop tries every start up to the NUL,
    and what follows a ``*`` is never empty and never matches an empty
    string), and a match found anywhere in that search is a match.  So a field
    made of literals, ``?`` and ``*`` only (what tracebridge writes) is
    matched without the recursive walk: with at most one ``*`` by comparing
    its literal runs in place, with more as the equivalent regular
    expression.  Sets, escapes and too many ``*`` go through :func:`_match`,
    the line-by-line port.
    """
    if not field:
        return lambda name: True
    if not is_glob(field):
        return field.__eq__
    runs = re.split(r"\*+", field)
    if "[" not in field and "\\" not in field:
        if len(runs) <= 2:
            return _star_free(runs[0]) if len(runs) == 1 else _one_star(runs[0], runs[1])
        if len(runs) - 1 <= MAX_DEPTH:
            pattern = re.compile(".*".join(".".join(re.escape(lit) for lit in run.split("?")) for run in runs),
                                 re.DOTALL)
            return lambda name: pattern.fullmatch(name) is not None
    pattern = field + NUL

    def match(name: str) -> bool:
        result = _match(name + NUL, pattern, 0, signed_char)
        if result < 0:
            raise GlobDepthError(f"more than {MAX_DEPTH} nested '*' in {field!r}")
        return result == 1

    return match


def _literal_runs(part: str) -> list[tuple[int, str]]:
    """(offset, text) of each ``?``-free run of ``part``."""
    runs, offset = [], 0
    for run in part.split("?"):
        if run:
            runs.append((offset, run))
        offset += len(run) + 1
    return runs


def _star_free(part: str) -> Callable[[str], bool]:
    runs, length = _literal_runs(part), len(part)
    return lambda name: len(name) == length and all(name.startswith(run, at) for at, run in runs)


def _one_star(head: str, tail: str) -> Callable[[str], bool]:
    head_runs, tail_runs = _literal_runs(head), _literal_runs(tail)
    least, tail_length = len(head) + len(tail), len(tail)

    def match(name: str) -> bool:
        if len(name) < least:
            return False
        start = len(name) - tail_length
        return (all(name.startswith(run, at) for at, run in head_runs)
                and all(name.startswith(run, start + at) for at, run in tail_runs))

    return match


def _match(s: str, p: str, depth: int, signed_char: bool) -> int:
    """1 match, 0 no match, -1 depth error: ``dtrace_match_glob``'s return values.

    ``s`` and ``p`` end with a NUL sentinel, so the indices below walk them the
    way the C code walks its pointers.
    """
    if depth > MAX_DEPTH:
        return -1

    def code(ch: str) -> int:
        value = ord(ch)
        return value - 256 if signed_char and value >= 128 else value

    si = pi = 0
    while True:  # the C code's "top:" label
        olds = si
        s1 = s[si]
        si += 1
        c = p[pi]
        pi += 1
        if c == NUL:
            return int(s1 == NUL)
        if c == "[":
            if s1 == NUL:
                return 0
            ok, notflag, lc = 0, False, NUL
            if p[pi] == "!":
                notflag = True
                pi += 1
            c = p[pi]
            pi += 1
            if c == NUL:
                return 0
            while True:
                if c == "-" and lc != NUL and p[pi] != "]":
                    c = p[pi]
                    pi += 1
                    if c == NUL:
                        return 0
                    if c == "\\":
                        c = p[pi]
                        pi += 1
                        if c == NUL:
                            return 0
                    inside = code(lc) <= code(s1) <= code(c)
                    if notflag:
                        if inside:
                            return 0
                        ok += 1
                    elif inside:
                        ok += 1
                elif c == "\\":
                    c = p[pi]
                    pi += 1
                    if c == NUL:
                        return 0
                lc = c
                if notflag:
                    if s1 == c:
                        return 0
                    ok += 1
                elif s1 == c:
                    ok += 1
                c = p[pi]
                pi += 1
                if c == NUL:
                    return 0
                if c == "]":
                    break
            if not ok:
                return 0
            continue
        if c == "*":
            while p[pi] == "*":
                pi += 1  # consecutive *'s are identical to a single one
            if p[pi] == NUL:
                return 1
            for start in range(olds, len(s) - 1):
                result = _match(s[start:], p[pi:], depth + 1, signed_char)
                if result != 0:
                    return result
            return 0
        if c == "\\":
            c = p[pi]
            pi += 1
            if c == NUL:
                return 0
            if c != s1:
                return 0
        elif c != "?" and c != s1:
            return 0
        if s1 == NUL:  # "?" (and a literal) need a character
            return 0
