"""FBT predictions on every fixture function equal the objdump-based check of the same rules."""

from __future__ import annotations

import pytest

from fixture_paths import EDGE, MODULE_NAMES, MODULES
from objdump_oracle import expected_probes
from tracebridge.probes.fbt import EXCLUDED_NAME, SHADOWED_ALIAS, FbtOptions, predict
from tracebridge.image.elf import open_module
from tracebridge.image.relocs import Relocations


@pytest.mark.parametrize("tracenext", [True, False])
@pytest.mark.parametrize("name", MODULE_NAMES)
def test_entry_and_return_sites_match_objdump(name, tracenext):
    image = open_module(MODULES / f"{name}.ko")
    # Only x86 FBT chains the entry probes of one patch point (fbtp_tracenext; arm64 and riscv never do).
    expected = expected_probes(name, image.machine, chained=tracenext and image.machine in ("amd64", "i386"))
    verdict, probes = predict(image, image.functions, image.modname, FbtOptions(tracenext=tracenext))
    assert verdict.reason is None
    assert len(expected) == len(image.functions)
    for function, fbt in zip(image.functions, probes):
        assert (fbt.entry, fbt.returns) == expected[function.symbol_index], function.name
        assert (fbt.reason is None) == (fbt.entry is not None)
    # Both kinds of outcome occur, so the comparison is not vacuous.
    assert any(p.entry is not None for p in probes) and any(p.reason == EXCLUDED_NAME for p in probes)


@pytest.mark.parametrize("tracenext", [True, False])
def test_overlapping_symbols_match_objdump(tracenext):
    """edges_shared_amd64.ko: symbols inside other functions, with and without a frame setup of their own
    (tests/fixtures/edge/edge_shared_amd64.S), on kernels that chain entry probes and on ones that do not."""
    image = open_module(EDGE / "edges_shared_amd64.ko")
    expected = expected_probes("edges_shared_amd64", image.machine, EDGE, chained=tracenext)
    _, probes = predict(image, image.functions, image.modname, FbtOptions(tracenext=tracenext))
    assert {f.symbol_index: (p.entry, p.returns) for f, p in zip(image.functions, probes)} == expected
    assert any(p.reason == SHADOWED_ALIAS for p in probes) is not tracenext


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_no_pointer_into_its_own_function(name):
    """What lets the oracle leave out the jump-table heuristic (no load address given).

    Relocated pointers in code do occur (rem_i386's ``jmp *table(,%eax,4)``
    has a text relocation to its jump table in .rodata), but none points
    back into the function that holds it.
    """
    image = open_module(MODULES / f"{name}.ko")
    relocations = Relocations(image)
    width = image.bits // 8
    seen = 0
    for function in image.functions:
        start = function.value if image.elf_type == "ET_REL" else function.value - image.sections[function.shndx].addr
        for offset in range(start, start + max(function.size - width + 1, 0)):
            target = relocations.pointer(function.shndx, offset)
            seen += target is not None
            assert target is None or not function.offset <= target < function.offset + function.size
    if name == "rem_i386":
        assert seen


def test_frame_pointer_builds_differ():
    fp = open_module(MODULES / "rem_legacy_fp.ko")
    nofp = open_module(MODULES / "rem_legacy_nofp.ko")
    with_entry = [sum(p.entry is not None for p in predict(m, m.functions, m.modname)[1]) for m in (fp, nofp)]
    assert with_entry[0] == len(fp.functions) - 1  # all but dtrace_helper_x
    assert with_entry[1] < len(nofp.functions) // 4
