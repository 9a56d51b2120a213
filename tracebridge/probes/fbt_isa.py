"""Where FBT patches one function, instruction set by instruction set.

Each ``scan_*`` follows ``fbt_provide_module_function`` in
``sys/cddl/dev/fbt/<isa>/fbt_isa.c`` step for step, on the function's bytes
as they are in the file (offsets relative to the function's start):

* **x86** (amd64, i386 share ``x86/fbt_isa.c``).  amd64 walks instructions
  with the kernel's length decoder until one *starts* with ``0x55``
  (``push %rbp``); a decoder failure ends the walk without an entry.  From
  that instruction on it walks again and takes every instruction that starts
  with ``0xc3`` (``ret``) as a return site, stopping for good at the first
  decoder failure (so ``f3 c3``, ``c2 imm16`` and tail-call ``jmp`` are never
  sites).  i386 needs ``55 8b ec`` or ``55 89 e5`` at the very start and takes
  every one-byte ``5d``/``c9`` followed by ``c3``/``c2``.  Either way a
  candidate is dropped when one of the pointer-sized windows ending at or
  after it (``instr - j``, ``j`` < pointer size, not before the function, not
  past ``limit``) reads as a pointer into the function: the jump-table
  heuristic, answered by the caller (see :mod:`tracebridge.probes.fbt`).
* **arm64**: skip one BTI; a NOP there is the entry, else the first
  ``stp x?, x?, [sp, #imm]!`` (64-bit, pre-indexed) or ``sub sp, sp, #imm``;
  return sites are every ``ret`` and every ``b`` the kernel computes to leave
  the function.  Its test masks with ``0xff000000`` (so only forward ``b``
  with imm26 < 2^24 are looked at) and adds ``imm * 4`` to a ``uint32_t *``:
  the target it compares is ``imm * 16`` bytes away, which is reproduced.
* **riscv**: 4-byte steps from the start; at each step a 32-bit
  ``sd ra, off(sp)`` at the step, or a ``c.sdsp ra`` in either of its two
  halfwords (which then moves the position by 2) is the entry; returns are
  ``jalr x0, 0(ra)`` and ``c.jr ra`` found the same way.

The x86 length decoder is iced-x86 (the kernel uses ``dtrace_instr_size``);
both decode every instruction a kernel build of rustc or clang emits, and
stay in sync with the kernel on where instructions start.  With the compiled
core (:mod:`tracebridge.support.native`), :func:`scan_amd64_many` walks all
of a module's functions in one call with tables generated from iced-x86
(``src/native/gen_x86_tables.py``); a function holding an encoding those
tables do not model (EVEX, XOP, moves to and from control registers) is
walked by iced here.  Bytes past the function are read as zeros: the kernel
reads the next bytes in memory, which
can only matter for an instruction cut by the symbol's size, and that
instruction is past ``limit`` either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, compress, count, repeat
from operator import eq, sub

from tracebridge.support import native
from tracebridge.support.records import int64s, scatter

NO_FRAME_POINTER = "no-frame-pointer"
NO_PROLOGUE = "no-prologue"
DECODE_FAILED = "decode-failed"

#: Given the function-relative start of a pointer-sized window lying inside
#: the function, does it read as a pointer into the function at run time?
PointsInside = Callable[[int], bool]

_PAD = bytes(16)

# sys/cddl/contrib/opensolaris/uts/common/sys/dtrace.h (aarch64 section).
A64_BTI_MASK, A64_BTI = 0xFFFFFF3F, 0xD503241F
A64_NOP = 0xD503201F
A64_RET = 0xD65F03C0
A64_B_MASK, A64_B, A64_B_DATA = 0xFF000000, 0x14000000, 0x00FFFFFF
A64_STP_MASK, A64_STP_64 = 0xFFC00000, 0xA9800000
A64_SUB_MASK, A64_SUB = 0xFFC00000, 0xD1000000
# sys/riscv/include/encoding.h and riscvreg.h.
RV_MATCH_SD, RV_MASK_SD = 0x3023, 0x707F
RV_MATCH_JALR, RV_MASK_JALR = 0x67, 0x707F
RV_MATCH_C_JR, RV_MASK_C_JR = 0x8002, 0xF07F
RV_MATCH_C_SDSP, RV_MASK_C_SDSP = 0xE002, 0xE003
RV_X_RA, RV_X_SP = 1, 2
RV_RD_MASK, RV_RS1_MASK, RV_RS2_MASK, RV_IMM_MASK = 0x1F << 7, 0x1F << 15, 0x1F << 20, 0xFFF << 20
RV_RS2_C_MASK = 0x1F << 2


@dataclass(frozen=True, slots=True)
class FbtProbes:
    """What FBT creates for one function (offsets from the function's start)."""

    #: The entry probe's patched instruction, or None when there is no entry probe.
    entry: int | None
    #: Each return site's patched instruction (i386: the ``pop``/``leave`` before ``ret``).
    returns: tuple[int, ...] = ()
    #: Why there is no probe at all (None when there is an entry probe).
    reason: str | None = None

    @property
    def has_entry(self) -> bool:
        return self.entry is not None

    def __reduce__(self):
        # Rebuilt with the constructor: unpickling a frozen slots dataclass
        # field by field costs several times more (split_map sends 50k back).
        return FbtProbes, (self.entry, self.returns, self.reason)

    @property
    def has_return(self) -> bool:
        return bool(self.returns)


_NO_FRAME = FbtProbes(None, (), NO_FRAME_POINTER)
_NO_PROLOGUE = FbtProbes(None, (), NO_PROLOGUE)
_DECODE_FAILED = FbtProbes(None, (), DECODE_FAILED)
_ENTRY_AT_0 = FbtProbes(0)


@cache
def _iced() -> tuple[type, type, int]:
    """iced-x86's decoder, instruction and invalid code, imported when first needed: with the
    compiled core the walk rarely needs it, and it takes longer to import (~20 ms) than to use."""
    from iced_x86 import Code, Decoder, Instruction

    return Decoder, Instruction, Code.INVALID


def _jump_table(pos: int, width: int, size: int, points_inside: PointsInside | None) -> bool:
    """The kernel's window test around a return-site candidate at ``pos``."""
    if points_inside is None:
        return False
    for j in range(width):
        check = pos - j
        if check < 0:
            break
        if check + width > size:
            continue
        if points_inside(check):
            return True
    return False


def scan_amd64(code: bytes, points_inside: PointsInside | None = None) -> FbtProbes:
    last_push = code.rfind(b"\x55")
    if last_push < 0:
        return _NO_FRAME
    decoder_of, new_instruction, invalid = _iced()
    buf = decoder = None
    instruction = new_instruction()
    entry = 0
    if code[0] != 0x55:
        buf = code + _PAD
        decoder = decoder_of(64, buf)
        # No instruction at or past the last 0x55 byte can start with one.
        while entry <= last_push:
            if buf[entry] == 0x55:
                break
            decoder.decode_out(instruction)
            if instruction.code == invalid:
                return _DECODE_FAILED
            entry += instruction.len
        else:
            return _NO_FRAME
    last_ret = code.rfind(b"\xc3")
    if last_ret < entry:
        return _ENTRY_AT_0 if entry == 0 else FbtProbes(entry)
    if decoder is None:
        buf = code + _PAD
        decoder = decoder_of(64, buf)
    size = len(code)
    decoder.position = pos = entry
    returns = []
    while pos <= last_ret:
        decoder.decode_out(instruction)
        if instruction.code == invalid:
            break
        if buf[pos] == 0xC3 and not _jump_table(pos, 8, size, points_inside):
            returns.append(pos)
        pos += instruction.len
    return FbtProbes(entry, tuple(returns))


# fbt_amd64's answers besides an entry offset (src/native/fbt_amd64.h).
_NATIVE_ANSWERS = {-1: _NO_FRAME, -2: _DECODE_FAILED}
_NATIVE_UNSURE = -3


def scan_amd64_many(data: bytes, starts: bytes, lengths: bytes,
                    points_inside_of: Callable[[int], PointsInside | None] | None) -> list[FbtProbes]:
    """:func:`scan_amd64` of each function ``data[starts[i]:starts[i] + lengths[i]]`` (columns of native
    int64s: bytes or ``array("q")``), natively in one call when possible; equal answers are one object
    (cheap to send back from split_map's second process).

    ``points_inside_of(i)`` gives function ``i``'s jump-table test; it is
    asked only for functions that have return-site candidates, and never
    when it is None (no window of any of them can hold a pointer into it).
    The native walk answers in columns, read here by C calls, without a
    Python step per function: one answer per entry offset for the functions
    without a return-site candidate, and the few walks the native tables
    cannot decide done again by :func:`scan_amd64`.
    """
    test_of = points_inside_of or _untested
    core = native.core
    if core is None:
        # A function of no bytes (refused, or answered with its group) has no frame: no jump-table test is made.
        return one_per_answer([scan_amd64(data[start:start + length], test_of(i) if length else None)
                               for i, (start, length) in enumerate(zip(int64s(starts), int64s(lengths)))])
    entries, counts, candidates = map(int64s, core.fbt_amd64(data, starts, lengths))
    entry_list, count_list = entries.tolist(), counts.tolist()
    distinct = set(entry_list)
    answers = {entry: FbtProbes(entry) for entry in distinct if entry >= 0}
    answers.update(_NATIVE_ANSWERS)
    results = list(map(answers.get, entry_list))
    sited = list(compress(count(), count_list))
    sited_counts = list(compress(count_list, count_list))
    stops = list(accumulate(sited_counts))
    # Each sited function's candidates, sliced and made tuples by C calls, not a Python step each.
    returns = list(map(tuple, map(candidates.tolist().__getitem__, map(slice, map(sub, stops, sited_counts), stops))))
    length_of = int64s(lengths)
    if points_inside_of is not None:
        for at, i in enumerate(sited):
            points_inside = points_inside_of(i)
            if points_inside is not None:
                returns[at] = tuple(pos for pos in returns[at]
                                    if not _jump_table(pos, 8, length_of[i], points_inside))
    # One answer per distinct (entry, return sites): hashed as tuples, an FbtProbes made only for each distinct one.
    keys = list(zip(map(entry_list.__getitem__, sited), returns))
    made = {key: FbtProbes(*key) for key in dict.fromkeys(keys)}
    scatter(results, sited, map(made.__getitem__, keys))
    if _NATIVE_UNSURE in distinct:
        start_of = int64s(starts)
        for i in compress(count(), map(eq, entry_list, repeat(_NATIVE_UNSURE))):
            results[i] = scan_amd64(data[start_of[i]:start_of[i] + length_of[i]], test_of(i))
    return results


def _untested(i: int) -> None:
    """No jump-table test for any function."""
    return None


def one_per_answer(answers: list[FbtProbes]) -> list[FbtProbes]:
    """``answers`` with equal ones made one object: most functions share their answer with others
    (entry at 0, one return at the same offset), and split_map pickles each object once."""
    distinct: dict[FbtProbes, FbtProbes] = {}
    return [distinct.setdefault(probes, probes) for probes in answers]


def scan_i386(code: bytes, points_inside: PointsInside | None = None) -> FbtProbes:
    size = len(code)
    buf = code + _PAD
    if buf[0] != 0x55 or buf[1:3] not in (b"\x8b\xec", b"\x89\xe5"):
        return _NO_FRAME
    last_site = max(code.rfind(b"\x5d"), code.rfind(b"\xc9"))
    decoder_of, new_instruction, invalid = _iced()
    decoder = decoder_of(32, buf)
    instruction = new_instruction()
    pos = 0
    returns = []
    while pos <= last_site:
        decoder.decode_out(instruction)
        if instruction.code == invalid:
            break
        if (instruction.len == 1 and buf[pos] in (0x5D, 0xC9) and buf[pos + 1] in (0xC3, 0xC2)
                and not _jump_table(pos, 4, size, points_inside)):
            returns.append(pos)
        pos += instruction.len
    return FbtProbes(0, tuple(returns))


def _word32(buf: bytes, pos: int) -> int:
    return int.from_bytes(buf[pos:pos + 4], "little")


def scan_arm64(code: bytes) -> FbtProbes:
    size = len(code)
    buf = code + _PAD
    pos = 0
    if _word32(buf, pos) & A64_BTI_MASK == A64_BTI:
        pos += 4
    if _word32(buf, pos) != A64_NOP:
        while pos < size:
            word = _word32(buf, pos)
            if word & A64_STP_MASK == A64_STP_64:
                if (word >> 5) & 0x1F == 31:
                    break
            elif word & A64_SUB_MASK == A64_SUB and word & 0x1F == 31 and (word >> 5) & 0x1F == 31:
                break
            pos += 4
    if pos >= size:
        return _NO_PROLOGUE
    entry = pos
    returns = []
    while pos < size:
        word = _word32(buf, pos)
        if word == A64_RET:
            returns.append(pos)
        elif word & A64_B_MASK == A64_B and pos + (word & A64_B_DATA) * 16 >= size:
            returns.append(pos)
        pos += 4
    return FbtProbes(entry, tuple(returns))


def _rv_sd_ra(word: int) -> bool:
    return (word ^ (RV_MATCH_SD | RV_X_RA << 20 | RV_X_SP << 15)) & (RV_MASK_SD | RV_RS2_MASK | RV_RS1_MASK) == 0


def _rv_ret(word: int) -> bool:
    return (word ^ (RV_MATCH_JALR | RV_X_RA << 15)) & (RV_MASK_JALR | RV_RD_MASK | RV_RS1_MASK | RV_IMM_MASK) == 0


def _rv_c_sdsp_ra(half: int) -> bool:
    return (half ^ (RV_MATCH_C_SDSP | RV_X_RA << 2)) & (RV_MASK_C_SDSP | RV_RS2_C_MASK) == 0


def _rv_c_ret(half: int) -> bool:
    return (half ^ (RV_MATCH_C_JR | RV_X_RA << 7)) & (RV_MASK_C_JR | RV_RD_MASK) == 0


def _rv_at(buf: bytes, pos: int, full: Callable[[int], bool], compressed: Callable[[int], bool]) -> int | None:
    """``dtrace_instr_<x>(&p) || dtrace_instr_c_<x>(&p)`` at ``pos``: where the match is (the
    compressed test looks at both halfwords and moves the scan to the one that matches), or None."""
    if full(_word32(buf, pos)):
        return pos
    for half in (pos, pos + 2):
        if compressed(int.from_bytes(buf[half:half + 2], "little")):
            return half
    return None


def _rv_find(buf: bytes, pos: int, size: int, full: Callable[[int], bool],
             compressed: Callable[[int], bool]) -> int:
    """First position from ``pos`` (in 4-byte steps) the kernel's loop stops at, or ``size``."""
    while pos < size:
        found = _rv_at(buf, pos, full, compressed)
        if found is not None:
            return found
        pos += 4
    return pos


def scan_riscv(code: bytes) -> FbtProbes:
    size = len(code)
    buf = code + _PAD
    entry = _rv_find(buf, 0, size, _rv_sd_ra, _rv_c_sdsp_ra)
    if entry >= size:
        return _NO_PROLOGUE
    returns = []
    pos = _rv_find(buf, entry, size, _rv_ret, _rv_c_ret)
    while pos < size:
        returns.append(pos)
        pos = _rv_find(buf, pos + 4, size, _rv_ret, _rv_c_ret)
    return FbtProbes(entry, tuple(returns))
