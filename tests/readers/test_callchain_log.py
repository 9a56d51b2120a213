"""`pmcstat -R -o` record logs: every module PC lands in the right function.

The expected function of each PC comes from GNU readelf's text
(tests/fixtures/expected/, tests/data/pmcstat/kernel.readelf-s.txt) and a
layout computed here from it, never from tracebridge's own reading of the
ELF files.  The logs are printed with pmcstat's own formats.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import pytest

import readelf_text
import real_pcs
from addr2line_oracle import read_addr2line
from fixture_paths import EXPECTED, MODULE_NAMES, MODULES
from pmcstat_text import callchain, entry, map_in, map_out
from tracebridge.cli import main
from tracebridge.readers.folded import split_frames
from tracebridge.readers.placement import build_space, open_images
from tracebridge.readers.pmcstat import read_callchain_log
from tracebridge.profile.model import Profile
from tracebridge.profile.resolve import ResolutionCounts
from tracebridge.render.pprof_proto import profile_pb2

DATA = Path(__file__).parents[1] / "data" / "pmcstat"
KERNEL = DATA / "kernel"
PMCID = 0x20000
EVENT = "cpu_clk_unhalted.thread_p"
USER_PCS = [0x4007F3, 0x400A10, 0x800A1C2F0]


def module_base(name: str) -> int:
    return 0xC4A1C000 if "i386" in name else 0xFFFFFFFF82A1C000


def expected_functions(name: str, base: int) -> list[tuple[int, int, set[str]]]:
    """``(address, size, names at that address)`` per function, from readelf text only."""
    secs = readelf_text.sections(EXPECTED / f"{name}.readelf-S.txt")
    by_index = {s.index: s for s in secs}
    relocatable = all(s.addr == 0 for s in secs)
    placed, _ = readelf_text.kernel_layout(secs, "i386" if "i386" in name else "amd64")
    low = min(s.addr for s in secs if "A" in s.flags and s.size) // 4096 * 4096
    at: dict[int, tuple[int, set[str]]] = {}
    for sym in readelf_text.symbols(EXPECTED / f"{name}.readelf-s.txt"):
        if sym.type not in ("FUNC", "IFUNC") or not sym.ndx.isdigit():
            continue
        section = by_index[int(sym.ndx)]
        if "A" not in section.flags or not section.size:
            continue
        address = base + (placed[section.index] + sym.value if relocatable else sym.value - low)
        size, names = at.setdefault(address, (sym.size, set()))
        names.add(sym.name)
        at[address] = (max(size, sym.size), names)
    return sorted((address, size, names) for address, (size, names) in at.items())


def kernel_functions() -> dict[str, tuple[int, int]]:
    return {s.name: (s.value, s.size) for s in readelf_text.symbols(DATA / "kernel.readelf-s.txt")
            if s.type == "FUNC"}


def build_log(name: str, functions: list[tuple[int, int, set[str]]], with_kernel: bool) -> tuple[str, list]:
    """A log as `pmcstat -R log -o` prints it, and the stacks it holds (leaf first, as expected names)."""
    base = module_base(name)
    em_base = base + 0x100000
    kernel = kernel_functions()
    kernel_pc = {n: kernel[n][0] + kernel[n][1] // 2 for n in ("taskqueue_run", "fork_exit", "ether_input")}
    text = [
        entry("initlog", '0x9030000 "INTEL_SKYLAKE"'),
        entry("allocate", f'{PMCID:#x} "{EVENT}" 0x14010'),
        map_in(-1, 0xFFFFFFFF80200000, "/boot/kernel/kernel"),
        map_in(-1, base, f"/boot/modules/{name}.ko"),
        map_in(-1, em_base, "/boot/kernel/if_em.ko"),
        entry("thr-create", '100123 12 0 "em0 taskq"'),
        map_in(1234, 0x400000, "/usr/local/bin/iperf3"),
        entry("exec", f'{PMCID:#x} 1234 0x4010a0 "/usr/local/bin/iperf3"'),
        "unknown event (type 29).\n",
        "123456789012 " + entry("ibs-fetch", "0x1 0x2 0x3"),   # a newer record type, behind a timestamp
    ]
    stacks = []
    # Real PCs (as a run of this module could log them): each leaf on an instruction start, each
    # caller after a call instruction of a function that calls, so the log fits the module.
    code = real_pcs.functions(name)
    callers = [f for f in functions if code[f[0] - base].caller(f[0] - base) is not None]
    for index, (address, size, names) in enumerate(functions):
        caller_address, _, caller_names = callers[index % len(callers)]
        leaf = base + code[address - base].leaf(address - base + (size * 3) // 4)
        caller = base + code[caller_address - base].caller(caller_address - base + index)
        pcs = [leaf, caller]
        expect = [names, caller_names]
        if with_kernel:
            pcs += [kernel_pc["taskqueue_run"], kernel_pc["fork_exit"]]
            expect += [{"taskqueue_run"}, {"fork_exit"}]
        text.append(callchain(0, PMCID, index % 4, pcs))
        stacks.append(expect)
    # A PC inside a module tracebridge has no ELF for, then after that module is gone.
    text.append(callchain(0, PMCID, 1, [em_base + 0x1A2B0, kernel_pc["ether_input"]]))
    stacks.append([f"if_em.ko`{em_base + 0x1A2B0:#x}", {"ether_input"} if with_kernel else "kernel`0x"])
    text.append(map_out(-1, em_base, em_base + 0x40000))
    text.append(callchain(0, PMCID, 1, [em_base + 0x1A2B0]))
    stacks.append([f"{em_base + 0x1A2B0:#x}"])
    # A user-mode callchain: user images are not read, PCs stay hex.
    text.append(callchain(1234, PMCID, 2, USER_PCS, user=True))
    stacks.append([f"{pc:#x}" for pc in USER_PCS])
    text.append(entry("closelog"))
    return "".join(text), stacks


def read(tmp_path: Path, name: str, with_kernel: bool = True):
    functions = expected_functions(name, module_base(name))
    text, stacks = build_log(name, functions, with_kernel)
    log = tmp_path / "pmc.txt"
    log.write_text(text)
    images = open_images([MODULES / f"{name}.ko"], KERNEL if with_kernel else None)
    space = build_space(images, {}, require_all=False)
    counts = ResolutionCounts()
    profile = read_callchain_log(log, space, images, counts=counts)
    return profile, stacks, counts, functions


def matches(frame, expected) -> bool:
    if isinstance(expected, set):
        return frame.resolved and frame.symbol in expected
    return frame.name.startswith(expected)


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_every_module_pc_resolves_to_its_function(tmp_path, name):
    with_kernel = "i386" not in name   # the stand-in kernel is amd64
    profile, stacks, counts, functions = read(tmp_path, name, with_kernel)
    got = Counter()
    for frames, weight in profile:
        got[tuple(frames)] += weight
    assert sum(got.values()) == len(stacks)
    unmatched = list(stacks)
    for frames, weight in got.items():
        leaf_first = list(reversed(frames))
        for _ in range(int(weight)):
            hit = next((s for s in unmatched if len(s) == len(leaf_first)
                        and all(matches(f, e) for f, e in zip(leaf_first, s))), None)
            assert hit is not None, [f.name for f in leaf_first]
            unmatched.remove(hit)
    assert not unmatched
    kernel_pcs = 2 * len(functions) + 1 if with_kernel else 0
    module_pcs = 2 * len(functions)
    assert counts.resolved == module_pcs + kernel_pcs
    assert counts.by_module[f"{name}.ko"] == module_pcs
    assert counts.in_module == 1 + (0 if with_kernel else 1)     # if_em.ko`0x... (and kernel`0x...)
    assert counts.outside == 1 + len(USER_PCS)
    assert profile.metadata.event == EVENT


def test_per_function_section_pcs_are_not_pmcstats_answer(tmp_path):
    """pmcstat puts every Rust function at offset 0; the layout does not."""
    profile, _, _, functions = read(tmp_path, "rem_legacy_fp")
    rust = [f for f in functions if any(n.startswith("_ZN") for n in f[2])]
    base = module_base("rem_legacy_fp")
    assert len({address for address, _, _ in rust}) == len(rust) and min(a for a, _, _ in rust) > base
    named = {f.symbol for f in profile.frames if f.module == "rem_legacy_fp.ko"}
    assert all(names & named for _, _, names in rust)


def test_cli_writes_folded_stacks_and_a_summary(tmp_path, capsys):
    functions = expected_functions("rem_legacy_fp", module_base("rem_legacy_fp"))
    text, _ = build_log("rem_legacy_fp", functions, True)
    log = tmp_path / "pmc.txt"
    log.write_text(text)
    out = tmp_path / "out.folded"
    assert main(["pmc", "resolve", str(log), "-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel", str(KERNEL),
                 "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "resolved to functions" in err and "rem_legacy_fp.ko:" in err
    rustfilt = dict(line.split("\t") for line in
                    (EXPECTED / "rem_legacy_fp.rustfilt.txt").read_text().splitlines())
    lines = out.read_text().splitlines()
    assert sum(int(line.rpartition(" ")[2]) for line in lines) == len(functions) + 3
    stacks = [split_frames(line.rpartition(" ")[0]) for line in lines]
    leaves = {stack[-1] for stack in stacks}
    for _, _, names in functions:
        # Every function is a leaf once; aliases show one of their names.
        assert leaves & {rustfilt.get(n, n) for n in names}
    assert all(stack[:2] == ["fork_exit", "taskqueue_run"] for stack in stacks if len(stack) == 4)


def test_kldload_mid_log_and_explicit_base(tmp_path, capsys):
    """A map-in during sampling moves the module; --base places it before any map-in."""
    functions = expected_functions("rem_legacy_fp", 0)
    (first, size, names) = next(f for f in functions if f[1] > 8 and any(n.startswith("_ZN") for n in f[2]))
    old, new = 0xFFFFFFFF82A1C000, 0xFFFFFFFF83000000
    text = "".join([
        callchain(0, PMCID, 0, [old + first + 4]),
        map_out(-1, old, old + 0x3000),
        map_in(-1, new, "/boot/modules/rem_legacy_fp.ko"),
        callchain(0, PMCID, 0, [new + first + 4, old + first + 4]),
    ])
    log = tmp_path / "pmc.txt"
    log.write_text(text)
    out = tmp_path / "out.folded"
    assert main(["pmc", "resolve", str(log), "-m", str(MODULES / "rem_legacy_fp.ko"), "--no-demangle",
                 "--base", f"rem_legacy_fp.ko={old:x}", "-o", str(out)]) == 0
    lines = sorted(out.read_text().splitlines())
    name = next(iter(names))
    assert lines == sorted([f"{name} 1", f"{old + first + 4:#x};{name} 1"])


def test_fold_command_reads_a_record_log(tmp_path):
    """The shared input table (tracebridge fold/report) reads -o logs, placing modules by map-in."""
    functions = expected_functions("rem_legacy_fp", module_base("rem_legacy_fp"))
    text, _ = build_log("rem_legacy_fp", functions, True)
    log = tmp_path / "pmc.txt"
    log.write_text(text)
    out = tmp_path / "out.folded"
    assert main(["fold", str(log), "--module", str(MODULES / "rem_legacy_fp.ko"), "--module", str(KERNEL),
                 "--no-demangle", "-o", str(out)]) == 0
    leaves = {split_frames(line.rpartition(" ")[0])[-1] for line in out.read_text().splitlines()}
    assert all(leaves & names for _, _, names in functions)


def test_chunked_reading_gives_the_same_profile(tmp_path, monkeypatch):
    """Logs are resolved a batch at a time: batch edges (and a kldload between batches) change nothing."""
    import tracebridge.readers.pmcstat as pmcstat

    whole, stacks, _, _ = read(tmp_path, "rem_legacy_fp")
    monkeypatch.setattr(pmcstat, "CHUNK", 3)
    chunked, _, counts, _ = read(tmp_path, "rem_legacy_fp")
    assert sorted((tuple(f.name for f in frames), w) for frames, w in chunked) == \
        sorted((tuple(f.name for f in frames), w) for frames, w in whole)
    assert counts.total == sum(len(s) for s in stacks)


def test_labels_keep_each_samples_cpu_and_process(tmp_path):
    """With labels asked for, every callchain's CPU (and PID, unless -1) splits its stack's weight;
    merging and relabelling frames keep the split."""
    name = "rem_legacy_fp"
    text, _ = build_log(name, expected_functions(name, module_base(name)), True)
    log = tmp_path / "pmc.txt"
    log.write_text(text)
    images = open_images([MODULES / f"{name}.ko"], KERNEL)
    profile = read_callchain_log(log, build_space(images, {}, require_all=False), images, labels=True)
    expected = Counter()
    for pid, cpu in re.findall(r"^callchain\s+(-?\d+) 0x[0-9a-f]+ (\d+) ", text, flags=re.M):
        expected[(("cpu", int(cpu)),) + ((("pid", int(pid)),) if int(pid) >= 0 else ())] += 1
    assert len(expected) > 2
    for copy in (profile, profile.without_offsets(), merged(profile)):
        contexts = Counter()
        for (stack, context), weight in copy.labelled.items():
            contexts[context] += weight
        assert contexts == expected
        by_stack = Counter()
        for (stack, _), weight in copy.labelled.items():
            by_stack[stack] += weight
        assert by_stack == Counter(copy.stacks)
    unlabelled = read_callchain_log(log, build_space(images, {}, require_all=False), images)
    assert unlabelled.stacks == profile.stacks and not unlabelled.labelled


def merged(profile: Profile) -> Profile:
    result = Profile()
    result.merge(profile)
    return result


def test_inline_keeps_each_samples_cpu(tmp_path):
    """pprof of a record log read with --inline: the profile --inline rebuilds keeps the samples' CPU labels."""
    base = 0xffffffff82a40000
    pcs = sorted(read_addr2line(EXPECTED / "inl_legacy.addr2line.txt"))[10::25]
    log = tmp_path / "pmc.txt"
    log.write_text(entry("initlog", '0x5000000 "INTEL_SKYLAKE"') + entry("allocate", '0x10000 "cpu_clk" 0x4014')
                   + map_in(-1, base, "/boot/modules/inl_legacy.ko")
                   + "".join(callchain(-1, 0x10000, number % 3, [base + pc]) for number, pc in enumerate(pcs)))
    out = tmp_path / "pmc.pb.gz"
    assert main(["fold", str(log), "--module", str(MODULES / "inl_legacy.ko"), "--inline", "-f", "pprof",
                 "-o", str(out)]) == 0
    message = profile_pb2.Profile()
    message.ParseFromString(gzip.decompress(out.read_bytes()))
    strings = message.string_table
    per_cpu: dict[str, int] = {}
    for sample in message.sample:
        (label,) = sample.label
        per_cpu[strings[label.str]] = per_cpu.get(strings[label.str], 0) + sample.value[0]
    assert per_cpu == {str(cpu): len(range(cpu, len(pcs), 3)) for cpu in range(3)}


