"""Probe descriptions as libdtrace and FBT accept them, one unique function each.

A Rust symbol cannot simply be pasted into a D script (see freebsd-facts.md
section 4): libdtrace's lexer takes a probe specifier only when it matches
``[-$:a-zA-Z_.?*\\[\\]!][-$:0-9a-zA-Z_.`?*\\[\\]!]*`` (dt_lex.l, ``RGX_PSPEC``);
``dtrace_xstr2desc`` then expands the first ``$`` of each field as a macro
(an unknown one is an error) and rejects a field of ``DTRACE_FUNCNAMELEN``
(192) characters or more; ``:`` separates fields.  So every character that is
not a plain literal becomes ``?``, which the kernel's glob still matches
against the real name; and a name longer than 191 characters becomes
``<prefix>*<suffix>``, keeping the legacy ``17h<hash>E`` tail.

A glob may catch more than its function.  Each one is checked with the
kernel's own matcher (:mod:`tracebridge.probes.dglob`) against every function of the
module; a colliding ``?`` is narrowed to ``[!x]`` (the other name's character),
a colliding ``*`` glob is cut elsewhere, and a function for which no glob of at
most 191 characters singles it out gets no description at all (the caller
says so in the script).  Two symbols with the very same name cannot be told
apart by any description; their shared description is kept and marked.

:func:`d_text` is the one way a raw name may enter a D comment or string.
"""

from __future__ import annotations

import bisect
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tracebridge.probes import dglob
PROVIDER = "fbt"
#: Longest field libdtrace accepts (``DTRACE_*NAMELEN`` - 1): provider, module, function, name.
MODULE_MAX = 63
FUNCTION_MAX = 191

#: Characters written as themselves: literal to the lexer, to ``dtrace_xstr2desc``
#: (no ``$``, no ``:``) and to the kernel's glob (no ``*?[\\``).  ``]`` and ``!``
#: are literal outside a set, but are kept out so that sets stay unambiguous.
_LITERAL = frozenset(string.ascii_letters + string.digits + "_.-`")
_TO_FIELD = bytes(code if chr(code) in _LITERAL else ord("?") for code in range(256))
#: The same, keeping NUL: names joined by NULs (which no symbol name holds) are made fields at once.
_TO_FIELDS = b"\0" + _TO_FIELD[1:]
#: Characters that may be listed inside ``[!...]`` without escaping.
_SET_SAFE = frozenset(string.ascii_letters + string.digits + "_.`")
#: Suffix lengths tried, in order, for ``<prefix>*<suffix>`` globs of long names.
_SUFFIXES = (64, 40, 20, 96, 128, 160, 189)
#: The first cut's head and tail: a later cut's head starts with the first's, or its tail ends with it.
_FIRST_TAIL = _SUFFIXES[0]
_FIRST_HEAD = FUNCTION_MAX - 1 - _FIRST_TAIL
_ANCHOR = 16
#: Few enough candidates to check them all without looking for fewer.
_FEW = 64

#: Printable ASCII that can stand in a D comment or string as is: no quote,
#: no backslash, no ``/`` (so neither ``/*`` nor ``*/`` can form), no ``%``.
_D_TEXT_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('"\\/%')
_D_TEXT_UNSAFE = re.compile("[^" + re.escape("".join(sorted(_D_TEXT_SAFE))) + "]")
#: Characters a glob treats specially: what bounds a field's literal head and tail.
_META = re.compile(r"[*?\[\]\\]")


def d_text(text: str) -> str:
    """``text`` made safe inside a D comment *and* a D string literal.

    Anything outside printable ASCII, and ``"``, ``\\``, ``/`` and ``%``, becomes
    a C octal escape (``\\052``): a hostile symbol can neither close a comment
    or string, nor start a nested comment, nor add a line.  Characters above
    0xff (never produced by Latin-1 decoding) are escaped byte by byte as UTF-8.
    """
    if not _D_TEXT_UNSAFE.search(text):
        return text
    return _D_TEXT_UNSAFE.sub(_octal, text)


def _octal(match: re.Match[str]) -> str:
    char = match.group()
    raw = char.encode("latin-1") if ord(char) < 0x100 else char.encode("utf-8")
    return "".join(f"\\{byte:03o}" for byte in raw)


def literal_field(name: str) -> str:
    """``name`` with every character that is not a plain literal replaced by ``?``."""
    return name.encode("latin-1", "replace").translate(_TO_FIELD).decode("latin-1")


def module_field(modname: str) -> str:
    """The module field for FBT's module name (file basename without ``.ko``)."""
    field = literal_field(modname)
    return field if len(field) <= MODULE_MAX else field[:MODULE_MAX - 1] + "*"


