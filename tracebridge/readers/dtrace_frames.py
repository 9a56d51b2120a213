"""Turning the frame text DTrace prints into named frames.

libdtrace prints a frame as `` module`func+0xoff ``, `` module`func ``,
`` module`0xADDR `` or a bare ``0xADDR`` (``dt_print_stack`` in
``dt_consume.c``), and never demangles kernel names.  For Rust that leaves
three repairs, all made here once per distinct frame text:

* mangled names are demangled (``__ZN`` from macOS, ``.llvm.NNN`` clone
  suffixes included) by :func:`~tracebridge.image.demangle.demangle_symbol`;
* names that a C++ demangler already half-demangled (macOS ``ustack()``
  prints ``foo::Bar$LT$T$GT$::baz::h0123456789abcdef``) are mangled back
  to the legacy symbol they came from, so the result is exactly what
  rustc-demangle prints for the original;
* hex addresses, which is how libdtrace prints almost every Rust frame of
  a per-function-section module (freebsd-facts section 5), are resolved in
  bulk from the modules' layout when their load addresses are known;
* probe function names written with ``?`` for ``$`` are looked up in the
  probe map that ``gen-probes`` wrote;
* names DTrace cut short are completed from the modules' symbol tables and
  the probe map: a probe description holds at most
  ``DTRACE_FUNCNAMELEN - 1`` = 191 characters (``dtrace -F`` prints that),
  a string such as ``probefunc`` at most ``strsize - 1`` = 255.

Readers also hand the namer each stack's frames by role (:meth:`FrameNamer.observe`),
so that the evidence whether the capture fits the given modules
(:mod:`tracebridge.profile.consistency`) is counted where the frames are named.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

from tracebridge.image.demangle import RUST_LEGACY, RUST_NAME, crate_of, demangle_symbol, strip_hashes
from tracebridge.profile.model import C, UNKNOWN, Frame, address_frame, symbol_frame

if TYPE_CHECKING:
    from tracebridge.probes.probemap import ProbeMap
    from tracebridge.profile.consistency import Evidence
    from tracebridge.profile.resolve import AddressSpace

#: Lengths at which DTrace cuts a function name (probe description field, default strsize).
CUT_LENGTHS = (191, 255)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
#: A legacy Rust name after a C++ demangler: ``path::components::h<16 hex>``, maybe a clone suffix.
_HALF_DEMANGLED = re.compile(r"^((?:[^:\s]+::)+)h([0-9a-f]{16})(?: ?\(?(\.llvm\.[0-9A-Za-z_.]+)\)?)?$")


def split_offset(text: str) -> tuple[str, int | None]:
    """``func+0x1f`` -> (``func``, 0x1f); text without a hex ``+0x`` tail -> (text, None)."""
    plus = text.rfind("+0x")
    if plus > 0:
        offset = _hex(text[plus + 1:])
        if offset is not None:
            return text[:plus], offset
    return text, None


def _hex(text: str) -> int | None:
    """The value of ``0x<hex digits>`` when it fits an address (64 bits), or None."""
    if len(text) > 2 and text[0] == "0" and text[1] in "xX" and _HEX_DIGITS.issuperset(text[2:]):
        value = int(text[2:], 16)
        return value if value >> 64 == 0 else None
    return None


def strip_offsets(texts: Iterable[str]) -> dict[str, str]:
    """Each frame text -> the text without its trailing ``+0xOFF``."""
    return {text: split_offset(text)[0] for text in texts}


def remangle_legacy(name: str) -> str | None:
    """The legacy symbol a C++ demangler turned into ``a::b::h<hash>``, or None.

    Legacy Rust symbols are Itanium nested names whose components are the
    raw identifiers (``Adapter$LT$T$GT$``, with ``..`` for a nested ``::``),
    so the components can be length-prefixed again without loss.
    """
    match = _HALF_DEMANGLED.match(name)
    if match is None:
        return None
    components = match.group(1)[:-2].split("::")
    if any(not c for c in components):
        return None
    body = "".join(f"{len(c)}{c}" for c in components)
    return f"_ZN{body}17h{match.group(2)}E{match.group(3) or ''}"


class FrameNamer:
    """Frame text -> :class:`Frame`, cached per distinct text; hex frames resolved in bulk."""

    def __init__(self, space: AddressSpace | None = None, probe_map: ProbeMap | None = None,
                 owners: Mapping[str, str | None] | None = None, evidence: Evidence | None = None):
        self.space = space
        self.evidence = evidence
        self.probe_map = probe_map
        #: The probe descriptions' function fields (``?`` for ``$``) -> mangled name.
        self.fields: dict[str, str] = {e.function: e.mangled for e in probe_map} if probe_map else {}
        #: The given modules' function names -> the module defining them (None: several do).  A
        #: name with no module in the text (a ``probefunc`` key) gets its module from here.
        self.owners: Mapping[str, str | None] = owners or {}
        #: Every symbol name known (modules' functions, the map's): cut names are completed from these.
        self.names = set(self.owners) | set(self.fields.values())
        self._cache: dict[str, Frame] = {}
        self._observed: set[tuple[str, bool]] = set()

    def frames(self, texts: Iterable[str]) -> list[Frame]:
        """One frame per text (texts are stripped frame lines or string keys)."""
        texts = list(texts)
        cache = self._cache
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            self._name(missing)
        return [cache[t] for t in texts]

    def frame(self, text: str) -> Frame:
        return self.frames([text])[0]

    def observe(self, leaves: Iterable[str], callers: Iterable[str]) -> None:
        """Count the evidence of frame texts by role: ``leaves`` were printed first in a stack, ``callers`` after.

        Hex frames are checked at their addresses (a caller after a call, a leaf on
        an instruction start), frames the tracer named against the module's symbols.
        Each distinct text counts once per role.
        """
        evidence = self.evidence
        if evidence is None or not evidence.watching:
            return
        bare: tuple[list[int], list[bool]] = ([], [])
        in_module: tuple[list[int], list[bool]] = ([], [])
        for texts, leaf in ((leaves, True), (callers, False)):
            for text in texts:
                if (text, leaf) in self._observed:
                    continue
                self._observed.add((text, leaf))
                module, tick, func = text.partition("`")
                if not tick:
                    module, func = None, text
                func, offset = split_offset(func)
                address = _hex(func) if offset is None else None
                if address is None:
                    if module and func:
                        evidence.observe_named(module, func, offset or 0)
                    continue
                into = in_module if module else bare
                into[0].append(address)
                into[1].append(leaf)
                if module:
                    evidence.observe_module_hex(self.space, module, address)
        if self.space is not None:
            evidence.observe(self.space, *bare)
            evidence.observe(self.space, *in_module, named_module=True)

    def _name(self, texts: list[str]) -> None:
        addresses: list[tuple[str, str | None, int]] = []
        for text in texts:
            module, tick, func = text.partition("`")
            if not tick:
                module, func = None, text
            func, offset = split_offset(func)
            address = _hex(func) if offset is None else None
            if address is not None:
                addresses.append((text, module, address))
            elif func:
                self._cache[text] = self._symbol(module, func, offset)
            else:  # "mod`" or a bare "+0x10": keep the text as it is
                self._cache[text] = Frame(module, text, text, None, UNKNOWN, None)
        if addresses:
            self._resolve(addresses)

    def _symbol(self, module: str | None, func: str, offset: int | None) -> Frame:
        frame = self._named(module, func, offset)
        if module is None and frame.symbol in self.owners:
            owner = self.owners[frame.symbol]
            return replace(frame, module=owner) if owner is not None else frame
        return frame

    def _named(self, module: str | None, func: str, offset: int | None) -> Frame:
        mapped = self.fields.get(func)
        if mapped is None and self.probe_map is not None and any(c in func for c in "?*["):
            entry = self.probe_map.find(func)  # a glob field the script wrote, not listed verbatim
            mapped = entry.mangled if entry is not None else None
        if mapped is not None:
            return symbol_frame(module, mapped, offset)
        remangled = remangle_legacy(func) if "::" in func else None
        if remangled is not None:
            demangled = demangle_symbol(remangled)
            if demangled.scheme == RUST_LEGACY:
                return Frame(module, remangled, demangled.name, offset, demangled.scheme, demangled.crate)
        frame = symbol_frame(module, func, offset)
        if frame.scheme == C:  # a name demangled already, maybe with its hash: kept once, without it
            stripped = strip_hashes(func)
            if stripped is not None:
                return Frame(module, func, stripped, offset, RUST_NAME, crate_of(stripped))
        if len(func) in CUT_LENGTHS and not frame.is_rust:
            whole = self._complete(func)
            if whole is not None:
                return symbol_frame(module, whole, offset)
        return frame

    @cached_property
    def _known_names(self) -> list[str]:
        return sorted(self.names)

    def _complete(self, cut: str) -> str | None:
        """The one known symbol that starts with ``cut``, if exactly one does.

        A symbol equal to ``cut`` counts: DTrace prints the same text for it
        and for a longer name it cut, so with both known there is no answer.
        """
        names = self._known_names
        i = bisect_left(names, cut)
        found = []
        while i < len(names) and names[i].startswith(cut) and len(found) < 2:
            found.append(names[i])
            i += 1
        return found[0] if len(found) == 1 else None

    def _resolve(self, addresses: list[tuple[str, str | None, int]]) -> None:
        resolved = self.space.frames([a for _, _, a in addresses]) if self.space is not None else None
        for i, (text, module, address) in enumerate(addresses):
            frame = resolved[i] if resolved is not None else None
            if frame is None or (not frame.resolved and frame.module is None):
                frame = address_frame(module, address)  # outside every placed module: DTrace's owner, if it said
            self._cache[text] = frame
