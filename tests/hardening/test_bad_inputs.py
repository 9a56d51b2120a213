"""Every text input type x every class of bad input: a result or one clear line, exit status 2.

This is the table of docs/hardening.md: each input type is given with a
valid example and the command that reads it; each class of bad input is
made from that example.  A CRLF copy must read exactly like the original;
NUL bytes, an empty file and a file of another format must be refused with
one line naming the file (and the line, where one is to blame); the rest
may be read or refused, but only that way.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from fixture_paths import MODULES

sys.path.insert(0, str(Path(__file__).parents[2] / "fuzz"))

from _harness import DATA, check_result, from_tests, run_cli  # noqa: E402
from fuzz_kldstat import listed_module  # noqa: E402

ROOT = Path(__file__).parents[2]
FIXTURE = str(MODULES / "rem_legacy_fp.ko")
PMC = ["-m", FIXTURE, "--kernel", str(DATA / "pmcstat" / "kernel")]


def _kldstat_text() -> bytes:
    return from_tests("readers", "test_kldstat").VERBOSE_64.encode()


def _pmcstat_text() -> bytes:
    return from_tests("readers", "test_pmclog").text_log().encode()


#: Input type -> (a valid example, the command reading a file of it, a file of another format).
INPUTS = {
    "dtrace": (lambda: (DATA / "dtrace" / "freebsd-stack-hex.txt").read_bytes(),
               lambda p: ["fold", p], DATA / "top" / "top-bzSHCP-iperf.txt"),
    "dtrace-aggregation": (lambda: (DATA / "dtrace" / "probefunc-quantize.txt").read_bytes(),
                           lambda p: ["report", "-f", "csv", p], MODULES / "rem_i386.ko"),
    "dtrace-flow": (lambda: (DATA / "dtrace" / "flow.txt").read_bytes(),
                    lambda p: ["fold", "--input-format", "dtrace-flow", p], DATA / "pmcstat" / "multi-image.graph"),
    "folded": (lambda: (DATA / "pmcstat" / "multi-image.perl.folded").read_bytes(),
               lambda p: ["flamegraph", "--input-format", "folded", p], DATA / "dtrace" / "flow.txt"),
    "pmcstat-o": (_pmcstat_text, lambda p: ["pmc", "resolve", p, *PMC, "-q"], DATA / "dtrace" / "latency.txt"),
    "pmcstat-G": (lambda: (DATA / "pmcstat" / "multi-image.graph").read_bytes(),
                  lambda p: ["pmc", "resolve", "--input-format", "callgraph", p, *PMC, "-q"],
                  DATA / "dtrace" / "flow.txt"),
    "kldstat": (_kldstat_text, lambda p: ["symmap", listed_module(), "--kldstat", p], DATA / "dtrace" / "flow.txt"),
    "top": (lambda: (DATA / "top" / "top-bzSHCP-iperf.txt").read_bytes(),
            lambda p: ["cpu", "import", p], DATA / "dtrace" / "flow.txt"),
    "probe-map": (None, lambda p: ["fold", str(DATA / "dtrace" / "probefunc-count.txt"), "--probe-map", p],
                  DATA / "dtrace" / "flow.txt"),
    "cpu-series": (lambda: (ROOT / "examples" / "run" / "cpu.csv").read_bytes(),
                   lambda p: ["cpu", "compare", p, "-f", "csv"], MODULES / "rem_legacy_fp.ko"),
}


@pytest.fixture(scope="module")
def probe_map(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("map") / "map.json"
    assert run_cli(["gen-probes", FIXTURE, "-o", str(path.with_suffix(".d")), "--map", str(path)])[0] == 0
    return path.read_bytes()


def example(kind: str, probe_map: bytes) -> bytes:
    make = INPUTS[kind][0]
    return make() if make else probe_map


def run(tmp_path: Path, kind: str, data: bytes) -> tuple[int, str, str, str]:
    """Status, output, standard error and input path of the kind's command on ``data``."""
    path = tmp_path / "input"
    path.write_bytes(data)
    status, out, err = run_cli(INPUTS[kind][1](str(path)))
    check_result(status, err)
    return status, out, err, str(path)


