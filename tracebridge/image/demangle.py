"""Symbol names as people read them: Rust legacy and v0, C++ and plain C.

The Rust forms must be *exactly* what rust-lang's rustc-demangle prints,
because that is what every other Rust tool (rustfilt, perf, samply) shows and
what users will search for.  The primary backend is ``pyderust`` (bindings to
rustc-demangle itself); it has no FreeBSD wheel, so on a machine without it
the pure-Python ``demangle`` package, measured 100 % identical on 400k real
symbols, takes over automatically.  C++ Itanium names go through LLVM's
demangler (``pycxxfilt``) where it is known to spell them as the ``demangle``
package does, and through the package everywhere else (:func:`_cpp_llvm`).

A name that cannot be demangled (corrupt, hostile, or over the size limit) is
returned unchanged: a wrong expansion is worse than the mangled name.  Either
way, control characters in the name people read are written as escapes
(:mod:`tracebridge.support.printable`), so no text output -- a symbol map, a table,
folded stacks -- gains lines or terminal commands from a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import compress, repeat
from operator import is_not, not_
from types import ModuleType

from tracebridge.support import native
from tracebridge.support.printable import CONTROL, printable

try:  # rustc-demangle bindings: fast and the reference implementation.
    import pyderust as _pyderust
except ImportError:  # no wheel on FreeBSD: the pure-Python package takes over
    _pyderust = None
try:  # LLVM's Itanium demangler: 45x the pure package's speed on real C++ names.
    import pycxxfilt as _pycxxfilt
except ImportError:  # no FreeBSD wheel either
    _pycxxfilt = None

#: Longest name handed to a demangler.  rustc-demangle has its own recursion
#: and output limits; this bounds the pure-Python fallback's time per name.
MAX_NAME = 16384
#: Longest demangled name kept.  v0 backrefs and C++ substitutions make the
#: output grow exponentially with the input: 140 bytes can spell 400 KB, and
#: rustc-demangle stops only at 1 MB.  The pure-Python package stops at 64 K
#: characters; the same bound here keeps every backend's answer the same and
#: a module of such names within memory.  Longer names stay mangled.
MAX_DEMANGLED = 1 << 16

RUST_LEGACY = "rust-legacy"
RUST_V0 = "rust-v0"
#: A Rust path read already demangled (folded stacks hold names, not symbols).
RUST_NAME = "rust"
CPP = "c++"
C = "c"
#: The schemes of names a Rust demangler read, which have a crate.
_RUST_SCHEMES = (RUST_LEGACY, RUST_V0)

_LEGACY_HASH = re.compile(r"17h([0-9a-f]{16})E(?:\.|$)")
_V0_PREFIXES = ("_R", "R", "__R")
_LEGACY_PREFIXES = ("_ZN", "ZN", "__ZN")
# The first identifier that starts a path: `rem` in `rem::em::f` and in
# `<[u32; 4] as rem::em::RxDesc>::len` (a primitive is never followed by `::`).
_CRATE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::")
_V0_CRATE_HASH = re.compile(r"^[^\[:<]*\[([0-9a-f]+)\]")
@dataclass(slots=True)
class Demangled:
    """One symbol name, demangled, with the parts tools need to group by.

    ``name`` is rustc-demangle's alternate form ``{:#}`` (no hash); ``full``
    its plain form ``{}`` (``::h<hash>`` for legacy, ``[crate-hash]`` tags
    for v0), computed on first use because few outputs need it.  ``hash``
    tells legacy generic instances apart, whose ``name`` is otherwise
    identical (``Adapter<T>::rx_frame`` once per ``T``).
    """

    mangled: str
    scheme: str
    name: str
    #: ``full`` once asked for: a cache, so no part of what the name is (equality, repr).
    _full: str | None = field(default=None, compare=False, repr=False)

    @property
    def full(self) -> str:
        if self._full is None:
            self._full = printable(_rust_full(self.mangled)) if self.is_rust else self.name
        return self._full

    @property
    def hash(self) -> str | None:
        """Legacy: the ``17h<hash>E`` tail; v0: the first crate's disambiguator."""
        if self.scheme == RUST_LEGACY:
            tag = _LEGACY_HASH.search(self.mangled)
        elif self.scheme == RUST_V0:
            tag = _V0_CRATE_HASH.match(self.full)
        else:
            return None
        return tag.group(1) if tag else None

    @property
    def is_rust(self) -> bool:
        return self.scheme in _RUST_SCHEMES

    @property
    def path(self) -> tuple[str, ...]:
        """Top-level ``::`` components, not splitting inside ``<...>``."""
        return split_path(self.name) if self.scheme != C else (self.name,)

    @property
    def crate(self) -> str | None:
        """The crate that defines the item (the one in ``<X as Trait>`` for impls)."""
        return crate_of(self.name) if self.is_rust else None

    @property
    def short(self) -> str:
        """The last two path components: ``Adapter<T>::rx_frame``."""
        parts = self.path
        return "::".join(parts[-2:]) if len(parts) > 1 else parts[0]


