"""The DIE walk (image/diewalk.py) in the native core and in pure Python: the same rows, strings and errors.

Run on the units of every DWARF file under tests/fixtures, on the same
files with random damage (where both must give the same error message), and
on a unit built here by hand that holds every attribute form the walk must
read or skip (DWARF 2-5 and GNU), whose rows are known from its
construction.  The whole address index built on either path is compared
too.  Whether the index is *right* is tested against addr2line in
test_dwarf_vs_addr2line.py.
"""

from __future__ import annotations

import dataclasses
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from fixture_paths import FIXTURES
from tracebridge.image import diewalk
from tracebridge.image.debuginfo import DebugSections, load_debug_sections
from tracebridge.image.dwarf import AddressIndex, open_dwarf, unit_shape
from tracebridge.image.elf import open_module
from tracebridge.support import native


def dwarf_files() -> list[Path]:
    """Every fixture file with a .debug_info section (modules, their .debug and .full files)."""
    found = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF" and b".debug_info" in path.read_bytes():
            found.append(path)
    return found


DWARF_FILES = dwarf_files()


def debug_of(path: Path) -> DebugSections:
    module = path.with_name(path.name.removesuffix(".debug").removesuffix(".full"))
    if module == path:
        return load_debug_sections(open_module(path), str(path), own=True)
    return load_debug_sections(open_module(module), str(path))


def units_of(debug: DebugSections) -> list[diewalk.UnitShape]:
    dwarf = open_dwarf(debug)
    return [unit_shape(dwarf, unit, unit.get_top_DIE()) for unit in dwarf.iter_CUs()]


def sections_of(debug: DebugSections) -> tuple[bytes, ...]:
    return tuple(debug.sections.get(name, b"") for name in diewalk.SECTIONS)


def both(sections, shape, little_endian=True):
    """(native, pure Python) results of one walk: the output, or the ValueError's message."""
    results = []
    for core in (native.core, None):
        saved, native.core = native.core, core
        try:
            results.append(diewalk.walk_unit(sections, shape, little_endian))
        except ValueError as exc:
            results.append(str(exc))
        finally:
            native.core = saved
    return results


def test_every_dwarf_fixture_is_found():
    names = {path.name for path in DWARF_FILES}
    assert {"inl_legacy.ko.debug", "inl_v0.ko.full", "inl_dwarf5.ko.debug"} <= names


@pytest.mark.parametrize("path", DWARF_FILES, ids=lambda p: p.name)
def test_walks_are_identical(native_core, path):
    debug = debug_of(path)
    sections = sections_of(debug)
    shapes = units_of(debug)
    assert shapes
    recorded = 0
    for shape in shapes:
        ours, theirs = both(sections, shape)
        assert not isinstance(ours, str), ours
        assert ours == theirs
        recorded += len(ours[0])
    assert recorded > 0


@pytest.mark.parametrize("path", DWARF_FILES, ids=lambda p: p.name)
def test_indexes_are_identical(native_core, path, monkeypatch):
    debug = debug_of(path)
    native_index = AddressIndex(debug, cache=False)
    monkeypatch.setattr(native, "core", None)
    python_index = AddressIndex(debug, cache=False)
    assert native_index.inlined_count > 10
    for name in AddressIndex.ARRAYS:
        assert np.array_equal(getattr(native_index, name), getattr(python_index, name)), name
    assert native_index._names == python_index._names and native_index._files == python_index._files
    addresses = native_index.row_address.tolist()
    assert native_index.frames_many(addresses) == python_index.frames_many(addresses)