def cut_mid_record(data: bytes) -> bytes:
    middle = data.index(b"\n", len(data) // 2) + 1
    return data[:middle + 7]


def long_line(data: bytes) -> bytes:
    middle = data.index(b"\n", len(data) // 2) + 1
    return data[:middle] + b"  " + b"x" * (3 << 20) + b"\n" + data[middle:]


CLASSES = {
    "long-line": long_line,
    "cut-mid-record": cut_mid_record,
    "non-utf8": lambda data: data.replace(b"\n", b"\xff\xfe\n", 3),
    "stray-cr": lambda data: data.replace(b"\n", b"\r\r\n", 2),
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("bad", sorted(CLASSES))
def test_read_or_refused_in_one_line(tmp_path, probe_map, kind, bad):
    status, _, err, path = run(tmp_path, kind, CLASSES[bad](example(kind, probe_map)))
    if status == 2:
        assert err.splitlines()[-1].startswith(f"tracebridge: {path}"), err


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_crlf_reads_like_lf(tmp_path, probe_map, kind):
    data = example(kind, probe_map)
    lf, crlf = (run(tmp_path, kind, variant)[:2] for variant in (data, data.replace(b"\n", b"\r\n")))
    assert lf[0] == 0
    assert crlf == lf


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("bad", ["empty", "blank", "nul", "other-format"])
def test_refused_with_the_file_named(tmp_path, probe_map, kind, bad):
    data = example(kind, probe_map)
    bad_data = {"empty": b"", "blank": b"\n \n\t\n", "nul": data[:200] + b"\0" + data[200:],
                "other-format": Path(INPUTS[kind][2]).read_bytes()}[bad]
    status, _, err, path = run(tmp_path, kind, bad_data)
    assert status == 2
    assert err.splitlines()[-1].startswith(f"tracebridge: {path}"), err


@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("bad", ["missing", "directory"])
def test_a_path_that_is_not_a_readable_file(tmp_path, kind, bad):
    path = tmp_path / "input"
    if bad == "directory":
        path.mkdir()
    status, _, err = run_cli(INPUTS[kind][1](str(path)))
    check_result(status, err)
    assert status == 2
    want = "no such file" if bad == "missing" else "is a directory"
    assert err.splitlines()[-1].startswith(f"tracebridge: {path}: {want}"), err


#: Inputs given as INPUT arguments (the others are option values, read once).
PIPED = ["dtrace", "dtrace-aggregation", "dtrace-flow", "folded", "pmcstat-o", "pmcstat-G", "top", "cpu-series"]


@pytest.mark.parametrize("kind", PIPED)
def test_a_pipe_reads_like_a_file(tmp_path, kind, monkeypatch):
    """`dtrace … | tracebridge fold /dev/stdin`: readers open an input twice (sniff, then read).  The spooled
    copy goes to a directory of this test's own, where no other process's copy is seen as left behind."""
    spool_directory = tmp_path / "spool"
    spool_directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_directory))
    data = example(kind, b"")
    status, out, err, _ = run(tmp_path, kind, data)
    assert status == 0
    fifo = tmp_path / "piped" / "input"  # the same name: run labels come from it
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True)  # blocks until read
    writer.start()
    try:
        piped = run_cli(INPUTS[kind][1](str(fifo)))
    finally:
        writer.join(timeout=30)
    assert not writer.is_alive(), "the command never read the pipe"
    assert piped[:2] == (status, out.replace(str(tmp_path / "input"), str(fifo)))
    assert not [p for p in Path(tempfile.gettempdir()).glob("tracebridge-*-input")], "spooled copy left behind"


def test_a_dash_reads_standard_input(tmp_path, monkeypatch):
    data = example("dtrace", b"")
    status, out, _, _ = run(tmp_path, "dtrace", data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert run_cli(["fold", "-"])[:2] == (status, out)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"junk\n")))
    status, _, err = run_cli(["fold", "-"])
    assert status == 2 and err.startswith("tracebridge: standard input:1: does not look like any input")
