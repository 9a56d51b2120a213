"""The address space's rules on hand-made layouts: sizes, zero sizes, overlaps, aliases, regions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tracebridge.support.errors import UsageError
from tracebridge.image.elf import Function
from tracebridge.profile.model import Profile
from tracebridge.profile.resolve import AddressSpace

BASE = 0xFFFFFFFF82000000


def image(name: str, size: int, *functions: tuple[str, int, int, str]):
    """A stand-in for ModuleImage: ``(name, offset, size, binding)`` per function."""
    return SimpleNamespace(
        path=f"/m/{name}", filename=name, frame_module=name, elf_type="ET_REL", fixed_base=None, size=size,
        functions=[Function(i, n, ".text", 1, 0, s, b, "FUNC", o) for i, (n, o, s, b) in enumerate(functions)])


def at(module: str, address: int) -> str:
    """How an address inside a module but no function reads: as DTrace prints it, `` module`0xADDR ``."""
    return f"{module}`{address:#x}"


def names(space: AddressSpace, offsets, base: int = BASE) -> list[str]:
    return [f.name for f in space.frames(np.array([base + o for o in offsets], dtype=np.uint64), offsets=False)]


def test_sizes_gaps_and_module_end():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x10, "LOCAL"), ("b", 0x20, 0x10, "LOCAL")), BASE)
    assert names(space, [0x0, 0xF, 0x10, 0x20, 0xFF, 0x100]) == [
        "a", "a", at("m.ko", BASE + 0x10), "b", at("m.ko", BASE + 0xFF), f"{BASE + 0x100:#x}"]


def test_zero_size_stretches_to_next_symbol_or_module_end():
    space = AddressSpace()
    space.add(image("m.ko", 0x80, ("asm", 0x0, 0, "GLOBAL"), ("c", 0x30, 0x8, "LOCAL"),
                    ("tail", 0x40, 0, "GLOBAL")), BASE)
    assert names(space, [0x0, 0x2F, 0x30, 0x38, 0x40, 0x7F]) == ["asm", "asm", "c", at("m.ko", BASE + 0x38), "tail", "tail"]
    assert [p.stretched for p in space.placements] == [True, False, True]


def test_nested_and_partial_overlaps_give_every_address_one_owner():
    space = AddressSpace()
    space.add(image("m.ko", 0x200, ("outer", 0x0, 0x100, "LOCAL"), ("inner", 0x10, 0x10, "LOCAL"),
                    ("late", 0xF0, 0x40, "LOCAL")), BASE)
    assert names(space, [0x0, 0x10, 0x1F, 0x20, 0xEF, 0xF0, 0x12F, 0x130]) == [
        "outer", "inner", "inner", "outer", "outer", "late", "late", at("m.ko", BASE + 0x130)]
    spans = [(s.start - BASE, s.end - BASE, space.placements[s.placement].function.name) for s in space.segments]
    assert spans == [(0x0, 0x10, "outer"), (0x10, 0x20, "inner"), (0x20, 0xF0, "outer"), (0xF0, 0x130, "late")]


def test_aliases_show_a_global_name_then_the_larger_size():
    space = AddressSpace()
    space.add(image("m.ko", 0x40, ("local_big", 0x0, 0x20, "LOCAL"), ("global", 0x0, 0x10, "GLOBAL"),
                    ("z_small", 0x0, 0x8, "LOCAL")), BASE)
    assert names(space, [0x0]) == ["global"]
    assert [a.name for a in space.placements[0].aliases] == ["local_big", "z_small"]


def test_regions_counts_and_map_out():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x100, "LOCAL")), BASE)
    space.add_region("kernel", 0xFFFFFFFF80200000)
    pcs = np.array([BASE + 1, BASE + 2, 0xFFFFFFFF80300000, 0x400000], dtype=np.uint64)
    profile = Profile()
    ids, counts = space.frame_ids(pcs, profile)
    assert [profile.frames[i].name for i in ids] == ["a", "a", "kernel`0xffffffff80300000", "0x400000"]
    assert (counts.resolved, counts.in_module, counts.outside) == (2, 1, 1)
    assert counts.by_module == {"m.ko": 2, "kernel": 1, None: 1}
    # the kernel region reaches up to the next module, not beyond
    assert names(space, [-1])[0] == at("kernel", BASE - 1)
    assert space.remove(BASE).name == "m.ko"
    assert names(space, [1])[0] == at("kernel", BASE + 1)


def test_overlapping_modules_are_refused():
    space = AddressSpace()
    space.add(image("a.ko", 0x2000, ("a", 0, 0x10, "LOCAL")), BASE)
    space.add(image("b.ko", 0x100, ("b", 0, 0x10, "LOCAL")), BASE + 0x1000)
    with pytest.raises(UsageError, match="overlaps"):
        space.resolve([BASE])


def test_offsets_are_from_the_function_then_the_module():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x10, 0x10, "LOCAL")), BASE)
    result = space.resolve(np.array([BASE + 0x14, BASE + 0x40, 7], dtype=np.uint64))
    assert result.offset.tolist() == [4, 0x40, 7]
    assert [f.offset for f in space.frames(np.array([BASE + 0x14], dtype=np.uint64))] == [4]


def test_functions_are_clipped_at_the_module_end():
    """A symbol that claims bytes past lf->size, or starts there, names nothing outside the module."""
    space = AddressSpace()
    space.add(image("m.ko", 0x40, ("long", 0x30, 0x20, "LOCAL"), ("at_end", 0x40, 0x10, "LOCAL"),
                    ("ghost", 0x50, 0x10, "LOCAL")), BASE)
    assert names(space, [0x3F, 0x40, 0x50]) == ["long", f"{BASE + 0x40:#x}", f"{BASE + 0x50:#x}"]
    assert [(s.start - BASE, s.end - BASE) for s in space.segments] == [(0x30, 0x40)]
    assert [p.function.name for p in space.placements] == ["long"]


def test_functions_are_clipped_at_a_region_that_follows():
    """A module whose size reaches into a region known only by name (a kldstat line without ELF):
    from the region's base on, addresses are the region's, and the symbol map's ranges stop there."""
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("f", 0x80, 0x80, "LOCAL"), ("past", 0xD0, 0x8, "LOCAL")), BASE)
    space.add_region("if_em.ko", BASE + 0xC0)
    assert names(space, [0xBF, 0xC0, 0xD0, 0x110]) == ["f", *(at("if_em.ko", BASE + o) for o in (0xC0, 0xD0, 0x110))]
    assert [(s.start - BASE, s.end - BASE) for s in space.segments] == [(0x80, 0xC0)]


def test_module_ending_at_the_top_of_the_address_space():
    top = 1 << 64
    space = AddressSpace()
    space.add(image("m.ko", 0x1000, ("last", 0xF00, 0x10, "LOCAL")), top - 0x1000)
    assert names(space, [0xF08, 0xFFF], base=top - 0x1000) == ["last", at("m.ko", top - 1)]
    space = AddressSpace()
    space.add(image("m.ko", 0x1000, ("last", 0xF00, 0x10, "LOCAL")), top - 0xFFF)
    with pytest.raises(UsageError, match="runs past the end of the address space"):
        space.resolve([top - 1])
