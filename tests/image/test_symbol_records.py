"""A module's section headers, function symbols and records, read natively in bulk or in Python: the same objects.

``unpack_columns``, ``function_symbols``, ``slot_records``, ``uint64_columns`` and ``names_starting``
(src/native/symbol_records.h; their twins ``tracebridge.support.records`` and
``tracebridge.image.elf._function_symbols_py``) build what
:func:`tracebridge.image.elf.open_module` used to build one Python call (or
numpy) at a time.  Every committed module (the big ones and the edge cases)
is read on both paths and gives equal functions, names shared where the
symbols share a string-table offset; hypothesis feeds both twins made-up
symbol tables, records and rows; what the native functions cannot read, and
classes or columns the native builder cannot fill, are refused with an
error before anything is built.
"""

from __future__ import annotations

import struct
from array import array
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixture_paths import CROSS, EDGE, MODULES
from tracebridge.image import elf
from tracebridge.image.elf import Function, open_module
from tracebridge.support import native
from tracebridge.support.records import names_starting, slot_records, uint64_columns, unpack_columns

ALL_MODULES = sorted([*MODULES.glob("*.ko"), *EDGE.glob("*.ko"), *CROSS.glob("*.ko")], key=lambda p: p.name)


def pure(twin, *args):
    """``twin(*args)`` on the pure-Python path."""
    core, native.core = native.core, None
    try:
        return twin(*args)
    finally:
        native.core = core


def read_both(path, monkeypatch):
    native_image = open_module(path)
    with monkeypatch.context() as patch:
        patch.setattr(native, "core", None)
        pure_image = open_module(path)
    return native_image, pure_image


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: p.name)
def test_every_module_reads_the_same_on_both_paths(native_core, monkeypatch, path):
    if path.stem == "rem_stripped":  # no symbol table: the same refusal on both paths
        with pytest.raises(elf.InputError) as native_error:
            open_module(path)
        monkeypatch.setattr(native, "core", None)
        with pytest.raises(elf.InputError) as pure_error:
            open_module(path)
        assert str(native_error.value) == str(pure_error.value)
        return
    native_image, pure_image = read_both(path, monkeypatch)
    assert native_image.functions and native_image.functions == pure_image.functions
    assert all(type(f) is Function and type(f.name) is str for f in native_image.functions)


def section_names(count: int) -> tuple[str, list[int]]:
    """Names for ``count`` sections (``s0``, ``s1``...; the first two share a tail) and where each starts."""
    names = [f"s{i}\0" for i in range(count)]
    starts = list(accumulate(map(len, names), initial=0))[:count]
    return "".join(names), [start + (i == 1) for i, start in enumerate(starts)]


def function_symbols_both(*args):
    """``function_symbols`` on both paths: the same answer (and the same refusal), which is returned."""
    names, offsets = section_names(len(args[4]))
    expected = pure(elf._function_symbols, *args, names, offsets)
    if native.core is not None:
        got = native.core.function_symbols(Function, *args, elf._BINDING_NAMES, elf._TYPE_NAMES, names, offsets)
        assert got == expected
        if got[0] == "ok":
            assert all(type(f) is Function for f in got[1][0])
            assert [id(f) for f in sorted(got[1][0], key=lambda f: f.offset)] == [id(f) for f in got[1][1]]
    return expected


#: Section indices worth drawing: none, real ones, the reserved range, SHN_XINDEX.
SECTION_INDICES = st.one_of(st.integers(0, 7), st.sampled_from([0xFEFF, 0xFF00, 0xFFF1, 0xFFFE, 0xFFFF]))
SYMBOLS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255), SECTION_INDICES, st.integers(0, 2**64 - 1),
                             st.integers(0, 2**64 - 1)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(SYMBOLS, st.booleans(), st.booleans(), st.binary(max_size=40), st.lists(st.booleans(), min_size=1, max_size=8),
       st.data())
