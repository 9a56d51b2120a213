"""FBT on the edge modules (tests/fixtures/edge): the instruction sequences are in the .S sources.

The expected offsets are read off the commented sources, where each
instruction's offset is written next to it, and the kernel rules in
freebsd-facts.md section 3.
"""

from __future__ import annotations

import pytest

from fixture_paths import EDGE, MODULES
from tracebridge.image.elf import open_module
from tracebridge.image.relocs import Relocations
from tracebridge.probes import fbt, fbt_isa
from tracebridge.probes.fbt import FbtOptions, predict
from tracebridge.probes.fbt_isa import FbtProbes
from tracebridge.support import native


def probes(path, options=FbtOptions(), modname="edges"):
    image = open_module(path)
    verdict, found = predict(image, image.functions, modname, options)
    assert verdict.reason is None
    return {f.name: p for f, p in zip(image.functions, found)}


def test_amd64_edge_functions():
    found = probes(EDGE / "edges_amd64.ko")
    assert found["ifunc_fn"] == FbtProbes(None, (), fbt.IFUNC)
    assert found["nobits_fn"] == FbtProbes(None, (), fbt.NO_CODE)
    assert found["overlong_fn"] == FbtProbes(0, (2,))
    assert found["after_fn"] == FbtProbes(0, (1, 2, 3))
    assert found["jt_fn"] == FbtProbes(0, (5,))
    assert found["zero_fn"] == FbtProbes(None, (), fbt.ZERO_SIZE)


@pytest.mark.parametrize("tracenext", [True, False])
def test_overlapping_symbols_that_are_not_aliases(tracenext):
    """edges_shared_amd64.ko: the symbol listed last at a shared patch point owns it, one without probes owns
    nothing, and a symbol keeps the return sites only it has (offsets from edge_shared_amd64.S)."""
    found = probes(EDGE / "edges_shared_amd64.ko", FbtOptions(tracenext=tracenext))
    shadowed = FbtProbes(None, (), fbt.SHADOWED_ALIAS)
    # alt_nofp, listed after the two aliases, starts past their push %rbp: no probe, so no return site taken.
    assert found["alt_nofp"] == FbtProbes(None, (), fbt_isa.NO_FRAME_POINTER)
    assert found["alias_second"] == FbtProbes(0, (7,))
    assert found["alias_first"] == (FbtProbes(0, ()) if tracenext else shadowed)
    # One patch point, 4 bytes into ibt_fn (after its endbr64) and at ibt_push's start.
    assert found["ibt_push"] == FbtProbes(0, (5,))
    assert found["ibt_fn"] == (FbtProbes(4, ()) if tracenext else shadowed)
    # Entries at offset 0 of each, at two patch points; outer_fn keeps the return only it has.
    assert found["inner_fn"] == FbtProbes(0, (5,))
    assert found["outer_fn"] == FbtProbes(0, (9,))


def test_module_named_cyclic_is_refused():
    image = open_module(EDGE / "edges_amd64.ko")
    verdict, found = predict(image, image.functions, "cyclic")
    assert verdict == fbt.ModuleVerdict(fbt.EXCLUDED_MODULE, ())
    assert set(found) == {FbtProbes(None, (), fbt.EXCLUDED_MODULE)}
    assert predict(image, image.functions, "cyclics")[0].reason is None


def _window_test(path, base=None):
    image = open_module(path)
    function = next(f for f in image.functions if f.name == "jt_fn")
    test = fbt._jump_table_test(image, function, image.code(function), Relocations(image), base)
    return function, test


@pytest.mark.parametrize("path, inside, at_end", [(EDGE / "edges_amd64.ko", 6, 14), (EDGE / "edges_i386.ko", 5, 9)])
def test_relocated_pointers_in_code(path, inside, at_end):
    """A relocated pointer counts when it points into the function, not when it points at its end,
    whatever the load address."""
    for base in (None, 0xFFFFFFFF82000000, 0xC2000000):
        _, test = _window_test(path, base)
        assert test(inside) is True
        assert test(at_end) is False
        assert test(inside + 2) is False  # straddles two relocated fields


def test_window_straddling_relocated_fields_is_no_pointer():
    """i386 (REL) keeps addends in the bytes: two fields' halves read as a value the load address
    could make point into the function, but no relocation produces it."""
    function, _ = _window_test(EDGE / "edges_i386.ko")
    code = open_module(EDGE / "edges_i386.ko").code(function)
    straddling = int.from_bytes(code[7:11], "little")
    _, test = _window_test(EDGE / "edges_i386.ko", straddling - function.offset - 1)
    assert test(7) is False


def test_plain_constant_in_code_needs_the_load_address():
    """jt_fn holds the constant 0xffffffff82000000 at offset 22: it points into jt_fn only when
    the module is loaded so that the function spans it."""
    constant, check = 0xFFFFFFFF82000000, 22
    function, test = _window_test(EDGE / "edges_amd64.ko")
    assert test(check) is False
    low, high = function.offset, function.offset + function.size
    for base, inside in [(constant - low, True), (constant - low + 1, False),
                         (constant - high + 1, True), (constant - high, False)]:
        assert _window_test(EDGE / "edges_amd64.ko", base)[1](check) is inside


