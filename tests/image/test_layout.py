"""The kernel linker's layout rules on hand-made section tables (freebsd-facts §2)."""

from __future__ import annotations

from dataclasses import dataclass

from tracebridge.image import layout
PROGBITS, NOBITS, RELA, INIT, FINI, UNWIND = 1, 8, 4, 14, 15, 0x70000001
A, AX = 0x2, 0x6


@dataclass
class S:
    index: int
    type: int
    flags: int
    size: int
    addralign: int
    addr: int = 0


def columns(sections: list[S]) -> layout.SectionColumns:
    assert [s.index for s in sections] == list(range(sections[0].index, sections[0].index + len(sections)))
    pad = [S(i, 0, 0, 0, 0) for i in range(sections[0].index)]
    rows = pad + sections
    return layout.SectionColumns([s.type for s in rows], [s.flags for s in rows], [s.addr for s in rows],
                                 [s.size for s in rows], [s.addralign for s in rows])


def test_header_order_alignment_and_size():
    sections = [
        S(0, 0, 0, 0, 0),
        S(1, PROGBITS, AX, 0x13, 16),      # .text        -> 0x0
        S(2, RELA, 0x40, 0x30, 8),         # .rela.text   not loaded
        S(3, PROGBITS, AX, 0x21, 16),      # .text.f      -> 0x20
        S(4, PROGBITS, A, 0x5, 8),         # .rodata      -> 0x48
        S(5, PROGBITS, 0, 0x100, 1),       # .comment     not SHF_ALLOC
        S(6, NOBITS, A | 1, 0x10, 32),     # .bss         -> 0x60
        S(7, PROGBITS, AX, 0, 64),         # empty        skipped, no alignment
        S(8, UNWIND, A, 0x8, 8),           # .eh_frame    -> 0x70 on amd64
        S(9, INIT, A | 1, 0x8, 8),         # .init_array  -> 0x78 on new kernels
    ]
    offsets, size = layout.link_elf_obj(columns(sections), machine="amd64")
    assert offsets == {1: 0x0, 3: 0x20, 4: 0x48, 6: 0x60, 8: 0x70, 9: 0x78}
    assert size == 0x80


def test_old_kernels_and_other_machines_skip_types():
    sections = [S(1, PROGBITS, AX, 0x10, 16), S(2, UNWIND, A, 0x8, 8), S(3, FINI, A, 0x8, 8)]
    assert layout.link_elf_obj(columns(sections), machine="amd64", init_fini_arrays=False) == ({1: 0, 2: 0x10}, 0x18)
    assert layout.link_elf_obj(columns(sections), machine="arm64") == ({1: 0, 3: 0x10}, 0x18)


def misplaced(index: int, align: str, mask: int) -> str:
    return (f"section {index}: sh_addralign {align} gives link_elf_obj.c the int alignmask {mask}, and "
            "(mapbase + alignmask) & ~alignmask wraps below mapbase, to a low address (0 for sh_addralign 0): "
            "the kernel linker could not load the module")


def test_zero_alignment_is_refused_first_or_later():
    """int alignmask = 0 - 1 = -1: (mapbase - 1) & ~-1 is address 0, whatever came before (not gABI's "none")."""
    later = [S(1, PROGBITS, AX, 0x3, 1), S(2, PROGBITS, AX, 0x3, 0), S(3, PROGBITS, AX, 0x3, 4)]
    assert refused(lambda: layout.link_elf_obj(columns(later), machine="amd64")) == misplaced(2, "0x0", -1)
    first = [S(1, PROGBITS, AX, 0x3, 0), S(2, PROGBITS, AX, 0x3, 1)]
    assert refused(lambda: layout.link_elf_obj(columns(first), machine="i386")) == misplaced(1, "0x0", -1)


def test_alignment_one_is_none():
    sections = [S(1, PROGBITS, AX, 0x3, 1), S(2, PROGBITS, AX, 0x3, 1), S(3, PROGBITS, AX, 0x3, 4)]
    assert layout.link_elf_obj(columns(sections), machine="amd64") == ({1: 0, 2: 3, 3: 8}, 11)


