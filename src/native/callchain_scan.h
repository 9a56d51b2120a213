/* The callchain records of a `pmcstat -R LOG -o` record log scanned a block at a time, the native
 * twin of tracebridge.readers.callchain_scan.scan_callchains (see that module for the format).
 *
 * Taken, and only whole: lines of white space (Python's bytes.split() white space: space, \t, \r,
 * \v, \f) and callchain records exactly as pmcstat prints them,
 *     callchain PID 0xPMCID CPU NPC u|s      PID -?[0-9]{1,10}, PMCID 1-16 hex digits, CPU [0-9]{1,10},
 *     ...       0xPC                         NPC [0-9]{1,4} and at most CC_MAX_CALLCHAIN; NPC such
 * lines of 1-16 hex digits each.  The scan stops at the first line it does not take (OTHER), at the
 * first line the block does not hold whole, header or PC (END), and before a kept callchain when
 * the batch is full (FULL); the reader reads from there.  The NPC of a header is only a bound on the
 * lines read next, each checked against the block's end; output arrays grow with checked sizes.
 */
#ifndef TRACEBRIDGE_CALLCHAIN_SCAN_H
#define TRACEBRIDGE_CALLCHAIN_SCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* callchain_scan.MAX_CALLCHAIN, END, OTHER, FULL, CHAIN_FIELDS. */
#define CC_MAX_CALLCHAIN 4096
enum { CC_END = 0, CC_OTHER = 1, CC_FULL = 2 };
#define CC_CHAIN_FIELDS 5
#define CC_PC_PREFIX "...       0x"
#define CC_PC_PREFIX_LEN 12
#define CC_HEADER_TAG "callchain "
#define CC_HEADER_TAG_LEN 10

/* A growing array of 8-byte items. */
typedef struct {
    uint64_t *items;
    size_t count, capacity;
} cc_column;

static int
cc_reserve(cc_column *c, size_t more)
{
    if (more <= c->capacity - c->count)
        return 0;
    size_t capacity = c->capacity ? c->capacity : 1024;
    while (capacity - c->count < more) {
        if (capacity > ((size_t)PY_SSIZE_T_MAX) / (2 * sizeof(uint64_t))) {
            PyErr_NoMemory();
            return -1;
        }
        capacity *= 2;
    }
    uint64_t *items = PyMem_Realloc(c->items, capacity * sizeof(uint64_t));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->items = items;
    c->capacity = capacity;
    return 0;
}