def test_i386_jump_table_heuristic_with_a_load_address():
    """rem_i386.ko's bytes read as a pointer into their function at one load address: FBT drops
    the return site whose 4-byte windows hold it (an i386 module at 0xc3..... is ordinary)."""
    image = open_module(MODULES / "rem_i386.ko")
    plain = dict(zip((f.name for f in image.functions), predict(image, image.functions, "rem_i386")[1]))
    function = next(f for f in image.functions if plain[f.name].returns)
    code = image.code(function)
    site = plain[function.name].returns[-1]
    # The window [site - 2, site + 2) holds two bytes before "pop %ebp; ret" and the pair itself.
    value = int.from_bytes(code[site - 2:site + 2], "little")
    assert code[site:site + 2] in (b"\x5d\xc3", b"\xc9\xc3")
    base = value - function.offset - 1  # the value then points one byte into the function
    found = dict(zip((f.name for f in image.functions),
                     predict(image, image.functions, "rem_i386", FbtOptions(base=base))[1]))
    assert found[function.name].returns == plain[function.name].returns[:-1]
    assert found[function.name].entry == plain[function.name].entry
    # A window that ends before the site is not one of its windows (j < 4 only).
    base = int.from_bytes(code[site - 4:site], "little") - function.offset - 1
    found = dict(zip((f.name for f in image.functions),
                     predict(image, image.functions, "rem_i386", FbtOptions(base=base))[1]))
    assert found[function.name].returns == plain[function.name].returns


def test_i386_decode_failure_ends_the_return_scan():
    prologue, invalid = b"\x55\x89\xe5", b"\x0f\x04"  # 0f 04 is no i386 instruction
    assert fbt_isa.scan_i386(prologue + b"\x5d\xc3").returns == (3,)
    # The decoder takes 0f 04 90 as one bad instruction; the pop/ret pairs after it are never reached.
    assert fbt_isa.scan_i386(prologue + invalid + b"\x90" + b"\x5d\xc3" * 2) == FbtProbes(0, ())


def test_arm64_rules_on_assembled_code():
    found = probes(EDGE / "edges_arm64.ko")
    # sub x9, sp / sub sp, x9 / stp ..., [x9, #-16]! are no prologue; sub sp, sp, #32 at 12 is.
    assert found["sub_prologue"] == FbtProbes(12, (20,))
    # b at 12 stays inside by the kernel's arithmetic (12 + 16 < 32), b at 16 leaves (16 + 16 == 32).
    assert found["branches"] == FbtProbes(0, (16, 28))


def test_arm64_listing_stops_at_the_first_stopper():
    found = probes(EDGE / "edges_arm64.ko")
    assert found["before_stop"] == FbtProbes(0, (8,))
    assert found["handle_el1h_sync"].reason == fbt.EXCLUDED_NAME
    assert found["between_stops"] == found["after_stops"] == FbtProbes(None, (), fbt.LISTING_STOPPED)


def test_riscv_rules_on_assembled_code():
    found = probes(EDGE / "edges_riscv.ko")
    # sd a0/sd ra,(s0)/sw ra are no prologue; jalr with an offset, a link or another register no return.
    assert found["near_misses"] == FbtProbes(12, (28, 36))
    # c.sdsp a0 is no prologue; c.jr t0 and c.jalr ra are no returns.
    assert found["compressed"] == FbtProbes(6, (14, 20))


def test_amd64_first_instruction_is_not_the_push():
    """push %rsi (0x56) first: the length decoder walks to the push %rbp after it."""
    assert fbt_isa.scan_amd64(b"\x56\x55\x5d\xc3") == FbtProbes(1, (3,))


def _code(path, name):
    image = open_module(path)
    return image.code(next(f for f in image.functions if f.name == name))


def test_riscv_return_in_the_last_halfword():
    """sd ra, 8(sp); c.nop; c.jr ra (LLVM's encodings, from edges_riscv.ko): the return is the
    second halfword of the last 4-byte step."""
    sd_ra = _code(EDGE / "edges_riscv.ko", "near_misses")[12:16]
    nop_ret = _code(EDGE / "edges_riscv.ko", "compressed")[12:16]  # c.nop, c.jr ra
    assert fbt_isa.scan_riscv(sd_ra + nop_ret) == FbtProbes(0, (6,))


def test_arm64_branch_target_is_read_as_imm_times_16():
    """b with imm26 = 4 at 12 in an 80-byte function: the kernel's target 12 + 4 * 16 = 76 is inside.
    (b's encoding is 0x14000000 | imm26; the other words are LLVM's, from edges_arm64.ko.)"""
    branches = _code(EDGE / "edges_arm64.ko", "branches")
    stp, nop, ret = branches[0:4], branches[4:8], branches[28:32]
    b_4 = (0x14000000 | 4).to_bytes(4, "little")
    code = stp + nop + nop + b_4 + nop * 15 + ret
    assert len(code) == 80
    assert fbt_isa.scan_arm64(code) == FbtProbes(0, (76,))