@pytest.mark.parametrize("name, section", [
    *(("inl_legacy.ko.debug", s) for s in (".debug_info", ".debug_abbrev", ".debug_str", ".debug_ranges")),
    *(("inl_dwarf5.ko.debug", s) for s in (".debug_info", ".debug_abbrev", ".debug_str", ".debug_rnglists",
                                           ".debug_addr", ".debug_str_offsets")),
])
def test_damaged_sections_give_the_same_answer(native_core, name, section):
    debug = debug_of(FIXTURES / "modules" / name)
    shapes = units_of(debug)
    rng = random.Random(f"{name}{section}")
    original = debug.sections[section]
    errors = 0
    for _ in range(25):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            data[at] = rng.choice([0, 0x80, 0xFF, rng.randrange(256)])
        if rng.random() < 0.2:
            data = data[:rng.randrange(len(data))]
        sections = sections_of(dataclasses.replace(debug, sections={**debug.sections, section: bytes(data)}))
        for shape in shapes:
            ours, theirs = both(sections, shape)
            assert ours == theirs
            errors += isinstance(ours, str)
    assert errors or section in (".debug_str", ".debug_str_offsets")


# ------------------------------------------------------------- a unit by hand ---

def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte | (0 if done else 0x80))
        if done:
            return bytes(out)


def abbrev(code: int, tag: int, children: bool, specs: list[tuple]) -> bytes:
    out = uleb(code) + uleb(tag) + bytes([children])
    for spec in specs:
        out += uleb(spec[0]) + uleb(spec[1]) + (sleb(spec[2]) if spec[1] == 0x21 else b"")
    return out + b"\0\0"


#: Skipped attributes of every other form, with a value of each (DW_AT_decl_line etc. do not matter).
SKIPPED = [
    (0x3A, 0x1E, b"\x11" * 16),                     # data16
    (0x02, 0x0A, b"\x02ab"),                        # block1
    (0x02, 0x03, b"\x01\x00z"),                     # block2
    (0x02, 0x04, b"\x01\x00\x00\x00z"),             # block4
    (0x02, 0x09, uleb(3) + b"xyz"),                 # block
    (0x02, 0x18, uleb(1) + b"\x9c"),                # exprloc
    (0x3F, 0x0C, b"\x01"),                          # flag
    (0x3F, 0x19, b""),                              # flag_present
    (0x3B, 0x0D, sleb(-300)),                       # sdata
    (0x3B, 0x0F, uleb(1 << 70)),                    # udata, past 64 bits
    (0x49, 0x20, b"\x00" * 8),                      # ref_sig8
    (0x49, 0x1C, b"\x00" * 4),                      # ref_sup4
    (0x49, 0x24, b"\x00" * 8),                      # ref_sup8
    (0x03 + 0x100, 0x1D, b"\x00" * 4),              # strp_sup (under an attribute the walk ignores)
    (0x02, 0x22, uleb(0)),                          # loclistx
    (0x49, 0x1F20, b"\x00" * 4),                    # GNU_ref_alt
    (0x3B + 0x100, 0x1F21, b"\x00" * 4),            # GNU_strp_alt
    (0x3B, 0x07, b"\x00" * 8),                      # data8
    (0x3B, 0x05, b"\x00" * 2),                      # data2
    (0x3B + 0x200, 0x27, b"\x00" * 3),              # strx3, not evaluated
    (0x3B + 0x300, 0x2B, b"\x00" * 3),              # addrx3, not evaluated
    (0x3B, 0x21, b""),                              # implicit_const (its value is in the table)
    (0x3B, 0x16, uleb(0x0B) + b"\x07"),             # indirect -> data1
    (0x3B, 0x10, b"\x00" * 4),                      # ref_addr
]


