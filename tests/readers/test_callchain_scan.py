"""The `pmcstat -o` callchain scanner (readers/callchain_scan.py, src/native/callchain_scan.h): native and pure
Python alike, and both as the line-by-line reader (readers/pmcstat.py) reads the same log, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_pmclog
from fixture_paths import MODULES
from pmcstat_text import callchain, entry, map_in, map_out
from scanner_twins import assert_same_scan, id_bytes
from tracebridge.cli import main
from tracebridge.readers import callchain_scan, pmcstat
from tracebridge.readers.callchain_scan import END, FULL, OTHER, scan_callchains
from tracebridge.support import native

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KERNEL = ROOT / "tests" / "data" / "pmcstat" / "kernel"
BASE = test_pmclog.BASE


def logs() -> dict[str, bytes]:
    """Every committed record log, and the raw logs and -o text the reader's tests make."""
    found = {path.name: path.read_bytes() for path in sorted(EXAMPLES.glob("*.pmc.txt"))}
    found.update({"text_log": test_pmclog.text_log().encode(), "binary_log_le": test_pmclog.binary_log("<"),
                  "binary_log_be": test_pmclog.binary_log(">")})
    return found


LOGS = logs()
COMMANDS = {
    "fold": ["fold", "--module", str(EXAMPLES / "if_rem.ko"), "--module", str(MODULES / "rem_legacy_fp.ko"),
             "--module", str(KERNEL), "-v"],
    "fold-pprof": ["fold", "--module", str(EXAMPLES / "if_rem.ko"), "--format", "pprof"],  # labels, offsets
    "resolve": ["pmc", "resolve", "-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel", str(KERNEL)],
    "resolve-pmc-name": ["pmc", "resolve", "--pmc", "cpu_clk_unhalted.thread_p", "--include-offset"],
    "resolve-pmc-id": ["pmc", "resolve", "--pmc", "0x10000"],
}


def no_scan(block, pos, line, selected, batched, chunk):
    """A scanner that takes nothing: every line goes through the line-by-line reader."""
    return pos, line, OTHER, 0, b"", b""


def run(tmp_path: Path, capsys, data: bytes, argv: list[str]) -> tuple[int, bytes, str]:
    """Status, output file and standard error of the command on ``data``, in this process."""
    capture = tmp_path / "capture.log"
    capture.write_bytes(data)
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
    capsys.readouterr()
    status = main([*argv, str(capture), "-o", str(out)])
    return status, out.read_bytes() if out.exists() else b"", capsys.readouterr().err


def three_ways(tmp_path: Path, capsys, monkeypatch, data: bytes, argv: list[str]) -> tuple[int, bytes, str]:
    """The command's result with the native scan, the pure-Python scan and no scan, which must all agree."""
    ours = run(tmp_path, capsys, data, argv)
    with monkeypatch.context() as patch:
        patch.setattr(native, "core", None)
        assert run(tmp_path, capsys, data, argv) == ours
        patch.setattr(pmcstat, "callchain_scanner", lambda: no_scan)
        assert run(tmp_path, capsys, data, argv) == ours
    return ours


def test_logs_are_found():
    assert "if_rem.pmc.txt" in LOGS and len(LOGS) >= 4


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("log", sorted(LOGS))
def test_native_pure_python_and_line_reader_agree(native_core, tmp_path, capsys, monkeypatch, log, command):
    status, out, _ = three_ways(tmp_path, capsys, monkeypatch, LOGS[log], COMMANDS[command])
    if command == "resolve" or (command == "fold" and "binary" not in log):  # fold refuses raw logs
        assert status == 0 and out


@pytest.mark.parametrize("log", sorted(LOGS))
def test_small_blocks_and_batches_read_alike(native_core, tmp_path, capsys, monkeypatch, log):
    """Blocks of 40 bytes cut callchains apart and batches of 3 PCs flush between them: nothing changes."""
    whole = run(tmp_path, capsys, LOGS[log], COMMANDS["fold"])
    monkeypatch.setattr(pmcstat, "BLOCK", 40)
    monkeypatch.setattr(pmcstat, "CHUNK", 3)
    assert three_ways(tmp_path, capsys, monkeypatch, LOGS[log], COMMANDS["fold"]) == whole


CHAIN = callchain(0, 0x20000, 1, [BASE + 0x830, 0xFFFFFFFF8020012A]).encode()


@pytest.fixture(params=["native", "pure"])
def scan(request):
    """Each scanner in turn."""
    return request.getfixturevalue("native_core").callchain_scan if request.param == "native" else scan_callchains


def test_scan_fields(scan):
    """The kept callchains' PCs and fields, where the scan stops, and the lines it counts."""
    block = b"\n \t\r\x0b\x0c\n" + CHAIN + callchain(-1, 0xABC, 3, [0x1F], user=True).encode() + b"map-in x\n"
    pos, line, reason, records, pcs, chains = scan(block, 0, 10, None, 0, 1 << 20)
    assert (block[pos:], line, reason, records) == (b"map-in x\n", 17, OTHER, 2)
    assert list(memoryview(pcs).cast("Q")) == [BASE + 0x830, 0xFFFFFFFF8020012A, 0x1F]
    assert list(memoryview(chains).cast("q")) == [2, 14, 0, 1, 0, 1, 17, -1, 3, 1]