def description(module: str, function: str, probe: str) -> str:
    """One probe description; ``module`` and ``function`` are already fields."""
    return f"{PROVIDER}:{module}:{function}:{probe}"


@dataclass(frozen=True, slots=True)
class FunctionField:
    """How one function is named in a probe description."""

    #: The description's function field; None when no field selects only this function.
    text: str | None
    #: Symbols that carry exactly this name (a field always selects all of them).
    duplicates: int = 1
    #: Why there is no field (set only when ``text`` is None).
    problem: str | None = None

    def __reduce__(self):
        # Rebuilt with the constructor, as FbtProbes is: plan_module sends the fields of half the
        # module's functions back from split_map's second process.
        return FunctionField, (self.text, self.duplicates, self.problem)

    @property
    def glob(self) -> bool:
        """The kernel matches this field as a glob, not with ``strcmp``."""
        return self.text is not None and dglob.is_glob(self.text)


class FunctionFields:
    """Function fields for one module, each checked against all of its functions.

    ``names`` are the module's function names (duplicates allowed).  Finding
    which other names a glob also selects must stay cheap for 100k functions:
    a ``*``-free glob can only match names of its own length, and among
    those the names that share the glob's literal head are one slice of the
    sorted names, those that share its literal tail one slice of the sorted
    reversed names; the smaller slice is narrowed to names with both the head
    and the tail, and only the few left are run through the kernel matcher.
    A ``<prefix>*<suffix>`` glob of a long name can only match long names,
    which :class:`_LongNames` groups by hashing instead.  Every structure is
    made on first use, for the lengths asked about only: ``gen-probes`` makes
    them in each of its two processes.
    """

    def __init__(self, names: Iterable[str], *, signed_char: bool = True):
        self._count = Counter(names)
        self._signed = signed_char
        # The search structures, built on first use: all distinct names, those of each length asked
        # about (a ``*``-free glob matches names of its own length only), and their tails.
        self._everything = _Sorted(list(self._count))
        self._by_length: dict[int, _Sorted] = {}
        self._tails_by_length: dict[int, Counter[str]] = {}
        self._all_by_length: dict[int, list[str]] | None = None
        #: The long names (what a ``<prefix>*<suffix>`` field can select), built on first use.
        self._long: _LongNames | None = None
        #: Fields found so far: names repeat (local symbols, or a hostile module's one name for all).
        self._found: dict[str, FunctionField] = {}

    def _tails_of_length(self, length: int) -> Counter[str]:
        """How many distinct names of one length end in the same 16 characters, counted for the lengths
        asked about only: a field whose last 16 characters are plain literals and whose name is alone in
        its group cannot select any other name, which settles it without a search."""
        tails = self._tails_by_length.get(length)
        if tails is None:
            tails = self._tails_by_length[length] = Counter(name[-_ANCHOR:] for name in self._of_length(length).names)
        return tails

    def field(self, name: str) -> FunctionField:
        found = self._found.get(name)
        if found is None:
            found = self._found[name] = self._field(name, literal_field(name))
        return found

    def fields(self, names: Sequence[str]) -> list[FunctionField]:
        """:meth:`field` of each name; the :func:`literal_field` texts of the names not seen yet are
        made in one pass (30k names take 100k functions' probes), each distinct name once (a hostile
        module names one 1 MB string 2,000 times)."""
        found = self._found
        new = [name for name in dict.fromkeys(names) if name not in found]
        joined = "\0".join(new)
        if joined.count("\0") != max(len(new) - 1, 0):  # a NUL inside a name: one at a time
            return [self.field(name) for name in names]
        texts = joined.encode("latin-1", "replace").translate(_TO_FIELDS).decode("latin-1").split("\0")
        for name, text in zip(new, texts):
            found[name] = self._field(name, text)
        return [found[name] for name in names]

    def _field(self, name: str, text: str) -> FunctionField:
        """The field of ``name``, whose :func:`literal_field` is ``text``."""
        duplicates = self._count.get(name, 1)
        if len(text) > FUNCTION_MAX:
            for suffix in _SUFFIXES:
                glob = text[:FUNCTION_MAX - 1 - suffix] + "*" + text[-suffix:]
                # A name of plain literals is answered by the counts, the others by the search.
                if self._long_names().alone(name, suffix) if text == name else not self.others(glob, name):
                    return FunctionField(glob, duplicates)
            return FunctionField(None, duplicates, f"no glob of at most {FUNCTION_MAX} characters "
                                                   f"selects only this {len(name)}-character name")
        plain_tail = "?" not in text[-_ANCHOR:] and len(name) >= _ANCHOR
        if text == name or (plain_tail and self._tails_of_length(len(name))[name[-_ANCHOR:]] == 1):
            return FunctionField(text, duplicates)
        others = self.others(text, name)
        if others:
            text = _narrow(text, name, others)
            if text is None or len(text) > FUNCTION_MAX or self.others(text, name):
                return FunctionField(None, duplicates, "every glob that fits also selects another "
                                                       "function of the module")
        return FunctionField(text, duplicates)

    def _long_names(self) -> _LongNames:
        """The distinct names of at least ``FUNCTION_MAX - 1`` characters."""
        if self._long is None:
            self._long = _LongNames([other for other in self._count if len(other) >= FUNCTION_MAX - 1])
        return self._long

    def others(self, field: str, name: str) -> list[str]:
        """Distinct function names other than ``name`` that ``field`` selects."""
        candidates = [other for other in self._candidates(field) if other != name]
        if not candidates:
            return []
        match = dglob.matcher(field, signed_char=self._signed)
        return [other for other in candidates if match(other)]

    def _candidates(self, field: str) -> Sequence[str]:
        """Names that can match ``field``: same literal head and tail (and length, without ``*``)."""
        if not dglob.is_glob(field):
            return [field] if field in self._count else []
        metas = [m.start() for m in _META.finditer(field)]
        head, tail = field[:metas[0]], field[metas[-1] + 1:]
        if field.count("*") == 1 and "[" not in field and "\\" not in field and len(field) >= FUNCTION_MAX:
            # Every other character stands for one: only long names are long enough.
            return self._long_names().with_head_and_tail(head, tail)
        length = None if "*" in field else _fixed_length(field)
        names = self._everything if length is None else self._of_length(length)
        return [n for n in names.with_head_or_tail(head, tail) if n.startswith(head) and n.endswith(tail)]

    def _of_length(self, length: int) -> _Sorted:
        """Distinct names of ``length`` characters (all of them are filed by length once, when one is first asked)."""
        names = self._by_length.get(length)
        if names is None:
            if self._all_by_length is None:  # in one pass, not one per length
                self._all_by_length = {}
                for name in self._everything.names:
                    self._all_by_length.setdefault(len(name), []).append(name)
            names = self._by_length[length] = _Sorted(self._all_by_length.get(length, []))
        return names


