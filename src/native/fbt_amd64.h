/* FBT's amd64 instruction walk (sys/cddl/dev/fbt/x86/fbt_isa.c), for many functions in one call.
 *
 * The same steps as tracebridge.probes.fbt_isa.scan_amd64: the entry is the
 * first instruction starting with 0x55 (none before the last 0x55 byte, or a
 * decoder failure first: no entry), then every instruction starting with 0xc3
 * from the entry up to the last 0xc3 byte is a return-site candidate, the walk
 * ending at the first decoder failure.  The jump-table heuristic needs the
 * module's relocations and stays with the caller, which filters candidates.
 * Bytes past the function read as zeros, as in the Python walk.
 */
#ifndef TRACEBRIDGE_FBT_AMD64_H
#define TRACEBRIDGE_FBT_AMD64_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "x86_length.h"

#define FBT_NO_FRAME (-1)
#define FBT_DECODE_FAILED (-2)
#define FBT_UNSURE (-3)

/* Decode at code[pos] of a function of n bytes, padding with zeros past its end. */
static int
fbt_length_at(const unsigned char *code, size_t n, size_t pos)
{
    if (n - pos >= X86_WINDOW)
        return x86_length(code + pos);
    unsigned char window[X86_WINDOW] = {0};
    memcpy(window, code + pos, n - pos);
    return x86_length(window);
}

/* Where the last `byte` of code[0..n) is, or -1: the C library's memrchr where pyconfig.h says
 * there is one (glibc, FreeBSD), which reads a word or a vector at a time. */
static ptrdiff_t
last_byte(const unsigned char *code, size_t n, unsigned char byte)
{
#ifdef HAVE_MEMRCHR
    const unsigned char *found = memrchr(code, byte, n);
    return found == NULL ? -1 : found - code;
#else
    for (size_t i = n; i > 0; i--)
        if (code[i - 1] == byte)
            return (ptrdiff_t)(i - 1);
    return -1;
#endif
}

/* A growing list of offsets; on failure to grow, ok is cleared and the list stops growing. */
typedef struct {
    long long *items;
    size_t count, capacity;
    int ok;
} offset_list;

static void
offsets_add(offset_list *list, size_t value)
{
    if (!list->ok)
        return;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 4096;
        long long *items = realloc(list->items, capacity * sizeof *items);
        if (items == NULL) {
            list->ok = 0;
            return;
        }
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = (long long)value;
}

/* The entry offset (>= 0), FBT_NO_FRAME, FBT_DECODE_FAILED or FBT_UNSURE; with an entry,
 * the return-site candidates are appended to rets (nothing is left there otherwise). */
static ptrdiff_t
fbt_walk_amd64(const unsigned char *code, size_t n, offset_list *rets)
{
    ptrdiff_t last_push = last_byte(code, n, 0x55);
    if (last_push < 0)
        return FBT_NO_FRAME;
    size_t entry = 0;
    while (code[entry] != 0x55) {
        int length = fbt_length_at(code, n, entry);
        if (length == X86_LEN_UNSURE)
            return FBT_UNSURE;
        if (length == X86_LEN_INVALID)
            return FBT_DECODE_FAILED;
        entry += (size_t)length;
        if (entry > (size_t)last_push)
            return FBT_NO_FRAME;
    }
    ptrdiff_t last_ret = last_byte(code, n, 0xc3);
    size_t pos = entry, mark = rets->count;
    while (last_ret >= 0 && pos <= (size_t)last_ret) {
        int length = fbt_length_at(code, n, pos);
        if (length == X86_LEN_UNSURE) {
            rets->count = mark;
            return FBT_UNSURE;
        }
        if (length == X86_LEN_INVALID)
            break;
        if (code[pos] == 0xc3)
            offsets_add(rets, pos);
        pos += (size_t)length;
    }
    return (ptrdiff_t)entry;
}

#endif