@pytest.mark.parametrize(("block", "reason"), [
    (CHAIN[:-1], END),                              # the last PC line is not whole
    (CHAIN[:20], END),                              # nor the header
    (CHAIN.replace(b" s\n", b" s \n"), OTHER),      # pmcstat prints no trailing blank
    (CHAIN.replace(b"0x20000", b"0x20000" + b"0" * 12), OTHER),   # 17 hex digits
    (CHAIN.replace(b"...       0xf", b"...      0xf"), OTHER),
    (CHAIN.replace(b" 2 s", b" 4097 s"), OTHER),    # more PCs than hwpmc records
    (CHAIN.replace(b" 2 s", b" 3 s"), END),         # a PC line missing at the block's end
    (CHAIN.replace(b" 2 s", b" 3 s") + b"map-out x\n", OTHER),
    (b"1234 " + CHAIN, OTHER),                      # a timestamp: the line reader's
    (CHAIN.replace(b"\n", b"\r\n"), OTHER),
])
def test_scan_stops(scan, block, reason):
    pos, line, got, records, pcs, chains = scan(block, 0, 0, None, 0, 1 << 20)
    assert (pos, line, got, records, pcs, chains) == (0, 0, reason, 0, b"", b"")


def test_scan_keeps_the_selected_pmcs_and_stops_when_the_batch_is_full(scan):
    other = CHAIN.replace(b"0x20000", b"0x30000")
    selected = id_bytes(0x20000)
    _, line, reason, records, pcs, chains = scan(other + CHAIN, 0, 0, selected, 0, 1 << 20)
    assert (line, reason, records, len(pcs), len(chains)) == (6, END, 2, 16, 40)
    pos, line, reason, records, pcs, _ = scan(CHAIN + other + CHAIN, 0, 0, selected, 0, 2)
    assert (pos, line, reason, records, len(pcs)) == (2 * len(CHAIN), 6, FULL, 2, 16)


def test_native_scan_checks_its_arguments(native_core):
    with pytest.raises(ValueError):
        native_core.callchain_scan(CHAIN, len(CHAIN) + 1, 0, None, 0, 1)
    with pytest.raises(ValueError):
        native_core.callchain_scan(CHAIN, 0, 0, b"\0" * 7, 0, 1)


@pytest.mark.parametrize("log", sorted(LOGS))
def test_native_and_pure_python_scans_agree_on_every_log(native_core, log):
    selected = id_bytes(0x10000, 0x20000)
    for chunk in (1, 7, 1 << 20):
        assert_same_scan(native_core, LOGS[log], None, chunk)
        assert_same_scan(native_core, LOGS[log], selected, chunk)


# -- malformed logs: the same error, from the same line, whichever path reads them ---------------------

HEAD = entry("initlog", '0x9030000 "INTEL_SKYLAKE"') + entry("allocate", '0x20000 "cpu_clk_unhalted" 0x14010')
GOOD = callchain(0, 0x20000, 1, [BASE + 0x830, 0xFFFFFFFF8020012A])
MALFORMED = {
    "pc-outside-callchain": GOOD + entry("...", "0xffffffff82a1c830"),
    "bad-pc": GOOD + "callchain 0 0x20000 1 2 s\n...       0xffffffff82a1c830\n...       0xzz\n",
    "pc-too-big": GOOD + "callchain 0 0x20000 1 1 s\n...       0x1ffffffff82a1c830\n",
    "truncated-at-end": GOOD + "callchain 0 0x20000 1 3 s\n...       0xffffffff82a1c830\n",
    "record-inside-callchain": "callchain 0 0x20000 1 2 s\n...       0xffffffff82a1c830\n" + GOOD,
    "too-many-pcs": GOOD + "callchain 0 0x20000 1 5000 s\n",
    "npc-not-a-number": GOOD + "callchain 0 0x20000 1 x s\n",
    "bad-mode": GOOD + "callchain 0 0x20000 1 1 k\n...       0x1\n",
    "negative-npc": GOOD + "callchain 0 0x20000 1 -1 s\n",
    "bad-pc-then-bad-record": GOOD + "callchain 0 0x20000 1 1 s\n...       0xqq\nmap-out 1\n",
    "graph-line": "100.0%  [3] foo\n",
    "garbage": GOOD + "%%%\n",
}
LENIENT = {
    "timestamps": "12 " + GOOD.replace("...", "13 ..."),
    "crlf": GOOD.replace("\n", "\r\n") + GOOD,
    "tabs-and-blanks": "\n  \n\x0b\n\x0c\n\r\n" + GOOD.replace("callchain ", "callchain\t") + "\t\n" + GOOD,
    "short-pcs": GOOD + "callchain 5 0x20000 0 2 s\n...       0x1F\n...       0xabc\n",
    "upper-case-0x": GOOD + "callchain 5 0X20000 0 1 s\n...       0X1F\n",
    "pc-long-zeros": GOOD + "callchain 0 0x20000 1 1 s\n...       0x0000ffffffff82a1c830\n",
    "empty-callchain": GOOD + "callchain 0 0x20000 1 0 s\n" + GOOD,
    "no-final-newline": GOOD + GOOD.rstrip("\n"),
    "sample-record": GOOD + entry("sample", "0x20000 12 0xffffffff82a1c830 s") + GOOD,
    "other-pmc": GOOD + callchain(0, 0x30000, 1, [BASE + 0x830]),
    "kldload-between": GOOD + map_in(-1, BASE, "/boot/modules/rem_legacy_fp.ko") + GOOD
                       + map_out(-1, BASE, BASE + 0x3000) + GOOD,
}
RESOLVE = ["pmc", "resolve", "-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel", str(KERNEL)]
#: With and without a PMC filter (the callchains of other PMCs are skipped unread).
FILTERS = {"all": [], "pmc": ["--pmc", "cpu_clk_unhalted"]}


