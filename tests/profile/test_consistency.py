"""A capture joined to the wrong module or load address is said so; the right one stays silent.

The captures are the bundled examples (their caller frames are return
addresses after real calls of ``if_rem.ko``, their leaves real instruction
starts); ``if_rem_merged.ko`` is another build of the same code (``.text``
merged by the kernel linker script), so the same addresses mean other places.
The instruction decoding is checked against GNU objdump.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tracebridge.cli import main
from tracebridge.image.elf import open_module
from tracebridge.profile.consistency import decode

EXAMPLES = Path(__file__).parents[2] / "examples"
STACKS = EXAMPLES / "if_rem.stack.txt"
PMC = EXAMPLES / "if_rem.pmc.txt"
RIGHT = EXAMPLES / "if_rem.ko"
MERGED = EXAMPLES / "if_rem_merged.ko"
BASE = "ffffffff82a1c000"


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def top_function(report: str) -> str:
    """The name in the first row of a report table."""
    row = next(line for line in report.splitlines() if line.startswith("│"))
    return row.split("│")[1].strip()


def test_right_module_and_base_are_silent_and_exact(capsys):
    status, out, err = run(capsys, "report", STACKS, "--module", RIGHT, "--base", BASE)
    assert (status, err) == (0, "")
    assert top_function(out) == "rem::em::rx::Adapter<T>::rx_frame"


@pytest.mark.parametrize("command", ["report", "fold", "flamegraph"])
def test_another_build_warns_naming_the_module(capsys, tmp_path, command):
    output = ["-o", tmp_path / "out"] if command == "flamegraph" else []
    status, _, err = run(capsys, command, STACKS, "--module", MERGED, "--base", BASE, *output)
    assert status == 0
    (warning,) = err.splitlines()
    assert warning.startswith(f"tracebridge: warning: {MERGED}: the capture does not fit if_rem_merged.ko: ")
    assert re.search(r"\b24 of 24 caller frames are not after a call instruction", warning)
    assert "the .ko of that run" in warning


@pytest.mark.parametrize("base", ["ffffffff82a1c010", "ffffffff82a1c100"])
def test_a_base_slightly_off_warns(capsys, base):
    status, _, err = run(capsys, "report", STACKS, "--module", RIGHT, "--base", base)
    assert status == 0
    assert "the capture does not fit if_rem.ko" in err and "caller frames are not after a call" in err


def test_a_base_far_off_warns_that_nothing_falls_inside(capsys):
    status, _, err = run(capsys, "fold", STACKS, "--module", RIGHT, "--base", "ffffffff82b1c000")
    assert status == 0
    (warning,) = err.splitlines()
    assert "none of the 67 unnamed kernel addresses in the capture" in warning
    assert "falls inside if_rem.ko at 0xffffffff82b1c000" in warning and "kldstat" in warning


def test_strict_turns_the_warning_into_exit_2(capsys):
    status, out, err = run(capsys, "report", STACKS, "--module", MERGED, "--base", BASE, "--strict")
    assert status == 2 and out == ""
    assert err.splitlines()[-1] == "tracebridge: --strict: the capture does not fit if_rem_merged.ko " \
                                   "(see the warning above)"
    assert run(capsys, "report", STACKS, "--module", RIGHT, "--base", BASE, "--strict")[0] == 0


def test_verbose_prints_the_evidence_per_module(capsys):
    status, _, err = run(capsys, "report", STACKS, "--module", RIGHT, "--base", BASE, "-v")
    assert status == 0
    assert err == (f"tracebridge: {RIGHT} (if_rem.ko at 0xffffffff82a1c000): 67 of 67 addresses in functions; "
                   "25 of 25 caller frames after a call; 45 of 45 leaf PCs on instruction starts\n")


def test_pmcstat_log_with_the_right_build_is_silent(capsys):
    status, out, err = run(capsys, "report", PMC, "--module", RIGHT)
    assert (status, err) == (0, "")
    assert top_function(out) == "rem::em::rx::Adapter<T>::rx_frame"


def test_pmcstat_log_with_another_build_warns(capsys, tmp_path):
    other = tmp_path / "if_rem.ko"  # the other build under the name the log maps in
    shutil.copyfile(MERGED, other)
    status, _, err = run(capsys, "report", PMC, "--module", other)
    assert status == 0
    (warning,) = err.splitlines()
    assert f"{other}: the capture does not fit if_rem.ko: 24 of 24 caller frames are not after a call" in warning
    assert run(capsys, "pmc", "resolve", PMC, "-m", other, "-q", "--strict")[0] == 2


def test_pmcstat_log_that_maps_no_such_module_says_so(capsys):
    status, _, err = run(capsys, "report", PMC, "--module", MERGED)
    assert status == 0
    assert "the log maps no module of that name (it maps kernel, dtrace.ko, if_rem.ko)" in err


def test_pmcstat_log_against_a_given_base_says_which_is_wrong(capsys):
    _, _, err = run(capsys, "report", PMC, "--module", RIGHT, "--base", "ffffffff82a1d000")
    assert "the log's map-in record loads it at 0xffffffff82a1c000, not at the given 0xffffffff82a1d000" in err


def test_bundle_of_the_right_build_is_silent(capsys):
    status, _, err = run(capsys, "report", EXAMPLES / "run")
    assert (status, err) == (0, "")


def _objdump_instructions(path: Path, symbol: str) -> list[tuple[int, str]]:
    """(offset in the function, mnemonic) per instruction, as GNU objdump decodes the function's section."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", f".text.{symbol}", str(path)],
                          capture_output=True, text=True, check=True).stdout
    rows = re.findall(r"^\s+([0-9a-f]+):\s+(\S+)", text, re.M)
    return [(int(offset, 16), mnemonic) for offset, mnemonic in rows]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="GNU objdump is not installed")
