"""Generate x86_tables.h, the length and validity tables of the native amd64 walk, from iced-x86.

The native FBT walk (src/native/fbt_amd64.h, x86_length.h) decodes
prefixes, opcode bytes, VEX, ModRM, SIB and displacement itself; what an
opcode adds after them (an immediate) and whether iced-x86 (the decoder the
pure-Python walk uses) accepts it at all comes from these tables.  They are
asked of iced-x86 here, for each opcode map (one-byte, 0F, 0F38, 0F3A),
opcode, mandatory prefix (none, 66, F3, F2), REX.W and LOCK, and for each
VEX opcode map, implied prefix (pp), VEX.L, VEX.W and whether VEX.vvvv is
unused (1111): the opcode is decoded with every following byte and, when it
has a ModRM, every ModRM value.  A register form (mod 3) that iced accepts
for some ModRM.rm values only (x87's ``d9 e0``-``d9 ff``, ``0f 01``'s
system instructions) gets a bit mask of those.  Where iced's answer is not
one fixed immediate size per (register/memory form, ModRM.reg) -- it depends
on the bytes after, on VEX.R/X/B or on the value of a used vvvv, or on
encodings this table does not model (EVEX, XOP, 3DNow!, control and segment
registers; a VEX after a 66, F2, F3, LOCK or REX prefix) -- the entry says
*unsure* and the native walk hands that function to iced.

    python src/native/gen_x86_tables.py > src/native/x86_tables.h
"""

from __future__ import annotations

import sys
from importlib.metadata import version

from iced_x86 import Code, Decoder, Instruction

UNSURE, INVALID, NO_MODRM, BY_RM = 0xFF, 0xFE, 0x40, 0x20
MAPS = ((), (0x0F,), (0x0F, 0x38), (0x0F, 0x3A))
PREFIXES = ((), (0x66,), (0xF3,), (0xF2,))
#: Encodings the legacy table does not model: VEX (c4, c5: their own table), EVEX (62), XOP (8f),
#: 3DNow! (0f 0f), moves to and from control, debug and segment registers (REX.R picks the register),
#: far forms.
FORCED_UNSURE = {(0, 0xC4), (0, 0xC5), (0, 0x62), (0, 0x8F), (0, 0x8C), (0, 0x8E), (1, 0x0F),
                 (1, 0x20), (1, 0x21), (1, 0x22), (1, 0x23), (1, 0x24), (1, 0x26)}
#: Entries per row: register forms by ModRM.reg, memory forms by ModRM.reg, the register forms' valid rm bits.
ROW = 24
PAD = bytes(16)


def modrm_length(modrm: int) -> int:
    """Bytes of ModRM, SIB and displacement, with a zero SIB byte (base rax)."""
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return 1
    length = 1 + (rm == 4)
    if mod == 0 and rm == 5:
        length += 4
    elif mod == 1:
        length += 1
    elif mod == 2:
        length += 4
    return length


def decode(code: bytes) -> tuple[bool, int]:
    instruction = Instruction()
    Decoder(64, code + PAD).decode_out(instruction)
    return instruction.code != Code.INVALID, instruction.len


def entries(head: bytes) -> list[int]:
    """The row of the instruction that starts ``head`` (prefixes, escapes or VEX, opcode)."""
    results = [decode(head + bytes([after])) for after in range(256)]
    if not any(valid for valid, _ in results):
        return [INVALID] * 16 + [0xFF] * 8
    if len(set(results)) == 1:
        immediate = results[0][1] - len(head)
        return ([NO_MODRM | immediate] * 16 if 0 <= immediate <= 8 else [UNSURE] * 16) + [0xFF] * 8
    table, masks = [], []
    for memory in (False, True):
        for reg in range(8):
            seen, valid_rm = set(), 0
            for modrm in range(256):
                if (modrm >> 6 == 3) == memory or (modrm >> 3) & 7 != reg:
                    continue
                valid, length = results[modrm]
                seen.add((valid, length - len(head) - modrm_length(modrm) if valid else None))
                valid_rm |= valid << (modrm & 7)
            if not memory and len(seen) == 2 and (False, None) in seen:
                (_, immediate), = seen - {(False, None)}
                table.append(BY_RM | immediate if 0 <= immediate <= 8 else UNSURE)
                masks.append(valid_rm)
                continue
            if not memory:
                masks.append(0xFF)
            if len(seen) != 1:
                table.append(UNSURE)
                continue
            valid, immediate = seen.pop()
            table.append(INVALID if not valid else immediate if 0 <= immediate <= 8 else UNSURE)
    return table + masks


