/* The DIEs of one DWARF unit read for the address index: tracebridge.image.diewalk's twin.
 *
 * pyelftools builds a DIE object and a container per attribute for every DIE
 * of a unit; the index needs a handful of attributes of a handful of tags
 * (subprograms, inlined subroutines and the scopes that name them), so this
 * walk reads the abbreviation table itself, skips every other attribute by
 * its form (DWARF 2 to 5 and the GNU split-DWARF forms) and decodes the
 * address ranges of code DIEs (low/high pc, .debug_ranges, .debug_rnglists)
 * on the way.  The output is flat int64 rows; the pure-Python walk in
 * tracebridge/image/diewalk.py gives byte-identical rows, strings and error
 * messages (tests/image/test_diewalk.py runs both on every DWARF fixture).
 *
 * Every read is bounded by its unit or section; a number too large for 64
 * bits is kept as "huge" and refused where it is used, as the Python twin's
 * unbounded integers are.
 */
#ifndef TRACEBRIDGE_DWARF_WALK_H
#define TRACEBRIDGE_DWARF_WALK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Columns of a record (one per DIE of a recorded tag), in diewalk.RECORD_COLUMNS order. */
enum { DW_R_OFFSET, DW_R_TAG, DW_R_PARENT, DW_R_CODE_PARENT, DW_R_ORIGIN, DW_R_CALL_FILE, DW_R_CALL_LINE,
       DW_R_NAME, DW_R_LINKAGE, DW_R_COLUMNS };
/* Recorded tags, numbered as diewalk.TAGS. */
static const uint64_t dw_tags[] = {0x2e, 0x1d, 0x39, 0x13, 0x02, 0x17, 0x04};
#define DW_TAG_COUNT 7
#define DW_CODE_TAGS 2 /* the first two: subprogram, inlined subroutine */
#define DW_MAX_ADDRESS ((uint64_t)INT64_MAX)
#define DW_MAX_LINE ((uint64_t)INT32_MAX)
#define DW_DIRECT_CODES 65536

typedef struct {
    const unsigned char *data;
    size_t size;
} dw_section;

/* In diewalk.SECTIONS order. */
enum { DW_S_INFO, DW_S_ABBREV, DW_S_STR, DW_S_LINE_STR, DW_S_STR_OFFSETS, DW_S_ADDR, DW_S_RANGES, DW_S_RNGLISTS,
       DW_S_COUNT };

typedef struct {
    uint64_t die_start, unit_end, unit_offset, top_offset, version, address_size, offset_size, abbrev_offset, base;
    int64_t str_offsets_base, addr_base, rnglists_base, top_has_children, max_depth;
} dw_unit;

/* A number read from the input: its value when it fits in 64 bits, else huge; negative for signed forms. */
typedef struct {
    uint64_t value;
    int huge, negative;
} dw_number;

typedef struct {
    uint64_t name, form;
    dw_number implicit;
} dw_spec;

typedef struct {
    uint64_t code, tag;
    int children;
    size_t first, count;
} dw_abbrev;

/* An abbreviation code past the direct table, and its index in the table's abbrevs. */
typedef struct {
    uint64_t code;
    size_t index;
} dw_far_code;

typedef struct {
    dw_abbrev *abbrevs;
    size_t abbrev_count, abbrev_capacity;
    dw_spec *specs;
    size_t spec_count, spec_capacity;
    int32_t *direct; /* code -> abbrevs index + 1 for codes below direct_size */
    size_t direct_size;
    dw_far_code *far; /* the other codes, by code then index: a binary search, as a scan per DIE is quadratic */
    size_t far_count;
} dw_table;

typedef struct {
    const dw_section *sections;
    const dw_unit *unit;
    int64_t *records;
    size_t record_count, record_capacity;
    int64_t *ranges;
    size_t range_count, range_capacity;
    uint64_t entries_left; /* range list entries the unit may still decode (see dw_walk_unit) */
    PyObject *strings;
    char error[160];
} dw_walk;

/* Value classes of forms. */
enum { DW_V_NONE, DW_V_ADDR, DW_V_ADDRX, DW_V_UDATA, DW_V_SDATA, DW_V_REF, DW_V_REF_ADDR, DW_V_SEC, DW_V_RNGLISTX,
       DW_V_STRING, DW_V_STRP, DW_V_LINE_STRP, DW_V_STRX };

typedef struct {
    int kind;
    dw_number number;
    size_t start, length; /* DW_V_STRING: the bytes in .debug_info */
} dw_value;

typedef struct {
    const unsigned char *data;
    size_t offset, end;
} dw_cursor;

static int
dw_fail(dw_walk *w, const char *message)
{
    if (!w->error[0])
        snprintf(w->error, sizeof w->error, "%s", message);
    return -1;
}

