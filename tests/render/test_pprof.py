"""`tracebridge fold --format pprof` writes profiles Go's own pprof reads, with the folded output's stacks.

The judge is ``go tool pprof`` (Debian's golang-go; .ci/run installs it):
its ``-raw`` dump of every file is parsed back into stacks of function
names and values, which must equal ``fold``'s folded output of the same
capture, and its ``-top`` must state the same total.  Without Go those
tests skip, saying so.
"""

from __future__ import annotations

import bisect
import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from addr2line_oracle import read_addr2line
from fixture_paths import EXPECTED, MODULES
from tracebridge.cli import main
from tracebridge.profile.labels import INLINED_SUFFIX
from tracebridge.readers.bundle import sha256_of
from tracebridge.readers.folded import split_frames
from tracebridge.render.pprof_proto import profile_pb2

ROOT = Path(__file__).parent.parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "examples"
DTRACE_BASE = "ffffffff82e1c000"  # where tests/data/dtrace's captures have rem_legacy_fp.ko

#: Every real-format capture of the tests and examples, with the options that name its frames.
CAPTURES = {
    "rem-stack": [EXAMPLES / "if_rem.stack.txt", "--module", EXAMPLES / "if_rem.ko",
                  "--kldstat", EXAMPLES / "kldstat.txt"],
    "rem-stack-offsets": [EXAMPLES / "if_rem.stack.txt", "--module", EXAMPLES / "if_rem.ko",
                          "--kldstat", EXAMPLES / "kldstat.txt", "--include-offset"],
    "rem-bundle": [EXAMPLES / "run"],
    "rem-count": [EXAMPLES / "if_rem.count.txt"],
    "rem-latency-sum": [EXAMPLES / "if_rem.latency.txt", "--aggregation", "3", "--value-kind", "avg,sum"],
    "rem-flow": [EXAMPLES / "if_rem.flow.txt", "--module", EXAMPLES / "if_rem.ko"],
    "rem-pmc-log": [EXAMPLES / "if_rem.pmc.txt", "--module", EXAMPLES / "if_rem.ko",
                    "--kldstat", EXAMPLES / "kldstat.txt"],
    "em-stack": [EXAMPLES / "if_em.stack.txt"],
    "em-pmc-graph": [EXAMPLES / "if_em.pmc.graph"],
    "freebsd-hex": [DATA / "dtrace" / "freebsd-stack-hex.txt", "--module", MODULES / "rem_legacy_fp.ko",
                    "--base", DTRACE_BASE],
    "freebsd-traced": [DATA / "dtrace" / "freebsd-traced-header.txt"],
    "illumos-ustack": [DATA / "dtrace" / "illumos-stack-ustack.txt"],
    "macos-ustack": [DATA / "dtrace" / "macos-ustack.txt"],
    "probefunc-count": [DATA / "dtrace" / "probefunc-count.txt"],
    "pmc-multi-image": [DATA / "pmcstat" / "multi-image.graph", "--module", MODULES / "rem_legacy_fp.ko"],
    "pmc-mangled": [DATA / "pmcstat" / "multi-image.graph", "--no-demangle"],
    "inl-inline": [EXAMPLES / "inl.stack.txt", "--module", EXAMPLES / "inl.ko", "--base", "ffffffff82a40000",
                   "--inline"],
}

GO = shutil.which("go")
needs_go = pytest.mark.skipif(GO is None, reason="Go's pprof is not installed (Debian: apt-get install golang-go); "
                                                  "the pprof files are not checked by `go tool pprof`")

# `go tool pprof -raw`: "  ID: 0xADDR M=N name file:line s=start(system_name)"; inlined lines follow
# with 13 spaces where the id and address were.
_LOCATION = re.compile(r"^(?:\s*(\d+): 0x[0-9a-f]+ (?:M=\d+ )?(?:\[F\] )?| {13})(.*) (\S*):(-?\d+) s=-?\d+(?:\((.*)\))?$")


def write(tmp_path: Path, name: str, fmt: str = "pprof") -> Path:
    out = tmp_path / f"{name}.{fmt}"
    assert main(["fold", *map(str, CAPTURES[name]), "--format", fmt, "-o", str(out)]) == 0
    return out


