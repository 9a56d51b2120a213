"""``tracebridge record`` with stand-in tools writes a bundle that report, flamegraph and fold read whole."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

import world
from libpmcstat_emulation import KernelProcess
from standin_target import MODULE, MODULE_NAME, Target, install_target
from tracebridge.image.elf import open_module
from tracebridge.readers.bundle import Manifest, sha256_of
from tracebridge.cli import main

NAMES = world.rustfilt(MODULE_NAME)
# Fast settings: the stand-ins start in milliseconds, and the workload is short.
QUICK = ["--settle", "0.2", "--interval", "0.1"]


def expected_stacks(leaf_in_module: bool) -> set[str]:
    """The world's stacks as folded text (root first), named by readelf + rustfilt, not by tracebridge."""
    stacks = set()
    for frames, _ in world.STACKS:
        if leaf_in_module and frames[0][0] != "module":
            continue
        stacks.add(";".join(NAMES[symbol] if image == "module" else symbol
                            for image, symbol, _ in reversed(frames)))
    return stacks


def folded(capsys, bundle) -> dict[str, int]:
    capsys.readouterr()
    assert main(["fold", str(bundle)]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines}


@dataclass
class Recorded:
    run: Path
    machine: Target
    status: int
    stderr: str


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Recorded:
    """One DTrace recording, shared by the tests that only read it (or a copy of it)."""
    directory = tmp_path_factory.mktemp("recorded")
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
        machine = install_target(directory, patch)
        run = directory / "run"
        status = main(["record", str(MODULE), "--template", "stack", "-o", str(run), *QUICK,
                       "--", "sleep", "0.3"])
    return Recorded(run, machine, status, stderr.getvalue())


@pytest.fixture
def copied(recorded, tmp_path) -> Path:
    """A copy of the shared bundle, to damage or write next to."""
    return Path(shutil.copytree(recorded.run, tmp_path / "run"))


def test_dtrace_bundle_is_read_by_fold_report_and_flamegraph(recorded, tmp_path, capsys):
    run = recorded.run
    assert recorded.status == 0
    assert "the workload exited" in recorded.stderr and f"tracebridge report {run}" in recorded.stderr

    # What ran: kldstat first (for the base the script needs), then dtrace with the script gen-probes wrote.
    calls = recorded.machine.calls()
    assert calls[3][0] == "dtrace-ready"  # its pid: its handlers were in place before it was signalled
    assert calls[:3] + calls[4:] == [["kldstat", "-v"], ["dtrace", "-V"],
                                     ["dtrace", "-s", "script.d", "-o", "dtrace.out"],
                                     ["dtrace-signal", "SIGINT"]]
    script = (run / "script.d").read_text()
    _, size = world.module_layout(MODULE_NAME)
    assert f"/arg0 >= {world.MODULE_BASE:#x} && arg0 < {world.MODULE_BASE + size:#x}/" in script

    # The stand-in's aggregation: the stacks whose leaf is in the module (the predicate), all named.
    stacks = folded(capsys, run)
    assert set(stacks) == expected_stacks(leaf_in_module=True)
    rx_frame = NAMES[world.RX_FRAME]
    assert stacks[f"fork_exit;taskqueue_run;ether_input;{NAMES[world.RXEOF]};{rx_frame}"] == 40

    assert main(["report", str(run), "--format", "csv"]) == 0
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows[rx_frame]["self"] == "40" and rows[rx_frame]["module"] == f"{MODULE_NAME}.ko"
    assert rows[NAMES[world.WALK]]["self"] == "9"

    svg = tmp_path / "flame.svg"
    assert main(["flamegraph", str(run), "-o", str(svg)]) == 0
    text = svg.read_text()
    assert "rx_frame" in text and "rem::hw::phy::walk" in text
    # The capture's length, from the manifest's times, in the subtitle.
    times = json.loads((run / "manifest.json").read_text())["times"]
    seconds = (datetime.fromisoformat(times["stopped"]) - datetime.fromisoformat(times["traced"])).total_seconds()
    assert f" samples over {seconds:.1f} s</text>" in text