#: A legacy hash ending a demangled path (rustc-demangle's ``{}``), and a clone suffix after it.
_DEMANGLED_LEGACY_HASH = re.compile(r"::h[0-9a-f]{16}(?:\.llvm\.[0-9A-Za-z_.]+| ?\(\.llvm\.[0-9A-Za-z_.]+\))?$")
#: A v0 crate disambiguator right after a crate name (rustc-demangle's ``{}``: ``core[9f2a...]::fmt``).
_DEMANGLED_V0_HASH = re.compile(r"(?<=[A-Za-z0-9_])\[[0-9a-f]{1,16}\](?=::)")


def strip_hashes(name: str) -> str | None:
    """A demangled Rust name without its hashes, as rustc-demangle's alternate form prints it; None if none.

    Tools that demangle without ``{:#}`` (or DTrace's ``ustack()`` on some
    systems) leave the legacy ``::h<16 hex>`` tail, and v0's ``[hex]`` crate
    disambiguators, on names that are otherwise final -- whatever they start
    with (``<X as Trait>::f``, ``a::B<T>::f``, ``{{closure}}``).  Mangled and
    half-demangled (``$LT$``) forms are the demangler's business, not this.
    """
    stripped = _DEMANGLED_V0_HASH.sub("", _DEMANGLED_LEGACY_HASH.sub("", name))
    return stripped if stripped != name and stripped else None


def crate_of(name: str) -> str | None:
    """The crate of a demangled Rust path: its first identifier followed by ``::``."""
    head, sep, _ = name.partition("::")
    if sep and head.isidentifier():  # the common `crate::path` shape, without a regex
        return head
    crate = _CRATE.search(name)
    return crate.group(1) if crate else None