/* The value of digit c in base 16 (hex) or 10, or -1. */
static int
cc_digit(unsigned char c, int hex)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (hex && c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 1 to `most` (at most 16) hex or decimal digits at *p (before end) into *value; the end of the digits,
 * or NULL. */
static const unsigned char *
cc_number(const unsigned char *p, const unsigned char *end, int most, int hex, uint64_t *value)
{
    uint64_t v = 0;
    int n = 0;
    int d;
    while (p < end && n <= most && (d = cc_digit(*p, hex)) >= 0) {
        v = v * (hex ? 16 : 10) + (uint64_t)d;   /* unsigned: a 17th digit wraps, and is refused below */
        p++;
        n++;
    }
    if (n == 0 || n > most)
        return NULL;
    *value = v;
    return p;
}

/* The byte `c` at *p (before end): the next position, or NULL. */
static const unsigned char *
cc_byte(const unsigned char *p, const unsigned char *end, unsigned char c)
{
    return p != NULL && p < end && *p == c ? p + 1 : NULL;
}

typedef struct {
    uint64_t pid, pmcid, cpu, count;   /* pid: its magnitude, negative when `negative` */
    int negative, user;
} cc_header;

/* The header line [p, newline): 1 when it is a callchain record in pmcstat's form, else 0. */
static int
cc_read_header(const unsigned char *p, const unsigned char *newline, cc_header *h)
{
    if (newline - p < CC_HEADER_TAG_LEN || memcmp(p, CC_HEADER_TAG, CC_HEADER_TAG_LEN) != 0)
        return 0;
    p += CC_HEADER_TAG_LEN;
    h->negative = p < newline && *p == '-';
    p = cc_number(p + h->negative, newline, 10, 0, &h->pid);
    p = cc_byte(cc_byte(cc_byte(p, newline, ' '), newline, '0'), newline, 'x');
    if (p == NULL || (p = cc_number(p, newline, 16, 1, &h->pmcid)) == NULL)
        return 0;
    p = cc_byte(p, newline, ' ');
    if (p == NULL || (p = cc_number(p, newline, 10, 0, &h->cpu)) == NULL)
        return 0;
    p = cc_byte(p, newline, ' ');
    if (p == NULL || (p = cc_number(p, newline, 4, 0, &h->count)) == NULL)
        return 0;
    p = cc_byte(p, newline, ' ');
    if (p == NULL || newline - p != 1 || (*p != 'u' && *p != 's'))
        return 0;
    h->user = *p == 'u';
    return 1;
}

/* The PC line [p, newline): 1 and *pc when it is in pmcstat's form, else 0. */
static int
cc_read_pc(const unsigned char *p, const unsigned char *newline, uint64_t *pc)
{
    if (newline - p < CC_PC_PREFIX_LEN || memcmp(p, CC_PC_PREFIX, CC_PC_PREFIX_LEN) != 0)
        return 0;
    return cc_number(p + CC_PC_PREFIX_LEN, newline, 16, 1, pc) == newline;
}

static int
cc_blank(const unsigned char *p, const unsigned char *newline)
{
    for (; p < newline; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\v' && *p != '\f')
            return 0;
    return 1;
}

static int
cc_selected(uint64_t pmcid, const uint64_t *selected, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (selected[i] == pmcid)
            return 1;
    return 0;
}

static PyObject *
cc_bytes(const cc_column *c)
{
    return PyBytes_FromStringAndSize((const char *)c->items, (Py_ssize_t)(c->count * sizeof(uint64_t)));
}

static PyObject *
py_callchain_scan(PyObject *self, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t pos, batched, chunk;
    long long line;
    PyObject *selected_obj;
    if (!PyArg_ParseTuple(args, "y*nLOnn", &data, &pos, &line, &selected_obj, &batched, &chunk))
        return NULL;
    Py_buffer selected = {0};
    int filter = selected_obj != Py_None;
    if (filter && PyObject_GetBuffer(selected_obj, &selected, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    cc_column pcs = {NULL, 0, 0}, chains = {NULL, 0, 0};
    if (pos < 0 || pos > data.len || (filter && selected.len % 8 != 0)) {
        PyErr_SetString(PyExc_ValueError, "callchain_scan: pos outside the block, or selected not uint64s");
        goto done;
    }
    const unsigned char *base = data.buf, *end = base + data.len, *p = base + pos;
    const uint64_t *wanted = filter ? selected.buf : NULL;
    Py_ssize_t wanted_count = filter ? selected.len / 8 : 0;
    long long records = 0;
    int reason = CC_END;
    while (p < end) {
        const unsigned char *newline = memchr(p, '\n', (size_t)(end - p));
        if (newline == NULL)
            break;
        if (cc_blank(p, newline)) {
            p = newline + 1;
            line++;
            continue;
        }
        cc_header h;
        if (!cc_read_header(p, newline, &h) || h.count > CC_MAX_CALLCHAIN) {
            reason = CC_OTHER;
            break;
        }
        /* The PC lines, each checked where it ends, written after the batch's end in case it is kept. */
        if (cc_reserve(&pcs, (size_t)h.count) < 0)
            goto done;
        const unsigned char *at = newline + 1;
        uint64_t taken = 0;
        reason = CC_END;
        while (taken < h.count) {
            const unsigned char *stop = at < end ? memchr(at, '\n', (size_t)(end - at)) : NULL;
            if (stop == NULL)
                break;
            if (!cc_read_pc(at, stop, &pcs.items[pcs.count + (size_t)taken])) {
                reason = CC_OTHER;
                break;
            }
            at = stop + 1;
            taken++;
        }
        if (taken < h.count)
            break;
        int keep = h.count > 0 && (!filter || cc_selected(h.pmcid, wanted, wanted_count));
        if (keep && batched >= chunk) {
            reason = CC_FULL;
            break;
        }
        reason = CC_END;
        records++;
        if (keep) {
            if (cc_reserve(&chains, CC_CHAIN_FIELDS) < 0)
                goto done;
            uint64_t *row = chains.items + chains.count;
            row[0] = h.count;
            row[1] = (uint64_t)(line + 2);
            row[2] = h.negative ? 0 - h.pid : h.pid;   /* at most 10 digits: an int64 either way */
            row[3] = h.cpu;
            row[4] = (uint64_t)h.user;
            chains.count += CC_CHAIN_FIELDS;
            pcs.count += (size_t)h.count;
            batched += (Py_ssize_t)h.count;
        }
        p = at;
        line += 1 + (long long)h.count;
    }
    PyObject *pcs_obj = cc_bytes(&pcs), *chains_obj = cc_bytes(&chains);
    if (pcs_obj != NULL && chains_obj != NULL)
        result = Py_BuildValue("(nLiLOO)", (Py_ssize_t)(p - base), line, reason, records, pcs_obj, chains_obj);
    Py_XDECREF(pcs_obj);
    Py_XDECREF(chains_obj);
done:
    PyMem_Free(pcs.items);
    PyMem_Free(chains.items);
    if (filter)
        PyBuffer_Release(&selected);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(callchain_scan_doc,
"callchain_scan(block, pos, line, selected, batched, chunk) -> (pos, line, reason, records, pcs, chains)\n\n"
"The native twin of tracebridge.readers.callchain_scan.scan_callchains: blank lines and whole\n"
"callchain records of a pmcstat -o record log from block[pos:], as that function reads them.");

#endif
