"""Where the FreeBSD kernel linker puts each section of a module.

This follows ``link_elf_load_file`` in ``sys/kern/link_elf_obj.c`` (ET_REL,
amd64 modules) and ``sys/kern/link_elf.c`` (ET_DYN modules, the kernel):
see ``freebsd-facts.md`` section 2.  It is pure: section headers in, offsets
out, so it can be tested against hand-computed layouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SHT_PROGBITS, SHT_NOBITS = 1, 8
SHT_INIT_ARRAY, SHT_FINI_ARRAY = 14, 15
SHT_X86_64_UNWIND = 0x70000001
SHF_ALLOC = 0x2
PAGE_SIZE = 4096


def highest_end(bits: int) -> int:
    """The highest end an image can have: ``round_page`` of it must fit ``bits`` bits.

    The kernel linker sums sizes in ``size_t`` (``Elf_Addr`` for ET_DYN) and
    maps ``round_page`` of the sum: past that the sum wraps, the mapping is
    smaller than what is then copied and zeroed into it, and the module
    cannot load.  A layout computed without the wrap would name addresses no
    module can have, so the layout refuses instead.
    """
    return (1 << bits) - PAGE_SIZE


def past_address_space(what: str, end: int, bits: int) -> OverflowError:
    """The one-line refusal for an image ending past :func:`highest_end`."""
    return OverflowError(f"{what} ends at {end:#x}, past the {bits}-bit address space: "
                         "the kernel linker could not map the module")


def alignmask(addralign: int) -> int:
    """``link_elf_obj.c``'s ``int alignmask = shdr[i].sh_addralign - 1``.

    The ``Elf_Xword`` difference keeps its low 32 bits, read as signed: so
    ``sh_addralign`` 0 (and 2**32, 2**63...) gives -1, not the gABI's "no
    alignment", and a non-power-of-two gives a mask that rounds to no
    multiple at all.
    """
    mask = (addralign - 1) & 0xFFFF_FFFF
    return mask - (mask >> 31 << 32)


def aligned(offset: int, mask: int, bits: int) -> int:
    """``mapsize += alignmask; mapsize &= ~alignmask;`` in ``bits``-bit unsigned arithmetic.

    The ``int`` mask is sign-extended to the ``size_t``/``vm_offset_t`` it
    is added to, which Python's two's-complement ``&`` on a negative ``int``
    does by itself.
    """
    return (offset + mask) & ~mask & ((1 << bits) - 1)


def misplaced(index: int, addralign: int, mask: int) -> OverflowError:
    """The one-line refusal for a section the kernel's alignment mask sends below the running address.

    A negative mask clears every address bit from 31 up, so
    ``(mapbase + alignmask) & ~alignmask`` wraps below any module's base (to
    address 0 for ``sh_addralign`` 0), where the kernel copies or zeroes the
    section; a mask that carries past the top of the address space wraps the
    same way.  Either way the module cannot load.
    """
    return OverflowError(f"section {index}: sh_addralign {addralign:#x} gives link_elf_obj.c the int alignmask "
                         f"{mask}, and (mapbase + alignmask) & ~alignmask wraps below mapbase, to a low address "
                         "(0 for sh_addralign 0): the kernel linker could not load the module")


@dataclass(frozen=True)
class SectionColumns:
    """The section header fields the layout needs, one sequence per field, in header order.

    Columns rather than objects: a Rust module can have 100k sections.
    """

    type: Sequence[int]
    flags: Sequence[int]
    addr: Sequence[int]
    size: Sequence[int]
    addralign: Sequence[int]


def loadable_types(machine: str, init_fini_arrays: bool) -> frozenset[int]:
    """Section types ``link_elf_obj.c`` maps for this machine and kernel era.

    ``SHT_X86_64_UNWIND`` (``.eh_frame`` on amd64) is mapped on amd64 only;
    ``SHT_INIT_ARRAY``/``SHT_FINI_ARRAY`` since the 2024 kernels.
    """
    types = {SHT_PROGBITS, SHT_NOBITS}
    if machine == "amd64":
        types.add(SHT_X86_64_UNWIND)
    if init_fini_arrays:
        types |= {SHT_INIT_ARRAY, SHT_FINI_ARRAY}
    return frozenset(types)


def link_elf_obj(sections: SectionColumns, *, machine: str,
                 init_fini_arrays: bool = True) -> tuple[dict[int, int], int]:
    """Lay out an ET_REL module: ``{section index: offset from base}`` and ``lf->size``.

    Sections are taken in header order; each loadable one (size > 0,
    ``SHF_ALLOC``, a mapped type) starts at the running offset aligned with
    the kernel's mask arithmetic (:func:`alignmask`, :func:`aligned`) and
    advances it by ``sh_size``.  ``set_pcpu`` and ``set_vnet`` get their
    storage elsewhere, but the kernel still advances past them, so they keep
    their place here too.  A section the mask puts below the running offset
    is refused (:func:`misplaced`), and so is the first section ending past
    the address space (32 bits on i386): :func:`highest_end`.
    """
    types = loadable_types(machine, init_fini_arrays)
    offsets: dict[int, int] = {}
    offset = 0
    bits = 32 if machine == "i386" else 64
    highest = highest_end(bits)
    candidates = [(index, size, align) for index, (kind, flags, size, align)
                  in enumerate(zip(sections.type, sections.flags, sections.size, sections.addralign))
                  if size and flags & SHF_ALLOC and kind in types]
    for index, size, align in candidates:
        mask = alignmask(align)
        placed = aligned(offset, mask, bits)
        if mask < 0 or placed < offset:
            raise misplaced(index, align, mask)
        offsets[index] = offset = placed
        offset += size
        if offset > highest:
            raise past_address_space(f"section {index}", offset, bits)
    return offsets, offset


def link_elf_segments(sections: SectionColumns,
                      loads: Sequence[tuple[int, int]]) -> tuple[dict[int, int], int, int]:
    """Lay out an ET_DYN module or ET_EXEC kernel from its ``PT_LOAD`` segments.

    ``loads`` holds ``(p_vaddr, p_memsz)`` per ``PT_LOAD``.  ``link_elf.c``
    maps from ``trunc_page`` of the first segment to ``round_page`` of the end
    of the last; a symbol's offset from ``lf->address`` is its ``st_value``.
    Returns the section addresses (``sh_addr`` of allocated sections),
    ``lf->size`` and the lowest mapped virtual address.  Without program
    headers the allocated sections' addresses bound the image.  An image
    ending past the 64-bit address space is refused (:func:`highest_end`).
    """
    offsets = {i: addr for i, (flags, addr, size) in enumerate(zip(sections.flags, sections.addr, sections.size))
               if flags & SHF_ALLOC and size}
    if loads:
        low = min(vaddr for vaddr, _ in loads) // PAGE_SIZE * PAGE_SIZE
        ends = {f"PT_LOAD segment {n + 1} of {len(loads)}": vaddr + memsz for n, (vaddr, memsz) in enumerate(loads)}
    elif offsets:
        low = min(offsets.values()) // PAGE_SIZE * PAGE_SIZE
        ends = {f"section {i}": addr + sections.size[i] for i, addr in offsets.items()}
    else:
        return offsets, 0, 0
    high = max(ends.values())
    if high > highest_end(64):
        what = next(what for what, end in ends.items() if end == high)
        raise past_address_space(what, high, 64)
    size = (high + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE - low
    return offsets, size, low