def test_function_symbols_twins_agree(symbols, is64, big, strtab, loaded, data):
    order = ">" if big else "<"
    mask = 2**64 - 1 if is64 else 2**32 - 1
    rows = [(name, info, 0, shndx, value & mask, size & mask) for name, info, shndx, value, size in symbols]
    if is64:
        table = b"".join(struct.pack(order + "IBBHQQ", *row) for row in rows)
    else:
        table = b"".join(struct.pack(order + "IIIBBH", n, v, z, i, o, x) for n, i, o, x, v, z in rows)
    bases = array("Q", data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=len(loaded), max_size=len(loaded))))
    xindex = data.draw(st.none() | st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 9), min_size=len(rows),
                                            max_size=len(rows)).map(lambda v: struct.pack(f"{order}{len(v)}I", *v)))
    limit = data.draw(st.integers(0, 120))
    tag, found = function_symbols_both(table, is64, big, xindex, bytes(loaded), bases.tobytes(), strtab, limit)
    if tag == "ok":
        functions, by_offset, name_chars = found
        assert by_offset == sorted(functions, key=lambda f: f.offset)
        assert name_chars == sum(len(f.name) for f in functions)
        for f in functions:
            assert rows[f.symbol_index][4:] == (f.value, f.size) and f.offset == (bases[f.shndx] + f.value) % 2**64
            assert loaded[f.shndx] and strtab[rows[f.symbol_index][0]:].split(b"\0")[0].decode("latin-1") == f.name
            assert f.type == ("FUNC" if rows[f.symbol_index][1] & 0xF == 2 else "IFUNC")
            assert f.section == ("1" if f.shndx == 1 else f"s{f.shndx}")


def test_function_symbols_answers():
    """Each answer of both twins on a hand-made table: the functions, and each reason to refuse."""
    def table(*rows):
        return b"".join(struct.pack("<IBBHQQ", name, info, 0, shndx, value, size)
                        for name, info, shndx, value, size in rows)

    strtab = b"\0f\0g\0"
    loaded, bases = bytes([0, 1, 1]), array("Q", [0, 0x100, 2**64 - 1]).tobytes()
    symbols = table((1, 0x12, 1, 4, 9), (3, 0x0A, 2, 5, 1), (1, 0x22, 1, 6, 0), (3, 0x11, 1, 0, 0), (1, 0x02, 0, 0, 0))
    functions = [Function(0, "f", "1", 1, 4, 9, "GLOBAL", "FUNC", 0x104), Function(1, "g", "s2", 2, 5, 1, "LOCAL", "IFUNC", 4),
                 Function(2, "f", "1", 1, 6, 0, "WEAK", "FUNC", 0x106)]
    assert function_symbols_both(symbols, True, False, None, loaded, bases, strtab, 10) == (
        "ok", (functions, [functions[1], functions[0], functions[2]], 3))
    # The two names take two characters: one more than a limit of 1 allows.
    assert function_symbols_both(symbols, True, False, None, loaded, bases, strtab, 1) == ("total", 2)
    assert function_symbols_both(symbols, True, False, None, loaded, bases, strtab, 2)[0] == "ok"
    # The name at offset 0 is the empty one before the first NUL; a last name without a NUL ends with the table.
    assert [f.name for f in function_symbols_both(table((0, 2, 1, 0, 0), (1, 2, 1, 0, 0), (2, 2, 1, 0, 0)), True,
                                                  False, None, loaded, bases, b"\0fg", 9)[1][0]] == ["", "fg", "g"]
    # A name at the table's very end is empty; one past it is refused, naming the first such symbol.
    assert function_symbols_both(table((5, 2, 1, 0, 0)), True, False, None, loaded, bases, strtab, 9)[1][0][0].name == ""
    assert function_symbols_both(table((1, 2, 1, 0, 0), (6, 2, 1, 0, 0), (7, 2, 1, 0, 0)), True, False, None,
                                 loaded, bases, strtab, 9) == ("name", 1)
    xindexed = table((1, 0x12, 1, 4, 9), (1, 0x12, 0xFFFF, 4, 9))
    assert function_symbols_both(xindexed, True, False, None, loaded, bases, strtab, 9) == ("xindex", None)
    assert [f.shndx for f in function_symbols_both(xindexed, True, False, struct.pack("<2I", 7, 2), loaded, bases,
                                                  strtab, 9)[1][0]] == [1, 2]


