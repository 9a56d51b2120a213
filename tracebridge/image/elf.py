"""The module image: a kernel module's sections and functions, as the kernel sees them.

This is the layer every other part of tracebridge stands on.  It reads an ELF
kernel module (amd64 ET_REL ``.ko``, i386/arm64/riscv ET_DYN ``.ko``) or the
kernel itself (ET_EXEC), and lists its functions with the offset from the
module base that FreeBSD's kernel linker gives them (see :mod:`tracebridge.image.layout`).

An ordinary ELF header is unpacked here and any other is left to pyelftools
(:func:`_elf_header`); the section header table and the symbol table are then
read *as a whole*, natively where the compiled core is built
(``src/native/symbol_records.h``, with pure-Python twins), because a Rust
module can have 100k sections and symbols and per-entry Python parsing would
cost seconds.  Neither pyelftools nor numpy is imported to read an ordinary
module: together they cost more than reading librustc_driver's 106k functions.
Names are decoded as Latin-1 so that every byte of a symbol name is one
character: hostile or corrupt names survive unchanged and byte-exact (FBT and
libdtrace compare bytes), and real names are ASCII anyway.
"""

from __future__ import annotations

import mmap
import os
import struct
from array import array
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING

from tracebridge.support import gcpause, native
from tracebridge.support.records import slot_records, uint64s, unpack_columns

from tracebridge.image import layout
from tracebridge.image.layout import SHF_ALLOC, SHT_NOBITS  # the layout needs them first
from tracebridge.support.errors import InputError, reading

if TYPE_CHECKING:
    import numpy as np

# ELF constants (the ELF gABI; values also in sys/sys/elf_common.h).
SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_REL, SHT_DYNSYM, SHT_SYMTAB_SHNDX = 2, 3, 4, 9, 11, 18
SHF_EXECINSTR = 0x4
STT_FUNC, STT_GNU_IFUNC = 2, 10
SHN_UNDEF, SHN_LORESERVE, SHN_XINDEX = 0, 0xFF00, 0xFFFF
ELFOSABI_FREEBSD = 9
PT_LOAD = 1

#: Bytes of function names a module may make the tool hold beyond twice its string table.
MAX_NAME_BYTES = 64 << 20
#: e_machine (as pyelftools names it) -> FreeBSD architecture name.
MACHINES = {"EM_386": "i386", "EM_X86_64": "amd64", "EM_AARCH64": "arm64", "EM_RISCV": "riscv"}


@dataclass(slots=True)
class Section:
    """One section header, plus where the kernel linker places it (if it does).

    Not frozen, for the same reason as :class:`Function`: a Rust module can
    have 100k sections.  ``load_offset`` is filled in once, by the layout.
    """

    index: int
    name: str
    type: int
    flags: int
    addr: int
    file_offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int
    #: Offset from the module base at run time, or None when not loaded.
    load_offset: int | None = None

    @property
    def loaded(self) -> bool:
        return self.load_offset is not None

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(slots=True)
class Function:
    """A function symbol the kernel linker would list (FUNC/IFUNC, in a loaded section).

    Not frozen: a module can hold 100k of these and frozen dataclasses cost
    three times as much to build.  Treat instances as read-only.
    """

    symbol_index: int
    name: str
    section: str
    shndx: int
    value: int
    size: int
    binding: str
    type: str
    #: Offset from the module base (``lf->address``) at run time.
    offset: int

    def address(self, base: int | None) -> int | None:
        """Run-time address for a module loaded at ``base`` (None if unknown)."""
        return None if base is None else base + self.offset


def alias_rank(function: Function) -> tuple[int, int, str]:
    """Sort key choosing the name shown for several symbols at one address.

    A global name first, then the larger size, then the first by name: the
    same choice in every output (profiles, symbol maps, pmcstat images).
    """
    return (0 if function.binding == "GLOBAL" else 1, -function.size, function.name)