def test_non_powers_of_two_mask_rather_than_round():
    """The kernel's mapsize = (mapsize + (align - 1)) & ~(align - 1), by hand (not a multiple of align):

    .a at 0, ends 5; align 3 (mask 0b10):  (5 + 2) & ~2   = 0b0111 & ~0b0010 = 0b0101 = 5,  ends 6
    align 6 (mask 0b101):                  (6 + 5) & ~5   = 0b1011 & ~0b0101 = 0b1010 = 10, ends 12
    align 3 (mask 0b10):                   (12 + 2) & ~2  = 0b1110 & ~0b0010 = 0b1100 = 12, ends 13
    align 2**32 + 4 (int mask 3):          (13 + 3) & ~3  = 16,                                 ends 17
    align 2**31 (mask 0x7fffffff):         (17 + 2**31 - 1) & ~(2**31 - 1) = 2**31
    """
    sections = [S(1, PROGBITS, AX, 5, 1), S(2, PROGBITS, AX, 1, 3), S(3, PROGBITS, A, 2, 6),
                S(4, NOBITS, A, 1, 3), S(5, NOBITS, A, 1, 2**32 + 4), S(6, NOBITS, A, 1, 2**31)]
    assert layout.link_elf_obj(columns(sections), machine="amd64") == (
        {1: 0, 2: 5, 3: 10, 4: 12, 5: 16, 6: 2**31}, 2**31 + 1)


def test_masks_that_truncate_negative_are_refused():
    """int alignmask keeps 32 bits: 2**32 and 2**63 give -1, 2**31 + 1 gives -2**31 (and clears bits 31 up)."""
    for align, text, mask in ((2**32, "0x100000000", -1), (2**63, "0x8000000000000000", -1),
                              (2**31 + 1, "0x80000001", -2**31)):
        sections = [S(1, PROGBITS, AX, 0x10, 16), S(2, NOBITS, A, 1, align)]
        assert refused(lambda: layout.link_elf_obj(columns(sections), machine="amd64")) == misplaced(2, text, mask)


def test_a_mask_carrying_past_the_address_space_is_refused():
    """(offset + mask) wraps in size_t: the section would go below the ones before it."""
    for bits, machine in ((64, "amd64"), (32, "i386")):
        sections = [S(1, PROGBITS, AX, 2**bits - 2**20, 1), S(2, NOBITS, A, 1, 2**30)]
        assert refused(lambda: layout.link_elf_obj(columns(sections), machine=machine)) == (
            misplaced(2, "0x40000000", 2**30 - 1))
    # Without the wrap (64 bits): placed at 2**32, well inside.
    assert layout.link_elf_obj(columns(sections), machine="amd64") == ({1: 0, 2: 2**32}, 2**32 + 1)


def test_segments_for_et_dyn():
    sections = [S(1, PROGBITS, AX, 0x100, 16, addr=0x1000), S(2, NOBITS, A, 0x20, 8, addr=0x3000),
                S(3, PROGBITS, 0, 0x50, 1, addr=0)]
    offsets, size, low = layout.link_elf_segments(columns(sections), [(0, 0x1100), (0x3000, 0x20)])
    assert offsets == {1: 0x1000, 2: 0x3000}
    assert (size, low) == (0x4000, 0)


def test_alignment_two_is_kept():
    sections = [S(1, PROGBITS, AX, 0x3, 1), S(2, PROGBITS, AX, 0x3, 2), S(3, PROGBITS, A, 0x1, 2)]
    assert layout.link_elf_obj(columns(sections), machine="amd64") == ({1: 0, 2: 4, 3: 8}, 9)


def test_segments_are_page_rounded():
    """trunc_page of the first segment, round_page of the last one's end (not of its start)."""
    sections = [S(1, PROGBITS, AX, 0x100, 16, addr=0x401010)]
    offsets, size, low = layout.link_elf_segments(columns(sections), [(0x401010, 0x100), (0x402ff0, 0x20)])
    assert (low, size) == (0x401000, 0x3000)
    _, size, low = layout.link_elf_segments(columns(sections), [(0x401000, 0x1000)])
    assert (low, size) == (0x401000, 0x1000)
    _, size, low = layout.link_elf_segments(columns(sections), [(0x401000, 0x1001)])
    assert (low, size) == (0x401000, 0x2000)


