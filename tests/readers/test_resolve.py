"""The address space's rules on hand-made layouts and a committed module: sizes, overlaps, aliases, regions."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from fixture_paths import MODULES
from tracebridge.support.errors import UsageError
from tracebridge.image.elf import Function, open_module
from tracebridge.profile.model import Frame, Profile, address_frame
from tracebridge.profile.resolve import AddressSpace, ResolutionCounts

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


def test_counts_add_up_and_describe_themselves():
    total = ResolutionCounts(2, 1, 1, Counter({"m.ko": 2, "kernel": 1, None: 1}))
    total += ResolutionCounts(1, 2, 3, Counter({"m.ko": 1, "kernel": 2, None: 3}))
    assert (total.resolved, total.in_module, total.outside, total.total) == (3, 3, 4, 10)
    assert total.by_module == {"m.ko": 3, "kernel": 3, None: 4}
    assert total.describe() == ("10 PCs: 3 resolved to functions (30.0%), 3 inside a module but no function "
                                "(kept as module`0xADDR), 4 outside every known module (kept as hex)")
    assert ResolutionCounts().describe() == "no PCs"


def test_a_module_needs_a_load_address_unless_it_has_a_fixed_one():
    space = AddressSpace()
    assert (space.functions, space.placements, space.modules) == ([], [], [])
    with pytest.raises(UsageError) as refused:
        space.add(image("m.ko", 0x100, ("a", 0, 0x10, "LOCAL")))
    assert str(refused.value) == ("/m/m.ko: a load address is needed for this module "
                                  "(--base, a kldstat file, or a pmcstat map-in record)")
    kernel = image("kernel", 0x100, ("a", 0, 0x10, "LOCAL"))
    kernel.fixed_base, kernel.frame_module = 0xFFFFFFFF80200000, "kernel"
    assert space.add(kernel).base == 0xFFFFFFFF80200000
    assert names(space, [0x4], base=0xFFFFFFFF80200000) == ["a"]


def test_counts_weigh_each_pc_and_name_each_module():
    """``count`` with weights (samples per PC); a PC inside the first module but in no function is
    ``in_module``; PCs below every module and above the last one's end are outside (offset: the PC)."""
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x10, "LOCAL")), BASE)
    assert space.find("m.ko").base == BASE and space.find("kernel") is None
    space.add_region("kernel", 0xFFFFFFFF80200000)
    above = BASE + 0x1000
    pcs = np.array([BASE + 1, BASE + 0x20, 0xFFFFFFFF80300000, 0x400000, above], dtype=np.uint64)
    result = space.resolve(pcs)
    assert result.offset.tolist() == [1, 0x20, 0x100000, 0x400000, above]
    counts = space.count(result, np.array([5, 1, 2, 3, 4]))
    assert (counts.resolved, counts.in_module, counts.outside) == (5, 1 + 2, 3 + 4)
    assert counts.by_module == {"m.ko": 6, "kernel": 2, None: 7}


def test_one_frame_per_function_unless_offsets_are_kept():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x10, "LOCAL")), BASE)
    profile = Profile()
    ids, _ = space.frame_ids(np.array([BASE + 1, BASE + 2], dtype=np.uint64), profile)
    assert ids[0] == ids[1] and profile.frames[ids[0]].offset is None
    ids, _ = space.frame_ids(np.array([BASE + 1, BASE + 2], dtype=np.uint64), profile, offsets=True)
    assert [profile.frames[i].offset for i in ids] == [1, 2]


def test_several_modules_each_measure_offsets_from_their_own_functions():
    space = AddressSpace()
    for i, name in enumerate(("a.ko", "b.ko", "c.ko")):
        space.add(image(name, 0x100, (f"{name[0]}0", 0x0, 0x10, "LOCAL"), (f"{name[0]}1", 0x40, 0x10, "LOCAL")),
                  BASE + i * 0x1000)
    pcs = [BASE + i * 0x1000 + o for i in range(3) for o in (0x4, 0x44)]
    assert [(f.name, f.offset) for f in space.frames(pcs)] == [
        ("a0", 4), ("a1", 4), ("b0", 4), ("b1", 4), ("c0", 4), ("c1", 4)]


def test_segments_follow_every_change_of_the_space():
    space = AddressSpace()
    space.add(image("a.ko", 0x100, ("a", 0x0, 0x10, "LOCAL")), BASE)
    assert [(s.start - BASE, s.end - BASE) for s in space.segments] == [(0, 0x10)]
    space.add(image("b.ko", 0x100, ("b", 0x0, 0x10, "LOCAL")), BASE + 0x1000)
    assert [(s.start - BASE, s.end - BASE) for s in space.segments] == [(0, 0x10), (0x1000, 0x1010)]


def test_a_function_starting_where_a_region_begins_has_no_range():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("f", 0x80, 0x40, "LOCAL"), ("at", 0xC0, 0x8, "LOCAL")), BASE)
    space.add_region("if_em.ko", BASE + 0xC0)
    assert [(s.start - BASE, s.end - BASE) for s in space.segments] == [(0x80, 0xC0)]