@dataclass(eq=False)
class ModuleImage:
    """A parsed kernel module: header facts, sections, functions and the layout."""

    path: str
    elf_type: str
    machine: str
    bits: int
    little_endian: bool
    osabi: int
    functions: list[Function]
    #: The same functions in address order; aliases (same offset) keep symbol-table order.
    functions_by_offset: list[Function]
    #: Characters of all the functions' names, a name shared by several counted each time: what a
    #: command holds if it copies every name (names themselves are held once, see :func:`_read_functions`).
    name_chars: int
    #: ``lf->size``: bytes the kernel maps for the module (final layout offset).
    size: int
    #: The run-time address of offset 0 when it is fixed (the kernel, ET_EXEC).
    fixed_base: int | None
    symtab: str
    _table: _SectionTable = field(repr=False)
    _load_offsets: dict[int, int] = field(repr=False)
    _data: bytes | mmap.mmap = field(repr=False)
    _section_cache: dict[int, Section] = field(default_factory=dict, repr=False)
    #: ``e_flags`` of the ELF header (the float ABI and RVC of a riscv module, for disassemblers).
    e_flags: int = 0

    @cached_property
    def sections(self) -> list[Section]:
        """Every section header, built on first use (the bulk paths read columns)."""
        return [self.section(i) for i in range(len(self._table))]

    @property
    def section_count(self) -> int:
        return len(self._table)

    def section(self, index: int) -> Section:
        """One section header (``IndexError`` outside the table), built on demand.

        A per-function-section module has 100k sections; most questions
        concern a handful, so they are not all built to answer them.
        """
        section = self._section_cache.get(index)
        if section is None:
            t = self._table
            if not 0 <= index < len(t):
                raise IndexError(f"section index {index} outside 0..{len(t) - 1}")
            section = self._section_cache[index] = Section(
                index, t.section_name(index), t.type[index], t.flags[index], t.addr[index], t.offset[index],
                t.size[index], t.link[index], t.info[index], t.addralign[index], t.entsize[index],
                self._load_offsets.get(index))
        return section

    @property
    def load_offsets(self) -> dict[int, int]:
        """Section index -> offset from the module base, for every loaded section."""
        return dict(self._load_offsets)

    def section_bytes(self, index: int) -> bytes:
        """A section's contents as the file holds them (empty for ``NOBITS``); checked against the file size."""
        t = self._table
        if t.type[index] == SHT_NOBITS:
            return b""
        start, size = t.offset[index], t.size[index]
        if start + size > len(self._data):
            raise InputError(self.path, f"section {index} ({t.section_name(index)}) lies past the end of the file")
        return self._data[start:start + size]

    def relocation_sections_for(self, index: int) -> list[Section]:
        """The ``SHT_REL``/``SHT_RELA`` sections whose ``sh_info`` names section ``index`` (ET_REL)."""
        return [self.section(i) for i in self.section_indices_of_type(SHT_REL, SHT_RELA)
                if self._table.info[i] == index]

    def symbol_columns(self, symtab: int) -> tuple[np.ndarray, np.ndarray]:
        """``st_value`` and ``st_shndx`` of every symbol of the symbol table at ``symtab``, as arrays.

        Extended indices (``SHN_XINDEX``) are left as they are: relocations
        in debug sections name section symbols of small indices.
        """
        import numpy as np  # the symbols and commands that need no relocation columns do not load it

        t = self._table
        if not 0 < symtab < len(t) or t.type[symtab] not in (SHT_SYMTAB, SHT_DYNSYM):
            raise InputError(self.path, f"relocations name symbol table {symtab}, which is not one")
        dtype = symbol_dtype(self.bits, "<" if self.little_endian else ">")
        count = t.size[symtab] // dtype.itemsize
        data = _Reader(self.path, self._data).slice(t.offset[symtab], count * dtype.itemsize, "the symbol table")
        symbols = np.frombuffer(data, dtype=dtype)
        return symbols["value"].astype(np.uint64), symbols["shndx"].astype(np.int64)

    def sections_of_type(self, *types: int) -> list[Section]:
        return [self.section(i) for i in self.section_indices_of_type(*types)]

    def section_indices_of_type(self, *types: int) -> list[int]:
        """Indices of the sections of these types, without building their headers.

        With their :meth:`section_info`, enough to index the 20k relocation
        sections of a big per-function-section module without building them.
        """
        return [i for i, kind in enumerate(self._table.type) if kind in types]

    def section_info(self, index: int) -> int:
        """``sh_info`` of one section (for a relocation section, the section it patches)."""
        return self._table.info[index]

    def sections_named(self, name: str) -> list[Section]:
        # Find the name in the string table first (names may share a tail,
        # ".text" inside ".rela.text"), then the headers that point there.
        names, key = self._table.names, name + "\0"
        starts = set()
        at = names.find(key)
        while at >= 0:
            starts.add(at)
            at = names.find(key, at + 1)
        return [self.section(i) for i, start in enumerate(self._table.name) if start in starts]

    @property
    def filename(self) -> str:
        """The file's basename, as ``stack()`` frames name it (``if_rem.ko``)."""
        return os.path.basename(self.path)

    @property
    def frame_module(self) -> str:
        """The module its frames are shown in: ``kernel`` for the kernel (ET_EXEC), else the file name."""
        return "kernel" if self.elf_type == "ET_EXEC" else self.filename

    @property
    def modname(self) -> str:
        """FBT's module field: the basename without ``.ko`` (``kernel`` stays)."""
        name = self.filename
        return name[:-3] if name.endswith(".ko") else name

    def offset_in_section(self, function: Function) -> int:
        """Where the function starts inside its section (ET_REL values already are that)."""
        if self.elf_type == "ET_REL":
            return function.value
        return function.value - self._table.addr[function.shndx]

    def code(self, function: Function) -> bytes:
        """The bytes of a function as they lie in the file (before relocation).

        Relocations are not applied: FBT patches only the opcode bytes of
        ``push %rbp`` and ``ret``, which relocations never touch.
        """
        start, end = self.code_span(function)
        return self._data[start:end]

    def code_span(self, function: Function) -> tuple[int, int]:
        """Where :meth:`code` lies in :attr:`data` (start, end); empty when the file has none."""
        # Straight from the header columns: called once per function, and
        # building the Section objects of a 100k-section module costs more.
        table, index = self._table, function.shndx
        if table.type[index] == SHT_NOBITS:
            return 0, 0
        size = table.size[index]
        start = self.offset_in_section(function)
        if start < 0 or start >= size:
            return 0, 0
        base = table.offset[index]
        end = min(base + size, base + start + function.size, len(self._data))
        return (base + start, end) if end > base + start else (0, 0)

    def code_spans_of(self, shndx: bytes, value: bytes, length: bytes) -> tuple[bytes, bytes, list[int]]:
        """:meth:`code_span` of each function whose ``shndx``, ``value`` and ``size`` are these uint64
        columns (:func:`~tracebridge.support.records.uint64_columns`), for the 100k functions of a big
        module at once: where each one's bytes start in :attr:`data` and how many there are, as two
        native int64 columns (bytes), and the positions of the functions without any (0, 0).

        One pass natively (``src/native/fbt_columns.h``), without a Python step or a numpy import per
        call; :func:`_code_spans_py` is its twin.  ``IndexError`` for a section index past the table.
        """
        relative, data_len = self.elf_type == "ET_REL", len(self._data)
        if native.core is not None:
            return native.core.code_spans(shndx, value, length, *self._columns, relative, data_len)
        return _code_spans_py(shndx, value, length, self._columns, relative, data_len)

    @cached_property
    def _columns(self) -> tuple[array, array, array, array]:
        """The section header columns :meth:`code_spans_of` needs (type, size, offset, addr), as uint64 arrays."""
        t = self._table
        return array("Q", t.type), array("Q", t.size), array("Q", t.offset), array("Q", t.addr)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the file as it was read (its mapping), hashed once however many inputs name it."""
        import hashlib  # OpenSSL's library: loaded by the few commands that hash

        return hashlib.sha256(self._data).hexdigest()

    @property
    def data(self) -> bytes | mmap.mmap:
        """The whole file (a read-only mapping): the buffer :meth:`code_span` indexes."""
        return self._data

    def loaded_contents(self) -> list[tuple[int, bytes]]:
        """``(load offset, file bytes)`` of every loaded section that has contents, in header order.

        What the kernel linker copies into the module's mapping before
        relocating it; ``SHT_NOBITS`` sections are zero-filled there and so
        are left out.
        """
        table = self._table
        return [(offset, self._data[table.offset[index]:table.offset[index] + table.size[index]])
                for index, offset in self._load_offsets.items() if table.type[index] != SHT_NOBITS]

    def address(self, function: Function, base: int | None = None) -> int | None:
        """Run-time address; the kernel's own functions have a fixed one."""
        if self.fixed_base is not None:
            return self.fixed_base + function.offset
        return function.address(base)

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()


