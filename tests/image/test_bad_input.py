"""Bad modules give one clear line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import struct

import pytest

from fixture_paths import MODULES
from tracebridge.cli import main

GOOD = MODULES / "rem_legacy_fp.ko"


def run(capsys, path) -> tuple[int, str]:
    status = main(["symbols", "--format", "json", str(path)])
    captured = capsys.readouterr()
    return status, captured.err


def assert_one_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tracebridge: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_not_elf(capsys, tmp_path):
    path = tmp_path / "readme.ko"
    path.write_text("hello, this is text\n")
    status, err = run(capsys, path)
    assert status == 2
    assert_one_line(err, str(path), "not an ELF")


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.ko"
    path.write_bytes(b"")
    status, err = run(capsys, path)
    assert status == 2
    assert_one_line(err, "empty")


def test_directory(capsys, tmp_path):
    status, err = run(capsys, tmp_path)
    assert status == 2
    assert_one_line(err, "directory")


def test_missing(capsys, tmp_path):
    status, err = run(capsys, tmp_path / "nope.ko")
    assert status == 2
    assert_one_line(err, "no such file")


def test_stripped_module(capsys):
    status, err = run(capsys, MODULES / "rem_stripped.ko")
    assert status == 2
    assert_one_line(err, "rem_stripped.ko", "no symbol table", "stripped")


@pytest.mark.parametrize("keep", [16, 52, 64, 200, 0x5000])
def test_truncated(capsys, tmp_path, keep):
    path = tmp_path / "cut.ko"
    path.write_bytes(GOOD.read_bytes()[:keep])
    status, err = run(capsys, path)
    assert status == 2
    assert_one_line(err, str(path))


def test_unsupported_machine(capsys, tmp_path):
    data = bytearray(GOOD.read_bytes())
    struct.pack_into("<H", data, 18, 21)  # EM_PPC64
    path = tmp_path / "ppc.ko"
    path.write_bytes(bytes(data))
    status, err = run(capsys, path)
    assert status == 2
    assert_one_line(err, "unsupported machine")


def test_huge_section_size_in_small_file(capsys, tmp_path):
    """A symbol table claiming 4 GB in a small file is refused, not read."""
    from tracebridge.image.elf import open_module

    image = open_module(GOOD)
    symtab = next(s for s in image.sections if s.name == ".symtab")
    image.close()
    data = bytearray(GOOD.read_bytes())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    struct.pack_into("<Q", data, shoff + symtab.index * 64 + 32, 0xFFFFFFFF)
    path = tmp_path / "huge.ko"
    path.write_bytes(bytes(data))
    status, err = run(capsys, path)
    assert status == 2
    assert_one_line(err, "past the end of the file")


def test_output_never_overwrites_the_input(capsys, tmp_path):
    module = tmp_path / "m.ko"
    shutil.copy(GOOD, module)
    before = module.read_bytes()
    status = main(["symbols", str(module), "-o", str(module)])
    err = capsys.readouterr().err
    assert status == 2
    assert_one_line(err, "refusing to overwrite an input")
    assert module.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.ko"]