def folded(capsys, arguments: list) -> dict[tuple[str, ...], int]:
    assert main(["fold", *map(str, arguments)]) == 0
    stacks: dict[tuple[str, ...], int] = {}
    for line in capsys.readouterr().out.splitlines():
        stack, _, count = line.rpartition(" ")
        # An inlined frame's _[i] is folded text's mark; pprof marks its inlined lines itself.
        stacks[tuple(frame.removesuffix(INLINED_SUFFIX) for frame in split_frames(stack))] = int(count)
    return stacks


def go_pprof(*args: str | Path) -> str:
    home = os.environ.get("TMPDIR", "/tmp")  # pprof wants a home for its history and downloads
    result = subprocess.run([GO, "tool", "pprof", *map(str, args)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HOME": home, "PPROF_TMPDIR": home})
    assert result.returncode == 0, result.stderr
    return result.stdout


def raw_stacks(text: str) -> tuple[list[str], dict[tuple[str, ...], int]]:
    """The sample types and the root-first stacks of names (inlined lines expanded) of a ``-raw`` dump."""
    sections = re.split(r"^(Samples:|Locations|Mappings)$", text, flags=re.M)
    parts = dict(zip(sections[1::2], sections[2::2]))
    names: dict[int, list[str]] = {}
    current = 0
    for line in parts["Locations"].strip("\n").splitlines():
        match = _LOCATION.match(line)
        assert match, line
        if match.group(1):
            current = int(match.group(1))
            names[current] = []
        names[current].append(match.group(2))  # innermost (inlined) first, as pprof lists them
    sample_lines = parts["Samples:"].strip().splitlines()
    stacks: dict[tuple[str, ...], int] = {}
    for line in sample_lines[1:]:
        value, _, ids = line.partition(":")
        if not value.strip().isdigit():  # a label line under its sample (`cpu:[1]`)
            continue
        stack = tuple(n for i in reversed(ids.split()) for n in reversed(names[int(i)]))
        stacks[stack] = stacks.get(stack, 0) + int(value)
    return sample_lines[0].split(), stacks


@needs_go
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_go_pprof_reads_the_folded_stacks(tmp_path, capsys, name):
    path = write(tmp_path, name)
    # pprof demangles a function whose name is its system name (--no-demangle): not here
    sample_types, stacks = raw_stacks(go_pprof("-raw", "-symbolize=none", path))
    expected = folded(capsys, CAPTURES[name])
    assert stacks == expected
    assert len(sample_types) == 1
    if sample_types[0].endswith("/count"):  # -top scales time units; counts it prints as they are
        total = sum(expected.values())
        assert re.search(rf"of {total} total", go_pprof("-top", path))


@needs_go
def test_go_pprof_demangles_the_mangled_names_as_tracebridge_does(tmp_path, capsys):
    """With --no-demangle, pprof's own demangler (Go's, independent of rustc-demangle) names the frames."""
    _, stacks = raw_stacks(go_pprof("-raw", write(tmp_path, "pmc-mangled")))
    assert stacks == folded(capsys, [DATA / "pmcstat" / "multi-image.graph"])


@needs_go
@pytest.mark.parametrize(("name", "sample_type"), [
    ("rem-stack", "samples/count"), ("rem-pmc-log", "samples/count"), ("em-pmc-graph", "samples/count"),
    ("rem-flow", "calls/count"), ("rem-bundle", "samples/count"), ("rem-latency-sum", "sum/count"),
])
def test_sample_types(tmp_path, name, sample_type):
    assert raw_stacks(go_pprof("-raw", write(tmp_path, name)))[0] == [sample_type]


@needs_go
def test_record_log_samples_carry_their_cpu(tmp_path):
    """Each `callchain PID 0xPMCID CPU NPC` record's CPU becomes a `cpu` label: `go tool pprof -tags`
    counts as many samples per CPU as the capture has records."""
    records = re.findall(r"^callchain\s+(-?\d+) 0x[0-9a-f]+ (\d+) ", (EXAMPLES / "if_rem.pmc.txt").read_text(),
                         flags=re.M)
    per_cpu: dict[str, int] = {}
    for _, cpu in records:
        per_cpu[cpu] = per_cpu.get(cpu, 0) + 1
    assert len(per_cpu) > 1 and all(pid == "-1" for pid, _ in records)  # no process: no pid label
    tags = go_pprof("-tags", write(tmp_path, "rem-pmc-log"))
    shown = {cpu: int(float(count)) for count, cpu in re.findall(r"^\s+([0-9.]+) \([0-9.]+%\): (\d+)$", tags, flags=re.M)}
    assert shown == per_cpu and "pid" not in tags


def test_bundle_templates_name_their_units(tmp_path):
    """A bundle's template says what its numbers are: count() at entry probes counts calls, the
    latency template's sum() nanoseconds."""
    for template, source, options, sample_type in [
        ("count", "if_rem.count.txt", [], ("calls", "count")),
        ("latency", "if_rem.latency.txt", ["--aggregation", "3", "--value-kind", "avg,sum"],
         ("time", "nanoseconds")),
    ]:
        bundle = tmp_path / template
        shutil.copytree(EXAMPLES / "run", bundle, symlinks=False)
        manifest = (bundle / "manifest.json").read_text().replace('"template": "stack"', f'"template": "{template}"')
        (bundle / "manifest.json").write_text(manifest)
        (bundle / "dtrace.out").write_bytes((EXAMPLES / source).read_bytes())
        out = tmp_path / f"{template}.pb.gz"
        assert main(["fold", str(bundle), *options, "-f", "pprof", "-o", str(out)]) == 0
        message = decode(out)
        strings = message.string_table
        assert [(strings[t.type], strings[t.unit]) for t in message.sample_type] == [sample_type]


def decode(path: Path) -> profile_pb2.Profile:
    message = profile_pb2.Profile()
    message.ParseFromString(gzip.decompress(path.read_bytes()))
    return message


def test_mapping_function_and_address_fields(tmp_path):
    """Functions carry the demangled and mangled names, the mapping the module file and its SHA-256,
    and each location's address plus kldstat's load address is a PC the capture printed."""
    message = decode(write(tmp_path, "rem-stack"))
    strings = message.string_table
    assert strings[0] == ""
    mappings = {m.id: m for m in message.mapping}
    module = next(m for m in message.mapping if strings[m.filename].endswith("if_rem.ko"))
    assert strings[module.build_id] == sha256_of(EXAMPLES / "if_rem.ko")
    assert strings[mappings[2].filename] == "kernel" and mappings[2].build_id == 0
    functions = {f.id: (strings[f.name], strings[f.system_name]) for f in message.function}
    assert ("rem::em::tx::txeof", "_ZN3rem2em2tx5txeof17h6b95e952f321211eE") in functions.values()
    base = 0xffffffff82a1c000
    printed = {int(pc, 16) for pc in re.findall(r"^\s+(0x[0-9a-f]+)$", (EXAMPLES / "if_rem.stack.txt").read_text(),
                                                 flags=re.M)}
    in_module = [location for location in message.location if location.mapping_id == module.id]
    assert in_module and all(len(location.line) == 1 for location in message.location)
    assert {base + location.address for location in in_module} == printed


def test_same_input_same_bytes(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert write(first, "rem-pmc-log").read_bytes() == write(second, "rem-pmc-log").read_bytes()


def test_pprof_needs_an_output_file(capsys):
    assert main(["fold", str(EXAMPLES / "if_rem.count.txt"), "-f", "pprof"]) == 2
    assert "give it with -o FILE" in capsys.readouterr().err


def test_fractional_weights_are_refused(tmp_path, capsys):
    source = tmp_path / "fractions.folded"
    source.write_text("a;b 1.5\n")
    assert main(["fold", str(source), "-f", "pprof", "-o", str(tmp_path / "out.pb.gz")]) == 2
    assert "whole numbers" in capsys.readouterr().err
    assert not (tmp_path / "out.pb.gz").exists()


def test_committed_module_is_what_protoc_writes(tmp_path):
    """profile_pb2.py is generated: scripts/generate_pprof_proto.sh must reproduce it byte for byte."""
    pytest.importorskip("grpc_tools", reason="grpcio-tools (protoc) is not installed")
    copy = tmp_path / "repo"
    (copy / "tracebridge" / "render" / "pprof_proto").mkdir(parents=True)
    (copy / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "generate_pprof_proto.sh", copy / "scripts")
    proto = Path("tracebridge") / "render" / "pprof_proto" / "profile.proto"
    shutil.copy(ROOT / proto, copy / proto)
    subprocess.run(["sh", str(copy / "scripts" / "generate_pprof_proto.sh")], check=True,
                   env={**os.environ, "PYTHON": sys.executable})
    generated = proto.with_name("profile_pb2.py")
    assert (copy / generated).read_text() == (ROOT / generated).read_text()


def test_source_lines_from_dwarf_equal_addr2line(tmp_path):
    """A module with DWARF (found beside it, as `lookup` finds it) gives each location the file and
    line binutils' addr2line gives for that address (a caller's at its return address - 1), for the
    function the location names: the outermost frame of the inline chain."""
    oracle = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    addresses = sorted(a for a, chain in oracle.items() if chain and chain[-1][1] and chain[-1][2])[::7]
    base = 0xffffffff82e00000
    capture = tmp_path / "inl.stack.txt"
    everything = sorted(oracle)
    # A return address inside the instruction at A, in the same function: A's next instruction is too.
    callers = [a for a, after in zip(everything, everything[1:])
               if a in addresses and after > a + 1 and oracle[after][-1][0] == oracle[a][-1][0]]
    stacks = [[leaf] for leaf in addresses] + [[leaf, caller + 1] for leaf, caller in zip(addresses, callers)]
    assert len(callers) > 10
    capture.write_text("".join("\n" + "".join(f"              {base + pc:#x}\n" for pc in stack) + "                1\n"
                               for stack in stacks))
    out = tmp_path / "inl.pb.gz"
    assert main(["fold", str(capture), "--module", str(MODULES / "inl_legacy.ko"), "--base", f"{base:x}",
                 "-f", "pprof", "-o", str(out)]) == 0
    message = decode(out)
    strings = message.string_table
    functions = {f.id: f for f in message.function}
    (module,) = [m for m in message.mapping if strings[m.filename].endswith("inl_legacy.ko")]
    assert module.has_line_numbers and module.has_filenames
    leaves = {stack[0] for stack in stacks}
    checked = 0
    for location in message.location:
        (line,) = location.line
        expected = oracle[location.address if location.address in leaves else location.address - 1][-1]
        assert (strings[functions[line.function_id].filename], line.line) == (expected[1], expected[2])
        checked += 1
    assert checked == len({pc for stack in stacks for pc in stack}) > 30


def test_inlined_frames_are_lines_of_one_location(tmp_path):
    """With --inline, the inline chain at each address is one location's lines, innermost first, with
    the functions, files and lines binutils' addr2line -i gives there (a caller's at its address - 1)."""
    oracle = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    message = decode(write(tmp_path, "inl-inline"))
    strings = message.string_table
    functions = {f.id: f for f in message.function}
    leaves = {sample.location_id[0] for sample in message.sample}
    starts = sorted(oracle)
    (module,) = [m for m in message.mapping if strings[m.filename].endswith("inl.ko")]
    assert module.has_inline_frames
    inlined = 0
    for location in message.location:
        if location.mapping_id != module.id:
            continue
        # A return address - 1 lies inside the call instruction: addr2line's answer for where it starts.
        pc = location.address if location.id in leaves else location.address - 1
        expected = oracle[starts[bisect.bisect_right(starts, pc) - 1]]
        # pprof keeps one file per function, not per line: compared where the line is known.
        got = [(strings[functions[line.function_id].filename] if line.line else None, line.line)
               for line in location.line]
        assert got == [(file if line else None, line or 0) for _, file, line in expected]
        inlined += len(location.line) > 1
    assert inlined > 10


@needs_go
def test_go_pprof_shows_inlined_frames_as_inlined(tmp_path):
    traces = go_pprof("-traces", write(tmp_path, "inl-inline"))
    assert "core::iter::traits::iterator::Iterator::fold (inline)" in traces
    assert "   inl_drain\n" in traces  # the function holding them is a real frame