def _code_spans_py(shndx: bytes, value: bytes, length: bytes, sections: tuple[array, ...], relative: bool,
                   data_len: int) -> tuple[bytes, bytes, list[int]]:
    """:meth:`ModuleImage.code_spans_of` in Python (the native core's twin): per function, the bytes from
    its offset in its section on, to the end of the function, of the section or of the file, whichever
    comes first; none in a ``SHT_NOBITS`` section or from a value outside its section."""
    kinds, sizes, offsets, addrs = map(uint64s, sections)
    starts, lengths, empty = array("q"), array("q"), []
    for at, (index, where, size) in enumerate(zip(uint64s(shndx), uint64s(value), uint64s(length))):
        offset = where if relative else where - addrs[index]
        start = offsets[index] + offset
        take = 0
        if 0 <= offset < sizes[index] and kinds[index] != SHT_NOBITS and start < data_len:
            take = min(size, sizes[index] - offset, data_len - start)
        if not take:
            start = 0
            empty.append(at)
        starts.append(start)
        lengths.append(take)
    return starts.tobytes(), lengths.tobytes(), empty


def section_header_dtype(bits: int, order: str) -> np.dtype:
    """An ELF section header (``Elf32_Shdr``/``Elf64_Shdr``) as a numpy record, to read or write tables whole."""
    import numpy as np

    if bits == 64:
        fields = [("name", "u4"), ("type", "u4"), ("flags", "u8"), ("addr", "u8"),
                  ("offset", "u8"), ("size", "u8"), ("link", "u4"), ("info", "u4"),
                  ("addralign", "u8"), ("entsize", "u8")]
    else:
        fields = [("name", "u4"), ("type", "u4"), ("flags", "u4"), ("addr", "u4"),
                  ("offset", "u4"), ("size", "u4"), ("link", "u4"), ("info", "u4"),
                  ("addralign", "u4"), ("entsize", "u4")]
    return np.dtype([(n, order + t) for n, t in fields])


