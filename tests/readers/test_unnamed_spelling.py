"""One spelling for addresses no symbol names, whatever the input (docs/formats.md, "Unnamed addresses").

DTrace prints `` kernel`0xADDR `` when libdtrace knows the file but no
symbol, a bare ``0xADDR`` when it knows neither; a ``pmcstat -o`` log gives
bare PCs and ``map-in`` records.  The same address must read the same from
both, named by its file whenever something (DTrace's prefix, ``--module``,
``--kldstat``, ``map-in``) tells which file holds it.
"""

from __future__ import annotations

import shutil

import pytest

import readelf_text
from fixture_paths import EXPECTED, MODULES
from pmcstat_text import callchain, entry, map_in
from tracebridge.readers.options import LoadOptions
from tracebridge.readers.registry import load_profile

BASE = 0xFFFFFFFF82E1C000
KERNEL_BASE = 0xFFFFFFFF80200000
KERNEL_PC = 0xFFFFFFFF8104E10E  # fork_exit's caller on amd64, which DTrace prints as kernel`0xffffffff8104e10e
NOWHERE = 0x1234  # in no file: a PC no map-in record or kldstat line covers


def padding_offset() -> int:
    """An offset of rem_legacy_fp.ko in no function (between two), from readelf's layout alone."""
    sections = readelf_text.sections(EXPECTED / "rem_legacy_fp.readelf-S.txt")
    placed, _ = readelf_text.kernel_layout(sections)
    spans = sorted((placed[int(s.ndx)] + s.value, placed[int(s.ndx)] + s.value + s.size)
                   for s in readelf_text.symbols(EXPECTED / "rem_legacy_fp.readelf-s.txt")
                   if s.type == "FUNC" and s.ndx.isdigit() and int(s.ndx) in placed and s.size)
    return next(end for (_, end), (start, _) in zip(spans, spans[1:]) if end < start)


@pytest.fixture
def files(tmp_path):
    module = tmp_path / "if_rem.ko"
    shutil.copy(MODULES / "rem_legacy_fp.ko", module)
    gap = BASE + padding_offset()
    stack = tmp_path / "stack.txt"
    stack.write_text(f"\n              if_rem.ko`{gap:#x}\n              kernel`{KERNEL_PC:#x}\n               3\n"
                     f"\n              {KERNEL_PC:#x}\n               2\n"
                     f"\n              {NOWHERE:#x}\n               1\n")
    log = tmp_path / "pmc.txt"
    log.write_text(entry("initlog", '0x5000000 "INTEL_ATOM_GOLDMONT"') +
                   entry("allocate", '0x10000 "CPU_CLK_UNHALTED.THREAD_P" 0x4014') +
                   map_in(-1, KERNEL_BASE, "/boot/kernel/kernel") + map_in(-1, BASE, "/boot/modules/if_rem.ko") +
                   callchain(-1, 0x10000, 0, [gap, KERNEL_PC]) * 3 + callchain(-1, 0x10000, 0, [KERNEL_PC]) * 2 +
                   callchain(-1, 0x10000, 0, [NOWHERE]))
    kldstat = tmp_path / "kldstat.txt"
    kldstat.write_text("Id Refs Address                Size Name\n"
                       f" 1   42 {KERNEL_BASE:#x}  1f3c6c8 kernel\n"
                       f" 7    1 {BASE:#x}     3000 if_rem.ko\n")
    return module, stack, log, kldstat, gap


def spelled(path, options=LoadOptions()) -> dict[tuple[str, ...], float]:
    """Each stack (leaf last) as its frames' names."""
    stacks: dict[tuple[str, ...], float] = {}
    for frames, weight in load_profile([path], options):
        key = tuple(f.name for f in frames)
        stacks[key] = stacks.get(key, 0) + weight
    return stacks


def expected(gap: int, bare_kernel: str) -> dict[tuple[str, ...], float]:
    return {(f"kernel`{KERNEL_PC:#x}", f"if_rem.ko`{gap:#x}"): 3, (bare_kernel,): 2, (f"{NOWHERE:#x}",): 1}


def test_pmcstat_log_names_the_file_of_every_address_its_map_ins_cover(files):
    module, _, log, _, gap = files
    owned = expected(gap, f"kernel`{KERNEL_PC:#x}")
    assert spelled(log) == owned
    assert spelled(log, LoadOptions(modules=(str(module),))) == owned


def test_dtrace_spells_them_as_the_log_does_when_kldstat_tells_the_owner(files):
    module, stack, log, kldstat, gap = files
    assert spelled(stack, LoadOptions(modules=(str(module),), kldstat=str(kldstat))) == spelled(log)
    assert spelled(stack, LoadOptions(kldstat=str(kldstat))) == spelled(log)


def test_dtrace_keeps_its_own_prefix_and_bare_only_what_nothing_places(files):
    module, stack, _, _, gap = files
    # Without kldstat, DTrace's prefix is all that tells: its bare kernel PC stays bare.
    assert spelled(stack) == expected(gap, f"{KERNEL_PC:#x}")
    assert spelled(stack, LoadOptions(modules=(str(module),), bases=(BASE,))) == expected(gap, f"{KERNEL_PC:#x}")