def test_inline_expands_each_pc_into_its_addr2line_chain(capsys, tmp_path):
    """``fold --inline`` of a ``pmcstat -R log -o`` log: the sampled PC becomes addr2line's chain at it, a
    caller's return address the chain at the call (return address - 1), inlined frames marked ``_[i]``."""
    base = 0xffffffff82a40000
    expected = read_addr2line(EXPECTED / "inl_legacy.addr2line.txt")
    leaf = max((a for a in expected if 0x3C0 <= a < 0x5C6), key=lambda a: (len(expected[a]), -a))
    drain_return, next_pc = 0x2B8, min(a for a in expected if a > 0x268)  # inl_drain's call of Drain::next
    log = tmp_path / "pmc.txt"
    log.write_text(entry("initlog", '0x5000000 "INTEL_SKYLAKE"') + entry("allocate", '0x10000 "cpu_clk" 0x4014')
                   + map_in(-1, base, "/boot/modules/inl_legacy.ko")
                   + callchain(-1, 0x10000, 0, [base + leaf]) * 3
                   + callchain(-1, 0x10000, 1, [base + next_pc, base + drain_return]) * 2)
    assert main(["fold", str(log), "--module", str(MODULES / "inl_legacy.ko"), "--inline"]) == 0

    def folded(chain) -> str:
        last = len(chain) - 1
        return ";".join(name + ("_[i]" if i < last else "") for i, (name, _, _) in reversed(list(enumerate(chain))))

    assert sorted(capsys.readouterr().out.splitlines()) == sorted([
        f"{folded(expected[leaf])} 3",
        f"{folded(expected[drain_return - 5])};{folded(expected[next_pc])} 2",
    ])
    assert len(expected[leaf]) >= 3


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_the_made_up_log_fits_its_module(tmp_path, capsys, name):
    """Its PCs are real ones (leaves on instruction starts, callers after calls): no consistency warning."""
    with_kernel = "i386" not in name
    text, _ = build_log(name, expected_functions(name, module_base(name)), with_kernel)
    log = tmp_path / "pmc.txt"
    log.write_text(text)
    argv = ["fold", str(log), "--module", str(MODULES / f"{name}.ko"), "--strict", "-v", "-o", str(tmp_path / "out")]
    assert main(argv + (["--module", str(KERNEL)] if with_kernel else [])) == 0
    err = capsys.readouterr().err
    assert "does not fit" not in err, err
    for what in ("caller frames after a call", "leaf PCs on instruction starts", "addresses in functions"):
        passed, seen = map(int, re.search(rf"(\d+) of (\d+) {what}", err).groups())
        assert passed == seen >= 5, (what, err)
