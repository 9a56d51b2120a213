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
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

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
#: Characters that may be listed inside ``[!...]`` without escaping.
_SET_SAFE = frozenset(string.ascii_letters + string.digits + "_.`")
#: Suffix lengths tried, in order, for ``<prefix>*<suffix>`` globs of long names.
_SUFFIXES = (64, 40, 20, 96, 128, 160, 189)
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
    the names that share the glob's literal head are one slice of the sorted
    names, those that share its literal tail one slice of the sorted reversed
    names, and a ``*``-free glob can only match names of its own length; the
    smallest of these is narrowed to names with both the head and the tail,
    and only the few left are run through the kernel matcher.
    """

    def __init__(self, names: Iterable[str], *, signed_char: bool = True):
        self._count = Counter(names)
        self._signed = signed_char
        # The search structures, built on first use.
        self._sorted: list[str] | None = None
        self._reversed: list[str] | None = None
        self._by_length: dict[int, list[str]] | None = None
        #: Names of at least FUNCTION_MAX - 1 characters, and per glob suffix length how many of them
        #: share each (head, tail); built on first use.
        self._long: list[str] | None = None
        self._heads_tails: dict[int, Counter[tuple[str, str]]] = {}
        #: Fields found so far: names repeat (local symbols, or a hostile module's one name for all).
        self._found: dict[str, FunctionField] = {}

    # How many distinct names end in the same 16 characters, overall and per
    # length: a field whose last 16 characters are plain literals and whose
    # name is alone in its group cannot select any other name.  This settles
    # most legacy names (``...17h<hash>E``) without a search.
    @cached_property
    def _tails(self) -> Counter[str]:
        return Counter(name[-_ANCHOR:] for name in self._count)

    @cached_property
    def _length_tails(self) -> Counter[tuple[int, str]]:
        return Counter((len(name), name[-_ANCHOR:]) for name in self._count)

    def field(self, name: str) -> FunctionField:
        found = self._found.get(name)
        if found is None:
            found = self._found[name] = self._field(name)
        return found

    def _field(self, name: str) -> FunctionField:
        duplicates = self._count.get(name, 1)
        text = literal_field(name)
        plain_tail = "?" not in text[-_ANCHOR:] and len(name) >= _ANCHOR
        if len(text) > FUNCTION_MAX:
            for suffix in _SUFFIXES:
                glob = text[:FUNCTION_MAX - 1 - suffix] + "*" + text[-suffix:]
                # A name of plain literals is answered by the counts (which see a unique tail too).
                if (self._alone_in_glob(name, suffix) if text == name else
                        (plain_tail and self._tails[name[-_ANCHOR:]] == 1) or not self.others(glob, name)):
                    return FunctionField(glob, duplicates)
            return FunctionField(None, duplicates, f"no glob of at most {FUNCTION_MAX} characters "
                                                   f"selects only this {len(name)}-character name")
        if text == name or (plain_tail and self._length_tails[len(name), name[-_ANCHOR:]] == 1):
            return FunctionField(text, duplicates)
        others = self.others(text, name)
        if others:
            text = _narrow(text, name, others)
            if text is None or len(text) > FUNCTION_MAX or self.others(text, name):
                return FunctionField(None, duplicates, "every glob that fits also selects another "
                                                       "function of the module")
        return FunctionField(text, duplicates)

    def _alone_in_glob(self, name: str, suffix: int) -> bool:
        """Does ``<head>*<last suffix characters>`` of a long name of plain literals select only that name?

        Such a glob selects exactly the names of at least ``FUNCTION_MAX - 1``
        characters with its head and its tail: one count per (head, tail) of
        the module's long names answers for all of them, where a search per
        name costs a bisection and a filter (a Rust toolchain library has 10k
        long v0 names whose last 16 characters are not unique).
        """
        cut = FUNCTION_MAX - 1 - suffix
        heads_tails = self._heads_tails.get(suffix)
        if heads_tails is None:
            if self._long is None:
                self._long = [other for other in self._count if len(other) >= FUNCTION_MAX - 1]
            heads_tails = self._heads_tails[suffix] = Counter((other[:cut], other[-suffix:]) for other in self._long)
        return heads_tails[name[:cut], name[-suffix:]] == 1

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
        candidates = self._with_prefix(head)
        if len(candidates) > _FEW:
            ending = self._with_suffix(tail)
            if len(ending) < len(candidates):
                candidates = ending
        if len(candidates) > _FEW and "*" not in field:
            length = _fixed_length(field)
            if length is not None:
                same_length = self._of_length(length)
                if len(same_length) < len(candidates):
                    candidates = same_length
        return [n for n in candidates if n.startswith(head) and n.endswith(tail)]

    def _with_prefix(self, head: str) -> Sequence[str]:
        """Distinct names that start with ``head``."""
        if self._sorted is None:
            self._sorted = sorted(self._count)
        return _bisect_prefix(self._sorted, head)

    def _with_suffix(self, tail: str) -> Sequence[str]:
        """Distinct names that end with ``tail`` (reversed: the caller only filters them)."""
        if self._reversed is None:
            self._reversed = sorted(name[::-1] for name in self._count)
        return [reverse[::-1] for reverse in _bisect_prefix(self._reversed, tail[::-1])]

    def _of_length(self, length: int) -> Sequence[str]:
        if self._by_length is None:
            self._by_length = defaultdict(list)
            for name in self._count:
                self._by_length[len(name)].append(name)
        return self._by_length.get(length, ())


def _bisect_prefix(ordered: list[str], prefix: str) -> list[str]:
    """The slice of a sorted list whose strings start with ``prefix``."""
    low = bisect.bisect_left(ordered, prefix)
    # Names are Latin-1 text: every one of them sorts below this character.
    return ordered[low:bisect.bisect_left(ordered, prefix + "\U0010ffff", low)]


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