def legacy_entries(map_index: int, opcode: int, prefix: tuple[int, ...], rex_w: bool, lock: bool) -> list[int]:
    """The row of one legacy key (no VEX)."""
    if (map_index, opcode) in FORCED_UNSURE or (map_index == 1 and opcode in (0x38, 0x3A)):
        return [UNSURE] * 16 + [0xFF] * 8
    return entries(bytes(((0xF0,) if lock else ()) + prefix + ((0x48,) if rex_w else ()) + MAPS[map_index]
                         + (opcode,)))


def vex_entries(vex_map: int, pp: int, vex_l: int, vex_w: int, vvvv_unused: bool, opcode: int) -> list[int]:
    """The row of one VEX key, the same whatever VEX.R/X/B and whichever used vvvv value (else unsure),
    and, for map 0F with W0, the same in the two-byte form (c5), which the walk looks up here too."""
    def three_byte(rxb: int, vvvv: int) -> list[int]:
        return entries(bytes((0xC4, rxb << 5 | vex_map, vex_w << 7 | vvvv << 3 | vex_l << 2 | pp, opcode)))

    vvvv = 0xF if vvvv_unused else 0x0
    row = three_byte(0b111, vvvv)
    if row[:16] == [INVALID] * 16:
        variants = [three_byte(0b000, vvvv)]
    else:
        variants = [three_byte(rxb, vvvv) for rxb in (0b000, 0b010, 0b101)]
        if not vvvv_unused:
            variants += [three_byte(0b111, other) for other in (0x1, 0x7, 0x8, 0xE)]
    if vex_map == 1 and vex_w == 0:
        variants += [entries(bytes((0xC5, r << 7 | vvvv << 3 | vex_l << 2 | pp, opcode))) for r in (0, 1)]
    return row if all(variant == row for variant in variants) else [UNSURE] * 16 + [0xFF] * 8


def write_index(out, name: str, index: list[int]) -> None:
    out.write(f"static const unsigned char {name}[{len(index)}] = {{\n")
    for start in range(0, len(index), 16):
        out.write("    " + ",".join(str(v) for v in index[start:start + 16]) + ",\n")
    out.write("};\n\n")


def main() -> None:
    rows: dict[tuple[int, ...], int] = {}
    legacy, vex = [], []
    # The opcode varies fastest: the instructions of one map and prefix set share a few cache lines.
    for lock in (False, True):
        for rex_w in (False, True):
            for prefix in PREFIXES:
                for map_index in range(4):
                    for opcode in range(256):
                        row = tuple(legacy_entries(map_index, opcode, prefix, rex_w, lock))
                        legacy.append(rows.setdefault(row, len(rows)))
    for vex_map in (1, 2, 3):
        for pp in range(4):
            for vex_l in (0, 1):
                for vex_w in (0, 1):
                    for vvvv_unused in (False, True):
                        for opcode in range(256):
                            row = tuple(vex_entries(vex_map, pp, vex_l, vex_w, vvvv_unused, opcode))
                            vex.append(rows.setdefault(row, len(rows)))
    assert len(rows) <= 256, "row numbers are bytes"
    out = sys.stdout
    out.write(f"/* Generated by gen_x86_tables.py from iced-x86 {version('iced-x86')}; do not edit. */\n")
    out.write("/* Legacy key: ((((lock * 2 + rex_w) * 4 + prefix) * 4 + map) * 256 + opcode); prefix 0 none, 1 66,\n")
    out.write(" * 2 F3, 3 F2.  VEX key: (((((map - 1) * 4 + pp) * 2 + L) * 2 + W) * 2 + vvvv_unused) * 256 + opcode.\n")
    out.write(" * Row entry: [mod == 3 ? reg : 8 + reg]; 0xff unsure, 0xfe invalid, 0x40|n no ModRM and an\n")
    out.write(" * n-byte immediate, n a ModRM then an n-byte immediate, 0x20|n the same for the register\n")
    out.write(" * forms whose rm bit is set in [16 + reg] only (invalid for the others). */\n")
    out.write(f"#define X86_UNSURE 0x{UNSURE:02x}\n#define X86_INVALID 0x{INVALID:02x}\n"
              f"#define X86_NO_MODRM 0x{NO_MODRM:02x}\n#define X86_BY_RM 0x{BY_RM:02x}\n\n")
    out.write(f"static const unsigned char x86_rows[{len(rows)}][{ROW}] = {{\n")
    for row in rows:
        out.write("    {" + ",".join(f"0x{v:02x}" for v in row) + "},\n")
    out.write("};\n\n")
    write_index(out, "x86_row_of", legacy)
    write_index(out, "x86_vex_row_of", vex)


if __name__ == "__main__":
    main()