def test_many_symbols_keep_table_order_among_equal_offsets_and_share_names():
    """3,000 symbols whose offsets differ in every byte of the 64 (the native sort takes a pass per byte in
    which the keys differ) and repeat (ties), with 30 name offsets across two bytes: by offset, ties stay
    in table order, and the symbols of one name offset share one string, on both paths."""
    keys = [0, 1, 0xFF, 0x100, 0x1_0000_0000, 0xFF00_0000_0000_0000, 2**64 - 1, 0x0101_0101_0101_0101]
    strtab = b"\0" + b"".join(b"name%03d\0" % i for i in range(120))
    rows = [(1 + 32 * (i * 7 % 30), 0x12, 0, 1, keys[i * 5 % len(keys)] ^ (i % 3), 0) for i in range(3000)]
    symbols = b"".join(struct.pack("<IBBHQQ", *row) for row in rows)
    tag, (functions, by_offset, _) = function_symbols_both(symbols, True, False, None, bytes([0, 1]),
                                                           bytes(16), strtab, 10**6)
    assert tag == "ok" and len(functions) == 3000 and max(row[0] for row in rows) > 0x100
    assert [f.symbol_index for f in by_offset] == sorted(range(3000), key=lambda i: rows[i][4])
    assert len({id(f.name) for f in functions}) == len({row[0] for row in rows}) == 30


def test_reserved_section_indices_in_a_module_of_more_sections():
    """In a module of 0x10000 sections, an index in the reserved range (from 0xff00; SHN_ABS 0xfff1) still names
    no section unless it came from the extended index table, and SHN_UNDEF (0) none even if marked loaded."""
    count = 0x10000
    loaded, bases = bytes([1]) * count, bytes(8 * count)
    indices = (0xFFF1, 0xFEFF, 0xFF00, 0, 0xFFFF)
    symbols = b"".join(struct.pack("<IBBHQQ", 1, 0x12, 0, shndx, 0, 0) for shndx in indices)
    xindex = struct.pack(f"<{len(indices)}I", *(0xFFF1 if shndx == 0xFFFF else 0 for shndx in indices))
    tag, (functions, _, _) = function_symbols_both(symbols, True, False, xindex, loaded, bases, b"\0f\0", 9)
    assert tag == "ok" and [f.shndx for f in functions] == [0xFEFF, 0xFFF1]


def test_function_symbols_refuses_what_it_cannot_read(native_core):
    build = native_core.function_symbols
    names = (elf._BINDING_NAMES, elf._TYPE_NAMES, "s\0", [0])
    args = (Function, bytes(24), True, False, None, b"\1", bytes(8), b"", 0)
    assert build(*args, *names)[0] == "ok"
    with pytest.raises(ValueError, match="one base"):
        build(*args[:6], bytes(7), *args[7:], *names)
    with pytest.raises(ValueError, match="shorter than the symbol table"):
        build(Function, bytes(48), True, False, bytes(4), *args[5:], *names)
    with pytest.raises(ValueError, match="^the extended section index table is shorter than the symbol table$"):
        pure(elf._function_symbols, bytes(48), True, False, bytes(4), *args[5:], *names[2:])
    with pytest.raises(ValueError, match="16 binding names"):
        build(*args, ("LOCAL",), *names[1:])
    with pytest.raises(ValueError, match="one name offset per section"):
        build(*args, *names[:3], [0, 1])
    with pytest.raises(ValueError, match="Latin-1 section names"):
        build(*args, *names[:2], "\u0100\0", [0])
    # A function in section 1, whose name offset has no NUL after it.
    one = struct.pack("<IBBHQQ", 0, 2, 0, 1, 0, 0)
    with pytest.raises(ValueError, match="no NUL after it"):
        build(Function, one, True, False, None, b"\1\1", bytes(16), b"", 0, *names[:2], "s\0t", [0, 2])
    with pytest.raises(TypeError, match="one name per column"):
        build(_Slotted, *args[1:], *names)
    with pytest.raises(TypeError, match="no __dict__"):
        build(_Dict, *args[1:], *names)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from("<>"), st.text("BHIQ", min_size=1, max_size=6), st.data())