def symbol_dtype(bits: int, order: str) -> np.dtype:
    """An ELF symbol (``Elf32_Sym``/``Elf64_Sym``) as a numpy record, to read or write tables whole."""
    import numpy as np

    if bits == 64:
        fields = [("name", "u4"), ("info", "u1"), ("other", "u1"), ("shndx", "u2"),
                  ("value", "u8"), ("size", "u8")]
    else:
        fields = [("name", "u4"), ("value", "u4"), ("size", "u4"), ("info", "u1"),
                  ("other", "u1"), ("shndx", "u2")]
    return np.dtype([(n, order + t if t != "u1" else t) for n, t in fields])


class _Reader:
    """Bounds-checked access to the raw file, turning every fault into an InputError."""

    def __init__(self, path: str, data: bytes | mmap.mmap):
        self.path = path
        self.data = data

    def fail(self, message: str) -> InputError:
        return InputError(self.path, message)

    def slice(self, offset: int, size: int, what: str) -> bytes:
        """A copy of ``size`` bytes at ``offset``: copies keep no view on the mapping, so it can close."""
        return bytes(self.view(offset, size, what))

    def view(self, offset: int, size: int, what: str) -> memoryview:
        """``size`` bytes at ``offset`` without a copy (the 20 MB string table of a big module): release
        it (``with``) before the mapping closes, even on an error."""
        self.check(offset, size, what)
        return memoryview(self.data)[offset:offset + size]

    def check(self, offset: int, size: int, what: str) -> None:
        """Refuse ``size`` bytes at ``offset`` that are not all in the file."""
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise self.fail(f"{what} lies past the end of the file "
                            f"(offset {offset:#x}, size {size:#x}, file size {len(self.data):#x})")


def _open_data(path: str) -> bytes | mmap.mmap:
    with reading(path, expected="a kernel module"), open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise InputError(path, "is empty, not an ELF kernel module")
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def open_module(path: str | os.PathLike[str], *, init_fini_arrays: bool = True) -> ModuleImage:
    """Read a kernel module or kernel ELF; raise :class:`InputError` on anything wrong.

    ``init_fini_arrays`` follows the 2024+ kernel linker, which also maps
    ``SHT_INIT_ARRAY``/``SHT_FINI_ARRAY`` sections; pass False for older kernels.
    """
    path = os.fspath(path)
    data = _open_data(path)
    try:
        with gcpause.paused():
            return _parse(path, data, init_fini_arrays)
    except BaseException as exc:
        if isinstance(data, mmap.mmap):
            data.close()
        if isinstance(exc, _CORRUPT):
            detail = str(exc) or type(exc).__name__  # MemoryError() says nothing
            raise InputError(path, f"malformed ELF{' header' if isinstance(exc, _HEADER_ERRORS) else ''}: {detail}"
                             ) from None
        raise


class _HeaderError(Exception):
    """pyelftools' refusal of an ELF header (its ``ELFError``, ``ConstructError`` or ``struct.error``), in its words."""


#: What a corrupt ELF header raises (:func:`_pyelftools_header`).
_HEADER_ERRORS = (_HeaderError,)
#: Everything parsing a corrupt file can raise besides our own InputError: the header's errors, and
#: Python's on tables whose numbers lie.  They become one InputError here, and only here.
_CORRUPT = (*_HEADER_ERRORS, ValueError, IndexError, OverflowError, MemoryError, TypeError)


