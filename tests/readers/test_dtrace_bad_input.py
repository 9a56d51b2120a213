"""Bad inputs end in one line naming the file and line, exit status 2, never a traceback."""

from __future__ import annotations

import re

import pytest

from tracebridge.cli import main
from tracebridge.readers.registry import load_profile
from truth import DATA

STACKS = "\n              kernel`foo+0x1\n              kernel`bar+0x2\n               12\n"


def run(capsys, *args) -> tuple[int, str]:
    status = main(["fold", *map(str, args)])
    err = capsys.readouterr().err
    return status, err


def assert_one_line(err: str, path, line: int | None, words: str):
    lines = err.splitlines()
    assert len(lines) == 1, err
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert lines[0].startswith(f"tracebridge: {where}"), lines[0]
    assert re.search(words, lines[0]), lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("content, line, words", [
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(1, 256)), None, "looks like an ELF file.*--module"),
    (STACKS.encode().replace(b"bar", b"b\x00r"), 3, "NUL byte"),
    (b"hello world\nthis is not a profile\n", 1, "does not look like any input"),
    (b"\n              kernel`foo+0x1\n              kernel`bar+0x2\n", 2, "no count.*cut short"),
    (STACKS.encode() + b"\n              kernel`baz+0x3\n", 6, "no count.*cut short"),
    (b"  rem_load                                          \n"
     b"           value  ------------- Distribution ------------- count    \n", 2, "histogram header with no rows"),
    (b"  rem_load                                          \n"
     b"           value  ------------- Distribution ------------- count    \n"
     b"             128 |@@@@@@@@@                                0        \n"
     b"             256 |@@@@@@@@@@@@@@@@@@@@ truncat", 4, "not a histogram row"),
    (STACKS.encode().replace(b"bar", b"b\xff\xfer"), 3, "not UTF-8"),
    (STACKS.encode().replace(b"bar+0x2\n", b"bar+0x2\rjunk\n"), 3, "carriage return inside a line"),
    (b"\n  rem_ioctl                                                       154\n"
     b"  rem_load                                          \n", 3, "aggregation key has no value.*cut short"),
    (STACKS.encode() + b"root@freebsd:~ # \n", 5, "unrecognised line in DTrace output: .*root@freebsd:~ #"),
    (b"a;b;c 12\nd;e\n", 2, "not a folded stack line"),
    (b"a;b;c 12\nd;e 1x\n", 2, "not a folded stack line"),
    (b"CPU FUNCTION\n  0  -> foo\n  0  <- foo\ngarbage here\n", 4, "not a flow line"),
    (b"", None, "is empty"),
    (b"\n\n   \n", None, "is empty"),
    (b"\x1f\x8b\x08\x08\x9c\x42\x0c\x6b\x00\x03my.folded\x00" + bytes(range(256)), None,
     "this looks like gzip-compressed data"),
    (b"time,pid,process,tid,thread,cpu_user,cpu_system,cpu_percent\n1.000,12,intr,100125,100125,0,28,28\n", None,
     "this looks like a CPU series.*cpu compare"),
    (b"CPU     ID                    FUNCTION:NAME\n", None, "holds no stacks"),
    (b"dtrace: script 'stack.d' matched 412 probes\nCPU     ID                    FUNCTION:NAME\n"
     b"  0  71023                        :tick-10s \n\n", None, "holds no stacks"),
], ids=["elf", "nul-in-frame", "prose", "no-count", "cut-after-stack", "histogram-no-rows", "histogram-cut",
        "latin1", "stray-cr", "key-no-value", "shell-prompt", "folded-no-count", "folded-bad-count", "flow-garbage", "empty", "blank",
         "gzip-with-file-name", "cpu-series", "header-only", "header-and-probe-line-only"])
def test_bad_input_one_line(tmp_path, capsys, content, line, words):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    status, err = run(capsys, path)
    assert status == 2
    assert_one_line(err, path, line, words)


def test_crlf_capture_reads_like_lf(tmp_path):
    lf = tmp_path / "lf.txt"
    crlf = tmp_path / "crlf.txt"
    text = (DATA / "macos-ustack.txt").read_text()
    lf.write_text(text)
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    assert dict(load_profile([crlf]).stacks) == dict(load_profile([lf]).stacks)


def test_wrong_forced_format_says_what_it_looks_like(tmp_path, capsys):
    status, err = run(capsys, DATA / "freebsd-stack-hex.txt", "--input-format", "folded")
    assert status == 2
    assert_one_line(err, DATA / "freebsd-stack-hex.txt", 1, r"this looks like DTrace output.*--input-format dtrace")
    status, err = run(capsys, DATA / "flow.txt", "--input-format", "dtrace")
    assert status == 2
    assert_one_line(err, DATA / "flow.txt", 1, r"this looks like DTrace flow output.*--input-format dtrace-flow")


def test_missing_and_directory_inputs(tmp_path, capsys):
    status, err = run(capsys, tmp_path / "nope.txt")
    assert status == 2
    assert_one_line(err, tmp_path / "nope.txt", None, "no such file")
    status, err = run(capsys, tmp_path)
    assert status == 2
    assert_one_line(err, tmp_path, None, "is a directory")


def test_output_may_not_overwrite_an_input(tmp_path, capsys):
    path = tmp_path / "stacks.txt"
    path.write_text(STACKS)
    status, err = run(capsys, path, "-o", path)
    assert status == 2 and "refusing to overwrite an input" in err
    assert path.read_text() == STACKS


def test_bad_module_options(tmp_path, capsys):
    path = tmp_path / "stacks.txt"
    path.write_text(STACKS)
    status, err = run(capsys, path, "--base", "ffffffff82e1c000")
    assert status == 2 and "--base needs --module" in err
    status, err = run(capsys, path, "--module", path)
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_an_empty_capture_beside_others_is_skipped_with_a_warning(tmp_path, capsys):
    """One probe of a run never fired: the other captures still make the profile."""
    header_only = tmp_path / "quiet.txt"
    header_only.write_text("CPU     ID                    FUNCTION:NAME\n")
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(STACKS)
    status, err = run(capsys, stacks, header_only)
    assert status == 0
    assert err == f"tracebridge: warning: {header_only}: holds no stacks and no aggregation values; skipped\n"
    status, err = run(capsys, header_only, header_only)
    assert status == 2
    assert_one_line(err, header_only, None, "holds no stacks")


@pytest.mark.parametrize("command, output", [("fold", "folded stacks"), ("flamegraph", "a flame graph")])
def test_negative_sums_are_not_drawn_as_widths(tmp_path, capsys, command, output):
    capture = tmp_path / "signed.txt"
    capture.write_text("\n  %-50s %16d\n  %-50s %16d\n\n" % ("foo", -5, "bar", 10))
    out = tmp_path / "out"
    status = main([command, str(capture), "--value-kind", "sum", "-o", str(out)])
    assert status == 2 and not out.exists()
    assert_one_line(capsys.readouterr().err, capture, None, f"negative values.*{output}.*tracebridge report")
    assert main(["report", str(capture), "--value-kind", "sum", "-f", "csv"]) == 0
    assert "foo,[unknown],[unknown],-5," in capsys.readouterr().out
