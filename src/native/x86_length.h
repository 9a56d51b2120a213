/* x86-64 instruction lengths, as iced-x86 (tracebridge's reference decoder) sees them.
 *
 * Prefixes, the opcode map, VEX, ModRM, SIB and displacement are decoded here;
 * the immediate size and whether iced accepts the instruction at all come from
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

/* What each byte is before the opcode: most instructions start with their opcode or a REX,
 * which one load tells apart from the six other kinds of prefix. */
enum { X86_OPCODE, X86_REX, X86_OP66, X86_REP, X86_LOCK, X86_ADDR32, X86_SEGMENT };
static const unsigned char x86_prefix_kind[256] = {
    [0x26] = X86_SEGMENT, [0x2e] = X86_SEGMENT, [0x36] = X86_SEGMENT, [0x3e] = X86_SEGMENT,
    [0x40] = X86_REX, [0x41] = X86_REX, [0x42] = X86_REX, [0x43] = X86_REX,
    [0x44] = X86_REX, [0x45] = X86_REX, [0x46] = X86_REX, [0x47] = X86_REX,
    [0x48] = X86_REX, [0x49] = X86_REX, [0x4a] = X86_REX, [0x4b] = X86_REX,
    [0x4c] = X86_REX, [0x4d] = X86_REX, [0x4e] = X86_REX, [0x4f] = X86_REX,
    [0x64] = X86_SEGMENT, [0x65] = X86_SEGMENT, [0x66] = X86_OP66, [0x67] = X86_ADDR32,
    [0xf0] = X86_LOCK, [0xf2] = X86_REP, [0xf3] = X86_REP,
};

/* Bytes of SIB and displacement after the ModRM byte modrm, whose SIB (if any) is at sib: without
 * a branch, as most instructions of a function have a ModRM whose form is anyone's guess. */
static inline int
x86_modrm_tail(int modrm, const unsigned char *sib)
{
    int mod = modrm >> 6, rm = modrm & 7;
    int has_sib = (mod != 3) & (rm == 4);
    int disp = (mod == 1) + 4 * (mod == 2) + 4 * ((mod == 0) & (rm == 5));
    return has_sib + disp + 4 * (has_sib & (mod == 0) & ((*sib & 7) == 5)); /* SIB without a base: disp32 */
}

/* The length of an instruction whose opcode's table row is row and whose next byte is p[i] (its
 * ModRM, or its immediate); moffs32: a moffs form (a0-a3) after an address-size prefix, whose
 * immediate is a 4-byte address. */
static inline int
x86_row_length(const unsigned char *p, int i, const unsigned char *row, int moffs32)
{
    int entry = row[0];
    if (entry == X86_UNSURE)
        return X86_LEN_UNSURE;
    if (entry != X86_INVALID && (entry & X86_NO_MODRM)) {
        i += moffs32 ? 4 : entry & 0x0f;
    } else {
        int modrm = p[i++];
        int reg = (modrm >> 3) & 7;
        entry = row[(modrm >= 0xc0 ? 0 : 8) + reg];
        if (entry == X86_UNSURE)
            return X86_LEN_UNSURE;
        if (entry == X86_INVALID)
            return X86_LEN_INVALID;
        if (entry & X86_BY_RM) { /* a register form iced accepts for some rm values only (x87, 0f 01) */
            if (!((row[16 + reg] >> (modrm & 7)) & 1))
                return X86_LEN_INVALID;
            entry &= 0x0f;
        }
        i += x86_modrm_tail(modrm, p + i) + entry;
    }
    return i > X86_MAX_LENGTH ? X86_LEN_INVALID : i;
}

/* The length of a legacy (not VEX) instruction whose first opcode byte opcode is at p[i - 1];
 * keyed: the part of its x86_row_of key that the prefixes make, ((lock * 2 + rex_w) * 4 + prefix) * 4. */
