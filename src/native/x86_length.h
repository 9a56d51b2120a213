/* x86-64 instruction lengths, as iced-x86 (tracebridge's reference decoder) sees them.
 *
 * Prefixes, the opcode map, ModRM, SIB and displacement are decoded here; the
 * immediate size and whether iced accepts the instruction at all come from
 * x86_tables.h, generated from iced-x86 by gen_x86_tables.py.  Anything the
 * tables do not model comes back X86_LEN_UNSURE, and the caller asks iced.
 */
#ifndef TRACEBRIDGE_X86_LENGTH_H
#define TRACEBRIDGE_X86_LENGTH_H

#include "x86_tables.h"

#define X86_LEN_INVALID 0
#define X86_LEN_UNSURE (-1)
#define X86_MAX_LENGTH 15

/* Bytes x86_length may read from p: 15 prefixes and opcode bytes past the
 * limit, ModRM and SIB are looked at before the length is checked. */
#define X86_WINDOW 32

/* Length of the instruction at p (X86_WINDOW readable bytes), 0 when iced
 * rejects it, X86_LEN_UNSURE when the tables cannot say. */
static int
x86_length(const unsigned char *p)
{
    int i = 0, op66 = 0, rep = 0, lock = 0, addr32 = 0, rex_w = 0;
    for (;; i++) {
        unsigned char b = p[i];
        if (i >= X86_MAX_LENGTH)
            return X86_LEN_INVALID;
        if (b >= 0x40 && b <= 0x4f) {
            rex_w = (b & 8) != 0;
            continue;
        }
        if (b == 0x66)
            op66 = 1;
        else if (b == 0xf2 || b == 0xf3) {
            if (rep && rep != b)
                return X86_LEN_UNSURE; /* both: which one selects the instruction is the decoder's rule */
            rep = b;
        } else if (b == 0xf0)
            lock = 1;
        else if (b == 0x67)
            addr32 = 1;
        else if (b != 0x26 && b != 0x2e && b != 0x36 && b != 0x3e && b != 0x64 && b != 0x65)
            break;
        rex_w = 0; /* a REX counts only right before the opcode */
    }
    if (op66 && rep)
        return X86_LEN_UNSURE;
    int map = 0, opcode = p[i++];
    if (opcode == 0x0f) {
        opcode = p[i++];
        map = 1;
        if (opcode == 0x38 || opcode == 0x3a) {
            map = opcode == 0x38 ? 2 : 3;
            opcode = p[i++];
        }
    }
    int prefix = rep == 0xf3 ? 2 : rep == 0xf2 ? 3 : op66;
    const unsigned char *row = x86_rows[x86_row_of[(((map * 256 + opcode) * 4 + prefix) * 2 + rex_w) * 2 + lock]];
    int entry = row[0];
    if (entry == X86_UNSURE)
        return X86_LEN_UNSURE;
    if (entry != X86_INVALID && (entry & X86_NO_MODRM)) {
        int immediate = entry & 0x0f;
        if (map == 0 && opcode >= 0xa0 && opcode <= 0xa3 && addr32)
            immediate = 4; /* moffs: the address size */
        i += immediate;
    } else {
        int modrm = p[i++];
        int mod = modrm >> 6, rm = modrm & 7;
        entry = row[(mod == 3 ? 0 : 8) + ((modrm >> 3) & 7)];
        if (entry == X86_UNSURE)
            return X86_LEN_UNSURE;
        if (entry == X86_INVALID)
            return X86_LEN_INVALID;
        if (mod != 3) {
            if (rm == 4 && (p[i++] & 7) == 5 && mod == 0)
                i += 4; /* SIB without a base: disp32 */
            if (mod == 0 && rm == 5)
                i += 4;
            else if (mod == 1)
                i += 1;
            else if (mod == 2)
                i += 4;
        }
        i += entry;
    }
    return i > X86_MAX_LENGTH ? X86_LEN_INVALID : i;
}

#endif
