"""The ELF header as :mod:`tracebridge.image.elf` reads it: by itself when ordinary, by pyelftools otherwise.

Importing pyelftools costs more than reading a big module natively, so an
ordinary header (known type and machine, no extended numbering, whole) is
unpacked with :mod:`struct`.  Every committed module, and hypothesis' edits
of their headers (type, machine, section count, name table index, offsets,
a cut anywhere), must read the same both ways: the same fields, or the same
refusal.  Reading a module loads neither pyelftools nor numpy.
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixture_paths import CROSS, EDGE, MODULES
from tracebridge.image import elf

ROOT = Path(__file__).resolve().parents[2]
ALL_MODULES = sorted([*MODULES.glob("*.ko"), *EDGE.glob("*.ko"), *CROSS.glob("*.ko")], key=lambda p: p.name)
#: One module of each class and byte order (the big-endian one is made from a little-endian copy).
HEADS = {"ELF64": (MODULES / "rem_legacy_fp.ko").read_bytes()[:64], "ELF32": (MODULES / "rem_i386.ko").read_bytes()[:52]}


def reader(data: bytes) -> elf._Reader:
    """A reader of ``data`` as open_module makes one: over a mapping (pyelftools reads it as a stream)."""
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        return elf._Reader("m.ko", mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def shape(data: bytes) -> tuple[int, str]:
    return (64 if data[4] == 2 else 32), ("<" if data[5] == 1 else ">")


def both(data: bytes):
    """``_elf_header`` and pyelftools' reading of ``data``: each a dict of fields or the refusal's text."""
    def answer(read):
        try:
            return read()
        except elf._HeaderError as exc:
            return f"refused: {exc}"
    return answer(lambda: elf._elf_header(reader(data), *shape(data))), answer(lambda: elf._pyelftools_header(reader(data)))


def no_pyelftools(monkeypatch):
    def refuse(r):
        raise AssertionError("pyelftools was asked to read an ordinary header")
    monkeypatch.setattr(elf, "_pyelftools_header", refuse)


@pytest.mark.parametrize("path", ALL_MODULES, ids=lambda p: p.name)
def test_every_module_header_reads_as_pyelftools_reads_it(monkeypatch, path):
    data = path.read_bytes()
    expected = elf._pyelftools_header(reader(data))
    no_pyelftools(monkeypatch)
    assert elf._elf_header(reader(data), *shape(data)) == expected
    if path.stem != "rem_stripped":  # refused later, for its missing symbol table
        assert elf.open_module(path).functions


@pytest.mark.parametrize("name", sorted(HEADS))
def test_a_header_alone_is_whole(monkeypatch, name):
    """A file as long as its header (no more) has a whole header: read without pyelftools."""
    data = HEADS[name]
    expected = elf._pyelftools_header(reader(data))
    no_pyelftools(monkeypatch)
    assert elf._elf_header(reader(data), *shape(data)) == expected


#: Where each edited field lies after e_ident, per class: (offset, struct format).
FIELDS = {64: {"type": (16, "H"), "machine": (18, "H"), "phoff": (32, "Q"), "shoff": (40, "Q"), "flags": (48, "I"),
               "phentsize": (54, "H"), "phnum": (56, "H"), "shentsize": (58, "H"), "shnum": (60, "H"),
               "shstrndx": (62, "H")},
          32: {"type": (16, "H"), "machine": (18, "H"), "phoff": (28, "I"), "shoff": (32, "I"), "flags": (36, "I"),
               "phentsize": (42, "H"), "phnum": (44, "H"), "shentsize": (46, "H"), "shnum": (48, "H"),
               "shstrndx": (50, "H")}}
VALUES = {"type": st.sampled_from([0, 1, 2, 3, 4, 0xFE00, 0xFFFF]),
          "machine": st.sampled_from([0, 3, 8, 21, 40, 62, 183, 243, 0xFFFF]),
          "shnum": st.sampled_from([0, 1, 5, 0xFF00]), "shstrndx": st.sampled_from([0, 1, 4, 0xFF00, 0xFFFF])}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(HEADS)), st.booleans(), st.data())
def test_edited_headers_read_as_pyelftools_reads_them(name, big, data):
    head = bytearray(HEADS[name])
    bits, order = shape(head)
    if big:  # the same fields, big-endian
        head[5] = 2
        for offset, fmt in FIELDS[bits].values():
            value, = struct.unpack_from("<" + fmt, head, offset)
            struct.pack_into(">" + fmt, head, offset, value)
        order = ">"
    for field in data.draw(st.sets(st.sampled_from(sorted(FIELDS[bits])))):
        offset, fmt = FIELDS[bits][field]
        value = data.draw(VALUES.get(field, st.integers(0, 2 ** (8 * struct.calcsize(fmt)) - 1) | st.integers(0, 200)))
        struct.pack_into(order + fmt, head, offset, value)
    # A section header table in the file, or cut short (extended numbering reads section 0 there).
    shoff = data.draw(st.sampled_from([None, len(head)]))
    if shoff is not None:
        struct.pack_into(order + FIELDS[bits]["shoff"][1], head, FIELDS[bits]["shoff"][0], shoff)
        head += data.draw(st.binary(min_size=0, max_size=80))
    head = head[:data.draw(st.integers(16, len(head)))]
    ours, theirs = both(bytes(head))
    assert ours == theirs


@pytest.mark.parametrize("no_native", ["", "1"])
def test_reading_a_module_loads_neither_pyelftools_nor_numpy(no_native):
    code = ("import sys; from tracebridge.image.elf import open_module\n"
            f"open_module({str(MODULES / 'rem_legacy_fp.ko')!r}).functions_by_offset\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'elftools'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "TRACEBRIDGE_NO_NATIVE": no_native})
    assert out.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", sorted(HEADS))
def test_no_section_header_table_counts_no_sections(monkeypatch, name):
    """``e_shoff`` 0 with a nonzero ``e_shnum``: pyelftools counts no sections, and so does the reader."""
    head = bytearray(HEADS[name])
    bits, order = shape(head)
    struct.pack_into(order + FIELDS[bits]["shoff"][1], head, FIELDS[bits]["shoff"][0], 0)
    assert struct.unpack_from(order + "H", head, FIELDS[bits]["shnum"][0])[0] > 0
    expected = elf._pyelftools_header(reader(bytes(head)))
    no_pyelftools(monkeypatch)
    assert elf._elf_header(reader(bytes(head)), *shape(head)) == expected and expected["shnum"] == 0


def test_pyelftools_refusals_keep_its_words(monkeypatch, tmp_path):
    """A header pyelftools refuses is refused in its words; an exception without any, by its name."""
    path = tmp_path / "cut.ko"
    path.write_bytes(HEADS["ELF64"][:60])  # an ELF64 header needs 64 bytes
    with pytest.raises(elf.InputError) as err:
        elf.open_module(path)
    assert str(err.value) == f"{path}: malformed ELF header: expected 2, found 0"
    from elftools.common.exceptions import ELFError
    from elftools.elf import elffile

    def wordless(stream):
        raise ELFError()

    monkeypatch.setattr(elffile, "ELFFile", wordless)
    with pytest.raises(elf.InputError) as err:
        elf.open_module(path)
    assert str(err.value) == f"{path}: malformed ELF header: ELFError"
