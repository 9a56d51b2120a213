"""The kernel's FBT rules on hand-made code, names and modules."""

from __future__ import annotations

import json
import shutil

import pytest

from fixture_paths import MODULES
from tracebridge.probes import fbt, fbt_isa
from tracebridge.probes.fbt import SHADOWED_ALIAS, FbtOptions, Predictor, entries_chain, name_excluded, predict
from tracebridge.image.elf import open_module
from tracebridge.image.modmeta import module_metadata

PUSH, MOV_RBP, RET, POP = b"\x55", b"\x48\x89\xe5", b"\xc3", b"\x5d"


def amd64(code: bytes, points_inside=None):
    probes = fbt_isa.scan_amd64(code, points_inside)
    return probes.entry, probes.returns, probes.reason


@pytest.mark.parametrize("code, expected", [
    (PUSH + MOV_RBP + POP + RET, (0, (5,), None)),
    # 0x55 and 0xc3 inside immediates are not instruction starts.
    (b"\xb8\x55\x00\x00\x00" + PUSH + b"\xb8\xc3\x00\x00\x00" + POP + RET, (5, (12,), None)),
    # rep ret, ret imm16 and a tail-call jmp are no return sites.
    (PUSH + POP + b"\xf3\xc3", (0, (), None)),
    (PUSH + POP + b"\xc2\x08\x00", (0, (), None)),
    (PUSH + POP + b"\xe9\x00\x00\x00\x00", (0, (), None)),
    # A one-byte instruction before the push and no 0xc3 byte after it: the entry is at 1, not 0.
    (b"\x90" + PUSH + POP + b"\xe9\x00\x00\x00\x00", (1, (), None)),
    # A ret before the push is not a site: the return scan starts at the entry.
    (b"\x31\xc0" + RET + PUSH + POP + RET, (3, (5,), None)),
    (b"\x31\xc0" + RET, (None, (), fbt_isa.NO_FRAME_POINTER)),
    # push %r13 (41 55) starts with 0x41: no entry.
    (b"\x41\x55\x41\x5d" + RET, (None, (), fbt_isa.NO_FRAME_POINTER)),
    # The length decoder fails (0x06 is invalid in 64-bit mode) before the push.
    (b"\x06" + PUSH + POP + RET, (None, (), fbt_isa.DECODE_FAILED)),
    # ...and after the push it ends the return scan for good.
    (PUSH + POP + b"\x06" + RET, (0, (), None)),
])
def test_amd64_rules(code, expected):
    assert amd64(code) == expected


def test_jump_table_windows_are_the_kernels():
    """Windows start at instr - j for j < 8, stop before the function, skip past its end."""
    asked = []
    code = PUSH + b"\x90" * 14 + RET + b"\x90" * 4  # ret at 15, size 20
    assert amd64(code, lambda check: asked.append(check) or False) == (0, (15,), None)
    assert asked == [12, 11, 10, 9, 8]
    asked.clear()
    code = PUSH + RET + b"\x90" * 20  # ret at 1
    amd64(code, lambda check: asked.append(check) or False)
    assert asked == [1, 0]
    # A window that reads as a pointer into the function removes the site.
    assert amd64(PUSH + b"\x90" * 14 + RET + b"\x90" * 4, lambda check: check == 10) == (0, (), None)


def test_jump_table_with_load_address(tmp_path):
    """With --base, a plain 8-byte constant pointing into the function rejects the ret."""
    image = open_module(MODULES / "rem_legacy_fp.ko")
    function = next(f for f in image.functions if f.name == "rem_load")
    code = image.code(function)
    base = 0xFFFFFFFF82000000
    inside = base + function.offset + 4
    # rem_load has two rets (108, 137): find the mid one's windows in the real bytes.
    test = fbt._jump_table_test(image, function, code, fbt.Relocations(image), base)
    assert test is not None
    assert not any(test(check) for check in range(0, function.size - 8))
    patched = bytearray(code)
    patched[104:112] = inside.to_bytes(8, "little")  # a window covering the ret at 108
    test = fbt._jump_table_test(image, function, bytes(patched), fbt.Relocations(image), base)
    assert test(104)


