"""Inputs the fuzzers (and a look at every regular expression) found breaking the promise, kept forever.

Each gave a hang, a traceback or injected text before its fix; now it gives
a result or one error line, quickly.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time
from pathlib import Path

import pytest

from fixture_paths import MODULES
from tracebridge.image import demangle
sys.path.insert(0, str(Path(__file__).parents[2] / "fuzz"))

from _harness import check_result, run_cli  # noqa: E402

#: Seconds any of these may take; each took minutes (or forever) before its fix.
QUICK = 10.0
TOP = (Path(__file__).parents[1] / "data" / "top" / "top-bzSHCP-iperf.txt").read_bytes()
SERIES = (Path(__file__).parents[2] / "examples" / "run" / "cpu.csv").read_bytes()


def run(tmp_path: Path, data: bytes, *argv: str) -> tuple[int, str, str]:
    path = tmp_path / "input"
    path.write_bytes(data)
    start = time.perf_counter()
    status, out, err = run_cli([a.replace("{}", str(path)) for a in argv])
    assert time.perf_counter() - start < QUICK
    check_result(status, err)
    return status, out, err


@pytest.mark.parametrize("data, argv, status", [
    # fuzz_folded, fuzz_dtrace_flow: `(?: *\d+)*` in the flow sniffer split a run of digits every way (a hang).
    (b"9" * 74 + b"8 3\n", ["fold", "{}"], 0),
    (b"CPU FUNCTION\n  0  -> f\n" + b"8" * 60 + b"h7f891ceb5f9c2e9aE \n", ["fold", "--input-format", "dtrace-flow", "{}"],
     2),
    # A probe line `CPU ID func:name` with a long run of colons then a tab: quadratic backtracking.
    (b" 1 2 " + b":" * 30000 + b"\tx\n", ["fold", "--input-format", "dtrace", "{}"], 2),
    # A histogram row of blanks: two adjacent ` *` around an optional group.
    (b"  rem_load\n     value  ---- Distribution ---- count\n" + b" " * 30000 + b"x\n",
     ["fold", "--input-format", "dtrace", "{}"], 2),
    # A count that str.isdigit() accepts but int() does not: a traceback.
    (b"\n              kernel`foo+0x1\n \xc2\xb2\n", ["fold", "{}"], 2),
    # hypothesis on the top seed: `(\d+(?:\.\d+)?)% ` searched a CPU line from every digit of a long run.
    (TOP.replace(b"CPU 0:", b"CPU 0: " + b"1" * 200_000, 1), ["cpu", "import", "{}"], 0),
    # audit: a thread name of a megabyte made `cpu compare -o chart.png` draw for minutes.
    (TOP.replace(b"{irq", b"{" + b"x" * (1 << 20) + b"irq", 1), ["cpu", "compare", "{}", "-o", "{}.png"], 2),
    # fuzz_pmcstat: str.strip() takes \x1c for a blank, so a file of that one byte had no first line
    # (StopIteration); str.splitlines() also splits at it.
    (b"\x1c", ["pmc", "resolve", "{}", "-m", str(MODULES / "rem_legacy_fp.ko"), "-q"], 2),
    (TOP.replace(b"{irq", b"{i\x1cr\x85q", 1), ["cpu", "import", "{}"], 0),
    # fuzz_series: control characters in a thread name reached the chart, and matplotlib warned
    # about their glyphs on standard error (lines that are not tracebridge's).
    (SERIES.replace(b",iperf3,", b",ip\x01erf\x1b[31m3,"), ["cpu", "compare", "{}", "-o", "{}.svg"], 0),
    (SERIES.replace(b",iperf3,", b",\xe4\xb8\xad\xe6\x96\x87,"), ["cpu", "compare", "{}", "-o", "{}.png"], 0),
], ids=["digits-in-flow-sniffer", "digits-in-flow-reader", "probe-line-colons", "histogram-row-blanks",
        "superscript-count", "top-cpu-line-digits", "top-megabyte-thread-name", "pmcstat-file-separator",
        "top-name-with-separators", "series-control-characters", "series-glyphs-not-in-the-font"])
def test_text_inputs(tmp_path, data, argv, status):
    assert run(tmp_path, data, *argv)[0] == status


def test_kldstat_address_over_64_bits(tmp_path):
    """fuzz_kldstat: a 27-digit address reached the address space as a module past 2**64 (a traceback)."""
    kldstat = (b"Id Refs Address                Size Name\n"
               b" 1   64 0xffffffff80200000f8213d000     77e0 rem_legacy_fp.ko\n")
    status, _, err = run(tmp_path, kldstat, "symmap", str(MODULES / "rem_legacy_fp.ko"), "--kldstat", "{}")
    assert status == 2 and "does not fit in 64 bits" in err and ":2: " in err


@pytest.mark.parametrize("data, argv", [
    (b"\n              0x1ffffffff82a1c830\n              kernel`foo+0x1\n               12\n",
     ["fold", "{}", "--module", str(MODULES / "rem_legacy_fp.ko"), "--base", "ffffffff82a1c000"]),
    (b"@ cpu [1 samples]\n100.00%  [1]  0x1ffffffffffffffff @ /boot/kernel/kernel\n",
     ["pmc", "resolve", "{}", "--kernel", str(Path(__file__).parents[1] / "data" / "pmcstat" / "kernel"), "-q"]),
], ids=["dtrace-frame", "pmcstat-callgraph-node"])
def test_hex_frames_over_64_bits_stay_text(tmp_path, data, argv):
    """A mutation of the pmcstat seeds: `0x` and 17 digits reached numpy as a PC (OverflowError)."""
    status, out, err = run(tmp_path, data, *argv)
    assert status == 0 and "0x1ffffffff" in out, err


def test_module_past_the_end_of_the_address_space():
    status, _, err = run_cli(["symmap", str(MODULES / "rem_legacy_fp.ko"), "--base", "rem_legacy_fp.ko=ffffffffffffff00"])
    assert status == 2 and "runs past the end of the address space" in err


def test_kldstat_line_with_a_long_run_of_blanks(tmp_path):
    """`(\\S.*?)\\s*$` tried every split of the blanks: seconds per line, quadratic."""
    kldstat = b"Id Refs Address                Size Name\n 1 1 0xffffffff82000000 10 a" + b" " * 30000 + b"\tx\n"
    run(tmp_path, kldstat, "symmap", str(MODULES / "rem_legacy_fp.ko"), "--kldstat", "{}")


def _backrefs(levels: int) -> str:
    """A v0 name whose every type is a tuple of two backreferences to the type before: output 2**levels."""
    body = "INvCs_1a1fThhE"
    previous = len("INvCs_1a1f")
    for _ in range(levels):
        at = len(body)
        ref = "_" if previous == 0 else _base62(previous - 1) + "_"
        body += f"TB{ref}B{ref}E"
        previous = at
    return "_R" + body + "E"


def _base62(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        out = digits[n % 62] + out
        n //= 62
        if not n:
            return out


@pytest.mark.parametrize("backend", ["pyderust", "demangle"])
def test_exponential_v0_backrefs_stay_mangled(backend):
    """140 bytes that rustc-demangle spells as 400 KB: over the bound, so shown mangled, in every backend."""
    if backend == "pyderust" and demangle._pyderust is None:
        pytest.skip("pyderust is not installed")
    previous = demangle.BACKEND
    demangle.use_backend(backend)
    try:
        small, huge = demangle.demangle_symbol(_backrefs(8)), demangle.demangle_symbol(_backrefs(14))
    finally:
        demangle.use_backend(previous)
    assert small.scheme == demangle.RUST_V0 and len(small.name) > 5000
    assert huge.scheme == demangle.C and huge.name == huge.mangled


def test_control_characters_in_names_are_escaped():
    """Symbol names are bytes anyone can write: a newline or an escape sequence must not reach a text output."""
    assert demangle.demangle_symbol("evil\nffffffff80000000 pwned").name == "evil\\x0affffffff80000000 pwned"
    assert demangle.demangle_symbol("esc\x1b[31m\u2028").name == "esc\\x1b[31m\\u2028"


def test_top_capture_timed_by_the_clock_alone(tmp_path):
    """fuzz_top: displays with a clock but no uptime made `zip(..., strict=True)` raise on every such capture."""
    top = (Path(__file__).parents[1] / "data" / "top" / "top-bzSHCP-iperf.txt").read_text()
    status, _, err = run(tmp_path, re.sub(r"up \d+\+\d\d:\d\d:\d\d", "", top).encode(), "cpu", "import", "{}",
                         "-o", str(tmp_path / "run.csv"))
    assert status == 0 and "3 displays" in err


HUGE = b"9" * 5000  # int() refuses decimal strings of over 4300 digits with a ValueError


@pytest.mark.parametrize("data, argv", [
    (b"CPU     ID                    FUNCTION:NAME\n  0  71234                     :profile-997 \n" + HUGE + b"\n",
     ["fold", "{}"]),
    (b"\n              kernel`foo+0x1\n " + HUGE + b"\n", ["fold", "{}"]),
    (b"  rem_load\n     value  ---- Distribution ---- count\n  " + HUGE + b" |@@@@ 3\n", ["report", "-f", "csv", "{}"]),
    (b"a;b " + HUGE + b"\n", ["fold", "--input-format", "folded", "{}"]),
    (b"CPU FUNCTION\n  0 " + HUGE + b" -> f\n", ["fold", "--input-format", "dtrace-flow", "{}"]),
    (b"Id Refs Address                Size Name\n " + HUGE + b" 1 0xffffffff82000000 10 a.ko\n",
     ["symmap", str(MODULES / "rem_legacy_fp.ko"), "--kldstat", "{}"]),
    (b'map-in ' + HUGE + b' 0xffffffff80200000 "/boot/kernel/kernel"\n', ["pmc", "resolve", "{}", "-q"]),
    (b'{"format": "tracebridge-probe-map", "version": ' + HUGE + b"}",
     ["fold", str(Path(__file__).parents[1] / "data" / "dtrace" / "probefunc-count.txt"), "--probe-map", "{}"]),
    (TOP.replace(b" 1893 root", b" " + HUGE + b" root", 1), ["cpu", "import", "{}"]),
], ids=["dtrace-traced", "dtrace-count", "dtrace-histogram", "folded", "flow", "kldstat", "pmcstat-map-in",
        "probe-map", "top"])
def test_numbers_of_thousands_of_digits(tmp_path, data, argv):
    """hypothesis, on the DTrace seeds: a 4301-digit count reached int() (a ValueError traceback)."""
    assert run(tmp_path, data, *argv)[0] == 2


def test_traced_firings_of_the_same_stack_all_count(tmp_path):
    """Found reading the grouping: a stack traced again started a new "aggregation", and only the first counted."""
    firing = b"  0  71234                     :profile-997 \n              kernel`foo+0x1\n              kernel`bar+0x2\n\n"
    other = b"  1  71234                     :profile-997 \n              kernel`baz+0x1\n              kernel`bar+0x2\n\n"
    capture = b"CPU     ID                    FUNCTION:NAME\n" + firing + firing + other
    status, out, _ = run(tmp_path, capture, "fold", "{}")
    assert status == 0 and out.splitlines() == ["bar;baz 1", "bar;foo 2"]


def test_error_messages_quoting_input_stay_one_line(tmp_path):
    """fuzz_kldstat: `does not list if_rem.ko (loaded: ...)` quoted names holding \\x1e and NUL bytes."""
    kldstat = b"Id Refs Address                Size Name\n 1   64 0xffffffff80200000  1f3c6c0 ker\x1enel\x00\x1b[2J\n"
    module = tmp_path / "if_rem.ko"
    module.write_bytes((MODULES / "rem_legacy_fp.ko").read_bytes())
    status, _, err = run(tmp_path, kldstat, "fold", str(Path(__file__).parents[1] / "data" / "dtrace" /
                                                        "freebsd-hex-only.txt"), "--module", str(module), "--kldstat", "{}")
    assert status == 2 and "ker\\x1enel\\x00\\x1b[2J" in err and len(err.splitlines()) == 1


def test_map_in_paths_with_control_characters(tmp_path):
    """Image names from a log's map-in records reach frames and notes: escaped like symbol names."""
    log = b'map-in -1 0xffffffff80200000 "/boot/ker\x1enel/\x1b[2Jevil"\ncallchain 0 0x20000 0 1 s\n...       0xffffffff80200120\n'
    status, out, err = run(tmp_path, log, "pmc", "resolve", "{}", "-m", str(MODULES / "rem_legacy_fp.ko"))
    assert status == 0 and "\x1b" not in out + err and "\\x1b[2Jevil" in err


@pytest.mark.parametrize("name", ["../rem_legacy_fp.ko", "/etc/passwd", "..", ""])
def test_bundle_files_stay_inside_the_bundle(name):
    """A manifest names the bundled files; a name leading out of the bundle is refused, not read."""
    bundle = importlib.import_module("fuzz_bundle")
    manifest = json.loads(bundle.seeds()[0])
    manifest["module"]["file"] = name
    bundle.check(json.dumps(manifest).encode())  # the promise
    status, _, err = run_cli(["fold", str(bundle.BUNDLE)])
    assert status == 2 and "not a file name inside the bundle" in err


def test_map_in_address_over_64_bits(tmp_path):
    """fuzz_pmcstat: a map-in at a 32-digit address placed a region numpy could not hold (OverflowError)."""
    log = b'map-in -1 0x1ffffffff82a1c000 "/boot/modules/x.ko"\ncallchain 0 0x20000 0 1 s\n...       0xffffffff80200120\n'
    status, _, err = run(tmp_path, log, "pmc", "resolve", "{}", "-q")
    assert status == 2 and ":1: malformed map-in record" in err
