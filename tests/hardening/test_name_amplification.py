"""A 1 MB module whose 2,000 function symbols share one 1 MB name (issue 19, item 4).

Each symbol's name was its own copy: ``inspect`` peaked at 2.0 GB and
``symbols --format csv`` ended in a MemoryError.  The modules are built with
GNU ``as`` (:mod:`amplified_module`); every command runs in a child process
that reports its own peak RSS (``VmHWM``: ``ru_maxrss`` would carry the
high-water mark of the pytest process it was forked from across ``exec``).  The full-size ``symbols --format csv`` run (4 GB of CSV) is in
``benchmarks/bench_name_amplification.py``; here a smaller name shows the
same: memory follows the file, not the number of symbols times the name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amplified_module import build

ROOT = Path(__file__).resolve().parents[2]
MB = 1 << 20
#: Runs ``tracebridge`` and prints its peak RSS in KB (Linux VmHWM, of this process image only) last on stderr.
MEASURED = ("import re, sys; from tracebridge.cli import main; status = main(sys.argv[1:]); "
            "status_text = open('/proc/self/status').read(); "
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', status_text)[1], file=sys.stderr); sys.exit(status)")

pytestmark = pytest.mark.skipif(shutil.which("as") is None or not sys.platform.startswith("linux"),
                                reason="needs GNU as and Linux /proc/self/status")


def peak(*argv: str, setup: str = "") -> tuple[int, int, str]:
    """Exit status, peak RSS in MB, and the messages of ``tracebridge ARGV`` (after the Python ``setup``)."""
    done = subprocess.run([sys.executable, "-c", setup + MEASURED, *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    *messages, rss = done.stderr.splitlines()
    return done.returncode, int(rss) // 1024, "\n".join(messages)


@pytest.mark.parametrize("functions", [2000, 10000])
def test_inspect_holds_one_copy_of_a_shared_name(tmp_path, functions):
    module = tmp_path / "amplified.ko"
    build(str(module), functions, MB)
    assert module.stat().st_size < 1.5 * MB
    status, rss, messages = peak("inspect", str(module))
    assert status == 0, messages
    assert rss < 300, f"inspect peaked at {rss} MB"


#: Lists every module by the split before reading it, as big modules are.
EARLY_SPLIT = "import tracebridge.cli.symbols as symbols; symbols.EARLY_SPLIT_BYTES = 0; "


@pytest.mark.parametrize("setup", ["", EARLY_SPLIT], ids=["split-after-reading", "split-before-reading"])
def test_symbols_csv_is_written_as_it_is_made(tmp_path, setup):
    module = tmp_path / "amplified.ko"
    build(str(module), 2000, 32 << 10)  # 128 MB of CSV from a 100 KB module
    status, rss, messages = peak("symbols", str(module), "--format", "csv", "-o", os.devnull, setup=setup)
    assert status == 0, messages
    assert rss < 200, f"symbols --format csv peaked at {rss} MB"


def test_names_pointing_into_each_other_are_refused(tmp_path):
    """Each symbol one byte further into the 1 MB name: 2,000 different names, 2 GB in all."""
    module = tmp_path / "suffixes.ko"
    build(str(module), 2000, MB, suffixes=True)
    status, rss, messages = peak("symbols", str(module), "--format", "csv")
    assert status == 2 and rss < 300
    assert messages == (f"tracebridge: {module}: its function names would take 2,096,199,576 bytes from a "
                        "1,059,469-byte .strtab (symbols pointing into each other's names): refusing to hold them")