def _parse(path: str, data: bytes | mmap.mmap, init_fini_arrays: bool) -> ModuleImage:
    r = _Reader(path, data)
    if data[:4] != b"\x7fELF":
        raise r.fail("not an ELF file (no \\x7fELF magic)")
    if len(data) < 52:
        raise r.fail("truncated ELF: the file is shorter than an ELF header")
    ei_class, ei_data, osabi = data[4], data[5], data[7]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise r.fail(f"unknown ELF class/data encoding ({ei_class}/{ei_data})")
    bits = 64 if ei_class == 2 else 32
    order = "<" if ei_data == 1 else ">"
    header = _elf_header(r, bits, order)
    elf_type = header["type"]
    if elf_type not in ("ET_REL", "ET_DYN", "ET_EXEC"):
        raise r.fail(f"ELF type {elf_type} is not a kernel module or kernel (expected ET_REL, ET_DYN or ET_EXEC)")
    machine = MACHINES.get(header["machine"])
    if machine is None:
        raise r.fail(f"unsupported machine {header['machine']}; "
                     "FreeBSD kernel modules for amd64, i386, arm64 and riscv are understood")
    table = _read_sections(r, header, bits, order)
    if elf_type == "ET_REL":
        offsets, size = layout.link_elf_obj(table, machine=machine, init_fini_arrays=init_fini_arrays)
        low = 0
    else:
        offsets, size, low = layout.link_elf_segments(table, _load_segments(r, header, bits, order))
        offsets = {index: addr - low for index, addr in offsets.items()}
    _check_loaded_contents(r, table, offsets)
    (functions, by_offset, name_chars), symtab = _read_functions(r, table, offsets, bits, order, elf_type, low)
    # The kernel (ET_EXEC) runs where it was linked; modules move.
    fixed_base = low if elf_type == "ET_EXEC" else None
    return ModuleImage(
        path=path, elf_type=elf_type, machine=machine, bits=bits, little_endian=order == "<",
        osabi=osabi, functions=functions, functions_by_offset=by_offset, name_chars=name_chars,
        size=size, fixed_base=fixed_base, symtab=symtab,
        _table=table, _load_offsets=offsets, _data=data, e_flags=header["flags"],
    )


