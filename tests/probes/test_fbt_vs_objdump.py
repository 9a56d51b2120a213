"""FBT predictions on every fixture function equal the objdump-based check of the same rules."""

from __future__ import annotations

import pytest

from fixture_paths import MODULE_NAMES, MODULES
from objdump_oracle import expected_probes
from tracebridge.probes.fbt import EXCLUDED_NAME, predict
from tracebridge.image.elf import open_module
from tracebridge.image.relocs import Relocations


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_entry_and_return_sites_match_objdump(name):
    image = open_module(MODULES / f"{name}.ko")
    expected = expected_probes(name, image.machine)
    verdict, probes = predict(image, image.functions, image.modname)
    assert verdict.reason is None
    assert len(expected) == len(image.functions)
    for function, fbt in zip(image.functions, probes):
        assert (fbt.entry, fbt.returns) == expected[function.symbol_index], function.name
        assert (fbt.reason is None) == (fbt.entry is not None)
    # Both kinds of outcome occur, so the comparison is not vacuous.
    assert any(p.entry is not None for p in probes) and any(p.reason == EXCLUDED_NAME for p in probes)


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
