"""Which functions and instructions kinst patches, instruction set by instruction set.

Each rule follows ``kinst_make_probe`` in
``sys/cddl/dev/kinst/<isa>/kinst_isa.c`` on the function's bytes as they are
in the file (offsets from the function's start; bytes past the function read
as zeros, as in :mod:`tracebridge.probes.fbt_isa`):

* **amd64**: byte 0 must be ``push %rbp`` (0x55); instructions are walked
  with the kernel's length decoder (iced-x86 here); opcode ``e3``
  (``jrcxz``, and ``jecxz`` behind a 0x67 prefix) is refused, and the
  one-byte ``popf`` (0x9d) and ``sti`` (0xfb) are skipped (a prefixed
  ``popf`` is patched like any other instruction).
* **arm64**: the function is accepted when FBT's prologue scan finds its
  entry (one leading BTI skipped; a NOP there, else the first
  ``stp x?, x?, [sp, #imm]!`` or ``sub sp, sp, #imm``): kinst's loop is
  FBT's, so :func:`tracebridge.probes.fbt_isa.scan_arm64` answers it.  Then
  every 4-byte word from offset 0 is a probe except a load-exclusive, every
  word after it up to and including the next store-exclusive (an LDXR/STXR
  loop), and ``adr``/``adrp``.
* **riscv**: the function must hold a store of ``ra`` to the stack
  (``sd ra, N(sp)`` or ``c.sdsp ra``) and a ``ret`` (``jalr x0, 0(ra)`` or
  ``c.jr ra``), found by the kernel's 4-byte scan (a compressed match in the
  upper halfword moves the scan by 2).  FreeBSD's tree has held this check
  both with and without the ``ret``; both are required here, so every probe
  written works with either.  Instructions are 4 bytes when their low two
  bits are ``11``, else 2 (``dtrace_instr_size``); SYSTEM instructions
  (opcode ``1110011``, ``c.ebreak``) and LR/SC sequences (an ``lr.w``/``lr.d``
  up to and including the next ``sc.w``/``sc.d``) are skipped.

A function's *returns*, for the entry/return templates, are the ``ret``
instructions kinst patches: amd64 ``ret``, arm64 ``ret`` (``ret x30``),
riscv ``jalr x0, 0(ra)`` and ``c.jr ra``.  There is no general arm64/riscv
disassembler among the dependencies; kinst itself decides with the masks
below, so they are written as the kernel writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from iced_x86 import Decoder, Mnemonic

from tracebridge.probes import fbt_isa

NO_PUSH = "kinst-no-push-rbp"
A64_NO_FRAME = "kinst-arm64-no-frame"
RV_NO_FRAME = "kinst-riscv-no-frame"
REFUSED = "kinst-refused-instruction"
A64_EXCLUSIVE = "kinst-arm64-exclusive"
A64_ADR = "kinst-arm64-adr"
RV_SYSTEM = "kinst-riscv-system"
RV_LRSC = "kinst-riscv-lr-sc"
REASONS = {
    NO_PUSH: "the function does not start with push %rbp, which kinst needs at byte 0 on amd64",
    A64_NO_FRAME: "the function has no stp x?, x?, [sp, #-N]! or sub sp, sp, #N (after an optional BTI), "
                  "which kinst needs on arm64",
    RV_NO_FRAME: "kinst on riscv needs both a store of ra to the stack (sd ra or c.sdsp ra) and a ret "
                 "(jalr x0, 0(ra) or c.jr ra) in the function",
    REFUSED: "kinst refuses jrcxz/jecxz and skips popf and sti",
    A64_EXCLUSIVE: "kinst skips load/store-exclusive sequences (ldxr ... stxr) on arm64: a breakpoint inside "
                   "would make the atomic loop fail",
    A64_ADR: "kinst skips adr and adrp on arm64 (emulating them can clobber a register the exception "
             "return does not restore)",
    RV_SYSTEM: "kinst skips SYSTEM instructions on riscv (csr*, rdtime, ecall, ebreak, c.ebreak)",
    RV_LRSC: "kinst skips LR/SC sequences on riscv: a breakpoint inside would make the atomic loop fail",
}

#: The architectures kinst exists on.
MACHINES = frozenset({"amd64", "arm64", "riscv"})

# sys/cddl/dev/kinst/amd64/kinst_isa.c: kinst_instr_dissect() refuses opcode e3 whatever its
# prefixes; kinst_make_probe() skips a one-byte popf or sti.
_AMD64_REFUSED = frozenset({Mnemonic.JRCXZ, Mnemonic.JECXZ, Mnemonic.JCXZ})
_AMD64_SKIPPED = (0x9D, 0xFB)
# sys/cddl/dev/kinst/aarch64/kinst_isa.c: kinst_instr_ldx/stx, and the adr/adrp test.
_A64_LDX, _A64_STX = 0b00100001, 0b00100000
_A64_ADR_OP = 0b10000
# sys/riscv/include/encoding.h.
_RV_LR = ((0x1000202F, 0xF9F0707F), (0x1000302F, 0xF9F0707F))
_RV_SC = ((0x1800202F, 0xF800707F), (0x1800302F, 0xF800707F))
_RV_C_EBREAK = 0x9002
_RV_SYSTEM_OPCODE = 0b1110011


@dataclass(frozen=True, slots=True)
class Instructions:
    """kinst's view of one function's instructions."""

    #: Offset of every instruction kinst walks -> None when it makes a probe there, else the reason key.
    starts: dict[int, str | None]
    #: Offsets of the ``ret`` instructions it makes a probe at.
    returns: tuple[int, ...]


def function_problem(machine: str, code: bytes) -> str | None:
    """Why kinst makes no probe anywhere in a function with these bytes (a reason key), or None."""
    if machine == "amd64":
        return NO_PUSH if code[0] != 0x55 else None
    if machine == "arm64":
        return A64_NO_FRAME if fbt_isa.scan_arm64(code).entry is None else None
    return None if _riscv_frame(code) else RV_NO_FRAME


def decode(machine: str, code: bytes) -> Instructions:
    """Every instruction kinst walks in a function it accepts, and what it does there."""
    if machine == "amd64":
        return _amd64(code)
    if machine == "arm64":
        return _arm64(code)
    return _riscv(code)


def _amd64(code: bytes) -> Instructions:
    starts: dict[int, str | None] = {}
    returns = []
    for instruction in Decoder(64, code):
        if instruction.is_invalid:
            break
        refused = instruction.mnemonic in _AMD64_REFUSED or (
            instruction.len == 1 and code[instruction.ip] in _AMD64_SKIPPED)
        starts[instruction.ip] = REFUSED if refused else None
        if instruction.mnemonic == Mnemonic.RET:
            returns.append(instruction.ip)
    return Instructions(starts, tuple(returns))


def _arm64(code: bytes) -> Instructions:
    buf = code + bytes(4)
    starts: dict[int, str | None] = {}
    returns = []
    exclusive = False
    for pos in range(0, len(code), 4):
        word = fbt_isa._word32(buf, pos)
        kind = (word >> 22) & 0xFF
        if kind == _A64_LDX:
            exclusive = True
        elif kind == _A64_STX:
            exclusive = False
            starts[pos] = A64_EXCLUSIVE
            continue
        if exclusive:
            starts[pos] = A64_EXCLUSIVE
        elif (word >> 24) & 0x1F == _A64_ADR_OP:
            starts[pos] = A64_ADR
        else:
            starts[pos] = None
            if word == fbt_isa.A64_RET:
                returns.append(pos)
    return Instructions(starts, tuple(returns))


def _riscv_frame(code: bytes) -> bool:
    """kinst's riscv prologue check: a store of ra and a ret, by the kernel's 4-byte scan."""
    buf = code + bytes(8)
    store = ret = False
    pos = 0
    while pos < len(code):
        found = fbt_isa._rv_at(buf, pos, fbt_isa._rv_sd_ra, fbt_isa._rv_c_sdsp_ra)
        if found is not None:
            store = True
        else:
            found = fbt_isa._rv_at(buf, pos, fbt_isa._rv_ret, fbt_isa._rv_c_ret)
            ret = ret or found is not None
        if store and ret:
            return True
        pos = (pos if found is None else found) + 4
    return False


def _rv_match(word: int, table: tuple[tuple[int, int], ...]) -> bool:
    return any((word ^ match) & mask == 0 for match, mask in table)


def _riscv(code: bytes) -> Instructions:
    buf = code + bytes(4)
    starts: dict[int, str | None] = {}
    returns = []
    atomic = False
    pos = 0
    while pos < len(code):
        length = 4 if buf[pos] & 3 == 3 else 2
        word = fbt_isa._word32(buf, pos)  # kinst reads 4 bytes even for a compressed instruction
        if word & 0xFFFF == _RV_C_EBREAK or word & 0x7F == _RV_SYSTEM_OPCODE:
            starts[pos] = RV_SYSTEM
        elif _rv_match(word, _RV_SC):
            atomic = False
            starts[pos] = RV_LRSC
        else:
            atomic = atomic or _rv_match(word, _RV_LR)
            if atomic:
                starts[pos] = RV_LRSC
            else:
                starts[pos] = None
                if fbt_isa._rv_ret(word) if length == 4 else fbt_isa._rv_c_ret(word & 0xFFFF):
                    returns.append(pos)
        pos += length
    return Instructions(starts, tuple(returns))