class _LongNames:
    """The distinct names of at least ``FUNCTION_MAX - 1`` characters, indexed for ``<prefix>*<suffix>`` fields.

    Such a field selects only names this long.  The first cut tried
    (:data:`_FIRST_HEAD` characters from the start, :data:`_FIRST_TAIL` from
    the end) is counted for every long name in one pass: that answers for
    most of them at once (a Rust toolchain library has 10k long v0 names whose
    last 16 characters are not unique).  A later cut is tried only for a name
    whose first cut another name shares; it keeps a longer head and a shorter
    tail, or a longer tail, so the names it can select share the first cut's
    head, or its tail, with that name: one group of a dictionary, made on
    first use, of the names whose first head (or tail) is in a shared first
    cut.  The sorted lists these answers came from before (34k names of 300
    characters that share long prefixes, sorted forwards and reversed) took
    0.08 s to make in each of ``gen-probes``' two processes on a Rust toolchain
    library; its groups hold 7k names.  Only a field with ``?`` (rare in a
    long name) is still looked up in sorted names.
    """

    def __init__(self, names: list[str]):
        self.names = names
        self._heads = [name[:_FIRST_HEAD] for name in names]
        self._tails = [name[-_FIRST_TAIL:] for name in names]
        self._first_cuts = Counter(zip(self._heads, self._tails))
        #: The names of the shared first cuts by their first head, and by their first tail.
        self._groups: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
        #: Per (suffix length, group key) of a big group, how many of its names share each (head, tail).
        self._cuts_in_group: dict[tuple[int, str], Counter[tuple[str, str]]] = {}
        self._sorted: _Sorted | None = None

    def alone(self, name: str, suffix: int) -> bool:
        """Does ``<head>*<last suffix characters>`` of a long name of plain literals select only that name?

        It selects exactly the long names with its head and its tail.  Asked
        for a later suffix length only when the first one selected another name
        too (:meth:`FunctionFields._field` tries them in order).  Within a big
        group, the (head, tail) pairs are counted once per suffix length.
        """
        cut = FUNCTION_MAX - 1 - suffix
        head, tail = name[:cut], name[-suffix:]
        if suffix == _FIRST_TAIL:
            return self._first_cuts[head, tail] == 1
        key, group = self._group(head, tail)
        if len(group) <= _FEW:
            return sum(1 for other in group if other.startswith(head) and other.endswith(tail)) == 1
        counts = self._cuts_in_group.get((suffix, key))
        if counts is None:
            counts = self._cuts_in_group[suffix, key] = Counter((other[:cut], other[-suffix:]) for other in group)
        return counts[head, tail] == 1

    def with_head_and_tail(self, head: str, tail: str) -> list[str]:
        """The long names that start with ``head`` and end with ``tail``: looked up in the sorted names (a
        ``?`` in a long name's field is rare: its head and tail are then the literal text around it)."""
        if self._sorted is None:
            self._sorted = _Sorted(self.names)
        return [other for other in self._sorted.with_head_or_tail(head, tail)
                if other.startswith(head) and other.endswith(tail)]

    def _group(self, head: str, tail: str) -> tuple[str, list[str]]:
        """The names in a shared first cut whose first head is that of ``head`` (when it is that long),
        else those whose first tail is that of ``tail``, and that first head or tail.  One of them is the
        name the caller asks about, whose first cut is shared: its group is there."""
        if self._groups is None:
            shared = [cut for cut, count in self._first_cuts.items() if count > 1]
            self._groups = (_grouped(self._heads, self.names, {head for head, _ in shared}),
                            _grouped(self._tails, self.names, {tail for _, tail in shared}))
        by_head, by_tail = self._groups
        if len(head) >= _FIRST_HEAD:
            return head[:_FIRST_HEAD], by_head[head[:_FIRST_HEAD]]
        return tail[-_FIRST_TAIL:], by_tail[tail[-_FIRST_TAIL:]]


