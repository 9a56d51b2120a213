"""The probe map: which generated probe description stands for which function.

``gen-probes --map`` writes one next to the D script.  DTrace prints FBT's own
function name (``probefunc``: the mangled symbol, cut at ``strsize``), while
the script may have had to name it with a glob (``?`` for ``$``, ``*`` for a
long middle); the map lets the readers of DTrace output (and people) go from
either back to the function, its demangled name and its place in the module.
"""

from __future__ import annotations

import json
import os
from typing import TextIO
from collections.abc import Iterator
from dataclasses import dataclass, field

from tracebridge.probes import dglob
from tracebridge.support.errors import InputError, quotable
from tracebridge.support.jsondoc import load_document
from tracebridge.support.outputs import open_output

FORMAT = "tracebridge-probe-map"
VERSION = 1


@dataclass(frozen=True, slots=True)
class ProbeMapEntry:
    """One traced function."""

    #: The descriptions' function field (a glob when it contains ``?``, ``*`` or ``[``).
    function: str
    mangled: str
    demangled: str
    #: Offset from the module base, and size, in bytes.
    offset: int
    size: int
    #: Whether FBT gives the function an entry / a return probe.
    entry: bool
    ret: bool
    #: The full probe descriptions the script uses for it.
    descriptions: tuple[str, ...] = ()
    #: Index into :attr:`ProbeMap.scripts` of the script that holds them.
    script: int = 0

    def to_json(self) -> dict:
        return {"function": self.function, "mangled": self.mangled, "demangled": self.demangled,
                "offset": self.offset, "size": self.size, "entry": self.entry, "return": self.ret,
                "descriptions": list(self.descriptions), "script": self.script}


@dataclass(frozen=True, slots=True)
class KinstSiteEntry:
    """One kinst probe placed from DWARF (``--at``, ``--inlined``): where it is in the source."""

    description: str
    mangled: str
    demangled: str
    #: kinst's probe name (offset from the function's start) and the offset from the module base.
    probe_offset: int
    offset: int
    file: str | None
    line: int | None
    #: The inline chain at the probe, outermost first.
    chain: tuple[str, ...]
    #: Each chain frame's (file, line), outermost first (an outer frame's: the call site inside it);
    #: empty in maps written before it was kept.
    places: tuple[tuple[str | None, int | None], ...] = ()

    def to_json(self) -> dict:
        return {"description": self.description, "mangled": self.mangled, "demangled": self.demangled,
                "probe_offset": self.probe_offset, "offset": self.offset, "file": self.file, "line": self.line,
                "chain": list(self.chain), "places": [list(place) for place in self.places]}


@dataclass
class ProbeMap:
    """All traced functions of one generated script (or set of script parts)."""

    #: The module file's name (``if_rem.ko``) and the descriptions' module field.
    module: str
    modname: str
    machine: str
    template: str
    #: Load address given with ``--base``, and ``lf->size``.
    base: int | None
    size: int
    #: The script files written, in order ("-" for standard output).
    scripts: list[str]
    entries: list[ProbeMapEntry] = field(default_factory=list)
    #: kinst probes placed from DWARF (``--at``, ``--inlined``).
    sites: list[KinstSiteEntry] = field(default_factory=list)

    def site(self, function: str, probe_offset: int) -> KinstSiteEntry | None:
        """The kinst site DTrace printed as ``probefunc``, ``probename``."""
        for site in self.sites:
            if site.mangled == function and site.probe_offset == probe_offset:
                return site
        return None

    def find(self, name: str) -> ProbeMapEntry | None:
        """The entry for a name as DTrace printed it (``probefunc``) or as the script wrote it.

        Tries the mangled name, then the description field, then the fields as
        kernel globs (a ``probefunc`` cut at ``strsize`` still matches its glob
        only if the cut falls in the ``*``; otherwise pass the full name).
        """
        for entry in self.entries:
            if entry.mangled == name or entry.function == name:
                return entry
        for entry in self.entries:
            if dglob.is_glob(entry.function) and dglob.matches(name, entry.function):
                return entry
        return None

    def __iter__(self) -> Iterator[ProbeMapEntry]:
        return iter(self.entries)

    def save(self, path: str | os.PathLike[str], *, inputs=()) -> None:
        """Write the map as JSON, one function per line (json.dumps' C encoder: 100k lines stay fast)."""
        with open_output(path, inputs=inputs) as out:
            self.write(out)

    def write(self, out: TextIO) -> None:
        """The JSON of :meth:`save` into an open text file."""
        head = {
            "format": FORMAT, "version": VERSION, "module": self.module, "modname": self.modname,
            "machine": self.machine, "template": self.template, "base": self.base, "size": self.size,
            "scripts": self.scripts,
        }
        out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "functions": [\n')
        out.write(",\n".join(json.dumps(e.to_json(), ensure_ascii=False) for e in self.entries))
        out.write('\n], "kinst_sites": [\n')
        out.write(",\n".join(json.dumps(e.to_json(), ensure_ascii=False) for e in self.sites))
        out.write("\n]}\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProbeMap:
        """Read a map written by :meth:`save`; any problem is an :class:`InputError`."""
        try:
            data = load_document(path, FORMAT, VERSION, "probe map")
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        try:
            entries = [
                ProbeMapEntry(
                    function=_typed(e["function"], str), mangled=_typed(e["mangled"], str),
                    demangled=_typed(e["demangled"], str), offset=_typed(e["offset"], int),
                    size=_typed(e["size"], int), entry=_typed(e["entry"], bool), ret=_typed(e["return"], bool),
                    descriptions=tuple(_typed(d, str) for d in e["descriptions"]), script=_typed(e["script"], int))
                for e in data["functions"]
            ]
            sites = [
                KinstSiteEntry(
                    description=_typed(e["description"], str), mangled=_typed(e["mangled"], str),
                    demangled=_typed(e["demangled"], str), probe_offset=_typed(e["probe_offset"], int),
                    offset=_typed(e["offset"], int), file=_optional(e["file"], str), line=_optional(e["line"], int),
                    chain=tuple(_typed(c, str) for c in e["chain"]),
                    places=tuple(_place(p) for p in e.get("places", [])))
                for e in data.get("kinst_sites", [])
            ]
            return cls(module=_typed(data["module"], str), modname=_typed(data["modname"], str),
                       machine=_typed(data["machine"], str), template=_typed(data["template"], str),
                       base=None if data["base"] is None else _typed(data["base"], int),
                       size=_typed(data["size"], int), scripts=[_typed(s, str) for s in data["scripts"]],
                       entries=entries, sites=sites)
        except (KeyError, TypeError) as exc:
            raise InputError(path, f"malformed probe map: {exc if quotable(path) else type(exc).__name__}") from None


def _place(value) -> tuple[str | None, int | None]:
    file, line = _typed(value, list)
    return _optional(file, str), _optional(line, int)


def _optional(value, kind: type):
    return None if value is None else _typed(value, kind)


def _typed(value, kind: type):
    # bool is an int in Python; keep the two apart.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value
