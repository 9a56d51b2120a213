"""Outputs: no text injected from names, atomic replacement, inputs and devices never clobbered."""

from __future__ import annotations

import csv
import io
import os
import shutil
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fixture_paths import MODULES
from tracebridge.support.errors import OutputError
from tracebridge.support.outputs import open_output, write_output

sys.path.insert(0, str(Path(__file__).parents[2] / "fuzz"))

from _harness import check_result, run_cli  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE_FRAMES = ["<script>alert(1)</script>", "]]><script>x</script>", 'q"uote', "a&b<", "*/ end", "x\x1by"]


def test_svg_carries_no_markup_from_frame_names(tmp_path):
    folded = tmp_path / "stacks.folded"
    folded.write_text("".join(f"root;{name} {n + 1}\n" for n, name in enumerate(HOSTILE_FRAMES)))
    svg = tmp_path / "out.svg"
    status, _, err = run_cli(["flamegraph", "--input-format", "folded", str(folded), "-o", str(svg)])
    assert status == 0, err
    root = ET.parse(svg).getroot()
    assert len(root.findall(f".//{SVG}script")) == 1
    text = "".join(root.itertext())
    for name in HOSTILE_FRAMES[:-1]:
        assert name in text  # shown as text, not parsed as markup
    assert "\x1b" not in svg.read_text()


@pytest.fixture(scope="module")
def newline_module(tmp_path_factory) -> Path:
    if shutil.which("objcopy") is None:
        pytest.skip("needs GNU objcopy")
    path = tmp_path_factory.mktemp("evil") / "evil.ko"
    subprocess.run(["objcopy", "--redefine-sym=rem_attach=evil\nffffffff80000000 ffffffff8fffffff pwned",
                    "--redefine-sym=rem_intr=esc\x1b[2J", str(MODULES / "rem_legacy_fp.ko"), str(path)], check=True)
    return path


@pytest.mark.parametrize("argv", [["symmap", "--base", "evil.ko=ffffffff82000000"], ["symmap", "-f", "perf", "--base",
                                  "evil.ko=ffffffff82000000"], ["symbols"], ["gen-probes", "-t", "flow"]])
def test_text_outputs_gain_no_lines_from_names(newline_module, argv):
    status, out, err = run_cli([*argv[:1], str(newline_module), *argv[1:]])
    assert status == 0, err
    assert "pwned" in out and "\x1b" not in out
    assert not any(line.lstrip("# ").startswith("ffffffff80000000") for line in out.splitlines())


@pytest.mark.parametrize("command, raw", [("symmap", "symbol"), ("symbols", "name")])
def test_csv_keeps_raw_names_inside_quotes(newline_module, command, raw):
    """CSV and JSON carry the raw symbol too (byte-exact data), quoted: one record per function still."""
    extra = ["--base", "evil.ko=ffffffff82000000"] if command == "symmap" else []
    status, out, err = run_cli([command, str(newline_module), "-f", "csv", *extra])
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert len({len(row) for row in rows}) == 1
    assert any(row[rows[0].index(raw)].startswith("evil\nffffffff80000000") for row in rows[1:])


def test_device_output_is_written_into_not_replaced(tmp_path):
    """`-o /dev/null` as root must not rename a regular file over the device node: a FIFO stands in."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_output(fifo, "stacks 1\n")
    reader.join(10)
    assert received == ["stacks 1\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.folded"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), open_output(target) as out:
        out.write("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.folded"]  # no temporary file left behind


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_an_input_is_never_overwritten_even_through_a_link(tmp_path, link):
    capture = tmp_path / "capture.folded"
    capture.write_text("a;b 1\n")
    alias = tmp_path / "alias.folded"
    (os.link if link == "hard" else os.symlink)(capture, alias)
    status, _, err = run_cli(["fold", str(capture), "-o", str(alias)])
    check_result(status, err)
    assert status == 2 and "refusing to overwrite an input" in err
    assert capture.read_text() == "a;b 1\n"
    with pytest.raises(OutputError):
        write_output(alias, "x", inputs=[capture])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux, FreeBSD)")
@pytest.mark.parametrize("argv", [
    ["gen-probes", "if_rem.ko"],
    ["symbols", "if_rem.ko", "--format", "json"],
    ["symbols", "if_rem.ko"],
])
def test_standard_output_on_a_full_disk_is_one_line(argv):
    """ENOSPC on standard output is the system's refusal, not a crash: one line, status 1, no traceback."""
    examples = Path(__file__).parents[2] / "examples"
    argv = [str(examples / word) if word.endswith(".ko") else word for word in argv]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "tracebridge", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 1, done.stderr
    assert done.stderr == "tracebridge: No space left on device\n"