def test_manifest_records_how_the_bundle_was_made(recorded):
    run = recorded.run
    data = json.loads((run / "manifest.json").read_text())
    manifest = Manifest.load(str(run))
    assert data["format"] == "tracebridge-bundle" and data["module"]["base"] == f"{world.MODULE_BASE:#x}"
    assert manifest.mode == "dtrace" and manifest.template == "stack"
    assert manifest.module.sha256 == sha256_of(str(MODULE))
    assert manifest.module.loaded_as == f"/boot/modules/{MODULE_NAME}.ko"
    assert manifest.kernel is not None and manifest.kernel.path == str(world.KERNEL)
    assert manifest.tools["dtrace"]["version"] == "dtrace: Sun D 1.13"
    assert manifest.host["uname"]  # the real uname: the stand-ins do not pretend it
    assert manifest.commands["workload"] == ["sleep", "0.3"]
    assert manifest.commands["gen-probes"][:4] == ["tracebridge", "gen-probes", str(MODULE), "--template"]
    assert manifest.commands["dtrace"][1:] == ["-s", "script.d", "-o", "dtrace.out"]
    assert manifest.tracers["dtrace"].signals == ("SIGINT",) and manifest.tracers["dtrace"].exit_status == 0
    assert manifest.stopped_by == "the workload exited" and manifest.workload_status == 0
    assert all(manifest.times.values())
    files = {f.name: f.role for f in manifest.files}
    assert files == {"cpu.csv": "cpu", "dtrace.out": "profile", "dtrace.stderr": "tool-output",
                     "kldstat.txt": "kldstat", "probes.json": "probe-map", f"{MODULE_NAME}.ko": "module",
                     "script.d": "script"}
    assert (run / f"{MODULE_NAME}.ko").read_bytes() == MODULE.read_bytes()
    # The CPU series has the workload's thread and the machine total.
    series = list(csv.DictReader((run / "cpu.csv").open()))
    assert {row["process"] for row in series} >= {"[cpu]"}


def test_pmc_bundle_names_rust_and_kernel_frames(target, tmp_path, capsys):
    machine = target()
    run = tmp_path / "pmc"
    assert main(["record", str(MODULE), "--pmc", "CPU_CLK_UNHALTED.THREAD_P", "--pmc-rate", "10000",
                 "-o", str(run), *QUICK, "--", "sleep", "0.3"]) == 0
    calls = machine.calls()
    assert calls[1] == ["pmcstat", "-n", "10000", "-S", "CPU_CLK_UNHALTED.THREAD_P", "-O", "pmc.log"]
    assert calls[2][0] == "pmcstat-ready"
    assert calls[3] == ["pmcstat", "-R", "pmc.log", "-o", "pmc.txt"]
    # Kernel PCs are named when asked: the kernel that ran is still where kldstat said, unchanged.
    capsys.readouterr()
    assert main(["fold", str(run), "--bundle-kernel"]) == 0
    stacks = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in capsys.readouterr().out.splitlines()}
    assert set(stacks) == expected_stacks(leaf_in_module=False)
    assert set(folded(capsys, run)) != set(stacks)  # not asked: kernel PCs stay hex
    records = (run / "pmc.txt").read_text().count("callchain ")
    assert sum(stacks.values()) == records > 0
    manifest = Manifest.load(str(run))
    assert manifest.mode == "pmc" and manifest.template is None
    assert manifest.file_with_role("profile") == "pmc.txt"
    assert manifest.commands["pmcstat-print"][1:] == ["-R", "pmc.log", "-o", "pmc.txt"]
    capsys.readouterr()
    assert main(["report", str(run), "--format", "json"]) == 0
    assert NAMES[world.RX_FRAME] in capsys.readouterr().out
    # The root for pmcstat -r: libpmcstat (emulated) finds the image under the full path the module was
    # loaded from, in the kernel directory kldstat -v gave, and names the sampled Rust function.
    loaded_from = world.MODULE_PATHNAME.format(name=MODULE_NAME)
    kernel_dir = str(world.KERNEL.parent)  # the stand-in kldstat's kernel pathname is the test kernel
    assert manifest.commands["pmcstat-root"][-4:] == ["--kernel-dir", kernel_dir, "--loaded-from", loaded_from]
    kernel = KernelProcess(str(run / "pmcroot"), kernel_dir)
    kernel.map_in(loaded_from, world.MODULE_BASE)
    offset = {f.name: f.offset for f in open_module(MODULE).functions}[world.RX_FRAME] + 0x2b
    # One of three instances of Adapter<T>::rx_frame: told apart by its hash.
    instance = NAMES[world.RX_FRAME] + "#" + world.RX_FRAME.split("17h")[1][:8]
    assert kernel.resolve(world.MODULE_BASE + offset)[1].name == instance
    assert "pmcroot/.tracebridge-pmcstat-root" not in [f.name for f in manifest.files]


