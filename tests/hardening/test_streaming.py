"""Streaming readers: the same result block by block, errors at the right line, memory flat in the input size.

benchmarks/bench_memory.py measures 2 GB inputs; here a 64 MB capture
checks in a few seconds that the reader does not hold the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tracebridge.readers import source
ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
sys.path[:0] = [str(ROOT / "fuzz"), str(ROOT / "benchmarks")]

from _harness import run_cli  # noqa: E402

CAPTURES = ["dtrace/freebsd-stack-hex.txt", "dtrace/illumos-stack-ustack.txt", "dtrace/flow.txt",
            "pmcstat/multi-image.perl.folded"]


@pytest.mark.parametrize("capture", CAPTURES)
@pytest.mark.parametrize("line_ends", ["\n", "\r\n"])
def test_small_blocks_give_the_same_stacks(tmp_path, monkeypatch, capture, line_ends):
    path = tmp_path / "capture.txt"
    path.write_bytes((DATA / capture).read_bytes().replace(b"\n", line_ends.encode()))
    whole = run_cli(["fold", str(path)])
    monkeypatch.setattr(source, "BLOCK", 7)  # blocks end inside lines and inside CRLF pairs
    assert run_cli(["fold", str(path)]) == whole
    assert whole[0] == 0


def test_an_error_far_into_the_file_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "BLOCK", 64)
    lines = (DATA / "dtrace" / "freebsd-stack-hex.txt").read_bytes().splitlines(keepends=True)
    lines[150] = lines[150].replace(b"`", b"`\xff")
    path = tmp_path / "capture.txt"
    path.write_bytes(b"".join(lines))
    status, _, err = run_cli(["fold", str(path)])
    assert status == 2 and f"{path}:151: is not UTF-8 text" in err


def test_a_line_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "BLOCK", 1024)
    monkeypatch.setattr(source, "MAX_LINE", 64 << 10)
    path = tmp_path / "capture.folded"
    path.write_bytes(b"a;b 1\n" + b"x;" * (100 << 10) + b"y 1\n")
    status, _, err = run_cli(["fold", str(path)])
    assert status == 2 and f"{path}:2: has a line longer than" in err


def test_fold_memory_does_not_grow_with_the_capture(tmp_path):
    from bench_memory import BASE, MODULE, make_dtrace, peak_rss

    capture = tmp_path / "big.txt"
    make_dtrace(str(capture), 64 << 20, pool=2000)
    peak_mb, _ = peak_rss([sys.executable, "-m", "tracebridge", "fold", str(capture), "--module", MODULE,
                           "--base", f"{BASE:x}", "-o", str(tmp_path / "out.folded")])
    # Holding the capture would take its 64 MB several times over (bytes, text, tokens).
    assert peak_mb < 160, f"peak RSS {peak_mb:.0f} MB"