def test_without_program_headers_the_sections_bound_the_image():
    """No PT_LOAD: the allocated sections' addresses, page-rounded, are the image."""
    sections = [S(1, PROGBITS, AX, 0x100, 16, addr=0x401010), S(2, PROGBITS, 0, 0x5000, 1, addr=0),
                S(3, NOBITS, A, 0x20, 8, addr=0x403ff0), S(4, PROGBITS, A, 0, 8, addr=0x900000)]
    offsets, size, low = layout.link_elf_segments(columns(sections), [])
    assert offsets == {1: 0x401010, 3: 0x403ff0}
    assert (low, size) == (0x401000, 0x4000)
    assert layout.link_elf_segments(columns([S(1, PROGBITS, 0, 0x10, 1)]), []) == ({}, 0, 0)


def refused(call) -> str:
    try:
        call()
    except OverflowError as err:
        return str(err)
    raise AssertionError("laid out an image past the address space")


def test_an_image_must_fit_the_address_space_page_rounded():
    """lf->size is summed in size_t and round_page(lf->size) mapped: the last whole page is the limit."""
    last = 2**64 - layout.PAGE_SIZE
    fits = [S(1, PROGBITS, AX, 0x10, 16), S(2, NOBITS, A, last - 0x10, 8)]
    assert layout.link_elf_obj(columns(fits), machine="amd64") == ({1: 0, 2: 0x10}, last)
    one_more = [S(1, PROGBITS, AX, 0x10, 16), S(2, NOBITS, A, last - 0xF, 8), S(3, PROGBITS, A, 0x10, 1)]
    assert refused(lambda: layout.link_elf_obj(columns(one_more), machine="amd64")) == (
        "section 2 ends at 0xfffffffffffff001, past the 64-bit address space: the kernel linker could not map the module")


def test_alignment_alone_can_pass_the_address_space():
    """(2**64 - 4097 + 4095) & ~4095 = 2**64 - 4096: placed inside, but one byte ends past the last page."""
    sections = [S(1, PROGBITS, AX, 2**64 - 4097, 1), S(2, NOBITS, A, 1, 4096)]
    assert refused(lambda: layout.link_elf_obj(columns(sections), machine="arm64")) == (
        "section 2 ends at 0xfffffffffffff001, past the 64-bit address space: the kernel linker could not map the module")


def test_i386_modules_have_32_bits():
    sections = [S(1, PROGBITS, AX, 0x10, 16), S(2, NOBITS, A, 2**32 - layout.PAGE_SIZE - 0x10, 8)]
    assert layout.link_elf_obj(columns(sections), machine="i386")[1] == 2**32 - layout.PAGE_SIZE
    assert layout.link_elf_obj(columns(sections), machine="amd64")[1] == 2**32 - layout.PAGE_SIZE
    sections[1].size += 1
    assert refused(lambda: layout.link_elf_obj(columns(sections), machine="i386")) == (
        "section 2 ends at 0xfffff001, past the 32-bit address space: the kernel linker could not map the module")
    assert layout.link_elf_obj(columns(sections), machine="amd64")[1] == 2**32 - layout.PAGE_SIZE + 1


def test_segments_must_fit_the_address_space():
    last = 2**64 - layout.PAGE_SIZE
    sections = [S(1, PROGBITS, AX, 0x100, 16, addr=0x1000), S(2, NOBITS, A, last - 0x3000, 8, addr=0x3000)]
    assert layout.link_elf_segments(columns(sections), [(0x1000, 0x100), (0x3000, last - 0x3000)]) == (
        {1: 0x1000, 2: 0x3000}, last - 0x1000, 0x1000)
    assert refused(lambda: layout.link_elf_segments(columns(sections), [(0x1000, 0x100), (0x3000, last - 0x2fff),
                                                                        (0x2000, 0x10)])) == (
        "PT_LOAD segment 2 of 3 ends at 0xfffffffffffff001, past the 64-bit address space: "
        "the kernel linker could not map the module")
    assert layout.link_elf_segments(columns(sections), [])[1:] == (last - 0x1000, 0x1000)
    sections[1].size += 1
    assert refused(lambda: layout.link_elf_segments(columns(sections), [])) == (
        "section 2 ends at 0xfffffffffffff001, past the 64-bit address space: the kernel linker could not map the module")