@pytest.mark.parametrize("pmc", sorted(FILTERS))
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_logs_fail_alike(native_core, tmp_path, capsys, monkeypatch, case, pmc):
    status, _, err = three_ways(tmp_path, capsys, monkeypatch, (HEAD + MALFORMED[case]).encode(),
                                RESOLVE + FILTERS[pmc])
    assert status == 2 and err.startswith("tracebridge: ") and err.count("\n") == 1


@pytest.mark.parametrize("pmc", sorted(FILTERS))
@pytest.mark.parametrize("case", sorted(LENIENT))
def test_other_forms_read_alike(native_core, tmp_path, capsys, monkeypatch, case, pmc):
    status, out, _ = three_ways(tmp_path, capsys, monkeypatch, (HEAD + LENIENT[case]).encode(),
                                RESOLVE + FILTERS[pmc])
    assert status == 0 and out


# -- record soups ----------------------------------------------------------------------------------

PCS = st.sampled_from([BASE + 0x830, BASE + 0xA50, 0xFFFFFFFF8020012A, 0xFFFFFFFF80200195, 0x4007F3, 0, 1 << 63])
LINE = st.one_of(
    st.builds(lambda pid, pmc, cpu, pcs, user: callchain(pid, pmc, cpu, pcs, user), st.integers(-1, 99999),
              st.sampled_from([0x20000, 0x30000]), st.integers(0, 64), st.lists(PCS, max_size=6), st.booleans()),
    st.builds(lambda pid, pmc, npc, mode: f"callchain {pid} {pmc} 1 {npc} {mode}\n", st.sampled_from(["0", "-1", "x"]),
              st.sampled_from(["0x20000", "20000", "0x"]), st.sampled_from(["0", "1", "2", "4097", "-1"]),
              st.sampled_from(["s", "u", "k"])),
    st.sampled_from(["...       0xffffffff82a1c830\n", "...       0x1\n", "...       0xzz\n", "... 0x1\n",
                     "12 ...       0x1\n", "\n", " \t\n", "\r\n", "\x0b\n", "\x0c\n", "\x1c\n", "12 callchain 0 0x20000 1 1 s\n",
                     entry("closelog"), entry("exec", '0x20000 12 0x1 "/bin/sh"'), "%%%\n",
                     map_in(-1, BASE, "/boot/modules/rem_legacy_fp.ko"), map_out(-1, BASE, BASE + 0x3000),
                     entry("allocate", '0x30000 "cpu_clk_unhalted" 0x14010'),
                     entry("sample", "0x20000 12 0xffffffff82a1c830 s")]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(soup=st.lists(LINE, max_size=12), cut=st.integers(0, 2000), block=st.sampled_from([16, 64, 1 << 20]))
def test_record_soups_read_alike(native_core, tmp_path, capsys, monkeypatch, soup, cut, block):
    data = (HEAD + "".join(soup)).encode()
    data = data[:len(data) - cut % 7]  # sometimes cut mid-line
    monkeypatch.setattr(pmcstat, "BLOCK", block)
    status, _, err = three_ways(tmp_path, capsys, monkeypatch, data, RESOLVE + FILTERS["pmc"])
    assert status == 0 or (status == 2 and err.count("\n") == 1)
    assert_same_scan(native_core, data, None, 5)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200) | st.lists(LINE, max_size=8).map(lambda s: "".join(s).encode()),
       chunk=st.integers(1, 9), selected=st.sampled_from([None, b"", id_bytes(0x20000)]))
def test_native_and_pure_python_scans_agree_on_any_bytes(native_core, data, chunk, selected):
    assert_same_scan(native_core, data, selected, chunk)


def test_scanner_follows_the_switch(native_core, monkeypatch):
    assert callchain_scan.scanner() is native_core.callchain_scan
    monkeypatch.setattr(native, "core", None)
    assert callchain_scan.scanner() is scan_callchains