def split_path(name: str) -> tuple[str, ...]:
    """Split a demangled path at ``::`` outside any ``<>``, ``()``, ``[]`` or ``{}``."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            # `->` in a fn pointer type is not a closing bracket.
            if not (ch == ">" and i > 0 and name[i - 1] == "-"):
                depth = max(0, depth - 1)
        elif ch == ":" and depth == 0 and name.startswith("::", i):
            parts.append(name[start:i])
            i += 2
            start = i
            continue
        i += 1
    parts.append(name[start:])
    return tuple(parts)


def _checked_plain(call, name: str) -> str | None:
    """``call(name)``, a Rust demangler's reading, kept only when it neither raises nor answers None
    nor more than :data:`MAX_DEMANGLED` characters."""
    try:
        plain = call(name)
    except Exception:  # DemangleError, or a limit hit inside the binding
        return None
    return plain if plain is not None and len(plain) <= MAX_DEMANGLED else None


def _pyderust_plain(name: str) -> str | None:
    return _checked_plain(_pyderust.demangle, name)


def _pyderust_full(name: str) -> str:
    try:
        full = _pyderust.demangle(name, include_hash=True)
    except Exception:
        return name
    return full if len(full) <= MAX_DEMANGLED else name


@cache
def _pure() -> tuple[ModuleType, object]:
    """The pure-Python ``demangle`` package and its style that keeps hashes, imported when first
    needed: it takes longer to import (~30 ms) than a small ``fold`` takes to run."""
    import demangle

    return demangle, demangle.style("llvm", rust={"keep_hash": True})


def _fallback_plain(name: str) -> str | None:
    plain = _pure()[0].demangle(name, language="rust")
    return None if plain == name else plain


def _fallback_full(name: str) -> str:
    package, keep_hash = _pure()
    return package.demangle(name, language="rust", style=keep_hash)


#: Longest C++ name LLVM reads.  Each level of nesting and each substitution
#: the pure package counts takes at least one character of the name, so within
#: this length its bounds (256 levels, 8192 substitutions) cannot stop it where
#: LLVM, which has none, would go on.  Longer names are rare (0.1-1.6 % of the
#: C++ names of librustc_driver, libLLVM and libclang-cpp).
_LLVM_MAX_NAME = 240
#: What spells again something spelled before it: substitutions and template
#: parameters (``S_``, ``S3_``, ``T0_``), each at most all that came before it.
#: (A constructor's or destructor's name adds at most an identifier of the name.)
_REPEATS = re.compile(r"[ST][0-9A-Z]*_")
#: LLVM bounds no spelling: ``S_IS0_S0_E`` repeated spells 16 MB from 200
#: bytes, 1 GB from 260.  A name whose worst case -- 64 characters a
#: character, doubled at every repeat, times the name's length at every pack
#: expansion (``Dp``, ``sp``: the pattern once per element) -- is over this
#: bound goes to the pure package, which stops at 64 K characters.  97-100 %
#: of the C++ names of those libraries are within it.
_LLVM_MAX_SPELLING = 1 << 24


def _cpp_llvm(name: str) -> str | None:
    """LLVM's spelling of a C++ name (``_Z...`` or ``__Z...``), where it is the pure package's;
    None to ask the package.

    Measured on the 95,570 distinct C++ names of librustc_driver, libLLVM 15
    and 22, libclang-cpp 14, libstdc++, ICU and Boost, LLVM and the package
    differ only where LLVM refuses the name (transaction clones ``_ZGTt``,
    conversion operators to some templates) or where a lambda's closure type
    ``Ul`` is in it (LLVM numbers the substitutions after it otherwise).  Those
    names take the package, and so do names with ``Dx`` (``transaction_safe``,
    which LLVM leaves out), with an ELF version (``@``: the package splits it
    off, LLVM does not), non-ASCII names (LLVM counts identifier lengths in
    UTF-8 bytes) and names over the bounds above.
    """
    if len(name) > _LLVM_MAX_NAME or "Ul" in name or "Dx" in name or "@" in name or not name.isascii():
        return None
    size = len(name)
    if (64 * size << len(_REPEATS.findall(name))) * size ** (name.count("Dp") + name.count("sp")) > _LLVM_MAX_SPELLING:
        return None
    try:
        spelled = _pycxxfilt.itanium_demangle(name)
    except ValueError:  # not a valid name to LLVM, or a NUL in it
        return None
    return spelled if spelled is not None and len(spelled) <= MAX_DEMANGLED else None


def _cpp_pure(name: str) -> str:
    return _pure()[0].demangle(name, language="itanium")


def _cpp_both(name: str) -> str:
    spelled = _cpp_llvm(name)
    return _cpp_pure(name) if spelled is None else spelled


#: Which C++ backend is in use: ``"pycxxfilt"`` (LLVM's, and the package where
#: it may differ) or ``"demangle"`` (the package alone).  Every name reads the
#: same in both.
CPP_BACKEND = ""
_cpp = _cpp_pure


def use_cpp_backend(name: str) -> None:
    """Select the C++ backend: ``pycxxfilt`` (default when installed) or ``demangle``."""
    global CPP_BACKEND, _cpp
    if name == "pycxxfilt":
        if _pycxxfilt is None:
            raise ValueError("pycxxfilt is not installed")
        _cpp = _cpp_both
    elif name == "demangle":
        _cpp = _cpp_pure
    else:
        raise ValueError(f"unknown C++ demangler backend {name!r}")
    CPP_BACKEND = name
    demangle_symbol.cache_clear()


#: Which Rust backend is in use: ``"pyderust"`` or ``"demangle"``.
BACKEND = ""
_rust_plain = _fallback_plain
_rust_full = _fallback_full
#: The Rust backend's own call, for the bulk path (:func:`_rust_demangled`), which makes the checks
#: :func:`_rust_plain` wraps around it itself: a str, or None or an exception for a name it refuses.
_rust_call = _fallback_plain


def use_backend(name: str) -> None:
    """Select the Rust backend: ``pyderust`` (default when installed) or ``demangle``."""
    global BACKEND, _rust_plain, _rust_full, _rust_call
    if name == "pyderust":
        if _pyderust is None:
            raise ValueError("pyderust is not installed")
        _rust_plain, _rust_full, _rust_call = _pyderust_plain, _pyderust_full, _pyderust.demangle
    elif name == "demangle":
        _rust_plain, _rust_full, _rust_call = _fallback_plain, _fallback_full, _fallback_plain
    else:
        raise ValueError(f"unknown demangler backend {name!r}")
    BACKEND = name
    demangle_symbol.cache_clear()


def _as_c(name: str) -> Demangled:
    return Demangled(name, C, printable(name))


def is_plain_c(name: str) -> bool:
    """Whether :func:`demangle_symbol` reads ``name`` as C and shows it as it is.

    True for printable ASCII that cannot start a mangled form: most kernel
    functions, which callers can then take without a :class:`Demangled` each.
    """
    return name.isascii() and name.isprintable() and name[:1] not in _MANGLED_STARTS


#: First characters of every mangled form :func:`demangle_symbol` tries (and of the empty name).
_MANGLED_STARTS = ("", "_", "R", "Z")
#: Every mangled form's start, Rust v0 and legacy, and C++.
_MANGLED = ("_R", "R", "__R", "_Z", "ZN", "__Z")


@lru_cache(maxsize=1 << 20)
def demangle_symbol(mangled: str) -> Demangled:
    """Demangle one symbol name; never raises, returns C for anything unknown."""
    if len(mangled) > MAX_NAME or mangled[:1] not in _MANGLED_STARTS[1:]:
        return _as_c(mangled)
    # The Rust demangler validates the whole name: a C++ `_ZN3foo3barEv`
    # (parameter types after the path's `E`) is rejected and falls through.
    if mangled.startswith(_V0_PREFIXES):
        plain = _rust_plain(mangled)
        if plain is not None:
            return Demangled(mangled, RUST_V0, printable(plain))
    elif mangled.startswith(_LEGACY_PREFIXES):
        plain = _rust_plain(mangled)
        if plain is not None:
            return Demangled(mangled, RUST_LEGACY, printable(plain))
    if mangled.startswith(("_Z", "__Z")):
        cpp = _cpp(mangled)
        if cpp != mangled:
            return Demangled(mangled, CPP, printable(cpp))
    return _as_c(mangled)


use_backend("pyderust" if _pyderust is not None else "demangle")
use_cpp_backend("pycxxfilt" if _pycxxfilt is not None else "demangle")


def demangle_all(names: list[str]) -> list[Demangled]:
    """:func:`demangle_symbol` of each name, demangled once per distinct name by :func:`demangle_names`.

    Once per distinct name, because symbols can share a name (2,000 symbols
    of one 1 MB name: docs/hardening.md); a module's names are usually all
    distinct, and then the answers are the list itself.
    """
    distinct = list(dict.fromkeys(names))
    shown, schemes = demangle_names(distinct)
    items = list(map(Demangled, distinct, schemes, shown))
    if len(distinct) == len(names):  # every name distinct: ``distinct`` is ``names``
        return items
    return list(map(dict(zip(distinct, items)).__getitem__, names))


#: The printable ASCII characters.
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _printable_ascii(text: str) -> bool:
    """``text.isascii() and text.isprintable()``, a third of the time on the megabytes of a module's names."""
    return text.isascii() and not text.encode("ascii").translate(None, _PRINTABLE_ASCII)