def test_i386_rules():
    prologue = b"\x55\x89\xe5"
    assert fbt_isa.scan_i386(prologue + POP + RET).returns == (3,)
    assert fbt_isa.scan_i386(b"\x55\x8b\xec" + b"\xc9" + b"\xc2\x04\x00").returns == (3,)
    assert fbt_isa.scan_i386(prologue + POP + b"\x90" + RET).returns == ()
    assert fbt_isa.scan_i386(b"\x90" + prologue + POP + RET).entry is None
    assert fbt_isa.scan_i386(b"\x55\x31\xc0" + POP + RET).reason == fbt_isa.NO_FRAME_POINTER


def words(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "little") for v in values)


STP = 0xA9BF7BFD      # stp x29, x30, [sp, #-16]!
SUB = 0xD10043FF      # sub sp, sp, #16
STP_X19 = 0xA9014FF3  # stp x19, x19, [sp, #16] (not pre-indexed)
BTI_C, NOP, RET64, MOV = 0xD503245F, 0xD503201F, 0xD65F03C0, 0xAA0003F3


def test_arm64_rules():
    assert fbt_isa.scan_arm64(words(STP, MOV, RET64)) == fbt_isa.FbtProbes(0, (8,))
    assert fbt_isa.scan_arm64(words(BTI_C, STP, RET64)).entry == 4
    assert fbt_isa.scan_arm64(words(BTI_C, NOP, MOV, RET64)).entry == 4
    assert fbt_isa.scan_arm64(words(MOV, SUB, RET64)).entry == 4
    assert fbt_isa.scan_arm64(words(STP_X19, MOV, RET64)).reason == fbt_isa.NO_PROLOGUE
    # b with imm26 = 2 words: the kernel's target is 2 * 16 bytes away.
    b_forward = 0x14000002
    assert fbt_isa.scan_arm64(words(STP, b_forward, MOV, MOV, MOV, MOV, MOV, MOV, MOV, MOV)).returns == ()
    assert fbt_isa.scan_arm64(words(STP, b_forward, MOV, MOV, MOV, MOV, MOV)).returns == (4,)
    # A backward b (imm26 negative, 0x17......) never matches the kernel's mask.
    assert fbt_isa.scan_arm64(words(STP, MOV, 0x17FFFFFF)).returns == ()


def test_riscv_rules():
    sd_ra = 0x00113423      # sd ra, 8(sp)
    ret = 0x00008067        # jalr x0, 0(ra)
    c_sdsp_ra, c_ret, c_nop = 0xE406, 0x8082, 0x0001
    halves = lambda *h: b"".join(v.to_bytes(2, "little") for v in h)  # noqa: E731
    assert fbt_isa.scan_riscv(words(0x00000013, sd_ra, ret)) == fbt_isa.FbtProbes(4, (8,))
    assert fbt_isa.scan_riscv(halves(c_nop, c_sdsp_ra, c_nop, c_ret)) == fbt_isa.FbtProbes(2, (6,))
    assert fbt_isa.scan_riscv(words(0x00000013, ret)).reason == fbt_isa.NO_PROLOGUE


@pytest.mark.parametrize("name, machine, options, expected", [
    ("dtrace_probe", "amd64", FbtOptions(), True),
    ("dtrace_safe_copy", "amd64", FbtOptions(), False),
    ("owner_sx", "arm64", FbtOptions(), True),
    ("owner_sxx", "arm64", FbtOptions(), False),
    ("trap_check", "amd64", FbtOptions(), True),
    ("trap_check", "i386", FbtOptions(), True),
    ("trap_check", "arm64", FbtOptions(), False),
    ("do_el1h_sync", "arm64", FbtOptions(), True),
    ("cpu_exception_handler", "riscv", FbtOptions(), True),
    ("__stack_chk_guard_like", "amd64", FbtOptions(), False),
    ("__stack_chk_guard_like", "amd64", FbtOptions(old_dunder_rule=True), True),
    ("fbt_probe_x", "amd64", FbtOptions(), False),
    ("fbt_probe_x", "amd64", FbtOptions(fbt_in_kernel=True), True),
])
def test_name_exclusions(name, machine, options, expected):
    assert name_excluded(name, machine, options) is expected


def test_module_depend_records():
    records = module_metadata(open_module(MODULES / "rem_i386.ko"))
    assert {(r.kind, r.name) for r in records} == {
        ("depend", "kernel"), ("depend", "ether"), ("module", "if_rem"), ("version", "if_rem")}