def test_region_with_a_known_end():
    """A ``map-out`` record gives a region's end: past it, addresses are outside every module."""
    space = AddressSpace()
    space.add_region("x.ko", BASE, BASE + 0x100)
    assert names(space, [0xFF, 0x100]) == [at("x.ko", BASE + 0xFF), f"{BASE + 0x100:#x}"]


def test_module_ending_one_below_the_top_of_the_address_space():
    top = 1 << 64
    space = AddressSpace()
    space.add(image("m.ko", 0x1000, ("last", 0xF00, 0x10, "LOCAL")), top - 0x1001)
    assert names(space, [0xFFF, 0x1000], base=top - 0x1001) == [at("m.ko", top - 2), f"{top - 1:#x}"]


def test_overlap_message_gives_the_size():
    space = AddressSpace()
    space.add(image("a.ko", 0x2000, ("a", 0, 0x10, "LOCAL")), BASE)
    space.add(image("b.ko", 0x100, ("b", 0, 0x10, "LOCAL")), BASE + 0x1000)
    with pytest.raises(UsageError) as refused:
        space.resolve([BASE])
    assert str(refused.value) == (f"a.ko at {BASE:#x} (size 0x2000) overlaps b.ko at {BASE + 0x1000:#x}: "
                                  "check the load addresses")
    space = AddressSpace()
    space.add(image("m.ko", 0x1000, ("last", 0xF00, 0x10, "LOCAL")), (1 << 64) - 0xFFF)
    with pytest.raises(UsageError) as refused:
        space.resolve([0])
    assert str(refused.value) == (f"m.ko at {(1 << 64) - 0xFFF:#x} (size 0x1000) runs past the end of the address "
                                  "space: check the load address")


def test_zero_size_symbol_before_the_last_function_stops_at_it():
    space = AddressSpace()
    space.add(image("m.ko", 0x80, ("asm", 0x0, 0, "GLOBAL"), ("c", 0x30, 0x8, "LOCAL")), BASE)
    assert names(space, [0x2F, 0x30, 0x38]) == ["asm", "c", at("m.ko", BASE + 0x38)]


def test_nested_function_ending_with_its_parent_leaves_no_empty_range():
    space = AddressSpace()
    space.add(image("m.ko", 0x40, ("outer", 0x0, 0x20, "LOCAL"), ("inner", 0x10, 0x10, "LOCAL")), BASE)
    assert [(s.start - BASE, s.end - BASE) for s in space.segments] == [(0x0, 0x10), (0x10, 0x20)]


def test_module_at_address_zero():
    space = AddressSpace()
    space.add(image("m.ko", 0x40, ("first", 0x0, 0x10, "LOCAL")), 0)
    assert names(space, [0x0, 0x10], base=0) == ["first", at("m.ko", 0x10)]


def test_frames_name_their_module():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x10, "LOCAL")), BASE)
    assert space.frames([BASE + 4, BASE + 0x20]) == [
        Frame("m.ko", "a", "a", 4, "c", None), address_frame("m.ko", BASE + 0x20, 0x20)]


def test_frame_ids_with_offsets_tell_functions_apart():
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x10, "LOCAL"), ("b", 0x10, 0x10, "LOCAL"), ("c", 0x20, 0x10, "LOCAL")),
              BASE)
    profile = Profile()
    ids, _ = space.frame_ids(np.array([BASE + 0x24, BASE + 0x14, BASE + 0x4], dtype=np.uint64), profile,
                             offsets=True)
    assert [(profile.frames[i].name, profile.frames[i].offset) for i in ids] == [("c", 4), ("b", 4), ("a", 4)]


def test_pcs_given_as_a_list_of_user_space_addresses():
    """Addresses below 2**63 in a Python list would become int64 (and float64 against the uint64 table)."""
    base = 0x7FFF_FFFF_0000_0000
    space = AddressSpace()
    space.add(image("m.ko", 0x100, ("a", 0x0, 0x10, "LOCAL")), base)
    assert [f.name for f in space.frames([base + 4, base + 0x20])] == ["a", at("m.ko", base + 0x20)]
    ids, counts = space.frame_ids([base + 0x20], Profile())
    assert counts.in_module == 1
    assert space.resolve([base + 0x10]).offset.tolist() == [0x10]


def test_frame_ids_keep_an_unnamed_pc_at_its_offset_in_a_real_module():
    """The padding after ``rem_unload`` in rem_legacy_fp.ko belongs to no function: ``frame_ids`` (what
    the pmcstat log reader interns) gives the frame ``frames`` gives, with the PC's offset from the
    module's base, which pprof needs to place the frame in the module's mapping."""
    module = open_module(MODULES / "rem_legacy_fp.ko")
    unload = next(f for f in module.functions if f.name == "rem_unload")
    space = AddressSpace()
    space.add(module, BASE)
    padding = BASE + unload.offset + unload.size
    profile = Profile()
    ids, counts = space.frame_ids(np.array([padding, BASE + unload.offset], dtype=np.uint64), profile)
    assert counts.in_module == 1 and counts.resolved == 1
    assert [profile.frames[i] for i in ids] == space.frames([padding, BASE + unload.offset], offsets=False)
    assert profile.frames[ids[0]] == address_frame("rem_legacy_fp.ko", padding, unload.offset + unload.size)