static int
dw_byte(dw_cursor *c, unsigned *out)
{
    if (c->offset >= c->end)
        return -1;
    *out = c->data[c->offset++];
    return 0;
}

/* A LEB128 number: its low 64 bits, whether more were set (huge), and its last byte (the sign, for SLEB). */
static int
dw_leb(dw_cursor *c, dw_number *out, unsigned *last)
{
    uint64_t value = 0;
    unsigned shift = 0, byte;
    int huge = 0;
    do {
        if (dw_byte(c, &byte) < 0)
            return -1;
        uint64_t payload = byte & 0x7f;
        if (shift < 64) {
            if (shift > 57 && (payload >> (64 - shift)) != 0)
                huge = 1;
            value |= payload << shift;
        } else if (payload) {
            huge = 1;
        }
        if (shift < 1024)
            shift += 7;
    } while (byte & 0x80);
    out->value = value;
    out->huge = huge;
    out->negative = 0;
    *last = byte;
    return 0;
}

/* Unsigned LEB128; huge when its value needs more than 64 bits. */
static int
dw_uleb(dw_cursor *c, dw_number *out)
{
    unsigned last;
    return dw_leb(c, out, &last);
}

/* Signed LEB128: a negative one is only marked negative (no form the index reads may be negative). */
static int
dw_sleb(dw_cursor *c, dw_number *out)
{
    unsigned last;
    if (dw_leb(c, out, &last) < 0)
        return -1;
    if (last & 0x40)
        *out = (dw_number){0, 0, 1};
    return 0;
}

static int
dw_fixed(dw_cursor *c, size_t size, uint64_t *out)
{
    if (size > c->end - c->offset || c->offset > c->end)
        return -1;
    uint64_t value = 0;
    for (size_t i = 0; i < size; i++)
        value |= (uint64_t)c->data[c->offset + i] << (8 * i);
    c->offset += size;
    *out = value;
    return 0;
}

static int
dw_skip(dw_cursor *c, uint64_t size, int huge)
{
    if (huge || c->offset > c->end || size > c->end - c->offset)
        return -1;
    c->offset += (size_t)size;
    return 0;
}

/* The number as a non-negative int64, or -1 when negative or past INT64_MAX. */
static int64_t
dw_plain(dw_number n)
{
    return (n.negative || n.huge || n.value > (uint64_t)INT64_MAX) ? -1 : (int64_t)n.value;
}

/* ---------------------------------------------------------------- abbreviations --- */

static void
dw_table_free(dw_table *t)
{
    PyMem_Free(t->abbrevs);
    PyMem_Free(t->specs);
    PyMem_Free(t->direct);
    PyMem_Free(t->far);
}