def test_unpack_columns_is_struct_transposed(order, fields, data):
    layout = order + fields
    size = struct.calcsize(layout)
    raw = data.draw(st.binary(max_size=5 * size))
    if len(raw) % size:
        with pytest.raises(ValueError, match="whole number of records"):
            pure(unpack_columns, layout, raw)
        if native.core is not None:
            with pytest.raises(ValueError, match="whole number of records"):
                native.core.unpack_columns(layout, raw)
        return
    expected = tuple([row[k] for row in struct.iter_unpack(layout, raw)] for k in range(len(fields)))
    assert pure(unpack_columns, layout, raw) == expected
    if native.core is not None:
        assert native.core.unpack_columns(layout, raw) == expected


@pytest.mark.parametrize("layout", ["I", "=I", "<", "<Iq", "<" + "B" * 65])
def test_unpack_columns_refuses_other_layouts(native_core, layout):
    with pytest.raises(ValueError):
        native_core.unpack_columns(layout, bytes(4))


ROWS = st.lists(st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=8), st.text(max_size=8), st.integers(0, 2**20),
                          st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.sampled_from(["LOCAL", "GLOBAL"]),
                          st.sampled_from(["FUNC", "IFUNC"]), st.integers(0, 2**64 - 1)), max_size=20)


@settings(max_examples=100, deadline=None)
@given(ROWS)
def test_records_are_the_dataclass_built_by_its_init(rows):
    columns = tuple(list(column) for column in zip(*rows)) if rows else tuple([] for _ in Function.__slots__)
    expected = [Function(*row) for row in rows]
    assert pure(slot_records, Function, columns) == expected
    if native.core is not None:
        made = native.core.slot_records(Function, columns)
        assert made == expected and all(type(f) is Function for f in made)
        assert [f.address(0x1000) for f in made] == [f.address(0x1000) for f in expected]


class _Dict:
    def __init__(self, a):
        self.a = a


class _Slotted:
    __slots__ = ("a",)


class _Overridden:
    __slots__ = ("a",)


_Overridden.a = 1  # the name no longer stands for the slot


def test_what_slot_records_cannot_fill_is_refused(native_core):
    build = native.core.slot_records
    with pytest.raises(TypeError, match="no __dict__"):
        build(_Dict, ([1],))
    with pytest.raises(TypeError, match="one name per column"):
        build(_Slotted, ([1], [2]))
    with pytest.raises(TypeError, match="member of the class itself"):
        build(_Overridden, ([1],))
    with pytest.raises(TypeError, match="must be lists"):
        build(_Slotted, ((1,),))
    with pytest.raises(ValueError, match="differ in length"):
        build(Function, tuple([1] if k else [1, 2] for k in range(len(Function.__slots__))))
    assert [r.a for r in build(_Slotted, ([3, 4],))] == [3, 4]


def test_the_tables_are_released_when_reading_them_fails(monkeypatch):
    """The symbol and string tables are views of the mapping: an error while reading them still closes it."""
    def fails(*args):
        assert all(isinstance(table, memoryview) for table in (args[0], args[6]))
        raise ValueError("a table whose numbers lie")

    monkeypatch.setattr(elf, "_function_symbols", fails)
    with pytest.raises(elf.InputError, match="malformed ELF: a table whose numbers lie"):
        open_module(ALL_MODULES[0])


INT_FIELDS = ("symbol_index", "shndx", "value", "size", "offset")