def hand_unit() -> tuple[tuple[bytes, ...], diewalk.UnitShape, dict]:
    """A DWARF 5 unit: namespace ns { fn func { inlined copy of decl } }, plus a subprogram in DWARF 4 style."""
    strings = b"\0ns\0_ZN2ns4funcE\0"
    line_strings = b"\0_ZN2ns4declE\0"
    str_offsets = struct.pack("<IHH", 12, 5, 0) + struct.pack("<II", 1, 4)  # ns, _ZN2ns4funcE
    addresses = struct.pack("<IHBB", 28, 5, 8, 0) + struct.pack("<QQQ", 0x100, 0x300, 0x340)
    # Range list 0: base_addressx 1 (0x300); offset_pair 0x10..0x20; startx_length 0 +8; startx_endx 1..2; end.
    entries = (b"\x01" + uleb(1) + b"\x04" + uleb(0x10) + uleb(0x20) + b"\x03" + uleb(0) + uleb(8)
               + b"\x02" + uleb(1) + uleb(2) + b"\x00")
    rnglists = struct.pack("<IHBBI", 0, 5, 8, 0, 1) + struct.pack("<I", 4) + entries
    table = (abbrev(1, 0x11, True, [])
             + abbrev(2, 0x39, True, [(0x03, 0x25)])  # namespace: name strx1
             + abbrev(3, 0x2E, True, [(0x6E, 0x26), (0x03, 0x08), (0x11, 0x1B), (0x12, 0x06)]
                      + [(name, form, -5 if form == 0x21 else 0) for name, form, _ in SKIPPED])
             + abbrev(4, 0x1D, False, [(0x31, 0x13), (0x55, 0x23), (0x58, 0x21, 2), (0x59, 0x16)])
             + abbrev(5, 0x2E, False, [(0x6E, 0x1F), (0x3C, 0x19)])  # declaration: linkage line_strp
             + abbrev(6, 0x2E, False, [(0x47, 0x15), (0x11, 0x01), (0x12, 0x01)])  # specification, addr/addr
             + b"\0")
    body = bytearray(struct.pack("<IHBBI", 0, 5, 1, 8, 0))  # length patched below
    body += uleb(1)  # top DIE at 12
    top = 12
    decl = None
    ns = len(body)
    body += uleb(2) + b"\x00"
    func = len(body)
    body += uleb(3) + struct.pack("<H", 1) + b"func\0" + uleb(0) + struct.pack("<I", 0x40)
    for _, _, value in SKIPPED:
        body += value
    inlined = len(body)
    decl_ref_at = len(body) + 1
    body += uleb(4) + b"\0\0\0\0" + uleb(0) + uleb(0x0F) + uleb(77)
    body += b"\0"  # end of func's children
    decl = len(body)
    body += uleb(5) + struct.pack("<I", 1)
    spec = len(body)
    body += uleb(6) + uleb(decl) + struct.pack("<QQ", 0x500, 0x480)  # high below low: no range
    body += b"\0"  # end of the namespace's children
    body += b"\0"  # end of the top DIE's children
    struct.pack_into("<I", body, decl_ref_at, decl)
    struct.pack_into("<I", body, 0, len(body) - 4)
    sections = (bytes(body), table, strings, line_strings, str_offsets, addresses, b"", rnglists)
    shape = diewalk.UnitShape(die_start=top + 1, unit_end=len(body), unit_offset=0, top_offset=top, version=5,
                              address_size=8, offset_size=4, abbrev_offset=0, base=0, str_offsets_base=8,
                              addr_base=8, rnglists_base=12, top_has_children=1, max_depth=512)
    return sections, shape, {"ns": ns, "func": func, "inlined": inlined, "decl": decl, "spec": spec, "top": top}


def test_every_form_by_hand(native_core):
    sections, shape, at = hand_unit()
    ours, theirs = both(sections, shape)
    assert ours == theirs
    records, ranges, strings = ours
    rows = np.frombuffer(records, dtype=np.int64).reshape(-1, len(diewalk.RECORD_COLUMNS)).tolist()
    assert strings == [b"ns", b"func", b"_ZN2ns4funcE", b"_ZN2ns4declE"]
    assert rows == [
        # offset, tag, parent, code_parent, origin, call_file, call_line, name, linkage
        [at["ns"], 2, at["top"], -1, -1, -1, 0, 0, -1],
        [at["func"], 0, at["ns"], -1, -1, -1, 0, 1, 2],
        [at["inlined"], 1, at["func"], 1, at["decl"], 2, 77, -1, -1],
        [at["decl"], 0, at["ns"], -1, -1, -1, 0, -1, 3],
        [at["spec"], 0, at["ns"], -1, at["decl"], -1, 0, -1, -1],
    ]
    assert np.frombuffer(ranges, dtype=np.int64).reshape(-1, 3).tolist() == [
        [0x100, 0x140, 1], [0x310, 0x320, 2], [0x100, 0x108, 2], [0x300, 0x340, 2]]


