"""Captured kinst probes back to source: ``probefunc``/``probename`` keys become the probe's inline chain.

A kinst probe placed from DWARF (``gen-probes --at``/``--inlined``) fires in
the middle of a function, often inside code inlined into it; DTrace only
prints the function (``probefunc``, its mangled name) and kinst's probe name
(``probename``: the offset from the function's start, in decimal).  The
probe map's ``kinst_sites`` hold, for each such pair, the file, line and
inline chain addr2line gives at the probe's instruction (each frame's
line: the innermost's own, an outer frame's the call site inside it); a key
pair found there becomes that chain at the leaf end of the stack: the
function, then each inlined copy (marked ``inlined``), each with its
``file:line``.

Where the site sits in ``stack()`` output depends on the architecture:
kinst sets DTrace's caller to the probe address on arm64 and riscv (the
printed leaf is the probe itself, and is replaced by the chain) and to the
word at ``%rsp`` on amd64 (the printed frames are the callers).  Keying the
stack by ``probefunc, probename`` too, as the ``stack`` template of these
scripts does, tells the site on every architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracebridge.image.demangle import crate_of, demangle_symbol
from tracebridge.profile.model import Frame

if TYPE_CHECKING:  # only named here: importing the probe map's module (and json) before every fold cost 3 ms
    from tracebridge.probes.probemap import KinstSiteEntry, ProbeMap


class KinstSites:
    """The kinst sites of a probe map, by (mangled function, probe offset)."""

    def __init__(self, probe_map: ProbeMap):
        self.module = probe_map.module
        self._sites = {(s.mangled, s.probe_offset): s for s in probe_map.sites}
        self._chains: dict[tuple[str, int], tuple[Frame, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._sites)

    def stack(self, keys: Sequence[Frame], frames: Sequence[Frame]) -> list[Frame] | None:
        """Root-first stack of an entry keyed by ``keys`` with printed ``frames`` (leaf first);
        None when no ``probefunc, probename`` pair of the keys is a site of the map."""
        for i in range(len(keys) - 1):
            func, name = keys[i], keys[i + 1]
            if not name.symbol.isdigit():
                continue
            key = (func.symbol, int(name.symbol))
            site = self._sites.get(key)
            if site is None:
                continue
            chain = self._chains.get(key) or self._chains.setdefault(key, self._chain(site))
            leaf = frames[0] if frames else None
            if leaf is not None and leaf.symbol == site.mangled and leaf.offset in (None, site.probe_offset):
                frames = frames[1:]  # the probe address itself (arm64, riscv): the chain stands for it
            return [*keys[:i], *keys[i + 2:], *reversed(frames), *chain]
        return None

    def _chain(self, site: KinstSiteEntry) -> tuple[Frame, ...]:
        d = demangle_symbol(site.mangled)
        places = list(site.places) if len(site.places) == len(site.chain) else [(None, None)] * len(site.chain)
        places[-1] = (site.file, site.line)  # the innermost frame's: the probe's own line
        (file, line), inner = places[0], zip(site.chain[1:], places[1:])
        return (Frame(self.module, site.mangled, d.name, None, d.scheme, d.crate, file=file, line=line),
                *(Frame(self.module, name, name, None, d.scheme, crate_of(name), True, file, line)
                  for name, (file, line) in inner))
