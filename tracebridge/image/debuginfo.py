"""A module's debug information: where it is, whether it belongs, and its DWARF sections relocated.

FreeBSD keeps a module's DWARF apart (``freebsd-facts.md`` section 8):
``kmod.mk`` links ``NAME.ko.full``, copies its debug sections to
``NAME.ko.debug`` (``objcopy --only-keep-debug``, same section table with
the code as ``NOBITS``) and strips the installed ``NAME.ko``; ``make
install`` puts the ``.debug`` file under ``/usr/lib/debug`` beside the
module's own directory.  :func:`find_debug_file` looks in those places in
that order.

In an ET_REL module every DWARF address is a relocation against a code
section that has address 0 in the file.  Generic readers relocate with that
0 and see every function at 0; here the relocations are applied with each
section's kernel-layout offset (section 2), so DWARF addresses come out as
module offsets -- the same numbers ``symbols``, ``lookup`` and the profile
readers use.  ET_DYN modules and the kernel are used as linked.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from tracebridge.image.elf import SHT_RELA, ModuleImage, open_module
from tracebridge.support.errors import InputError, reading

#: The DWARF sections the address index reads.  ``.debug_loclists`` is not read (the DIE walk skips
#: ``DW_FORM_loclistx``), but pyelftools needs it present to decode one, and ``open_dwarf`` gives
#: pyelftools' reader of whole units (the tests' reference) over these same sections.
DWARF_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".debug_ranges",
                  ".debug_rnglists", ".debug_addr", ".debug_str_offsets", ".debug_line_str", ".debug_loclists")
#: amd64 relocation types found in DWARF sections: (field size, signed).
#: R_X86_64_64, R_X86_64_32, R_X86_64_32S; other types are not used there.
_AMD64_DWARF_RELOCS = {1: (8, False), 10: (4, False), 11: (4, True)}
#: FreeBSD's debug file tree (``DEBUGDIR`` in ``share/mk/bsd.own.mk``).
DEBUG_ROOT = "/usr/lib/debug"


@dataclass(frozen=True)
class DebugSections:
    """The DWARF of one module, relocated to module offsets."""

    #: The file the DWARF was read from (the module itself when it is not split).
    path: str
    #: sha256 of that file's bytes, to tell a later run which debug file a capture was resolved with.
    sha256: str
    #: Section name -> relocated contents (only the sections present).
    sections: dict[str, bytes]
    little_endian: bool
    address_size: int
    machine: str


def debug_candidates(module_path: str) -> list[str]:
    """Where a module's separate DWARF may lie, in the order they are tried.

    ``NAME.ko.debug`` and ``NAME.ko.full`` beside the module (a build
    directory), then FreeBSD's installed tree: ``/boot/modules/if_rem.ko``
    has ``/usr/lib/debug/boot/modules/if_rem.ko.debug``.
    """
    path = os.path.abspath(module_path)
    return [path + ".debug", path + ".full", DEBUG_ROOT + path + ".debug"]


def find_debug_file(image: ModuleImage, explicit: str | None = None) -> tuple[DebugSections | None, list[str]]:
    """The module's relocated DWARF and the places looked at (None when there is none).

    ``explicit`` (``--debug FILE``) must exist and belong to the module.  A
    candidate found beside the module that does not belong to it is an
    error as well: silently using other DWARF would give wrong lines.
    """
    if explicit is not None:
        return load_debug_sections(image, explicit), [explicit]
    searched = []
    for candidate in debug_candidates(image.path):
        searched.append(candidate)
        if os.path.isfile(candidate):
            return load_debug_sections(image, candidate), searched
    searched.append(image.path)
    own = load_debug_sections(image, image.path, own=True)
    return (own if ".debug_info" in own.sections else None), searched


def load_debug_sections(image: ModuleImage, path: str, own: bool = False) -> DebugSections:
    """Read ``path``'s DWARF sections, check it belongs to ``image`` and relocate them."""
    debug = image if own else open_module(path)
    try:
        if not own:
            _check_same_module(image, debug)
        with reading(path):
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        offsets = image.load_offsets if image.elf_type == "ET_REL" else {}
        sections = {}
        for name in DWARF_SECTIONS:
            found = debug.sections_named(name)
            if not found:
                continue
            section = found[0]
            data = bytearray(debug.section_bytes(section.index))
            if image.elf_type == "ET_REL":
                _relocate(debug, section.index, data, offsets, path)
            sections[name] = bytes(data)
        return DebugSections(path, digest, sections, image.little_endian, image.bits // 8, image.machine)
    finally:
        if debug is not image:
            debug.close()


def _check_same_module(image: ModuleImage, debug: ModuleImage) -> None:
    """The debug file describes this module: same loaded sections and the same functions.

    ``--only-keep-debug`` keeps the whole section table (code as ``NOBITS``)
    and the symbol table, so both must agree with the module's; the debug
    sections themselves may be missing from the stripped module.
    """
    def loaded(img: ModuleImage) -> list[tuple[str, int, int]]:
        return [(s.name, s.size, s.load_offset) for s in img.sections if s.loaded]

    def functions(img: ModuleImage) -> list[tuple[str, int, int]]:
        return sorted((f.name, f.offset, f.size) for f in img.functions)

    problem = None
    if (image.elf_type, image.machine) != (debug.elf_type, debug.machine):
        problem = f"{debug.elf_type} {debug.machine}, the module is {image.elf_type} {image.machine}"
    elif loaded(image) != loaded(debug):
        problem = "its loaded sections differ from the module's"
    elif functions(image) != functions(debug):
        problem = "its function symbols differ from the module's"
    if problem:
        raise InputError(debug.path, f"is not the debug file of {image.path}: {problem}")


def _relocate(debug: ModuleImage, index: int, data: bytearray, offsets: dict[int, int], path: str) -> None:
    """Apply the ``.rela`` sections patching section ``index``, symbols placed at their layout offsets.

    Vectorised: a Rust module's ``.rela.debug_info`` holds a million entries.
    """
    for rel in debug.relocation_sections_for(index):
        if debug.machine != "amd64" or rel.type != SHT_RELA:
            raise InputError(path, f"relocations of {debug.section(index).name} for {debug.machine} "
                                   "are not supported (amd64 RELA only)")
        order = "<" if debug.little_endian else ">"
        entries = np.frombuffer(debug.section_bytes(rel.index), dtype=np.dtype(
            [("offset", order + "u8"), ("info", order + "u8"), ("addend", order + "i8")]))
        values, shndx = debug.symbol_columns(rel.link)
        symbol = (entries["info"] >> np.uint64(32)).astype(np.int64)
        kind = (entries["info"] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        if len(symbol) and int(symbol.max()) >= len(values):
            raise InputError(path, f"{rel.name}: relocation names symbol {int(symbol.max())}, "
                                   f"the symbol table has {len(values)}")
        place = np.zeros(debug.section_count + 1, dtype=np.int64)
        for section_index, offset in offsets.items():
            place[section_index] = offset
        safe_shndx = np.where((shndx > 0) & (shndx < debug.section_count), shndx, debug.section_count)
        target = (place[safe_shndx[symbol]] + values[symbol].astype(np.int64) + entries["addend"])
        buffer = np.frombuffer(data, dtype=np.uint8)
        for code, (size, signed) in _AMD64_DWARF_RELOCS.items():
            chosen = np.flatnonzero(kind == code)
            if not len(chosen):
                continue
            at = entries["offset"][chosen]
            if int(at.max()) + size > len(data):
                raise InputError(path, f"{rel.name}: a relocation lies past the end of {debug.section(index).name}")
            field = target[chosen].astype(f"{order}{'i' if signed else 'u'}{size}")
            raw = field.view(np.uint8).reshape(-1, size)
            buffer[at.astype(np.int64)[:, None] + np.arange(size)] = raw
        unknown = np.setdiff1d(np.unique(kind), [0, *_AMD64_DWARF_RELOCS])
        if len(unknown):
            raise InputError(path, f"{rel.name}: relocation type {int(unknown[0])} in DWARF is not supported")