@pytest.mark.parametrize("cut", [20, 60, -3])
def test_hand_unit_cut_short(native_core, cut):
    sections, shape, _ = hand_unit()
    ours, theirs = both((sections[0][:cut], *sections[1:]), shape)
    assert ours == theirs and isinstance(ours, str) and ours.endswith("runs past the end of its unit")


def test_unit_ending_before_its_dies(native_core):
    sections, shape, _ = hand_unit()
    ours, theirs = both((sections[0][:5], *sections[1:]), shape)
    assert ours == theirs == (b"", b"", [])


@pytest.mark.parametrize("change, message", [
    ({"str_offsets_base": -1}, "the unit needs DW_AT_str_offsets_base"),
    ({"addr_base": -1}, "the unit needs DW_AT_addr_base"),
    ({"rnglists_base": -1}, "the unit needs DW_AT_rnglists_base"),
    ({"addr_base": 40}, "an index into .debug_addr lies past its end"),
    ({"abbrev_offset": 10_000}, "the abbreviation table at .debug_abbrev offset 0x2710 runs past its end"),
])
def test_hand_unit_errors(native_core, change, message):
    sections, shape, _ = hand_unit()
    ours, theirs = both(sections, shape._replace(**change))
    assert ours == theirs == message


def test_unknown_form_and_code(native_core):
    sections, shape, at = hand_unit()
    info = bytearray(sections[0])
    info[at["ns"]] = 9  # no abbreviation 9
    ours, theirs = both((bytes(info), *sections[1:]), shape)
    assert ours == theirs == f"DIE at 0x{at['ns']:x}: its abbreviation code is not in the unit's table"
    table = sections[1].replace(uleb(2) + uleb(0x39) + b"\x01" + uleb(0x03) + uleb(0x25),
                                uleb(2) + uleb(0x39) + b"\x01" + uleb(0x03) + uleb(0x7F))
    ours, theirs = both((sections[0], table, *sections[2:]), shape)
    assert ours == theirs == f"DIE at 0x{at['ns']:x}: an attribute has an unknown form"


def test_depth_limit(native_core):
    sections, shape, _ = hand_unit()
    ours, theirs = both(sections, shape._replace(max_depth=2))
    assert ours == theirs
    ranges = np.frombuffer(ours[1], dtype=np.int64).reshape(-1, 3).tolist()
    assert ranges == []  # func sits at depth 2 (top, namespace): not read as code, nor what it holds


def test_big_endian_runs_the_python_walk(monkeypatch):
    """The native walk reads little-endian numbers only: a big-endian module's DWARF takes the Python walk."""
    class Refusing:
        def dwarf_walk(self, *args):
            raise AssertionError("the native walk ran on big-endian DWARF")

    sections, shape, _ = hand_unit()
    monkeypatch.setattr(native, "core", Refusing())
    with pytest.raises(ValueError):  # the little-endian unit read as big-endian: absurd offsets
        diewalk.walk_unit(sections, shape, False)


@pytest.mark.parametrize("seed", range(6))
def test_segments_are_painted_as_outermost_first(seed):
    """dwarf._paint (vectorised, in chunks) gives what painting every range in depth order gives."""
    from tracebridge.image.dwarf import _paint

    rng = np.random.default_rng(seed)
    segments, count = 60, 80
    start = rng.integers(0, segments, count)
    end = np.minimum(start + rng.integers(0, 12, count), segments)  # empty ranges too
    depth = rng.integers(0, 4, count)  # overlapping ranges of equal depth: the later one wins
    node = rng.integers(0, 50, count)
    want = np.full(segments, -1, dtype=np.int64)
    for i in np.argsort(depth, kind="stable").tolist():
        want[start[i]:end[i]] = node[i]
    for chunk in (1, 7, 1 << 23):
        assert _paint(segments, start, end, depth, node, chunk).tolist() == want.tolist()