def _grouped(keys: list[str], names: list[str], wanted: set[str]) -> dict[str, list[str]]:
    """The names whose key (one per name, in order) is ``wanted``, grouped by it."""
    groups: dict[str, list[str]] = {}
    for at in [at for at, key in enumerate(keys) if key in wanted]:
        groups.setdefault(keys[at], []).append(names[at])
    return groups


class _Sorted:
    """Some distinct names, with their sorted and sorted-reversed lists made on first use: the names
    with a given head are one slice of the first, those with a given tail one slice of the second."""

    __slots__ = ("names", "_ordered", "_reversed")

    def __init__(self, names: list[str]):
        self.names = names
        self._ordered: list[str] | None = None
        self._reversed: list[str] | None = None

    def with_head(self, head: str) -> list[str]:
        """The names that start with ``head``."""
        if self._ordered is None:
            self._ordered = sorted(self.names)
        low, high = _prefix_range(self._ordered, head)
        return self._ordered[low:high]

    def with_head_or_tail(self, head: str, tail: str) -> list[str]:
        """The names that start with ``head`` or those that end with ``tail``, whichever are fewer
        (the second are looked for only when the first are more than a few)."""
        heads = self.with_head(head)
        if len(heads) <= _FEW:
            return heads
        if self._reversed is None:
            self._reversed = sorted(name[::-1] for name in self.names)
        low, high = _prefix_range(self._reversed, tail[::-1])
        return [reverse[::-1] for reverse in self._reversed[low:high]] if high - low < len(heads) else heads


def _prefix_range(ordered: list[str], prefix: str) -> tuple[int, int]:
    """Where the strings of a sorted list that start with ``prefix`` lie: ``ordered[low:high]``."""
    low = bisect.bisect_left(ordered, prefix)
    # Names are Latin-1 text: every one of them sorts below this character.
    return low, bisect.bisect_left(ordered, prefix + "\U0010ffff", low)


def _fixed_length(field: str) -> int | None:
    """Length of every string a ``*``-free glob matches (a set or an escape counts one).

    None for a malformed set, which the caller then checks against every name.
    """
    if "[" not in field and "\\" not in field:
        return len(field)
    length = i = 0
    n = len(field)
    while i < n:
        if field[i] == "[":
            j = i + 1
            if j < n and field[j] == "!":
                j += 1
            j += 2 if j < n and field[j] == "\\" else 1  # the first member may be "]"
            while j < n and field[j] != "]":
                j += 2 if field[j] == "\\" else 1
            if j >= n:
                return None
            i = j + 1
        else:
            i += 2 if field[i] == "\\" else 1
        length += 1
    return length


def _narrow(field: str, name: str, others: list[str]) -> str | None:
    """Turn ``?`` into ``[!x...]`` where the colliding names differ from ``name``.

    Only for ``*``-free fields made by :func:`literal_field`, where character i
    of the field faces character i of every name it can match.
    """
    parts = list(field)
    remaining = others
    for i, ch in enumerate(field):
        if ch != "?":
            continue
        excluded = sorted({other[i] for other in remaining if other[i] != name[i] and other[i] in _SET_SAFE})
        if excluded:
            parts[i] = "[!" + "".join(excluded) + "]"
            remaining = [other for other in remaining if other[i] not in excluded]
            if not remaining:
                return "".join(parts)
    return None
