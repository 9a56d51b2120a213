"""Bad pmcstat input: one line naming the file (and line), exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixture_paths import MODULES
from pmcstat_text import callchain, entry, map_in
from tracebridge.cli import main

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
MODULE = str(MODULES / "rem_legacy_fp.ko")
GOOD = entry("initlog", '0x9030000 "INTEL_SKYLAKE"') + map_in(-1, 0xFFFFFFFF82A1C000, "/boot/modules/x.ko")
# Raw hwpmc logs: an initlog record with a FreeBSD 11 header (type 2, 20 bytes), and a current
# one (type 3, 112 bytes) followed by a word that is no record header.
OLD_BINARY_LOG = (0xEE << 24 | 2 << 16 | 20).to_bytes(4, "little") + bytes(16)
DAMAGED_BINARY_LOG = (0xEE << 24 | 3 << 16 | 112).to_bytes(4, "little") + bytes(108) + b"junkjunkjunkjunk"

CASES = {
    "empty": (b"", None, "is empty"),
    "blank": (b"\n\n  \n", None, "is empty"),
    "garbage": (b"\x8aPNG this is not a log\n", 1, "neither"),
    "png": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", None, "this looks like a PNG image"),
    "gzip-with-file-name": (b"\x1f\x8b\x08\x08\x9c\x42\x0c\x6b\x00\x03pmc.txt\x00" + bytes(range(256)), None,
                            "this looks like gzip-compressed data"),
    "garbage-record": ((GOOD + "%%% what\n").encode(), 3, "not a pmcstat record"),
    "truncated-callchain": ((GOOD + entry("callchain", "0 0x20000 0 3 s") + entry("...", "0x1")).encode(), 3,
                            "truncated callchain: 2 of its PCs are missing at the end"),
    "callchain-cut-mid-line": ((GOOD + "callchain 0 0x20000 0\n").encode(), 3, "malformed callchain"),
    "record-after-short-chain": ((GOOD + entry("callchain", "0 0x20000 0 2 s") + entry("...", "0x1")
                                  + entry("closelog")).encode(), 5, "truncated callchain"),
    "bad-pc": ((GOOD + entry("callchain", "0 0x20000 0 1 s") + entry("...", "0xZZ12")).encode(), 4, "bad PC"),
    "stray-pc": ((GOOD + entry("...", "0x1234")).encode(), 3, "outside any callchain"),
    "bad-map-in": ((GOOD + entry("map-in", "-1 zz")).encode(), 3, "malformed map-in"),
    "old-binary-log": (OLD_BINARY_LOG, "byte 0x0", "FreeBSD 11 or earlier"),
    "damaged-binary-log": (DAMAGED_BINARY_LOG, "byte 0x70", "no record header here"),
    "nul": (b"callchain 0 0x1 0 1 s\n\0\0\0", 2, "binary data"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_log_one_line_exit_2(tmp_path, capsys, case):
    data, line, words = CASES[case]
    path = tmp_path / "pmc.txt"
    path.write_bytes(data)
    assert main(["pmc", "resolve", str(path), "-m", MODULE, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"tracebridge: {path}:{line}: " if line else f"tracebridge: {path}: ")
    assert words in err
    assert not (tmp_path / "out").exists()


def test_callgraph_read_as_log(tmp_path, capsys):
    assert main(["pmc", "resolve", str(DATA / "multi-image.graph"), "--input-format", "log"]) == 2
    err = capsys.readouterr().err
    assert err == f"tracebridge: {DATA / 'multi-image.graph'}:1: this is pmcstat -G callgraph output, " \
                  "not a -o record log\n"


def test_log_read_as_callgraph(tmp_path, capsys):
    path = tmp_path / "pmc.txt"
    path.write_text(GOOD + callchain(0, 0x20000, 0, [1]))
    assert main(["pmc", "resolve", str(path), "--input-format", "callgraph"]) == 2
    assert capsys.readouterr().err == f"tracebridge: {path}:1: this is a pmcstat -o record log, not -G callgraph output\n"


def test_callgraph_without_entries(tmp_path, capsys):
    path = tmp_path / "g.txt"
    path.write_text("@ cycles [0 samples]\n\n")
    assert main(["pmc", "resolve", str(path)]) == 2
    assert capsys.readouterr().err == \
        f"tracebridge: {path}:1: holds no pmcstat -G callgraph lines (`NN.NN%  [count]  function`)\n"


@pytest.mark.parametrize("data, message", [
    (b"", "is empty: no callgraph"),
    (b"\n  \n", "is empty: no callgraph"),
    (b"100.0%  [1]  foo\n100.0%  [1]  b\0r\n", "2: contains binary data (a NUL byte), not pmcstat text output"),
    # a record log whose records carry a timestamp column (pmcstat.py reads those too)
    (("1200 " + entry("initlog", '0x9030000 "INTEL_SKYLAKE"') + "1201 " + entry("callchain", "0 0x20000 0 1 s")
      + "1201 " + entry("...", "0xffffffff80200120")).encode(),
     "1: this is a pmcstat -o record log, not -G callgraph output"),
    # the end of a record log (`tail`), which starts inside a callchain's PCs
    ((entry("...", "0xffffffff80200120") + entry("...", "0x1a2b0") + entry("callchain", "0 0x20000 0 1 s")
      + entry("...", "0xffffffff80200120")).encode(), "1: this is a pmcstat -o record log, not -G callgraph output"),
])
def test_callgraph_reader_refuses_what_is_no_callgraph(tmp_path, data, message):
    from tracebridge.readers.pmcgraph import read_callgraph
    from tracebridge.support.errors import InputError

    path = tmp_path / "pmc.graph"
    path.write_bytes(data)
    with pytest.raises(InputError) as error:
        read_callgraph(path)
    assert str(error.value) == (f"{path}:{message}" if message[0].isdigit() else f"{path}: {message}")


@pytest.mark.parametrize("argv, words", [
    (["--base", "other.ko=ffff"], "no such module"),
    (["--kernel", MODULE], "wants the kernel ELF"),
    (["--pmc", "nosuch"], f"{DATA / 'multi-image.graph'}: has no callgraph for PMC 'nosuch' (it has: "
                          "cpu_clk_unhalted.thread_p, inst_retired.any)\n"),
])
def test_bad_options(capsys, argv, words):
    assert main(["pmc", "resolve", str(DATA / "multi-image.graph"), "-m", MODULE, *argv]) == 2
    assert words in capsys.readouterr().err


def test_base_needs_module_and_address(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["pmc", "resolve", str(DATA / "multi-image.graph"), "--base", "nope"])
    assert exit_.value.code == 2
    assert "not a hex address: 'nope'" in capsys.readouterr().err