static inline int
x86_legacy_length(const unsigned char *p, int i, int opcode, int keyed, int addr32)
{
    int map = 0;
    if (opcode == 0x0f) {
        opcode = p[i++];
        map = 1;
        if (opcode == 0x38 || opcode == 0x3a) {
            map = opcode == 0x38 ? 2 : 3;
            opcode = p[i++];
        }
    }
    return x86_row_length(p, i, x86_rows[x86_row_of[(keyed + map) * 256 + opcode]],
                          map == 0 && opcode >= 0xa0 && opcode <= 0xa3 && addr32);
}

/* x86_length of an instruction with any prefixes, and of VEX. */
static int
x86_length_prefixed(const unsigned char *p)
{
    int i = 0, op66 = 0, rep = 0, lock = 0, addr32 = 0, rex_w = 0, rex = 0;
    for (;; i++) {
        unsigned char b = p[i];
        if (i >= X86_MAX_LENGTH)
            return X86_LEN_INVALID;
        int kind = x86_prefix_kind[b];
        if (kind == X86_OPCODE)
            break;
        if (kind == X86_REX) {
            rex_w = (b & 8) != 0;
            rex = 1;
            continue;
        }
        if (kind == X86_OP66)
            op66 = 1;
        else if (kind == X86_REP) {
            if (rep && rep != b)
                return X86_LEN_UNSURE; /* both: which one selects the instruction is the decoder's rule */
            rep = b;
        } else if (kind == X86_LOCK)
            lock = 1;
        else if (kind == X86_ADDR32)
            addr32 = 1;
        rex_w = 0; /* a REX counts only right before the opcode */
    }
    if (op66 && rep)
        return X86_LEN_UNSURE;
    int opcode = p[i++];
    if (opcode != 0xc4 && opcode != 0xc5) {
        int prefix = rep == 0xf3 ? 2 : rep == 0xf2 ? 3 : op66;
        return x86_legacy_length(p, i, opcode, ((lock * 2 + rex_w) * 4 + prefix) * 4, addr32);
    }
    /* VEX (always, in 64-bit mode).  After 66, F2, F3, LOCK or a REX iced refuses it: left to iced. */
    if (op66 || rep || lock || rex)
        return X86_LEN_UNSURE;
    int w = 0, vex_map = 1;
    if (opcode == 0xc4) {
        vex_map = p[i++] & 0x1f;
        if (vex_map < 1 || vex_map > 3)
            return X86_LEN_UNSURE;
        w = p[i] >> 7;
    }
    int last = p[i++]; /* W (three-byte form), vvvv inverted, L, pp */
    int vvvv_unused = (last & 0x78) == 0x78;
    opcode = p[i++];
    return x86_row_length(p, i, x86_rows[x86_vex_row_of[(((((vex_map - 1) * 4 + (last & 3)) * 2
                                                            + ((last >> 2) & 1)) * 2 + w) * 2 + vvvv_unused) * 256
                                                          + opcode]], 0);
}

/* Length of the instruction at p (X86_WINDOW readable bytes), 0 when iced
 * rejects it, X86_LEN_UNSURE when the tables cannot say.  Inlined into the walk: a call per
 * instruction costs a fifth of the decoding.  Most instructions have no prefix but a REX: they
 * are decoded here, the REX found without a branch and the opcode read with it (the next
 * instruction's start waits on each load: 8 % of librustc_driver's walk); the others by
 * x86_length_prefixed. */
static inline int
x86_length(const unsigned char *p)
{
    int first = p[0], second = p[1];
    int rex = (first & 0xf0) == 0x40, rex_w = rex & (first >> 3);
    int opcode = rex ? second : first;
    if (x86_prefix_kind[opcode] != X86_OPCODE || opcode == 0xc4 || opcode == 0xc5)
        return x86_length_prefixed(p);
    return x86_legacy_length(p, rex + 1, opcode, rex_w * 16, 0);
}

#endif
