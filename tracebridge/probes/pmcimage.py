"""A pmcstat-ready image of a module: one ELF file libpmcstat reads the way the kernel laid the module out.

Why it exists: libpmcstat (``lib/libpmcstat/libpmcstat_image.c`` on HEAD)
takes a kernel module's text range from the ``sh_addr``/``sh_size`` of its
``SHF_EXECINSTR`` sections and each symbol's start as ``st_value -
pi_vaddr`` (``pmcstat_image_get_elf_params`` and
``pmcstat_image_add_symbols``), ignoring ``st_shndx``.  In a Rust module
with one section per function every function then starts at 0, and PCs
past the largest single section fall outside the module (freebsd-facts.md
sections 6 and 7).  Every libpmcstat consumer inherits that: ``pmcstat
-G/-g/-T/-F``, ``pmcannotate`` and ``hwt(8)``.

The image written here makes the native tools right without
post-processing.  It is an ``ET_REL`` file (``pmcstat_image_get_elf_params``
accepts ``ET_REL`` for kernel modules, and leaves ``pi_vaddr`` at 0 for
anything but ``ET_EXEC``) of the module's class, byte order, machine,
``e_flags`` and OSABI, holding:

* one ``.text`` (``SHT_PROGBITS``, alloc + exec, ``sh_addr`` 0) spanning the
  whole kernel layout, offset 0 to ``lf->size`` as ``link_elf_obj.c`` (or
  ``link_elf.c`` for ``ET_DYN``) lays it out (:mod:`tracebridge.image.layout`),
  with the bytes of every loaded section at its load offset (unrelocated,
  as in the file; ``SHT_NOBITS`` and the gaps are zeros), so
  ``pmcstat_image_link`` covers every PC of the module and disassemblers
  show the real instructions at their run-time offsets;
* a ``.symtab`` with one ``STT_FUNC`` per distinct function start, at its
  layout offset (``st_value`` = offset, ``st_shndx`` = ``.text``).

The symbol ranges are made disjoint and non-empty, because
``pmcstat_symbol_search`` is a ``bsearch`` with ``pmcstat_symbol_compare``,
which calls overlapping ranges equal: with overlaps (or the zero-size
symbols ``pmcstat_image_add_symbols`` only stretches up to the next one) the
answer would depend on the order ``qsort`` left them in.  So, following
:mod:`tracebridge.profile.resolve`'s rules: aliases (several names at one
address) keep the name :func:`~tracebridge.image.elf.alias_rank` shows; a
zero size is stretched to the next start (or the module's end); a function
that runs past the next start is cut there (the code after a nested
symbol's start is named by that symbol, and an enclosing function's bytes
after the nested one stay unnamed; none of the fixtures has such overlaps).

Names are rustc-demangle's (``{:#}``, what pmcstat prints as they are: it
does not demangle); generic instances whose names differ only by hash stay
distinct with ``#<hash>`` (:func:`~tracebridge.image.demangle.display_names`).
``mangled=True`` keeps the symbols as they are.

No maintained Python library writes ELF from scratch (pyelftools only reads;
LIEF edits existing binaries, has no FreeBSD wheel and costs 300 MB of
RSS; makeelf and elffile are unmaintained), and GNU objcopy/ld are absent on
the FreeBSD box this runs on, so the few fixed-layout headers are packed
here with :mod:`struct`; the symbol table is one numpy structured array.

This lives with the probes because, like the D scripts, it is something
tracebridge hands to FreeBSD's own tools; it reads only the module image
(:mod:`tracebridge.image`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from tracebridge.image.demangle import demangle_all, display_names
from tracebridge.support.errors import InputError
from tracebridge.image.elf import (SHF_ALLOC, SHF_EXECINSTR, SHT_STRTAB, SHT_SYMTAB, STT_FUNC, ModuleImage,
                                   alias_rank, section_header_dtype, symbol_dtype)

#: e_machine numbers (ELF gABI, sys/sys/elf_common.h) of the machines tracebridge reads.
E_MACHINE = {"i386": 3, "amd64": 62, "arm64": 183, "riscv": 243}
ET_REL = 1
SHT_PROGBITS = 1
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_SECTION = 3
_BINDING = {"LOCAL": STB_LOCAL, "GLOBAL": STB_GLOBAL, "WEAK": STB_WEAK}
#: Largest module mapping written out (the image holds all of it): real modules are a few MB,
#: a zero-filled ``SHT_NOBITS`` section can claim terabytes in a 1 KB file.
MAX_IMAGE = 1 << 30
#: Section header string table: ``.text`` at 1, ``.symtab`` at 7, ``.strtab`` at 15, ``.shstrtab`` at 23.
_SHSTRTAB = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
_TEXT_NAME, _SYMTAB_NAME, _STRTAB_NAME, _SHSTRTAB_NAME = 1, 7, 15, 23
TEXT_INDEX = 1


@dataclass(frozen=True, slots=True)
class ImageSymbol:
    """One function of the image: the name pmcstat will print and the range it owns."""

    name: str
    #: The module's own symbol (mangled), for reports and tests.
    symbol: str
    offset: int
    size: int
    binding: int


def image_symbols(image: ModuleImage, *, mangled: bool = False) -> list[ImageSymbol]:
    """The image's functions in address order: one per start, disjoint, none empty.

    Functions outside ``[0, lf->size)`` (a symbol in a section the layout
    does not reach) are left out: no PC of the module can be there.
    """
    by_start: dict[int, list] = {}
    for function in image.functions:
        if 0 <= function.offset < image.size:
            by_start.setdefault(function.offset, []).append(function)
    starts = sorted(by_start)
    groups = [by_start[start] for start in starts]
    chosen = [group[0] if len(group) == 1 else min(group, key=alias_rank) for group in groups]
    if mangled:
        names = [f.name for f in chosen]
    else:
        names = display_names(demangle_all([f.name for f in chosen]))
    ends = [*starts[1:], image.size]
    return [ImageSymbol(name, function.name, start,
                        (following if function.size == 0 else min(start + function.size, following)) - start,
                        _BINDING.get(function.binding, STB_GLOBAL))
            for start, following, function, name in zip(starts, ends, chosen, names)]


def memory_image(image: ModuleImage) -> bytearray:
    """The module's mapping as the kernel linker fills it, before relocation."""
    if image.size > MAX_IMAGE:
        raise InputError(image.path, f"its kernel layout is {image.size:#x} bytes (a section claims more than any "
                                     f"module holds); a pmcstat image is written only up to {MAX_IMAGE:#x}")
    memory = bytearray(image.size)
    for offset, contents in image.loaded_contents():
        memory[offset:offset + len(contents)] = contents
    return memory