#: The ELF header after ``e_ident`` (``Elf32_Ehdr``/``Elf64_Ehdr``): e_type, e_machine, e_version, e_entry,
#: e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
_EHDR = {32: "HHIIIIIHHHHHH", 64: "HHIQQQIHHHHHH"}
#: The e_type and e_machine values of kernel modules and kernels, by the names pyelftools gives them.
_ELF_TYPES = {1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN"}
_ELF_MACHINES = {3: "EM_386", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}


def _elf_header(r: _Reader, bits: int, order: str) -> dict[str, int | str]:
    """The ELF header's fields as pyelftools reads them, including extended section numbering.

    A whole header of a known type and machine, whose section count and
    name table index are in the header itself, is unpacked here: importing
    pyelftools costs 40 ms, more than reading the rest of a big module
    natively.  Anything else (a header cut short, extended numbering, a
    type or machine to be named in a refusal) is pyelftools' to read:
    :func:`_pyelftools_header`, which gives the same answer for the others
    (tests/image/test_elf_header.py).
    """
    layout = order + _EHDR[bits]
    if len(r.data) >= 16 + struct.calcsize(layout):
        (kind, machine, _, _, phoff, shoff, flags, _, phentsize, phnum, shentsize, shnum,
         shstrndx) = struct.unpack_from(layout, r.data, 16)
        if kind in _ELF_TYPES and machine in _ELF_MACHINES and (shnum or not shoff) and shstrndx != SHN_XINDEX:
            return {"type": _ELF_TYPES[kind], "machine": _ELF_MACHINES[machine], "flags": flags,
                    "shoff": shoff, "shentsize": shentsize, "phoff": phoff, "phentsize": phentsize,
                    "phnum": phnum, "shnum": shnum if shoff else 0, "shstrndx": shstrndx}
    return _pyelftools_header(r)


def _pyelftools_header(r: _Reader) -> dict[str, int | str]:
    """The ELF header parsed by pyelftools; its errors become :class:`_HeaderError` (mapped in :func:`open_module`)."""
    from elftools.common.exceptions import ELFError
    from elftools.construct import ConstructError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(r.data)
        header = elf.header
        return {
            "type": header["e_type"], "machine": header["e_machine"], "flags": header["e_flags"],
            "shoff": header["e_shoff"], "shentsize": header["e_shentsize"],
            "phoff": header["e_phoff"], "phentsize": header["e_phentsize"], "phnum": header["e_phnum"],
            "shnum": elf.num_sections(), "shstrndx": elf.get_shstrndx(),
        }
    except (ELFError, ConstructError, struct.error) as exc:
        raise _HeaderError(str(exc) or type(exc).__name__) from None


#: ``Elf32_Phdr``/``Elf64_Phdr``, and where p_vaddr and p_memsz are in each.
_PHDR = {32: ("IIIIIIII", 2, 5), 64: ("IIQQQQQQ", 3, 6)}


def _load_segments(r: _Reader, header: dict[str, int], bits: int, order: str) -> list[tuple[int, int]]:
    """``(p_vaddr, p_memsz)`` of every ``PT_LOAD`` program header."""
    if header["phoff"] == 0 or header["phnum"] == 0:
        return []
    fields, vaddr, memsz = _PHDR[bits]
    size = struct.calcsize(order + fields)
    if header["phentsize"] != size:
        raise r.fail(f"program header entry size is {header['phentsize']}, expected {size}")
    table = r.slice(header["phoff"], header["phnum"] * size, "the program header table")
    return [(p[vaddr], p[memsz]) for p in struct.iter_unpack(order + fields, table) if p[0] == PT_LOAD]


@dataclass(frozen=True)
class _SectionTable:
    """The section header table as columns (lists of ints) plus the name table text."""

    name: list[int]
    type: list[int]
    flags: list[int]
    addr: list[int]
    offset: list[int]
    size: list[int]
    link: list[int]
    info: list[int]
    addralign: list[int]
    entsize: list[int]
    #: The section name string table, Latin-1 decoded, NUL-terminated.
    names: str

    def __len__(self) -> int:
        return len(self.type)

    def section_name(self, index: int) -> str:
        start = self.name[index]
        return self.names[start:self.names.find("\0", start)]

    def first(self, kind: int, link: int | None = None) -> int | None:
        """Index of the first section of a type (and ``sh_link``), or None."""
        start = 0
        while True:
            try:
                index = self.type.index(kind, start)
            except ValueError:
                return None
            if link is None or self.link[index] == link:
                return index
            start = index + 1


#: ``Elf32_Shdr``/``Elf64_Shdr``, in :class:`_SectionTable`'s field order.
_SHDR = {32: "IIIIIIIIII", 64: "IIQQQQIIQQ"}


def _read_sections(r: _Reader, header: dict[str, int], bits: int, order: str) -> _SectionTable:
    """Read the whole section header table at once (a Rust module may have 100k)."""
    layout = order + _SHDR[bits]
    entsize = struct.calcsize(layout)
    shoff, shnum, shstrndx = header["shoff"], header["shnum"], header["shstrndx"]
    if shoff == 0 or shnum == 0:
        raise r.fail("has no section headers (a kernel module needs them)")
    if header["shentsize"] != entsize:
        raise r.fail(f"section header entry size is {header['shentsize']}, expected {entsize}")
    columns = unpack_columns(layout, r.slice(shoff, shnum * entsize, f"the section header table ({shnum} entries)"))
    if not 0 < shstrndx < shnum:
        raise r.fail(f"section name string table index {shstrndx} is out of range (0..{shnum - 1})")
    name_offsets, offsets, sizes = columns[0], columns[4], columns[5]
    # Latin-1 keeps one character per byte, so string offsets are byte offsets.
    names = r.slice(offsets[shstrndx], sizes[shstrndx], "the section name string table").decode("latin-1") + "\0"
    if max(name_offsets) >= len(names):
        bad = next(i for i, at in enumerate(name_offsets) if at >= len(names))
        raise r.fail(f"section {bad} name offset is past the end of the section name table")
    return _SectionTable(*columns, names=names)


def _check_loaded_contents(r: _Reader, table: _SectionTable, offsets: dict[int, int]) -> None:
    """Every loaded section with contents lies inside the file, as the kernel linker needs to read it.

    Readers of code, relocations and module metadata step through sections
    by ``sh_size``; a size the file cannot hold (2**63 in a 40 KB file) would
    have them loop for hours.
    """
    end, kinds, starts, sizes = len(r.data), table.type, table.offset, table.size
    bad = next((index for index in offsets if kinds[index] != SHT_NOBITS and starts[index] + sizes[index] > end), None)
    if bad is not None:
        raise r.fail(f"section {bad} ({table.section_name(bad)}) lies past the end of the file (offset "
                     f"{table.offset[bad]:#x}, size {table.size[bad]:#x}, file size {len(r.data):#x})")


#: Symbol binding (``st_info >> 4``) -> its name in records and outputs.
_BINDING_NAMES = tuple({0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"}.get(b, str(b)) for b in range(16))
#: Symbol type names, for STT_FUNC and STT_GNU_IFUNC.
_TYPE_NAMES = ("FUNC", "IFUNC")
_ALL_BITS = (1 << 64) - 1


def _read_functions(r: _Reader, table: _SectionTable, offsets: dict[int, int], bits: int, order: str,
                    elf_type: str, low: int) -> tuple[tuple[list[Function], list[Function], int], str]:
    """The functions the kernel linker lists, FUNC/IFUNC in a loaded section, any binding, in
    symbol-table and in offset order, with the characters of their names; and the symbol table's name.

    ``offsets`` holds the load offset of every loaded section.  ``low`` is the
    lowest mapped address of an ET_DYN/ET_EXEC image, which its
    ``st_value``s are relative to; ET_REL values are section offsets.
    """
    symtab = table.first(SHT_SYMTAB)
    if symtab is None and elf_type != "ET_REL":
        # The kernel linker falls back to the dynamic symbols of an ET_DYN module.
        symtab = table.first(SHT_DYNSYM)
    if symtab is None:
        raise r.fail("has no symbol table (.symtab): the module was stripped; "
                     "FBT and tracebridge need it, rebuild without stripping")
    symtab_name = table.section_name(symtab)
    entsize = 24 if bits == 64 else 16
    if table.entsize[symtab] not in (0, entsize):
        raise r.fail(f"symbol table entry size is {table.entsize[symtab]}, expected {entsize}")
    count = table.size[symtab] // entsize
    symbols = (table.offset[symtab], count * entsize, f"symbol table {symtab_name}")
    r.check(*symbols)
    link = table.link[symtab]
    if not 0 < link < len(table) or table.type[link] != SHT_STRTAB:
        raise r.fail(f"symbol table {symtab_name} has no valid string table (sh_link {link})")
    strtab_name = table.section_name(link)
    # Read as if one NUL followed the table, so that every name ends, even in a corrupt table.
    strtab = (table.offset[link], table.size[link], f"string table {strtab_name}")
    r.check(*strtab)

    # Extended section indices, needed only if a symbol has SHN_XINDEX (a table past the end matters only then).
    extra = table.first(SHT_SYMTAB_SHNDX, link=symtab)

    def extended_indices() -> bytes:
        return r.slice(table.offset[extra], count * 4, ".symtab_shndx")

    nsections = len(table)
    loaded = bytearray(nsections)
    bases = array("Q", bytes(8 * nsections))
    # A function's offset: its section's load offset plus st_value (ET_REL), else st_value - low; modulo 2**64.
    shift = None if elf_type == "ET_REL" else -low & _ALL_BITS
    for index, offset in offsets.items():
        loaded[index] = 1
        bases[index] = offset if shift is None else shift
    size = table.size[link] + 1  # with the NUL after it
    # Symbols may share a name (a hostile module points 2,000 symbols at one 1 MB name): one string per
    # distinct offset.  Names at different offsets may still overlap (each one byte further into the same
    # name), so a module whose names would take more than MAX_NAME_BYTES beyond its string table (which
    # linkers tail-merge only a little) is refused before any is made.
    limit = 2 * size + MAX_NAME_BYTES
    try:
        xindex = None if extra is None else extended_indices()
    except InputError:
        xindex = None  # refused below if a symbol needs it
    # Viewed, not copied (20 MB of librustc_driver's names), and only here: released whatever happens.
    with r.view(*symbols) as symbol_bytes, r.view(*strtab) as strtab_bytes:
        tag, found = _function_symbols(symbol_bytes, bits == 64, order == ">", xindex, bytes(loaded),
                                       bases.tobytes(), strtab_bytes, limit, table.names, table.name)
    if tag == "xindex":
        if extra is None:
            raise r.fail("symbols use extended section indices but there is no .symtab_shndx section")
        extended_indices()  # lies past the end of the file: raises, saying so
    if tag == "name":
        raise r.fail(f"symbol {found} name offset is past the end of {strtab_name}")
    if tag == "total":
        raise r.fail(f"its function names would take {found:,} bytes from a {size:,}-byte {strtab_name} "
                     "(symbols pointing into each other's names): refusing to hold them")
    return found, symtab_name


def _function_symbols(symtab: bytes | memoryview, is64: bool, big: bool, xindex: bytes | None, loaded: bytes,
                      bases: bytes, strtab: bytes | memoryview, limit: int, section_names: str,
                      name_offsets: list[int]) -> tuple[str, object]:
    """The function symbols of ``symtab`` in a loaded section: natively, or :func:`_function_symbols_py`."""
    if native.core is not None:
        return native.core.function_symbols(Function, symtab, is64, big, xindex, loaded, bases, strtab, limit,
                                            _BINDING_NAMES, _TYPE_NAMES, section_names, name_offsets)
    return _function_symbols_py(symtab, is64, big, xindex, loaded, bases, strtab, limit, section_names, name_offsets)


def _function_symbols_py(symtab: bytes | memoryview, is64: bool, big: bool, xindex: bytes | None, loaded: bytes,
                         bases: bytes, strtab: bytes | memoryview, limit: int, section_names: str,
                         name_offsets: list[int]) -> tuple[str, object]:
    """``function_symbols`` of src/native/symbol_records.h: the same answer, in Python.

    ``symtab`` is the whole symbol table, ``xindex`` its ``SHT_SYMTAB_SHNDX``
    table or None, ``loaded`` one byte per section (nonzero: mapped) and
    ``bases`` one native uint64 per section, added to ``st_value`` modulo
    2**64 to give a function's offset.  A symbol is selected if it is
    ``STT_FUNC`` or ``STT_GNU_IFUNC`` in a loaded section (an index from 1
    to the section count, a reserved one only from ``xindex``).  Answers
    ``("xindex", None)`` when a symbol has ``SHN_XINDEX`` and there is no
    ``xindex``; ``("name", i)`` when selected symbol ``i`` (the first) names
    an offset past the string table; ``("total", n)`` when the distinct names
    would take ``n`` > ``limit`` characters; else ``("ok", (functions,
    by_offset, name_chars))``: a :class:`Function` per selected symbol in
    table order, the same in offset order (ties in table order), and the
    characters of all their names (a shared name counted each time).  A name is Latin-1
    text up to the next NUL (or the table's end): one character per byte, so
    hostile names survive byte-exact, one string per distinct offset.  A
    section's name is ``section_names`` (NUL-terminated) from its
    ``name_offsets`` entry to the next NUL, one string per section.
    """
    order = ">" if big else "<"
    if is64:
        rows = ((name, info, shndx, value, size) for name, info, _, shndx, value, size
                in struct.iter_unpack(order + "IBBHQQ", symtab))
    else:
        rows = ((name, info, shndx, value, size) for name, value, size, info, _, shndx
                in struct.iter_unpack(order + "IIIBBH", symtab))
    count = len(symtab) // (24 if is64 else 16)
    if xindex is not None and len(xindex) // 4 < count:
        raise ValueError("the extended section index table is shorter than the symbol table")
    extended = None if xindex is None else struct.unpack_from(f"{order}{count}I", xindex)
    base, strtab = array("Q", bases), bytes(strtab)
    chosen = []
    for index, (name, info, shndx, value, size) in enumerate(rows):
        reserved = shndx >= SHN_LORESERVE
        if shndx == SHN_XINDEX:
            if extended is None:
                return "xindex", None
            shndx, reserved = extended[index], False
        if info & 0xF in (STT_FUNC, STT_GNU_IFUNC) and 0 < shndx < len(loaded) and not reserved and loaded[shndx]:
            chosen.append((index, name, shndx, value, size, info, (base[shndx] + value) & _ALL_BITS))
    bad = next((row[0] for row in chosen if row[1] > len(strtab)), None)
    if bad is not None:
        return "name", bad
    # Each distinct offset's name ends at the first NUL at or after it: one forward pass in offset order.
    starts, ends, end = sorted({row[1] for row in chosen}), [], -1
    for start in starts:
        if start > end:
            end = strtab.find(b"\0", start)
            end = len(strtab) if end < 0 else end
        ends.append(end)
    total = sum(ends) - sum(starts)
    if total > limit:
        return "total", total
    text = strtab.decode("latin-1")
    names = {start: text[start:end] for start, end in zip(starts, ends)}
    sections = {i: section_names[name_offsets[i]:section_names.index("\0", name_offsets[i])]
                for i in {row[2] for row in chosen}}
    functions = slot_records(Function, (
        [row[0] for row in chosen], [names[row[1]] for row in chosen], [sections[row[2]] for row in chosen],
        [row[2] for row in chosen], [row[3] for row in chosen], [row[4] for row in chosen],
        [_BINDING_NAMES[row[5] >> 4] for row in chosen],
        [_TYPE_NAMES[0 if row[5] & 0xF == STT_FUNC else 1] for row in chosen], [row[6] for row in chosen]))
    return "ok", (functions, sorted(functions, key=attrgetter("offset")), sum(len(f.name) for f in functions))
