"""`tracebridge symbols` against readelf, nm and rustfilt on the committed modules."""

from __future__ import annotations

import json

import pytest

import readelf_text
from fixture_paths import EXPECTED, MODULES
from tracebridge.cli import main

LOADED_TYPES = ("FUNC", "IFUNC")


def run_json(capsys, *args) -> list[dict]:
    assert main(["symbols", "--format", "json", *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def expected_functions(name: str) -> dict[str, readelf_text.ReadelfSymbol]:
    secs = {s.index: s for s in readelf_text.sections(EXPECTED / f"{name}.readelf-S.txt")}
    out = {}
    for sym in readelf_text.symbols(EXPECTED / f"{name}.readelf-s.txt"):
        if sym.type not in LOADED_TYPES or not sym.ndx.isdigit():
            continue
        sec = secs[int(sym.ndx)]
        if "A" in sec.flags and sec.size:
            out[sym.name] = sym
    return out


def test_every_function_listed_with_readelf_size_and_binding(capsys, module_name):
    rows = run_json(capsys, MODULES / f"{module_name}.ko")
    expected = expected_functions(module_name)
    assert {r["name"] for r in rows} == set(expected)
    assert len(rows) == len(expected)
    for row in rows:
        sym = expected[row["name"]]
        assert row["size"] == sym.size
        assert row["binding"] == sym.bind


def test_offsets_follow_the_kernel_linker(capsys, module_name):
    """Offsets from a layout computed on readelf's text, not on tracebridge's reading."""
    rows = {r["name"]: r for r in run_json(capsys, MODULES / f"{module_name}.ko", "--base", "ffffffff82a00000")}
    secs = readelf_text.sections(EXPECTED / f"{module_name}.readelf-S.txt")
    header = (EXPECTED / f"{module_name}.readelf-S.txt").read_text()
    is_rel = all(s.addr == 0 for s in secs)
    placed, _ = readelf_text.kernel_layout(secs, "i386" if "i386" in module_name else "amd64")
    by_index = {s.index: s for s in secs}
    for name, sym in expected_functions(module_name).items():
        if is_rel:
            want = placed[int(sym.ndx)] + sym.value
        else:
            want = sym.value - min(s.addr for s in secs if "A" in s.flags and s.size) // 4096 * 4096
        assert rows[name]["offset"] == want, (name, by_index[int(sym.ndx)].name, header[:0])
        assert rows[name]["address"] == 0xFFFFFFFF82A00000 + want
        assert rows[name]["section"] == by_index[int(sym.ndx)].name


def test_per_function_sections_have_zero_values_and_merged_do_not(capsys):
    split = run_json(capsys, MODULES / "rem_legacy_fp.ko")
    merged = run_json(capsys, MODULES / "rem_legacy_fp_merged.ko")
    rust_split = [r for r in split if r["scheme"].startswith("rust")]
    assert rust_split and all(r["section"].startswith(".text.") for r in rust_split)
    assert all(r["section"] == ".text" for r in merged)
    # Distinct sections never overlap; only aliases (LLVM merged identical
    # functions into one section) share an offset.
    by_offset: dict[int, set[str]] = {}
    for r in split:
        by_offset.setdefault(r["offset"], set()).add(r["section"])
    assert all(len(sections) == 1 for sections in by_offset.values())
    assert {r["name"] for r in split} == {r["name"] for r in merged}


@pytest.mark.parametrize("hash_form", [False, True])
def test_names_identical_to_rustfilt(capsys, module_name, hash_form):
    suffix = "rustfilt-hash" if hash_form else "rustfilt"
    lines = (EXPECTED / f"{module_name}.{suffix}.txt").read_text().splitlines()
    expected = dict(line.split("\t", 1) for line in lines if line)
    rows = run_json(capsys, MODULES / f"{module_name}.ko")
    from tracebridge.image.demangle import demangle_symbol

    for row in rows:
        if row["name"] in expected:
            got = demangle_symbol(row["name"]).full if hash_form else row["demangled"]
            assert got == expected[row["name"]], row["name"]
    assert set(expected) <= {r["name"] for r in rows}


def test_crate_and_scheme(capsys):
    rows = run_json(capsys, MODULES / "rem_v0_fp.ko")
    schemes = {r["scheme"] for r in rows}
    assert schemes == {"rust-v0", "c"}
    assert {r["crate"] for r in rows if r["scheme"] == "rust-v0"} >= {"rem"}
    assert all(r["crate"] is None for r in rows if r["scheme"] == "c")


def test_filters_and_sorting(capsys):
    rows = run_json(capsys, MODULES / "rem_legacy_fp.ko", "--rust-only", "--match", "*rx_frame*", "--sort", "size")
    assert rows and all("rx_frame" in r["demangled"] for r in rows)
    assert [r["size"] for r in rows] == sorted((r["size"] for r in rows), reverse=True)
    # A selection that keeps nothing is an error (exit 2), not an empty listing.
    assert main(["symbols", "--format", "json", str(MODULES / "rem_legacy_fp.ko"), "--crate", "nosuchcrate"]) == 2
    assert "--crate nosuchcrate selects no function of rem_legacy_fp.ko" in capsys.readouterr().err


def test_csv_and_table(capsys, tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    assert main(["symbols", str(MODULES / "rem_legacy_fp.ko"), "--format", "csv", "-o", str(out)]) == 0
    header = out.read_text().splitlines()[0]
    assert header == "name,demangled,scheme,section,offset,address,size,binding,crate,fbt_entry,fbt_returns,fbt_reason"
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no name is folded
    assert main(["symbols", str(MODULES / "rem_legacy_fp.ko")]) == 0
    assert "rx_frame" in capsys.readouterr().out