@pytest.mark.parametrize("path", [p for p in ALL_MODULES if p.stem != "rem_stripped"], ids=lambda p: p.name)
def test_uint64_columns_of_every_module(native_core, path):
    functions = open_module(path).functions
    expected = tuple(array("Q", [getattr(f, name) for f in functions]).tobytes() for name in INT_FIELDS)
    assert native_core.uint64_columns(functions, INT_FIELDS) == pure(uint64_columns, functions, INT_FIELDS) == expected
    assert uint64_columns(tuple(functions), ("size",)) == expected[3:4]  # any sequence


class _Index:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value


@settings(max_examples=200, deadline=None)
@given(ROWS, st.lists(st.integers(0, 2**64 - 1) | st.integers(-3, 3) | st.integers(2**64 - 2, 2**64 + 1), max_size=4))
def test_uint64_columns_twins_agree(rows, extra):
    """The same bytes, or the same error: slots read in place, other objects through getattr, __index__."""
    functions = [Function(*row) for row in rows]
    objects = functions + [_Dict(value) for value in extra] + [_Dict(_Index(value)) for value in extra]
    for subject, names in ((functions, INT_FIELDS), (objects, ("a",) if not functions else ("size",))):
        try:
            expected = pure(uint64_columns, subject, names)
        except Exception as exc:  # noqa: BLE001 - the same error is the point
            expected = type(exc)
        if native.core is None:
            continue
        try:
            got = native.core.uint64_columns(subject, names)
        except Exception as exc:  # noqa: BLE001
            got = type(exc)
        assert got == expected


def test_uint64_columns_errors(each_path):
    with pytest.raises(OverflowError):
        uint64_columns([_Dict(-1)], ("a",))
    with pytest.raises(OverflowError):
        uint64_columns([_Dict(2**64)], ("a",))
    with pytest.raises(TypeError):
        uint64_columns([_Dict("1")], ("a",))
    with pytest.raises(AttributeError):
        uint64_columns([_Slotted()], ("a",))
    assert uint64_columns([_Dict(_Index(7)), _Dict(True)], ("a",)) == (array("Q", [7, 1]).tobytes(),)
    assert uint64_columns([], ("a", "b")) == (b"", b"")


HEADS = [(), ("_R",), ("dtrace_", "owner_mtx", "trap_check", "fbt_", "__"), ("",), ("_ZN4core", "rem", "x" * 40)]


@pytest.mark.parametrize("path", [p for p in ALL_MODULES if p.stem != "rem_stripped"], ids=lambda p: p.name)
@pytest.mark.parametrize("heads", HEADS, ids=repr)
def test_names_starting_of_every_module(native_core, path, heads):
    functions = open_module(path).functions
    expected = [at for at, f in enumerate(functions) if f.name.startswith(heads)]
    assert native_core.names_starting(functions, "name", heads) == pure(names_starting, functions, "name", heads) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab_\u00e9\u20ac\U0001f600", max_size=5), max_size=8),
       st.lists(st.text(alphabet="ab_\u00e9\u20ac\U0001f600", max_size=3), max_size=3))
def test_names_starting_twins_agree(names, heads):
    """Names and heads of every width of str (Latin-1, BMP, astral): the same positions."""
    objects = [_Dict(name) for name in names]
    expected = [at for at, name in enumerate(names) if name.startswith(tuple(heads))]
    assert pure(names_starting, objects, "a", tuple(heads)) == expected
    if native.core is not None:
        assert native.core.names_starting(objects, "a", tuple(heads)) == expected


def test_names_starting_refuses_what_is_no_str(each_path):
    with pytest.raises(TypeError):
        names_starting([_Dict(b"dtrace_x")], "a", ("dtrace_",))
    with pytest.raises(AttributeError):
        names_starting([_Slotted()], "a", ("x",))
    assert names_starting((_Dict("ab"), _Dict("b")), "a", ("a",)) == [0]  # any sequence


def test_names_starting_refuses_heads_that_are_no_str(native_core):
    with pytest.raises(TypeError):
        native_core.names_starting([_Dict("ab")], "a", (b"a",))