def shared_list_unit(copies: int, entries: int):
    """A DWARF 5 unit whose ``copies`` inlined DIEs all name one range list of ``entries`` entries."""
    rnglists = bytearray(struct.pack("<IHBBI", 0, 5, 8, 0, 0))
    for i in range(entries):
        rnglists += b"\x04" + uleb(2 * i) + uleb(2 * i + 1)  # offset_pair
    rnglists += b"\x00"
    table = (abbrev(1, 0x11, True, []) + abbrev(2, 0x2E, True, [(0x11, 0x01), (0x12, 0x06)])
             + abbrev(3, 0x1D, False, [(0x55, 0x17)]) + b"\0")
    body = bytearray(struct.pack("<IHBBI", 0, 5, 1, 8, 0)) + uleb(1)
    body += uleb(2) + struct.pack("<QI", 0, 4 * entries)
    for _ in range(copies):
        body += uleb(3) + struct.pack("<I", 12)
    body += b"\0\0"
    struct.pack_into("<I", body, 0, len(body) - 4)
    sections = (bytes(body), table, b"", b"", b"", b"", b"", bytes(rnglists))
    shape = diewalk.UnitShape(die_start=13, unit_end=len(body), unit_offset=0, top_offset=12, version=5,
                              address_size=8, offset_size=4, abbrev_offset=0, base=0x1000, str_offsets_base=-1,
                              addr_base=-1, rnglists_base=-1, top_has_children=1, max_depth=512)
    return sections, shape


def test_a_list_shared_by_many_dies_is_bounded(native_core):
    """Many DIEs naming one long range list would decode it again for each: the unit is refused once its
    lists have decoded more entries than its bytes and the range sections' (both paths, same message)."""
    sections, shape = shared_list_unit(copies=2, entries=50)
    ours, theirs = both(sections, shape)
    assert ours == theirs and len(ours[1]) == 8 * 3 * (1 + 2 * 50)  # the subprogram's range, 50 per copy
    sections, shape = shared_list_unit(copies=300, entries=1000)
    ours, theirs = both(sections, shape)
    assert ours == theirs == "the unit's range lists hold more entries than its sections have bytes"


def test_abbreviation_codes_past_the_direct_table(native_core):
    """Codes of 65536 and more are found by a binary search in the native walk (a scan per DIE was
    quadratic: 100,000 such abbreviations and DIEs took 4.3 s of CPU against the Python walk's 0.25 s);
    a code defined twice is its first definition, as in the Python walk."""
    far = [1 << 16, (1 << 16) + 7, 70000, (1 << 64) - 1]
    table = (abbrev(1, 0x11, True, []) + abbrev(far[0], 0x2E, False, [(0x03, 0x08)])
             + abbrev(far[3], 0x1D, False, [(0x03, 0x08)]) + abbrev(far[1], 0x39, True, [])
             + abbrev(far[0], 0x24, False, [(0x3B, 0x0B)]) + abbrev(far[2], 0x13, False, [(0x03, 0x08)])
             + abbrev(far[3], 0x24, False, []) + b"\0")
    top = uleb(1)
    info = top + b"".join(uleb(code) + (b"" if code == far[1] else b"n%d\0" % code) for code in far) + b"\0\0"
    shape = diewalk.UnitShape(len(top), len(info), 0, 0, 4, 8, 4, 0, 0, -1, -1, -1, 1, 100)
    ours, theirs = both((info, table, b"", b"", b"", b"", b"", b""), shape)
    assert ours == theirs
    rows = np.frombuffer(ours[0], dtype=np.int64).reshape(-1, len(diewalk.RECORD_COLUMNS))
    assert rows[:, 1].tolist() == [0, 2, 3, 1]  # subprogram, namespace, structure, inlined: the first definitions
    assert ours[2] == [b"n65536", b"n70000", b"n18446744073709551615"]
    many = 20000
    table = b"".join(abbrev(far[0] + i, 0x24, False, []) for i in range(many)) + b"\0"
    info = uleb(far[0] + many - 1) * many + uleb(far[0] + many)
    ours, theirs = both((info, table, b"", b"", b"", b"", b"", b""), shape._replace(die_start=0, unit_end=len(info)))
    assert ours == theirs == f"DIE at 0x{3 * many:x}: its abbreviation code is not in the unit's table"