def demangle_names(symbols: list[str]) -> tuple[list[str], list[str]]:
    """The name and scheme :func:`demangle_symbol` gives each symbol, for many symbols at once.

    A Rust toolchain's own library has 100k ``_R`` names and a ``pmcstat -G``
    callgraph 250k distinct frame names, where the per-name steps around the
    demangler (a :class:`Demangled` and a cache entry each) cost as much as
    the demangler.  Here the ``_R``/``_ZN`` names go to the Rust demangler
    straight and names that no demangler would read pass through
    (:func:`_rust_demangled`, natively where the compiled core is built);
    anything else, and any name the Rust demangler refuses, takes
    :func:`demangle_symbol` (and its cache).

    A name given twice is demangled twice: the Rust demangler's and the
    pass-through's cost grows with the name, as writing it does, and the
    rest's answers are cached.  So ``symbols``, which writes every name, asks
    here for all its rows: finding the 3,700 repeats among librustc_driver's
    106k names and spreading the answers back cost more (50-60 ms) than
    demangling them again (:func:`demangle_all` makes a :class:`Demangled`
    per name, and so once per distinct name).
    """
    symbols = list(symbols)  # the native core reads a list
    core = native.core
    if core is not None:
        names, schemes, rest = core.rust_demangled(_rust_call, symbols, MAX_NAME, MAX_DEMANGLED, RUST_V0, RUST_LEGACY,
                                                   C)
    else:
        names, schemes, rest = _rust_demangled(symbols)
    for i in rest:
        item = demangle_symbol(symbols[i])
        names[i], schemes[i] = item.name, item.scheme
    return names, schemes