static int
dw_far_order(const void *a, const void *b)
{
    const dw_far_code *x = a, *y = b;
    if (x->code != y->code)
        return x->code < y->code ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int
dw_grow(void **items, size_t *capacity, size_t count, size_t item)
{
    if (count < *capacity)
        return 0;
    size_t wanted = *capacity ? *capacity * 2 : 64;
    if (wanted > ((size_t)PY_SSIZE_T_MAX) / item)
        return -1;
    void *grown = PyMem_Realloc(*items, wanted * item);
    if (grown == NULL)
        return -1;
    *items = grown;
    *capacity = wanted;
    return 0;
}

static int
dw_read_table(dw_walk *w, dw_table *t)
{
    const dw_section *abbrev = &w->sections[DW_S_ABBREV];
    char message[120];
    snprintf(message, sizeof message, "the abbreviation table at .debug_abbrev offset 0x%llx runs past its end",
             (unsigned long long)w->unit->abbrev_offset);
    if (w->unit->abbrev_offset > abbrev->size)
        return dw_fail(w, message);
    dw_cursor c = {abbrev->data, (size_t)w->unit->abbrev_offset, abbrev->size};
    uint64_t max_code = 0;
    for (;;) {
        dw_number code, tag, name, form;
        unsigned children;
        if (dw_uleb(&c, &code) < 0)
            return dw_fail(w, message);
        if (code.value == 0 && !code.huge)
            break;
        if (dw_uleb(&c, &tag) < 0 || dw_byte(&c, &children) < 0)
            return dw_fail(w, message);
        if (dw_grow((void **)&t->abbrevs, &t->abbrev_capacity, t->abbrev_count, sizeof(dw_abbrev)) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        dw_abbrev *a = &t->abbrevs[t->abbrev_count++];
        a->code = code.huge ? 0 : code.value; /* 0: never looked up (a DIE with code 0 is a null entry) */
        a->tag = tag.huge ? UINT64_MAX : tag.value;
        a->children = children == 1;
        a->first = t->spec_count;
        a->count = 0;
        if (!code.huge && code.value > max_code)
            max_code = code.value;
        for (;;) {
            if (dw_uleb(&c, &name) < 0 || dw_uleb(&c, &form) < 0)
                return dw_fail(w, message);
            if (name.value == 0 && form.value == 0 && !name.huge && !form.huge)
                break;
            if (dw_grow((void **)&t->specs, &t->spec_capacity, t->spec_count, sizeof(dw_spec)) < 0) {
                PyErr_NoMemory();
                return -1;
            }
            dw_spec *s = &t->specs[t->spec_count++];
            s->name = name.huge ? UINT64_MAX : name.value;
            s->form = form.huge ? UINT64_MAX : form.value;
            memset(&s->implicit, 0, sizeof s->implicit);
            if (s->form == 0x21 && dw_sleb(&c, &s->implicit) < 0) /* DW_FORM_implicit_const */
                return dw_fail(w, message);
            a->count++;
        }
    }
    t->direct_size = max_code + 1 < DW_DIRECT_CODES ? (size_t)max_code + 1 : DW_DIRECT_CODES;
    t->direct = PyMem_Calloc(t->direct_size, sizeof(int32_t));
    if (t->direct == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < t->abbrev_count && i < INT32_MAX; i++) {
        uint64_t code = t->abbrevs[i].code;
        if (code < t->direct_size && t->direct[code] == 0)
            t->direct[code] = (int32_t)(i + 1);
    }
    for (size_t i = 0; i < t->abbrev_count; i++)
        t->far_count += t->abbrevs[i].code >= t->direct_size;
    if (t->far_count) {
        t->far = PyMem_Malloc(t->far_count * sizeof *t->far); /* fewer than the abbrevs, whose size was checked */
        if (t->far == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        size_t n = 0;
        for (size_t i = 0; i < t->abbrev_count; i++)
            if (t->abbrevs[i].code >= t->direct_size)
                t->far[n++] = (dw_far_code){t->abbrevs[i].code, i};
        qsort(t->far, t->far_count, sizeof *t->far, dw_far_order);
    }
    return 0;
}

static const dw_abbrev *
dw_find(const dw_table *t, uint64_t code)
{
    if (code < t->direct_size)
        return t->direct[code] ? &t->abbrevs[t->direct[code] - 1] : NULL;
    size_t low = 0, high = t->far_count; /* the first entry of the code: its first definition */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (t->far[middle].code < code)
            low = middle + 1;
        else
            high = middle;
    }
    return low < t->far_count && t->far[low].code == code ? &t->abbrevs[t->far[low].index] : NULL;
}

/* ----------------------------------------------------------------- attributes --- */

/* Read one attribute value of `form` at the cursor (its value when the index may need it). */
static int
dw_read_value(dw_walk *w, dw_cursor *c, uint64_t form, const dw_number *implicit, dw_value *v)
{
    const dw_unit *u = w->unit;
    uint64_t raw;
    dw_number n;
    v->kind = DW_V_NONE;
    for (;;) { /* once, or again after DW_FORM_indirect (which reads at least a byte) */
        switch (form) {
        case 0x01: /* addr */
            if (dw_fixed(c, u->address_size, &raw) < 0)
                return -1;
            v->kind = DW_V_ADDR, v->number = (dw_number){raw, 0, 0};
            return 0;
        case 0x03: case 0x04: case 0x09: case 0x0a: /* block2, block4, block, block1 */
            if (form == 0x09) {
                if (dw_uleb(c, &n) < 0)
                    return -1;
            } else {
                if (dw_fixed(c, form == 0x03 ? 2 : form == 0x04 ? 4 : 1, &raw) < 0)
                    return -1;
                n = (dw_number){raw, 0, 0};
            }
            return dw_skip(c, n.value, n.huge);
        case 0x18: /* exprloc */
            if (dw_uleb(c, &n) < 0)
                return -1;
            return dw_skip(c, n.value, n.huge);
        case 0x05: case 0x06: case 0x07: case 0x0b: /* data2, data4, data8, data1 */
            if (dw_fixed(c, form == 0x05 ? 2 : form == 0x06 ? 4 : form == 0x07 ? 8 : 1, &raw) < 0)
                return -1;
            v->kind = DW_V_UDATA, v->number = (dw_number){raw, 0, 0};
            return 0;
        case 0x0f: /* udata */
            if (dw_uleb(c, &v->number) < 0)
                return -1;
            v->kind = DW_V_UDATA;
            return 0;
        case 0x0d: /* sdata */
            if (dw_sleb(c, &v->number) < 0)
                return -1;
            v->kind = DW_V_SDATA;
            return 0;
        case 0x21: /* implicit_const */
            if (implicit == NULL)
                return 1;
            v->kind = DW_V_SDATA, v->number = *implicit;
            return 0;
        case 0x08: { /* string */
            size_t start = c->offset;
            const unsigned char *nul = start < c->end ? memchr(c->data + start, 0, c->end - start) : NULL;
            if (nul == NULL)
                return -1;
            v->kind = DW_V_STRING, v->start = start, v->length = (size_t)(nul - (c->data + start));
            c->offset = start + v->length + 1;
            return 0;
        }
        case 0x0c: case 0x11: case 0x25: case 0x29: /* flag, ref1, strx1, addrx1 */
            if (dw_fixed(c, 1, &raw) < 0)
                return -1;
            break;
        case 0x12: case 0x26: case 0x2a: /* ref2, strx2, addrx2 */
            if (dw_fixed(c, 2, &raw) < 0)
                return -1;
            break;
        case 0x27: case 0x2b: /* strx3, addrx3 */
            if (dw_fixed(c, 3, &raw) < 0)
                return -1;
            break;
        case 0x13: case 0x1c: case 0x28: case 0x2c: /* ref4, ref_sup4, strx4, addrx4 */
            if (dw_fixed(c, 4, &raw) < 0)
                return -1;
            break;
        case 0x14: case 0x20: case 0x24: /* ref8, ref_sig8, ref_sup8 */
            if (dw_fixed(c, 8, &raw) < 0)
                return -1;
            break;
        case 0x1e: /* data16 */
            return dw_skip(c, 16, 0);
        case 0x0e: case 0x17: case 0x1d: case 0x1f: case 0x1f20: case 0x1f21:
            /* strp, sec_offset, strp_sup, line_strp, GNU_ref_alt, GNU_strp_alt */
            if (dw_fixed(c, u->offset_size, &raw) < 0)
                return -1;
            v->number = (dw_number){raw, 0, 0};
            v->kind = form == 0x0e ? DW_V_STRP : form == 0x17 ? DW_V_SEC : form == 0x1f ? DW_V_LINE_STRP : DW_V_NONE;
            return 0;
        case 0x10: /* ref_addr: an address in DWARF 2, an offset since */
            if (dw_fixed(c, u->version <= 2 ? u->address_size : u->offset_size, &raw) < 0)
                return -1;
            v->kind = DW_V_REF_ADDR, v->number = (dw_number){raw, 0, 0};
            return 0;
        case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: case 0x1f01: case 0x1f02:
            /* ref_udata, strx, addrx, loclistx, rnglistx, GNU_addr_index, GNU_str_index */
            if (dw_uleb(c, &v->number) < 0)
                return -1;
            v->kind = form == 0x15 ? DW_V_REF : (form == 0x1a || form == 0x1f02) ? DW_V_STRX
                    : (form == 0x1b || form == 0x1f01) ? DW_V_ADDRX : form == 0x23 ? DW_V_RNGLISTX : DW_V_NONE;
            return 0;
        case 0x19: /* flag_present */
            return 0;
        case 0x16: /* indirect: the form comes first */
            if (dw_uleb(c, &n) < 0)
                return -1;
            if (n.huge)
                return 1;
            form = n.value;
            implicit = NULL;
            continue;
        default:
            return 1;
        }
        /* The fixed-size forms read into raw above. */
        v->number = (dw_number){raw, 0, 0};
        switch (form) {
        case 0x11: case 0x12: case 0x13: case 0x14:
            v->kind = DW_V_REF;
            break;
        case 0x25: case 0x26: case 0x27: case 0x28:
            v->kind = DW_V_STRX;
            break;
        case 0x29: case 0x2a: case 0x2b: case 0x2c:
            v->kind = DW_V_ADDRX;
            break;
        }
        return 0;
    }
}

/* Entry `index` of the `size`-byte table at `base` in `section` (DWARF 5's indexed forms); -1 (error set) if
 * the unit has no such base or the entry lies past the section's end. */
static int
dw_entry(dw_walk *w, int section, int64_t base, const char *attribute, dw_number index, uint64_t size,
         uint64_t *out)
{
    const dw_section *table = &w->sections[section];
    static const char *const names[DW_S_COUNT] = {".debug_info", ".debug_abbrev", ".debug_str", ".debug_line_str",
        ".debug_str_offsets", ".debug_addr", ".debug_ranges", ".debug_rnglists"};
    char message[96];
    if (base < 0) {
        snprintf(message, sizeof message, "the unit needs %s", attribute);
        return dw_fail(w, message);
    }
    if (index.huge || (uint64_t)base > table->size || index.value > (table->size - (uint64_t)base) / size
            || index.value * size + size > table->size - (uint64_t)base) {
        snprintf(message, sizeof message, "an index into %s lies past its end", names[section]);
        return dw_fail(w, message);
    }
    dw_cursor c = {table->data, (size_t)((uint64_t)base + index.value * size), table->size};
    return dw_fixed(&c, size, out);
}

/* .debug_addr entry `index` of the unit. */
static int
dw_address(dw_walk *w, dw_number index, uint64_t *out)
{
    return dw_entry(w, DW_S_ADDR, w->unit->addr_base, "DW_AT_addr_base", index, w->unit->address_size, out);
}

static int64_t
dw_add_string(dw_walk *w, const unsigned char *start, size_t length)
{
    PyObject *text = PyBytes_FromStringAndSize((const char *)start, (Py_ssize_t)length);
    if (text == NULL || PyList_Append(w->strings, text) < 0) {
        Py_XDECREF(text);
        return -1;
    }
    Py_DECREF(text);
    return PyList_GET_SIZE(w->strings) - 1;
}

/* The index in w->strings of a string-class value; -1 (no string) for other forms; -2 on error. */
static int64_t
dw_string(dw_walk *w, const dw_value *v)
{
    int section;
    const char *name;
    uint64_t offset;
    if (v->kind == DW_V_STRING) {
        int64_t index = dw_add_string(w, w->sections[DW_S_INFO].data + v->start, v->length);
        return index < 0 ? -2 : index;
    }
    if (v->kind == DW_V_STRP || v->kind == DW_V_STRX) {
        section = DW_S_STR, name = ".debug_str";
    } else if (v->kind == DW_V_LINE_STRP) {
        section = DW_S_LINE_STR, name = ".debug_line_str";
    } else {
        return -1;
    }
    offset = v->number.value;
    if (v->kind == DW_V_STRX && dw_entry(w, DW_S_STR_OFFSETS, w->unit->str_offsets_base, "DW_AT_str_offsets_base",
                                         v->number, w->unit->offset_size, &offset) < 0)
        return -2;
    const dw_section *s = &w->sections[section];
    const unsigned char *nul = offset < s->size ? memchr(s->data + offset, 0, s->size - offset) : NULL;
    if (nul == NULL) {
        char message[96];
        snprintf(message, sizeof message, "a string offset lies past the end of %s", name);
        dw_fail(w, message);
        return -2;
    }
    int64_t index = dw_add_string(w, s->data + offset, (size_t)(nul - (s->data + offset)));
    return index < 0 ? -2 : index;
}

/* ----------------------------------------------------------------------- ranges --- */

static int
dw_add_range(dw_walk *w, unsigned __int128 low, unsigned __int128 high, int64_t record)
{
    if (!(high > low) || high > DW_MAX_ADDRESS)
        return 0;
    if (dw_grow((void **)&w->ranges, &w->range_capacity, w->range_count, 3 * sizeof(int64_t)) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    int64_t *row = &w->ranges[w->range_count * 3];
    row[0] = (int64_t)low, row[1] = (int64_t)high, row[2] = record;
    w->range_count++;
    return 0;
}

/* One more range list entry decoded; an error once the unit's budget is spent. */
static int
dw_spend(dw_walk *w)
{
    if (w->entries_left == 0)
        return dw_fail(w, "the unit's range lists hold more entries than its sections have bytes");
    w->entries_left--;
    return 0;
}

#define DW_HUGE ((unsigned __int128)1 << 100)
#define DW_WIDE(n) ((n).huge ? DW_HUGE : (unsigned __int128)(n).value)

static int
dw_ranges_v4(dw_walk *w, uint64_t offset, int64_t record)
{
    const dw_section *s = &w->sections[DW_S_RANGES];
    const char *message = "a range list in .debug_ranges runs past the end of its section";
    uint64_t size = w->unit->address_size, top = size >= 8 ? UINT64_MAX : (((uint64_t)1 << (8 * size)) - 1);
    unsigned __int128 base = w->unit->base;
    if (offset > s->size)
        return dw_fail(w, message);
    dw_cursor c = {s->data, (size_t)offset, s->size};
    for (;;) {
        uint64_t begin, end;
        if (dw_spend(w) < 0)
            return -1;
        if (dw_fixed(&c, size, &begin) < 0 || dw_fixed(&c, size, &end) < 0)
            return dw_fail(w, message);
        if (begin == 0 && end == 0)
            return 0;
        if (begin == top)
            base = end;
        else if (end > begin && dw_add_range(w, begin + base, end + base, record) < 0)
            return -1;
    }
}

static int
dw_rnglist(dw_walk *w, uint64_t offset, int64_t record)
{
    const dw_section *s = &w->sections[DW_S_RNGLISTS];
    const char *message = "a range list in .debug_rnglists runs past the end of its section";
    uint64_t size = w->unit->address_size, raw;
    unsigned __int128 base = w->unit->base, begin, end;
    dw_number a, b;
    unsigned kind;
    if (offset > s->size)
        return dw_fail(w, message);
    dw_cursor c = {s->data, (size_t)offset, s->size};
    for (;;) {
        if (dw_spend(w) < 0)
            return -1;
        if (dw_byte(&c, &kind) < 0)
            return dw_fail(w, message);
        switch (kind) {
        case 0: /* end_of_list */
            return 0;
        case 1: /* base_addressx */
            if (dw_uleb(&c, &a) < 0)
                return dw_fail(w, message);
            if (dw_address(w, a, &raw) < 0)
                return -1;
            base = raw;
            continue;
        case 5: /* base_address */
            if (dw_fixed(&c, size, &raw) < 0)
                return dw_fail(w, message);
            base = raw;
            continue;
        case 4: /* offset_pair */
            if (dw_uleb(&c, &a) < 0 || dw_uleb(&c, &b) < 0)
                return dw_fail(w, message);
            begin = base + DW_WIDE(a), end = base + DW_WIDE(b);
            break;
        case 2: case 3: /* startx_endx, startx_length */
            if (dw_uleb(&c, &a) < 0)
                return dw_fail(w, message);
            if (dw_address(w, a, &raw) < 0)
                return -1;
            begin = raw;
            if (dw_uleb(&c, &b) < 0)
                return dw_fail(w, message);
            if (kind == 2) {
                if (dw_address(w, b, &raw) < 0)
                    return -1;
                end = raw;
            } else {
                end = begin + DW_WIDE(b);
            }
            break;
        case 6: /* start_end */
            if (dw_fixed(&c, size, &raw) < 0)
                return dw_fail(w, message);
            begin = raw;
            if (dw_fixed(&c, size, &raw) < 0)
                return dw_fail(w, message);
            end = raw;
            break;
        case 7: /* start_length */
            if (dw_fixed(&c, size, &raw) < 0)
                return dw_fail(w, message);
            begin = raw;
            if (dw_uleb(&c, &b) < 0)
                return dw_fail(w, message);
            end = begin + DW_WIDE(b);
            break;
        default: {
            char text[80];
            snprintf(text, sizeof text, "unknown range list entry kind 0x%x in .debug_rnglists", kind);
            return dw_fail(w, text);
        }
        }
        if (dw_add_range(w, begin, end, record) < 0)
            return -1;
    }
}

/* --------------------------------------------------------------------- the walk --- */

typedef struct {
    int64_t offset, code;
} dw_open;

/* The attributes a recorded DIE keeps, as read. */
typedef struct {
    dw_value name, linkage, mips_linkage, origin, specification, call_file, call_line, low, high, ranges;
} dw_wanted;

static int64_t
dw_reference(const dw_walk *w, const dw_value *v)
{
    if (v->kind == DW_V_REF) {
        if (v->number.huge || v->number.value > DW_MAX_ADDRESS - w->unit->unit_offset)
            return -1;
        return (int64_t)(w->unit->unit_offset + v->number.value);
    }
    if (v->kind == DW_V_REF_ADDR)
        return dw_plain(v->number);
    return -1;
}

static int
dw_code_ranges(dw_walk *w, const dw_wanted *a, int64_t record)
{
    uint64_t low, high;
    int have_low = 0;
    if (a->low.kind == DW_V_ADDR) {
        low = a->low.number.value, have_low = 1;
    } else if (a->low.kind == DW_V_ADDRX) {
        if (dw_address(w, a->low.number, &low) < 0)
            return -1;
        have_low = 1;
    }
    int high_kind = a->high.kind;
    if (have_low && (high_kind == DW_V_ADDR || high_kind == DW_V_ADDRX || high_kind == DW_V_UDATA
                     || high_kind == DW_V_SDATA)) {
        if (high_kind == DW_V_ADDR || high_kind == DW_V_ADDRX) {
            if (high_kind == DW_V_ADDR)
                high = a->high.number.value;
            else if (dw_address(w, a->high.number, &high) < 0)
                return -1;
            return dw_add_range(w, low, high, record);
        }
        if (a->high.number.negative)
            return 0;
        return dw_add_range(w, low, (unsigned __int128)low + DW_WIDE(a->high.number), record);
    }
    uint64_t offset;
    if (a->ranges.kind == DW_V_RNGLISTX) { /* an offset from the unit's base, in the table there */
        uint64_t entry = 0, base = (uint64_t)w->unit->rnglists_base;
        if (dw_entry(w, DW_S_RNGLISTS, w->unit->rnglists_base, "DW_AT_rnglists_base", a->ranges.number,
                     w->unit->offset_size, &entry) < 0)
            return -1;
        if (entry > UINT64_MAX - base)
            return dw_fail(w, "a range list in .debug_rnglists runs past the end of its section");
        offset = base + entry;
    } else if (a->ranges.kind == DW_V_SEC || a->ranges.kind == DW_V_UDATA) {
        if (a->ranges.number.huge)
            return dw_fail(w, w->unit->version >= 5
                           ? "a range list in .debug_rnglists runs past the end of its section"
                           : "a range list in .debug_ranges runs past the end of its section");
        offset = a->ranges.number.value;
    } else {
        return 0;
    }
    return w->unit->version >= 5 ? dw_rnglist(w, offset, record) : dw_ranges_v4(w, offset, record);
}

static int
dw_tag_index(uint64_t tag)
{
    for (int i = 0; i < DW_TAG_COUNT; i++)
        if (dw_tags[i] == tag)
            return i;
    return -1;
}

static int
dw_walk_unit(dw_walk *w, dw_table *t)
{
    const dw_unit *u = w->unit;
    const dw_section *info = &w->sections[DW_S_INFO];
    char message[120];
    dw_open *stack = NULL;
    size_t depth = 0, stack_capacity = 0;
    int status = -1;
    if (dw_read_table(w, t) < 0)
        return -1;
    if (u->top_has_children) {
        if (dw_grow((void **)&stack, &stack_capacity, depth, sizeof(dw_open)) < 0)
            goto nomemory;
        stack[depth++] = (dw_open){(int64_t)u->top_offset, -1};
    }
    size_t end = u->unit_end < info->size ? (size_t)u->unit_end : info->size;
    dw_cursor c = {info->data, u->die_start < end ? (size_t)u->die_start : end, end};
    /* Every entry of a list takes a byte or more: a unit whose DIEs decode more entries than it and the
     * range sections have bytes shares lists absurdly (many DIEs naming one long list), which would
     * cost time and memory without bound. */
    w->entries_left = (end - c.offset) + w->sections[DW_S_RANGES].size + w->sections[DW_S_RNGLISTS].size;
    size_t die_start = c.offset;
    while (c.offset < end) {
        size_t die = die_start = c.offset;
        dw_number code;
        if (dw_uleb(&c, &code) < 0)
            goto truncated;
        if (code.value == 0 && !code.huge) {
            if (depth)
                depth--;
            continue;
        }
        const dw_abbrev *abbrev = code.huge ? NULL : dw_find(t, code.value);
        if (abbrev == NULL) {
            snprintf(message, sizeof message, "DIE at 0x%zx: its abbreviation code is not in the unit's table", die);
            dw_fail(w, message);
            goto done;
        }
        int tag = dw_tag_index(abbrev->tag);
        dw_wanted a;
        memset(&a, 0, sizeof a);
        for (size_t i = 0; i < abbrev->count; i++) {
            const dw_spec *s = &t->specs[abbrev->first + i];
            dw_value scratch, *v = &scratch;
            if (tag >= 0) {
                switch (s->name) {
                case 0x03: v = &a.name; break;
                case 0x6e: v = &a.linkage; break;
                case 0x2007: v = &a.mips_linkage; break;
                case 0x31: v = &a.origin; break;
                case 0x47: v = &a.specification; break;
                case 0x58: v = &a.call_file; break;
                case 0x59: v = &a.call_line; break;
                case 0x11: v = &a.low; break;
                case 0x12: v = &a.high; break;
                case 0x55: v = &a.ranges; break;
                }
            }
            int read = dw_read_value(w, &c, s->form, &s->implicit, v);
            if (read > 0) {
                snprintf(message, sizeof message, "DIE at 0x%zx: an attribute has an unknown form", die);
                dw_fail(w, message);
                goto done;
            }
            if (read < 0)
                goto truncated;
        }
        int64_t code_parent = depth ? stack[depth - 1].code : -1, self_code = code_parent;
        if (tag >= 0) {
            if (dw_grow((void **)&w->records, &w->record_capacity, w->record_count, DW_R_COLUMNS * sizeof(int64_t)) < 0)
                goto nomemory;
            int64_t record = (int64_t)w->record_count, *row = &w->records[w->record_count * DW_R_COLUMNS];
            int64_t name = dw_string(w, &a.name);
            int64_t linkage = name == -2 ? -2 : dw_string(w, a.linkage.kind ? &a.linkage : &a.mips_linkage);
            if (name == -2 || linkage == -2)
                goto done;
            int64_t origin = dw_reference(w, &a.origin);
            if (origin < 0)
                origin = dw_reference(w, &a.specification);
            dw_number file = a.call_file.number, line = a.call_line.number;
            int numeric_file = a.call_file.kind == DW_V_UDATA || a.call_file.kind == DW_V_SDATA;
            int numeric_line = a.call_line.kind == DW_V_UDATA || a.call_line.kind == DW_V_SDATA;
            row[DW_R_OFFSET] = (int64_t)die;
            row[DW_R_TAG] = tag;
            row[DW_R_PARENT] = depth ? stack[depth - 1].offset : -1;
            row[DW_R_CODE_PARENT] = code_parent;
            row[DW_R_ORIGIN] = origin;
            row[DW_R_CALL_FILE] = numeric_file ? dw_plain(file) : -1;
            row[DW_R_CALL_LINE] = numeric_line && !line.negative && !line.huge && line.value <= DW_MAX_LINE
                                  ? (int64_t)line.value : 0;
            row[DW_R_NAME] = name;
            row[DW_R_LINKAGE] = linkage;
            w->record_count++;
            if (tag < DW_CODE_TAGS && (int64_t)depth < u->max_depth) {
                self_code = record;
                if (dw_code_ranges(w, &a, record) < 0)
                    goto done;
            }
        }
        if (abbrev->children) {
            if (dw_grow((void **)&stack, &stack_capacity, depth, sizeof(dw_open)) < 0)
                goto nomemory;
            stack[depth++] = (dw_open){(int64_t)die, self_code};
        }
    }
    status = 0;
    goto done;
truncated:
    snprintf(message, sizeof message, "DIE at 0x%zx runs past the end of its unit", die_start);
    dw_fail(w, message);
    goto done;
nomemory:
    PyErr_NoMemory();
done:
    PyMem_Free(stack);
    return status;
}

/* dwarf_walk(sections, unit) -> (records, ranges, strings); see tracebridge.image.diewalk.walk_unit. */
static PyObject *
py_dwarf_walk(PyObject *self, PyObject *args)
{
    PyObject *sections_obj;
    dw_unit unit;
    if (!PyArg_ParseTuple(args, "O(KKKKKKKKKLLLLL)", &sections_obj, &unit.die_start, &unit.unit_end,
                          &unit.unit_offset, &unit.top_offset, &unit.version, &unit.address_size, &unit.offset_size,
                          &unit.abbrev_offset, &unit.base, &unit.str_offsets_base, &unit.addr_base,
                          &unit.rnglists_base, &unit.top_has_children, &unit.max_depth))
        return NULL;
    if (!PyTuple_Check(sections_obj) || PyTuple_GET_SIZE(sections_obj) != DW_S_COUNT) {
        PyErr_SetString(PyExc_TypeError, "sections: a tuple of 8 bytes objects");
        return NULL;
    }
    if (unit.address_size < 1 || unit.address_size > 8 || (unit.offset_size != 4 && unit.offset_size != 8)) {
        PyErr_SetString(PyExc_ValueError, "the unit's address or offset size is not supported");
        return NULL;
    }
    Py_buffer views[DW_S_COUNT];
    dw_section sections[DW_S_COUNT];
    int taken = 0;
    PyObject *result = NULL;
    dw_walk w;
    dw_table table;
    memset(&w, 0, sizeof w);
    memset(&table, 0, sizeof table);
    for (; taken < DW_S_COUNT; taken++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(sections_obj, taken), &views[taken], PyBUF_SIMPLE) < 0)
            goto done;
        sections[taken] = (dw_section){views[taken].buf, (size_t)views[taken].len};
    }
    w.sections = sections;
    w.unit = &unit;
    w.strings = PyList_New(0);
    if (w.strings == NULL)
        goto done;
    if (dw_walk_unit(&w, &table) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, w.error[0] ? w.error : "unreadable unit");
        goto done;
    }
    result = Py_BuildValue("(y#y#O)", w.records ? (const char *)w.records : "",
                           (Py_ssize_t)(w.record_count * DW_R_COLUMNS * sizeof(int64_t)),
                           w.ranges ? (const char *)w.ranges : "", (Py_ssize_t)(w.range_count * 3 * sizeof(int64_t)), w.strings);
done:
    while (taken > 0)
        PyBuffer_Release(&views[--taken]);
    Py_XDECREF(w.strings);
    PyMem_Free(w.records);
    PyMem_Free(w.ranges);
    dw_table_free(&table);
    return result;
}

PyDoc_STRVAR(dwarf_walk_doc,
"dwarf_walk(sections, unit) -> (records, ranges, strings)\n\n"
"The recorded DIEs of one unit as int64 rows (bytes), the address ranges of its code DIEs as\n"
"(low, high, record) int64 rows, and the strings the rows index; ValueError for a corrupt unit.\n"
"See tracebridge.image.diewalk.walk_unit, its pure-Python twin.");

#endif