def test_instruction_starts_and_calls_match_objdump():
    image = open_module(RIGHT)
    checked = 0
    for function in image.functions:
        if not function.section.startswith(".text.") or function.section != f".text.{function.name}":
            continue
        code = image.code(function)
        rows = _objdump_instructions(RIGHT, function.name)
        rows = [(offset, mnemonic) for offset, mnemonic in rows if offset < len(code)]
        decoded = decode(code, 64)
        assert sorted(decoded.starts) == [offset for offset, _ in rows]
        ends = [offset for offset, _ in rows[1:]] + [len(code)]
        assert sorted(decoded.call_ends) == [end for (_, mnemonic), end in zip(rows, ends) if mnemonic == "call"]
        checked += bool(decoded.call_ends)
    assert checked >= 10


def test_frames_dtrace_named_are_checked_against_the_file(capsys, tmp_path):
    # Sizes from `readelf -sW examples/if_rem.ko`: rem_load 138, rem_intr 144, rem_ioctl 52.
    capture = tmp_path / "named.txt"
    entries = [["if_rem.ko`rem_load+0x2f", "kernel`linker_load_module+0x9a"],
               ["if_rem.ko`rem_intr+0x1c0", "kernel`ithread_loop+0x1a6"],
               ["if_rem.ko`rem_poll+0x10", "kernel`ether_input+0x69"],
               ["if_rem.ko`rem_ioctl", "kernel`ifioctl+0x9e2"]]
    capture.write_text("".join("\n" + "".join(f"              {f}\n" for f in frames) + "                2\n"
                               for frames in entries))
    status, _, err = run(capsys, "fold", capture, "--module", RIGHT, "-v")
    assert status == 0
    summary, warning = err.splitlines()
    assert summary.endswith("2 of 4 named frames inside their function")
    assert ("2 of 4 frames the capture names in it name no function of the file at that offset "
            "(not in the file: rem_poll)") in warning and "another build" in warning
    right = tmp_path / "right.txt"
    right.write_text("".join("\n" + "".join(f"              {f}\n" for f in frames) + "                2\n"
                             for frames in (entries[0], entries[3])))
    assert run(capsys, "fold", right, "--module", RIGHT)[2] == ""


def test_pmcstat_callgraph_nodes_of_another_build_warn(capsys, tmp_path):
    """pmcstat -G names a module's functions from its symbols: another build's file lacks them."""
    graph = Path(__file__).parents[1] / "data" / "pmcstat" / "multi-image.graph"
    modules = Path(__file__).parents[1] / "fixtures" / "modules"
    status, _, err = run(capsys, "report", graph, "--module", modules / "rem_legacy_fp.ko")
    assert status == 0 and "does not fit" not in err
    other = tmp_path / "rem_legacy_fp.ko"  # the v0 build of the same code, under the name the graph uses
    shutil.copyfile(modules / "rem_v0_fp.ko", other)
    status, _, err = run(capsys, "report", graph, "--module", other, "--strict")
    assert status == 2
    assert (f"{other}: the capture does not fit rem_legacy_fp.ko: 4 of 4 frames the capture names in it name no "
            "function of the file at that offset (not in the file: ") in err