@pytest.mark.parametrize("name", ["rem_legacy_fp", "rem_arm64"])
def test_dtrace_dependency_refuses_the_module(tmp_path, name):
    path = tmp_path / f"{name}.ko"
    data = (MODULES / f"{name}.ko").read_bytes()
    assert data.count(b"\0kernel\0") == 1
    path.write_bytes(data.replace(b"\0kernel\0", b"\0dtrace\0"))
    image = open_module(path)
    verdict, probes = predict(image, image.functions, image.modname)
    assert verdict.reason == fbt.DTRACE_DEPENDENT and verdict.dtrace_dependencies == ("dtrace",)
    assert {p.reason for p in probes} == {fbt.DTRACE_DEPENDENT}


def test_module_named_dtrace_is_refused(tmp_path):
    path = tmp_path / "dtrace.ko"
    shutil.copy(MODULES / "rem_legacy_fp.ko", path)
    image = open_module(path)
    verdict, _ = predict(image, image.functions, image.modname)
    assert verdict.reason == fbt.EXCLUDED_MODULE
    assert predict(image, image.functions, "if_rem")[0].reason is None


ALIASES = ("_ZN64_$LT$$u5b$u32$u3b$$u20$4$u5d$$u20$as$u20$rem..em..rx..RxDesc$GT$6length",
           "_ZN65_$LT$rem..em..rx..ExtendedDesc$u20$as$u20$rem..em..rx..RxDesc$GT$6length")


@pytest.mark.parametrize("tracenext", [True, False])
def test_symbols_sharing_a_patch_point_fire_as_fbt_invop_fires_them(tracenext):
    """rem_legacy_fp.ko has two `length` instances LLVM merged into one body (two symbols, one address).

    FBT makes probes in .symtab order, each first on its address's hash chain; fbt_invop fires the
    first it finds and (HEAD) the entry probes chained to it by fbtp_tracenext.  So the symbol listed
    last owns the shared return site, and, without fbtp_tracenext, the entry point too.
    """
    image = open_module(MODULES / "rem_legacy_fp.ko")
    first, last = (next(f for f in image.functions if f.name.startswith(prefix)) for prefix in ALIASES)
    assert first.offset == last.offset and first.symbol_index < last.symbol_index
    _, (early, late) = predict(image, [first, last], image.modname, FbtOptions(tracenext=tracenext))
    created = Predictor(image, image.modname)._scan([first])[0]
    assert created.entry == late.entry == 0 and created.returns == late.returns and late.returns
    assert early.returns == ()
    if tracenext:
        assert (early.entry, early.reason) == (0, None)
    else:
        assert (early.entry, early.reason) == (None, SHADOWED_ALIAS)
    # Selected alone or with the whole module, the answer is the same.
    _, everything = predict(image, image.functions, image.modname, FbtOptions(tracenext=tracenext))
    assert everything[image.functions.index(first)] == early


def test_no_tracenext_flag_reaches_the_prediction(capsys):
    from tracebridge.cli import main

    rows = {}
    for flags in ([], ["--fbt-no-tracenext"]):
        assert main(["symbols", str(MODULES / "rem_legacy_fp.ko"), "--format", "json", *flags]) == 0
        rows[bool(flags)] = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    name = next(n for n in rows[False] if n.startswith(ALIASES[0]))
    assert (rows[False][name]["fbt_returns"], rows[False][name]["fbt_reason"]) == (0, None)
    assert rows[True][name]["fbt_reason"] == SHADOWED_ALIAS
    assert sum(r["fbt_reason"] == SHADOWED_ALIAS for r in rows[True].values()) == 1


@pytest.mark.parametrize("machine, tracenext, chained", [
    ("amd64", True, True), ("i386", True, True),        # x86/fbt_isa.c links entries by fbtp_tracenext
    ("arm64", True, False), ("riscv", True, False),     # aarch64/riscv fbt_invop fire the first match only
    ("amd64", False, False), ("i386", False, False),    # --fbt-no-tracenext
])
def test_which_kernels_fire_every_alias_entry(machine, tracenext, chained):
    assert entries_chain(machine, FbtOptions(tracenext=tracenext)) is chained
