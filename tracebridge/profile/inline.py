"""Inlined frames in a profile: each module PC becomes its DWARF inline chain (``--inline``).

A sampled PC inside a Rust module usually lies in code inlined from several
functions; the symbol table names only the outermost.  With the module's
DWARF (:mod:`tracebridge.image.dwarf`) every frame that names a function of
the module *and* keeps its offset in it becomes the chain at that address,
outermost first: the function itself, then each inlined copy, marked
``inlined``.  A caller frame's PC is a return address, which may already lie
in the next line or the next inlined copy, so it is looked up at ``PC - 1``;
the leaf at its PC (as ``perf report --inline`` and pprof do).

Frames stay interned: each (frame, leaf or caller) is expanded once, however
many stacks hold it, and the chains share their frames.
"""

from __future__ import annotations

from dataclasses import replace

from tracebridge.image.demangle import crate_of
from tracebridge.image.dwarf import AddressIndex, module_index
from tracebridge.image.elf import ModuleImage
from tracebridge.profile.model import Frame, Profile
from tracebridge.support.errors import warn


class InlineExpander:
    """The DWARF of a profile's modules, and the chains of the frames that fall in them."""

    def __init__(self, images: list[ModuleImage], debug_files: dict[str, str] | None = None, lines: bool = False):
        """``debug_files`` maps a module path to its ``--debug`` file; ``lines`` keeps file:line on every
        frame (``report --by line``), which otherwise stays off so a function's frames merge."""
        self.lines = lines
        self._modules: dict[str, tuple[AddressIndex, dict[str, int | None]]] = {}
        #: sha256 of each debug file used, by module file name (kept with bundles and exports).
        self.debug_sha256: dict[str, str] = {}
        for image in images:
            index, searched = module_index(image, (debug_files or {}).get(image.path))
            if index is None:
                warn(f"--inline: no DWARF found for {image.path} (looked in {', '.join(searched)}); "
                     "its frames stay whole")
                continue
            starts: dict[str, int | None] = {}
            for function in image.functions:
                # Two functions of one name (C statics of two files): which is meant is unknown.
                starts[function.name] = function.offset if function.name not in starts else None
            self._modules[image.frame_module] = (index, starts)
            self.debug_sha256[image.frame_module] = index.debug.sha256

    def expand(self, profile: Profile) -> Profile:
        result = Profile(profile.metadata)
        cache: dict[tuple[int, bool], tuple[int, ...]] = {}
        frames = profile.frames
        expanded: dict[tuple[int, ...], tuple[int, ...]] = {}
        for stack, weight in profile.stacks.items():
            out: list[int] = []
            last = len(stack) - 1
            for position, frame_id in enumerate(stack):
                key = (frame_id, position == last)
                ids = cache.get(key)
                if ids is None:
                    ids = cache[key] = tuple(result.intern(f) for f in self.chain(frames[frame_id], key[1]))
                out.extend(ids)
            result.add_ids(expanded.setdefault(stack, tuple(out)), weight)
        for (stack, labels), weight in profile.labelled.items():  # the samples' CPU and process stay
            key = (expanded[stack], labels)
            result.labelled[key] = result.labelled.get(key, 0) + weight
        return result

    def chain(self, frame: Frame, leaf: bool) -> list[Frame]:
        """``frame`` and the inlined copies at its address, outermost first (``[frame]`` when unknown)."""
        known = self._modules.get(frame.module or "")
        if known is None or frame.offset is None or not frame.resolved or frame.inlined:
            return [frame]
        index, starts = known
        start = starts.get(frame.symbol)
        if start is None:
            return [frame]
        pc = start + frame.offset - (0 if leaf or frame.offset == 0 else 1)
        chain = index.frames(pc)
        if not chain:
            return [frame]
        outer = chain[-1]
        result = [replace(frame, file=outer.file, line=outer.line) if self.lines else frame]
        for inner in reversed(chain[:-1]):
            result.append(Frame(frame.module, inner.function, inner.function, None, frame.scheme,
                                crate_of(inner.function), True,
                                inner.file if self.lines else None, inner.line if self.lines else None))
        return result