def pmcstat_image(image: ModuleImage, symbols: list[ImageSymbol]) -> bytes:
    """The whole ELF file of the pmcstat-ready image of ``image`` with its :func:`image_symbols`."""
    if image.elf_type == "ET_EXEC":
        raise ValueError("the kernel is not a module: pmcstat reads it correctly as it is")
    bits, order = image.bits, "<" if image.little_endian else ">"
    # ELF wants the locals first; sh_info of .symtab is the first non-local.
    symbols = sorted(symbols, key=lambda s: (s.binding != STB_LOCAL, s.offset))
    first_global = 2 + sum(1 for s in symbols if s.binding == STB_LOCAL)

    strtab = bytearray(b"\0")
    name_offsets = []
    for symbol in symbols:
        name_offsets.append(len(strtab))
        # Names are Latin-1 decoded bytes (image.elf), or ASCII with escapes once demangled.
        strtab += symbol.name.encode("latin-1", "backslashreplace") + b"\0"

    symtab = _symbol_table(bits, order, symbols, name_offsets)
    align = 8 if bits == 64 else 4
    out = bytearray(64 if bits == 64 else 52)  # the ELF header, packed last (it needs e_shoff)

    def place(contents: bytes | bytearray, alignment: int) -> int:
        out.extend(bytes(-len(out) % alignment))
        at = len(out)
        out.extend(contents)
        return at

    text = memory_image(image)
    text_at = place(text, 16)
    symtab_at = place(symtab.tobytes(), align)
    strtab_at = place(strtab, 1)
    shstrtab_at = place(_SHSTRTAB, 1)
    headers = np.zeros(5, dtype=section_header_dtype(bits, order))
    headers[1] = (_TEXT_NAME, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0, text_at, len(text), 0, 0, 16, 0)
    headers[2] = (_SYMTAB_NAME, SHT_SYMTAB, 0, 0, symtab_at, symtab.nbytes, 3, first_global, align, symtab.itemsize)
    headers[3] = (_STRTAB_NAME, SHT_STRTAB, 0, 0, strtab_at, len(strtab), 0, 0, 1, 0)
    headers[4] = (_SHSTRTAB_NAME, SHT_STRTAB, 0, 0, shstrtab_at, len(_SHSTRTAB), 0, 0, 1, 0)
    sections_at = place(headers.tobytes(), align)
    header = _elf_header(image, bits, order, sections_at, section_count=len(headers), shstrndx=4)
    out[:len(header)] = header
    return bytes(out)


def _elf_header(image: ModuleImage, bits: int, order: str, shoff: int, *, section_count: int,
                shstrndx: int) -> bytes:
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if order == "<" else 2, 1, image.osabi]) + bytes(8)
    address = "Q" if bits == 64 else "I"
    header_size = 64 if bits == 64 else 52
    section_header_size = section_header_dtype(bits, order).itemsize
    return ident + struct.pack(
        f"{order}HHI{address}{address}{address}IHHHHHH",
        ET_REL, E_MACHINE[image.machine], 1, 0, 0, shoff, image.e_flags,
        header_size, 0, 0, section_header_size, section_count, shstrndx)


def _symbol_table(bits: int, order: str, symbols: list[ImageSymbol], name_offsets: list[int]) -> np.ndarray:
    """Entry 0 (null), a section symbol for ``.text``, then the functions."""
    table = np.zeros(len(symbols) + 2, dtype=symbol_dtype(bits, order))
    table[1]["info"] = (STB_LOCAL << 4) | STT_SECTION
    table[1]["shndx"] = TEXT_INDEX
    if symbols:
        rest = table[2:]
        rest["name"] = name_offsets
        rest["info"] = [(s.binding << 4) | STT_FUNC for s in symbols]
        rest["shndx"] = TEXT_INDEX
        rest["value"] = [s.offset for s in symbols]
        rest["size"] = [s.size for s in symbols]
    return table
