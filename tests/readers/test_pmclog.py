"""Raw hwpmc logs (pmcstat -O) give the same stacks as their `pmcstat -R -o` text.

The binary records are packed here from the layouts of sys/sys/pmclog.h
(16-byte headers: magic/type/length word, spare word, 64-bit TSC).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import real_pcs
from fixture_paths import MODULES
from pmclog_binary import padded, record
from pmcstat_text import callchain, entry, map_in, map_out
from tracebridge.cli import main

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
BASE = 0xFFFFFFFF82A1C000
KERNEL_PCS = [0xFFFFFFFF8020012A, 0xFFFFFFFF80200150, 0xFFFFFFFF80200195]
# Module PCs a real run could log (tests/real_pcs.py): leaves on instruction starts, callers after calls.
_CODE = real_pcs.functions("rem_legacy_fp")
LEAF_1, CALLER_1 = BASE + _CODE[0x820].leaf(0x830), BASE + _CODE[0xA00].caller(0xA50)
LEAF_2, CALLER_2 = BASE + _CODE[0xCB0].leaf(0xCF8), BASE + _CODE[0xD20].caller(0xD70)


def binary_log(order: str = "<") -> bytes:
    def pack(fmt: str, *values) -> bytes:
        return struct.pack(order + fmt, *values)

    chains = [(0, 1 << 16, [LEAF_1, CALLER_1, *KERNEL_PCS]),
              (0, 0, [LEAF_2, CALLER_2, KERNEL_PCS[2]]),
              (1234, 1 << 16 | 1, [0x4007F3, 0x400A10])]
    out = record(3, pack("IIQqq", 0x09030000, 0x8C, 3_000_000_000, 0, 0) + bytes(64), order)
    out += record(17, pack("IIII", 0x20000, 0x1234, 0x14010, 0) + padded(b"cpu_clk_unhalted.thread_p"), order)
    out += record(14, pack("iIQ", -1, 0, 0xFFFFFFFF80200000) + padded(b"/boot/kernel/kernel"), order)
    out += record(14, pack("iIQ", -1, 0, BASE) + padded(b"/boot/modules/rem_legacy_fp.ko"), order)
    out += record(18, pack("IIII", 100123, 12, 0, 0) + bytes(20), order)   # thr-create: skipped
    for pid, cpuflags, pcs in chains:
        out += record(16, pack("iIII", pid, 100123, 0x20000, cpuflags) + pack(f"{len(pcs)}Q", *pcs), order)
    out += record(15, pack("iIQQ", -1, 0, BASE, BASE + 0x3000), order)
    out += record(16, pack("iIII", 0, 100123, 0x20000, 0) + pack("Q", LEAF_1), order)
    return out + record(1, b"", order)


def text_log() -> str:
    return "".join([
        entry("initlog", '0x9030000 "INTEL_SKYLAKE"'),
        entry("allocate", '0x20000 "cpu_clk_unhalted.thread_p" 0x14010'),
        map_in(-1, 0xFFFFFFFF80200000, "/boot/kernel/kernel"),
        map_in(-1, BASE, "/boot/modules/rem_legacy_fp.ko"),
        callchain(0, 0x20000, 1, [LEAF_1, CALLER_1, *KERNEL_PCS]),
        callchain(0, 0x20000, 0, [LEAF_2, CALLER_2, KERNEL_PCS[2]]),
        callchain(1234, 0x20000, 1, [0x4007F3, 0x400A10], user=True),
        map_out(-1, BASE, BASE + 0x3000),
        callchain(0, 0x20000, 0, [LEAF_1]),
        entry("closelog"),
    ])


def resolve(path: Path, out: Path) -> list[str]:
    assert main(["pmc", "resolve", str(path), "-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel",
                 str(DATA / "kernel"), "--no-demangle", "-o", str(out)]) == 0
    return out.read_text().splitlines()


@pytest.mark.parametrize("order", ["<", ">"])
def test_binary_log_folds_like_its_text(tmp_path, order):
    binary = tmp_path / "pmc.log"
    binary.write_bytes(binary_log(order))
    text = tmp_path / "pmc.txt"
    text.write_text(text_log())
    from_binary = resolve(binary, tmp_path / "a.folded")
    assert from_binary == resolve(text, tmp_path / "b.folded")
    assert any("_ZN3rem2em2rx5rxeof" in line and line.startswith("fork_exit;") for line in from_binary)


def test_symmap_takes_addresses_from_a_binary_log(tmp_path, capsys):
    binary = tmp_path / "pmc.log"
    binary.write_bytes(binary_log())
    assert main(["symmap", str(MODULES / "rem_legacy_fp.ko"), "--pmclog", str(binary), "-f", "json"]) == 0
    assert '"module": "rem_legacy_fp.ko", "offset": 0' in capsys.readouterr().out


def test_cut_short_binary_log(tmp_path, capsys):
    binary = tmp_path / "pmc.log"
    data = binary_log()
    binary.write_bytes(data[:-30])
    assert main(["pmc", "resolve", str(binary)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tracebridge: {binary}:byte ") and "cut short" in err and err.count("\n") == 1


def test_the_text_log_fits_its_module(tmp_path, capsys):
    """Its module PCs are real ones: joined to the module, no consistency warning, every check passes."""
    log = tmp_path / "pmc.txt"
    log.write_text(text_log())
    assert main(["fold", str(log), "--module", str(MODULES / "rem_legacy_fp.ko"), "--module", str(DATA / "kernel"),
                 "--strict", "-v", "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "does not fit" not in err and "2 of 2 caller frames after a call" in err, err
