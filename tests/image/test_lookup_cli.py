"""``tracebridge lookup``: the address forms, both formats, and the fallbacks."""

from __future__ import annotations

import json
import shutil

from fixture_paths import EXPECTED, MODULES
from addr2line_oracle import read_addr2line
from tracebridge.cli import main

MODULE = MODULES / "inl_legacy.ko"


def lookup(capsys, *args) -> tuple[int, str, str]:
    status = main(["lookup", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


def deepest(expected):
    return max(expected, key=lambda a: (len(expected[a]), -a))


def test_json_gives_the_addr2line_chain(capsys):
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    address = deepest(expected)
    status, out, err = lookup(capsys, MODULE, f"{address:x}", "--format", "json")
    assert status == 0 and err == ""
    [result] = json.loads(out)
    assert result["address"] == address
    assert [(f["function"], f["file"], f["line"]) for f in result["frames"]] == expected[address]
    assert [f["inlined"] for f in result["frames"]] == [True] * (len(expected[address]) - 1) + [False]


def test_base_and_symbol_forms_name_the_same_offset(capsys):
    status, out, _ = lookup(capsys, MODULE, "inl_rxeof+0x10", "ffffffff82a00000", "--base", "ffffffff829ffc00",
                            "--format", "json")
    assert status == 0
    first, second = json.loads(out)
    assert first["frames"][-1]["function"] == "inl_rxeof"
    assert second["address"] == 0x400


def test_text_marks_inlined_frames(capsys):
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    status, out, _ = lookup(capsys, MODULE, f"{deepest(expected):x}")
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("0x")
    assert lines[1].endswith("(inlined)") and not lines[-1].endswith("(inlined)")


def test_without_dwarf_the_symbol_frame_and_one_warning(capsys, tmp_path):
    module = tmp_path / "inl.ko"
    shutil.copy(MODULE, module)  # the stripped module alone
    status, out, err = lookup(capsys, module, "inl_rxeof+0x10", "--format", "json")
    assert status == 0
    assert json.loads(out)[0]["frames"] == [{"function": "inl_rxeof", "file": None, "line": None, "inlined": False}]
    assert len(err.splitlines()) == 1 and "no DWARF found" in err and str(module) + ".debug" in err


def test_bad_addresses_are_one_line_errors(capsys):
    for bad in ("nosuchfn+0x4", "inl_rxeof+zz", "fffffff"):
        status, _, err = lookup(capsys, MODULE, bad)
        assert status == 2 and len(err.splitlines()) == 1 and err.startswith("tracebridge: "), err


def test_a_mismatched_debug_file_is_one_line_naming_both(capsys):
    status, _, err = lookup(capsys, MODULE, "0", "--debug", MODULES / "inl_v0.ko.debug")
    assert status == 2 and len(err.splitlines()) == 1
    assert "inl_v0.ko.debug" in err and "inl_legacy.ko" in err