def test_workload_failure_is_the_exit_status_and_the_bundle_is_complete(target, tmp_path, capsys):
    target()
    run = tmp_path / "run"
    assert main(["record", str(MODULE), "-o", str(run), *QUICK, "--", "sh", "-c", "sleep 0.2; exit 3"]) == 3
    manifest = Manifest.load(str(run))
    assert manifest.workload_status == 3 and manifest.stopped_by == "the workload exited"
    assert manifest.tracers["dtrace"].signals == ("SIGINT",)
    assert set(folded(capsys, run)) == expected_stacks(leaf_in_module=True)


def test_duration_without_workload(target, tmp_path, capsys):
    target()
    run = tmp_path / "run"
    assert main(["record", "-o", str(run), str(MODULE), "--duration", "0.5", *QUICK]) == 0
    manifest = Manifest.load(str(run))
    assert manifest.stopped_by == "the duration was reached" and "workload" not in manifest.commands
    assert set(folded(capsys, run)) == expected_stacks(leaf_in_module=True)


def test_force_writes_into_a_used_directory_and_keeps_other_files(target, tmp_path, capsys):
    target()
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    (run / "dtrace.out").write_text("\n  stale output of an earlier run\n")
    assert main(["record", str(MODULE), "-o", str(run), "--force", *QUICK, "--", "sleep", "0.1"]) == 0
    assert (run / "notes.txt").read_text() == "mine"
    assert "stale" not in (run / "dtrace.out").read_text()
    assert "notes.txt" not in {f.name for f in Manifest.load(str(run)).files}


@pytest.mark.parametrize("mutilate, message", [
    (lambda run: (run / "manifest.json").unlink(), "is a directory without manifest.json"),
    (lambda run: (run / f"{MODULE_NAME}.ko").write_bytes(b"\x7fELF changed"), "its SHA-256 changed"),
    (lambda run: (run / "manifest.json").write_text('{"format": "tracebridge-bundle", "version": 1}'),
     "malformed bundle manifest"),
])
def test_a_damaged_bundle_is_one_line(copied, capsys, mutilate, message):
    mutilate(copied)
    assert main(["fold", str(copied)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_output_must_not_overwrite_the_bundle(copied, capsys):
    run = copied
    before = (run / "dtrace.out").read_text()
    assert main(["fold", str(run), "-o", str(run / "dtrace.out")]) == 2
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert (run / "dtrace.out").read_text() == before


def _with_recorded_debug(run: Path, debug: Path, sha256: str) -> None:
    data = json.loads((run / "manifest.json").read_text())
    data["module"].update(debug=str(debug), debug_sha256=sha256)
    (run / "manifest.json").write_text(json.dumps(data))


def test_fold_inline_uses_the_recorded_debug_file_only_while_it_is_unchanged(recorded, copied, tmp_path, capsys):
    from fixture_paths import MODULES

    # No .ko.debug beside the fixture module when it was recorded: nothing recorded.
    assert Manifest.load(str(recorded.run)).module.debug is None
    # A recorded debug file that has changed since: a warning, and --inline searches elsewhere (finds none).
    changed = tmp_path / "rem.ko.debug"
    changed.write_bytes(b"rebuilt")
    _with_recorded_debug(copied, changed, "0" * 64)
    capsys.readouterr()
    assert main(["fold", str(copied), "--inline"]) == 0
    err = capsys.readouterr().err
    assert "differs from the debug file recorded with the bundle" in err and "no DWARF found" in err
    # The recorded file, unchanged, is the one used: here another module's, which is refused by name.
    other = MODULES / "inl_legacy.ko.debug"
    _with_recorded_debug(copied, other, sha256_of(str(other)))
    assert main(["fold", str(copied), "--inline"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("tracebridge: ") and "inl_legacy.ko.debug: is not the debug file of" in last, last