def _rust_demangled(symbols: list[str]) -> tuple[list[str], list[str], list[int]]:
    """``rust_demangled`` of src/native/demangle_batch.h: the same answer, in Python.

    ``names`` and ``schemes``: for each ``_R``/``_ZN`` name of at most
    :data:`MAX_NAME` characters that the Rust demangler reads
    (:data:`_rust_call`) into at most :data:`MAX_DEMANGLED` characters with
    no control character, its reading and ``rust-v0``/``rust-legacy``; for
    any other name the name itself and ``c``.  ``rest``: the indices of those
    others, in order, that :func:`demangle_symbol` may read otherwise: all
    but printable ASCII that starts like no mangled form (most kernel
    functions: plain C).  The tests run over all names at once, in C calls:
    per-name Python steps cost as much as the demangler.
    """
    count = len(symbols)
    names, schemes = list(symbols), [C] * count
    if _printable_ascii("".join(symbols)):
        plain_c = [not mangled for mangled in map(str.startswith, symbols, repeat(_MANGLED))]
    else:  # rare: then each name is looked at
        plain_c = [name.isascii() and name.isprintable() and not name.startswith(_MANGLED) for name in symbols]
    shaped = list(map(str.startswith, symbols, repeat(("_R", "_ZN"))))
    if max(map(len, symbols), default=0) > MAX_NAME:  # rare: a name no demangler is given
        shaped = [rust and len(name) <= MAX_NAME for rust, name in zip(shaped, symbols)]
    plains = list(map(_rust_plain_bulk, compress(symbols, shaped)))
    found = list(map(is_not, plains, repeat(None)))
    direct, shown = list(compress(compress(range(count), shaped), found)), list(compress(plains, found))
    joined = "".join(shown)
    if not _printable_ascii(joined) and CONTROL.search(joined) is not None:  # rare: a control character
        kept = [CONTROL.search(plain) is None for plain in shown]
        direct, shown = list(compress(direct, kept)), list(compress(shown, kept))
    for i, plain in zip(direct, shown):
        names[i], schemes[i] = plain, RUST_V0 if symbols[i].startswith("_R") else RUST_LEGACY
    rest = sorted(set(compress(range(count), map(not_, plain_c))).difference(direct)) if len(direct) < count else []
    return names, schemes, rest


def _rust_plain_bulk(name: str) -> str | None:
    """:data:`_rust_call`'s reading of a name as :func:`_rust_demangled` (and the native core) keeps it."""
    return _checked_plain(_rust_call, name)


def crates_of(names: list[str], schemes: list[str]) -> list[str | None]:
    """:attr:`Demangled.crate` of each (name, scheme), for many at once: natively where the compiled
    core is built (``crates_of`` of src/native/demangle_batch.h, which calls :func:`crate_of` only
    for names that are not ASCII), else name by name."""
    core = native.core
    if core is not None:
        return core.crates_of(list(names), list(schemes), _RUST_SCHEMES, crate_of)
    return [crate_of(name) if scheme in _RUST_SCHEMES else None for name, scheme in zip(names, schemes)]


def display_names(items: list[Demangled]) -> list[str]:
    """Names for display that stay unique within one module.

    Legacy Rust instances of one generic differ only by hash; where a
    demangled name occurs more than once, each occurrence gets ``#<hash>``
    (the first 8 hex digits), or ``#<n>`` when there is no hash.
    """
    counts: dict[str, int] = {}
    for item in items:
        counts[item.name] = counts.get(item.name, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for item in items:
        if counts[item.name] == 1:
            out.append(item.name)
        elif item.hash:
            out.append(f"{item.name}#{item.hash[:8]}")
        else:
            seen[item.name] = seen.get(item.name, 0) + 1
            out.append(f"{item.name}#{seen[item.name]}")
    return out
