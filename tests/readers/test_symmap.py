"""`tracebridge symmap` against addresses computed from readelf's text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import readelf_text
from fixture_paths import EXPECTED, MODULES
from pmcstat_text import callchain, entry, map_in
from tracebridge.cli import main

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
KERNEL = DATA / "kernel"
BASE = 0xFFFFFFFF82A1C000
MODULE = MODULES / "rem_legacy_fp.ko"


def expected(name: str = "rem_legacy_fp", base: int = BASE) -> dict[int, tuple[int, set[str]]]:
    """address -> (size, names), from readelf -S/-s text and the kernel linker's rule."""
    secs = readelf_text.sections(EXPECTED / f"{name}.readelf-S.txt")
    placed, _ = readelf_text.kernel_layout(secs)
    out: dict[int, tuple[int, set[str]]] = {}
    for sym in readelf_text.symbols(EXPECTED / f"{name}.readelf-s.txt"):
        if sym.type == "FUNC" and sym.ndx.isdigit() and int(sym.ndx) in placed:
            address = base + placed[int(sym.ndx)] + sym.value
            size, names = out.get(address, (0, set()))
            out[address] = (max(size, sym.size), names | {sym.name})
    return out


def rustfilt(name: str = "rem_legacy_fp") -> dict[str, str]:
    return dict(line.split("\t") for line in (EXPECTED / f"{name}.rustfilt.txt").read_text().splitlines())


def run(capsys, *argv) -> str:
    assert main(["symmap", *map(str, argv)]) == 0
    return capsys.readouterr().out


def map_lines(text: str) -> list[tuple[int, int, str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("#"):
            start, end, name = line.split(" ", 2)
            rows.append((int(start, 16), int(end, 16), name))
    return rows


def test_map_matches_readelf_layout(capsys):
    rows = map_lines(run(capsys, MODULE, "--base", f"rem_legacy_fp={BASE:x}"))
    want = expected()
    demangled = rustfilt()
    assert [r[0] for r in rows] == sorted(want)
    for start, end, name in rows:
        size, names = want[start]
        assert end - start == size
        assert name in {demangled.get(n, n) for n in names}


@pytest.mark.parametrize("source", ["kldstat", "pmclog"])
def test_addresses_from_kldstat_or_pmclog(tmp_path, capsys, source):
    if source == "kldstat":
        path = tmp_path / "kldstat.txt"
        path.write_text("Id Refs Address                Size Name\n"
                        " 1   40 0xffffffff80200000  1f3c6c0 kernel (/boot/kernel/kernel)\n"
                        f" 5    1 {BASE:#x}     2d90 rem_legacy_fp.ko (/boot/modules/rem_legacy_fp.ko)\n")
    else:
        path = tmp_path / "pmc.txt"
        path.write_text(entry("initlog", '0x9030000 "INTEL_SKYLAKE"') + map_in(-1, 0xFFFFFFFF80200000, "kernel")
                        + map_in(-1, BASE, "rem_legacy_fp.ko") + callchain(0, 0x20000, 0, [BASE + 0x10]))
    rows = map_lines(run(capsys, MODULE, f"--{source}", path))
    assert [r[0] for r in rows] == sorted(expected())


def test_base_wins_over_kldstat(tmp_path, capsys):
    path = tmp_path / "kldstat.txt"
    path.write_text("Id Refs Address                Size Name\n"
                    " 5    1 0xffffffff83000000     2d90 rem_legacy_fp.ko\n")
    rows = map_lines(run(capsys, MODULE, "--kldstat", path, "--base", f"rem_legacy_fp.ko={BASE:x}"))
    assert rows[0][0] == min(expected())


def test_perf_map_is_start_size_name(capsys):
    lines = run(capsys, MODULE, "--base", f"rem_legacy_fp={BASE:x}", "--format", "perf").splitlines()
    want = expected()
    for line in lines:
        start, size, _ = line.split(" ", 2)
        assert want[int(start, 16)][0] == int(size, 16)
    assert len(lines) == len(want)


def test_json_has_mangled_module_offset(capsys):
    rows = json.loads(run(capsys, MODULE, "--base", f"rem_legacy_fp={BASE:x}", "--format", "json"))
    want = expected()
    for row in rows:
        assert row["symbol"] in want[row["start"]][1]
        assert row["module"] == "rem_legacy_fp.ko" and row["offset"] == row["start"] - BASE
    aliased = [row for row in rows if row["note"].startswith("also named")]
    assert len(aliased) == sum(1 for _, names in want.values() if len(names) > 1)


def test_kernel_zero_size_symbol_is_stretched_and_said(capsys):
    text = run(capsys, "--kernel", KERNEL)
    kernel = {s.name: s for s in readelf_text.symbols(DATA / "kernel.readelf-s.txt") if s.type == "FUNC"}
    following = min(s.value for s in kernel.values() if s.value > kernel["doreti"].value)
    assert kernel["doreti"].size == 0
    assert (kernel["doreti"].value, following, "doreti") in map_lines(text)
    assert "# doreti: size 0 in the symbol table: stretched to the next symbol" in text


def test_no_address_is_one_line_exit_2(capsys):
    assert main(["symmap", str(MODULE)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no load address for rem_legacy_fp.ko" in err


def test_a_module_missing_from_the_kldstat_file_says_so(tmp_path, capsys):
    listing = tmp_path / "kldstat.txt"
    listing.write_text("Id Refs Address                Size Name\n"
                       " 1   38 0xffffffff80200000  1f3e2c8 kernel (/boot/kernel/kernel)\n")
    assert main(["symmap", str(MODULE), "--kldstat", str(listing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no load address for rem_legacy_fp.ko (not listed in {listing})" in err