def test_amd64_jump_table_heuristic_with_a_load_address():
    """rem_load's bytes before its first ret read as a pointer into rem_load at one load address:
    with that --base, FBT drops the site (the window holds no relocated byte)."""
    image = open_module(MODULES / "rem_legacy_fp.ko")
    function = next(f for f in image.functions if f.name == "rem_load")
    plain = predict(image, [function], "rem")[1][0]
    assert plain.returns == (108, 137)
    value = int.from_bytes(image.code(function)[104:112], "little")
    found = predict(image, [function], "rem", FbtOptions(base=value - function.offset - 1))[1][0]
    assert found == FbtProbes(plain.entry, (137,))


def test_module_without_dtrace_dependencies_is_looked_at():
    from tracebridge.probes.fbt import ModuleVerdict, module_verdict

    image = open_module(MODULES / "rem_legacy_fp.ko")
    assert module_verdict(image, "rem_legacy_fp") == ModuleVerdict(None, ())


@pytest.mark.parametrize("native_path", [True, False], ids=["native", "pure-python"])
def test_jump_table_heuristic_in_a_section_without_relocations(native_path, monkeypatch):
    """set_mtu (rem_legacy_fp.ko) calls nothing: its section has no relocations, so only a load
    address can make its bytes a pointer into it.  With the base at which the last window of its
    ret reads as one, FBT drops the site; without a base it keeps it.  On both paths: the native
    walk leaves the heuristic to Python, the pure one applies it during its own walk."""
    if not native_path:
        monkeypatch.setattr(native, "core", None)
    image = open_module(MODULES / "rem_legacy_fp.ko")
    function = next(f for f in image.functions if "set_mtu" in f.name)
    assert not Relocations(image).may_patch(function.shndx)
    plain = predict(image, [function], "rem")[1][0]
    assert plain == FbtProbes(0, (32,)) and function.size == 33
    value = int.from_bytes(image.code(function)[25:33], "little")  # the last 8-byte window holding the ret
    found = predict(image, [function], "rem", FbtOptions(base=value - function.offset - 1))[1][0]
    assert found == FbtProbes(0, ())


def test_a_relocated_section_asks_for_the_jump_table_test_without_a_base(monkeypatch):
    """jt_fn's section has relocations: without a load address its return sites are still offered to the
    jump-table test (which keeps the ret at 5: no window over it is a pointer into jt_fn)."""
    image = open_module(EDGE / "edges_amd64.ko")
    function = next(f for f in image.functions if f.name == "jt_fn")
    asked, real = [], fbt._jump_table_test

    def recording(image, function, code, relocations, base):
        asked.append(function.name)
        return real(image, function, code, relocations, base)

    monkeypatch.setattr(fbt, "_jump_table_test", recording)
    assert predict(image, [function], "edges")[1] == [FbtProbes(0, (5,))]
    assert asked == ["jt_fn"]


@pytest.mark.parametrize("path", [EDGE / "edges_amd64.ko", EDGE / "edges_shared_amd64.ko", MODULES / "rem_legacy_fp.ko"],
                         ids=lambda path: path.name)
def test_each_function_is_walked_once_and_refused_ones_never(each_path, path, monkeypatch):
    """With a load address the jump-table test looks at windows around the return-site candidates of every
    walk: those of the symbols that share their bytes once (with their group, not again with the others),
    and of the ones FBT refuses by name or type (an IFUNC, dtrace_*) never, though they have code.  Nor is
    the test made for them (the pure walk makes one per function it walks)."""
    image = open_module(path)
    asked, made, real = [], [], fbt._jump_table_test

    def recording(image, function, code, relocations, base):
        test, walks = real(image, function, code, relocations, base), []
        made.append(function.symbol_index)

        def points_inside(check: int) -> bool:
            if not walks:  # the first window of this walk
                walks.append(check)
                asked.append(function.symbol_index)
            return test(check)

        return points_inside

    monkeypatch.setattr(fbt, "_jump_table_test", recording)
    predictor = fbt.Predictor(image, image.modname, FbtOptions(base=0xFFFFFFFF82000000))
    functions = image.functions_by_offset
    probes = predictor.scan(functions)
    refused = {f.symbol_index for f, p in zip(functions, probes) if p.reason in (fbt.IFUNC, fbt.EXCLUDED_NAME)}
    assert len(asked) == len(set(asked)) and not refused & set(asked)
    assert len(made) == len(set(made)) and not refused & set(made)
    # Each module has what its part of the test needs: members with windows to look at, refused code.
    assert set(predictor._cluster_of) & set(asked) or path.name == "edges_amd64.ko"
    assert refused or path.name == "edges_shared_amd64.ko"
