/* One block of `pmcstat -G` callgraph text scanned in one pass, the native twin of
 * tracebridge.readers.pmcgraph._scan_block_numpy (see that module for the format), and its
 * stacks folded in one walk (pmcgraph_fold, the twin of CallgraphFolder._fold).
 *
 * A line is read as stackcollapse-pmc.pl's ^( *)[0-9.]+%  \[([0-9]+)\]\s*(\S+)
 * reads it, white space being perl's \s on bytes (9-13 and 32): the indentation
 * spaces only, then a percentage of at most PMCG_MAX_FIELD digits and dots ending
 * in '%', exactly two spaces, '[', at most PMCG_MAX_FIELD digits, ']', the name
 * (glued to the ']' or the next word on the line) and, when " @ " follows it, the
 * image path up to the line's last non-space byte.  Each distinct name and path is
 * interned in first-seen order.  Other lines are headers ("@ ") or skipped; lines
 * of white space only are neither.  Every read is checked against the block's
 * length (past it reads as a newline), and every table grows with a checked size.
 */
#ifndef TRACEBRIDGE_PMCGRAPH_SCAN_H
#define TRACEBRIDGE_PMCGRAPH_SCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Longest percentage or count read (pmcgraph.MAX_FIELD). */
#define PMCG_MAX_FIELD 32
/* Image paths remembered as the last distinct ones seen, compared before hashing. */
#define PMCG_RECENT 4
/* Count digits whose value is kept (more make the reader refuse the line). */
#define PMCG_COUNT_DIGITS 18

/* A growing array of int64. */
typedef struct {
    long long *items;
    size_t count, capacity;
} pmcg_column;

/* Room for at least capacity items (the growth pmcg_push would make, done once). */
static int
pmcg_reserve(pmcg_column *c, size_t capacity)
{
    if (capacity <= c->capacity)
        return 0;
    if (capacity > ((size_t)PY_SSIZE_T_MAX) / sizeof(long long)) {
        PyErr_NoMemory();
        return -1;
    }
    long long *items = PyMem_Realloc(c->items, capacity * sizeof(long long));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->items = items;
    c->capacity = capacity;
    return 0;
}

static int
pmcg_push(pmcg_column *c, long long value)
{
    if (c->count == c->capacity && pmcg_reserve(c, c->capacity ? c->capacity * 2 : 1024) < 0)
        return -1;
    c->items[c->count++] = value;
    return 0;
}

/* A string of the block seen lately, found again without the keyed hash (see pmcg_intern). */
typedef struct {
    long long start, length, id;
} pmcg_seen;

/* Entries of the names' cache: one per 64 bytes of the block, at most PMCG_SEEN_MAX (a block of 4 MB has some
 * 20,000 distinct names among its 95,000 lines). */
#define PMCG_SEEN_MIN 64
#define PMCG_SEEN_MAX (1 << 16)

/* Distinct byte strings (spans of the block) to ids in first-seen order: open addressing. */
typedef struct {
    Py_ssize_t *slots;      /* index into starts/lengths, or -1 */
    size_t mask;            /* slots: mask + 1, a power of two, at least twice the strings */
    pmcg_column starts, lengths, hashes;
    pmcg_seen *seen;        /* NULL, or seen_mask + 1 entries (length -1: empty), spans of the block being scanned */
    size_t seen_mask;
} pmcg_interner;

/* Hashed as Python hashes bytes (keyed per process): an unkeyed hash (FNV-1a) let a crafted file put
 * every name in one run of slots, each probe walking it (60,000 names: 3.7 s of CPU instead of 0.01). */
static uint64_t
pmcg_hash(const unsigned char *p, Py_ssize_t n)
{
#if PY_VERSION_HEX >= 0x030E0000
    return (uint64_t)Py_HashBuffer(p, n);
#else
    return (uint64_t)_Py_HashBytes(p, n);
#endif
}

/* *slots (a table of *mask + 1 ids, or NULL) made twice as large (at least 1024), each id i placed by
 * hashes[i] with linear probing; -1 on a memory error. */
static int
pmcg_regrow(Py_ssize_t **slots_at, size_t *mask, const pmcg_column *hashes)
{
    size_t size = *slots_at ? (*mask + 1) * 2 : 1024;
    if (size > ((size_t)PY_SSIZE_T_MAX) / sizeof(Py_ssize_t)) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t *slots = PyMem_Malloc(size * sizeof(Py_ssize_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < size; i++)
        slots[i] = -1;
    for (size_t id = 0; id < hashes->count; id++) {
        size_t at = (size_t)hashes->items[id] & (size - 1);
        while (slots[at] >= 0)
            at = (at + 1) & (size - 1);
        slots[at] = (Py_ssize_t)id;
    }
    PyMem_Free(*slots_at);
    *slots_at = slots;
    *mask = size - 1;
    return 0;
}

/* An unkeyed hash of a string's length and first and last 8 bytes, only to choose its entry in the cache of
 * strings seen (pmcg_intern): a crafted file can make every string miss it, never make a lookup walk. */
static inline uint64_t
pmcg_quick_hash(const unsigned char *p, Py_ssize_t n)
{
    uint64_t head = 0, tail = 0;
    if (n >= 8) {
        memcpy(&head, p, 8);
        memcpy(&tail, p + n - 8, 8);
    }
    else {
        for (Py_ssize_t i = 0; i < n; i++)
            head = head << 8 | p[i];
    }
    uint64_t h = (head ^ (tail * 0x9E3779B97F4A7C15ull) ^ (uint64_t)n) * 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 29);
}

/* Make the cache of strings seen empty, with an entry per 64 bytes of a block of n bytes (within
 * PMCG_SEEN_MIN and PMCG_SEEN_MAX); -1 on a memory error. */
static int
pmcg_seen_prepare(pmcg_interner *t, Py_ssize_t n)
{
    size_t size = PMCG_SEEN_MIN;
    while (size < PMCG_SEEN_MAX && size < (size_t)n / 64)
        size *= 2;
    if (t->seen == NULL || t->seen_mask + 1 != size) {
        pmcg_seen *seen = PyMem_Realloc(t->seen, size * sizeof *seen);
        if (seen == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->seen = seen;
        t->seen_mask = size - 1;
    }
    for (size_t i = 0; i < size; i++)
        t->seen[i].length = -1;
    return 0;
}

/* The id of base[start:start + length], added when new; -1 on a memory error.  With a cache of strings seen
 * (pmcg_seen_prepare, for base), a string met again, nearly every name of a callgraph, is found there by an
 * unkeyed hash and one comparison; only the others are hashed as Python hashes bytes and looked up in the table. */
static long long
pmcg_intern(pmcg_interner *t, const unsigned char *base, Py_ssize_t start, Py_ssize_t length)
{
    const unsigned char *p = base + start;
    pmcg_seen *seen = NULL;
    if (t->seen != NULL) {
        seen = &t->seen[pmcg_quick_hash(p, length) & t->seen_mask];
        if (seen->length == length && memcmp(base + seen->start, p, (size_t)length) == 0)
            return seen->id;
    }
    long long id = -1;
    if (t->slots == NULL || (t->starts.count + 1) * 2 > t->mask + 1) {
        if (pmcg_regrow(&t->slots, &t->mask, &t->hashes) < 0)
            return -1;
    }
    uint64_t hash = pmcg_hash(p, length);
    size_t at = (size_t)hash & t->mask;
    while (t->slots[at] >= 0) {
        Py_ssize_t known = t->slots[at];
        if (t->lengths.items[known] == length && memcmp(base + t->starts.items[known], p, (size_t)length) == 0) {
            id = known;
            break;
        }
        at = (at + 1) & t->mask;
    }
    if (id < 0) {
        id = (long long)t->starts.count;
        if (pmcg_push(&t->starts, start) < 0 || pmcg_push(&t->lengths, length) < 0
                || pmcg_push(&t->hashes, (long long)hash) < 0)
            return -1;
        t->slots[at] = (Py_ssize_t)id;
    }
    if (seen != NULL)
        *seen = (pmcg_seen){start, length, id};
    return id;
}

static void
pmcg_interner_free(pmcg_interner *t)
{
    PyMem_Free(t->seen);
    PyMem_Free(t->slots);
    PyMem_Free(t->starts.items);
    PyMem_Free(t->lengths.items);
    PyMem_Free(t->hashes.items);
}

/* The interned strings as a list of bytes. */
static PyObject *
pmcg_strings(const pmcg_interner *t, const unsigned char *base)
{
    PyObject *list = PyList_New((Py_ssize_t)t->starts.count);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < t->starts.count; i++) {
        PyObject *item = PyBytes_FromStringAndSize((const char *)base + t->starts.items[i],
                                                   (Py_ssize_t)t->lengths.items[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* What one block holds, column by column (see pmcgraph.GraphBlock). */
typedef struct {
    pmcg_column tree, depth, digits, counts, name_ids, image_ids, headers, header_starts, header_ends, skipped;
    pmcg_interner names, paths;
    /* The newlines of the block (its lines, but for a last one without its newline), and the greatest
     * depth and number of count digits of its tree lines (0 without any): what the reader checks and
     * counts per block, without a pass over the columns. */
    long long newlines, deepest, widest;
} pmcg_block;

static void
pmcg_block_free(pmcg_block *b)
{
    pmcg_column *columns[] = {&b->tree, &b->depth, &b->digits, &b->counts, &b->name_ids, &b->image_ids,
                              &b->headers, &b->header_starts, &b->header_ends, &b->skipped};
    for (size_t i = 0; i < sizeof columns / sizeof *columns; i++)
        PyMem_Free(columns[i]->items);
    pmcg_interner_free(&b->names);
    pmcg_interner_free(&b->paths);
}

/* Empty the block's columns and tables, keeping their memory for the next block (a block's columns are
 * megabytes: allocated afresh, each block's pages would be faulted in again). */
static void
pmcg_block_reset(pmcg_block *b)
{
    pmcg_column *columns[] = {&b->tree, &b->depth, &b->digits, &b->counts, &b->name_ids, &b->image_ids,
                              &b->headers, &b->header_starts, &b->header_ends, &b->skipped};
    for (size_t i = 0; i < sizeof columns / sizeof *columns; i++)
        columns[i]->count = 0;
    b->newlines = b->deepest = b->widest = 0;
    pmcg_interner *tables[] = {&b->names, &b->paths};
    for (size_t i = 0; i < 2; i++) {
        tables[i]->starts.count = tables[i]->lengths.count = tables[i]->hashes.count = 0;
        for (size_t k = 0; tables[i]->slots != NULL && k <= tables[i]->mask; k++)
            tables[i]->slots[k] = -1;
    }
}

static inline int
pmcg_space(unsigned char c)
{
    return c == ' ' || (c >= 9 && c <= 13);
}

/* The first i >= from with p[i] white space, or e: eight bytes at a time while eight remain (a name
 * is tens of bytes), each eight tested at once for a byte <= ' ' (every white space byte is). */
static inline Py_ssize_t
pmcg_word_end(const unsigned char *p, Py_ssize_t from, Py_ssize_t e)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    Py_ssize_t i = from;
    while (e - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t below = (x - ones * 0x21) & ~x & highs;   /* the lowest flag is the first byte below 0x21 */
        if (below == 0) {
            i += 8;
            continue;
        }
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        i += __builtin_ctzll(below) >> 3;   /* borrows flag only bytes after a true one */
        if (pmcg_space(p[i]))
            return i;
        i++;   /* a control byte that is no white space: still the word */
#else
        break;   /* find it one by one */
#endif
    }
    while (i < e && !pmcg_space(p[i]))
        i++;
    return i;
}

/* The first i >= from with p[i] not white space, or e: eight spaces at a time while eight remain (a name is
 * padded to its column with spaces). */
static inline Py_ssize_t
pmcg_spaces_end(const unsigned char *p, Py_ssize_t from, Py_ssize_t e)
{
    Py_ssize_t i = from;
    while (e - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (x != 0x2020202020202020ull)
            break;
        i += 8;
    }
    while (i < e && pmcg_space(p[i]))
        i++;
    return i;
}

/* Scan p[0:n] line by line into b; 0, or -1 with a Python error set. */
static int
pmcg_scan(const unsigned char *p, Py_ssize_t n, pmcg_block *b)
{
#define AT(i) ((i) < n ? p[(i)] : (unsigned char)'\n')
    long long line = 0;
    long long recent[PMCG_RECENT];
    for (int k = 0; k < PMCG_RECENT; k++)
        recent[k] = -1;
    /* Lines are tens of bytes: room for one per 32 bytes makes growing them rare. */
    pmcg_column *per_line[] = {&b->tree, &b->depth, &b->digits, &b->counts, &b->name_ids, &b->image_ids};
    for (size_t k = 0; k < sizeof per_line / sizeof *per_line; k++) {
        if (pmcg_reserve(per_line[k], (size_t)(n / 32) + 16) < 0)
            return -1;
    }
    if (pmcg_seen_prepare(&b->names, n) < 0)
        return -1;
    for (Py_ssize_t s = 0; s < n; line++) {
        const unsigned char *newline = memchr(p + s, '\n', (size_t)(n - s));
        Py_ssize_t e = newline ? newline - p : n;
        b->newlines += newline != NULL;
        Py_ssize_t indent = s;      /* the spaces, then any other white space */
        while (indent < e && p[indent] == ' ')
            indent++;
        Py_ssize_t first = indent;
        while (first < e && pmcg_space(p[first]))
            first++;
        Py_ssize_t next = e + 1;
        if (first == e) {           /* white space only */
            s = next;
            continue;
        }
        int ok = indent == first;
        Py_ssize_t word_end = pmcg_word_end(p, first, e);
        Py_ssize_t percent = word_end - 1;
        ok = ok && percent > first && percent - first <= PMCG_MAX_FIELD && p[percent] == '%'
            && AT(percent + 1) == ' ' && AT(percent + 2) == ' ' && AT(percent + 3) == '[';
        for (Py_ssize_t i = first; ok && i < percent; i++)
            ok = (p[i] >= '0' && p[i] <= '9') || p[i] == '.';
        Py_ssize_t count_start = percent + 4, count_end = count_start;
        if (ok) {
            while (count_end - count_start < PMCG_MAX_FIELD && AT(count_end) >= '0' && AT(count_end) <= '9')
                count_end++;
            ok = count_end > count_start && AT(count_end) == ']';
        }
        Py_ssize_t name_start = count_end + 1, name_end = name_start;
        if (ok) {
            if (pmcg_space(AT(name_start))) {   /* the name is the line's next word */
                name_start = pmcg_spaces_end(p, name_start, e);
                ok = name_start < e;
            }
            name_end = pmcg_word_end(p, name_start, e);
        }
        if (!ok) {
            if (p[s] == '@' && AT(s + 1) == ' ') {
                if (pmcg_push(&b->headers, line) < 0 || pmcg_push(&b->header_starts, s) < 0
                        || pmcg_push(&b->header_ends, e) < 0)
                    return -1;
            }
            else if (pmcg_push(&b->skipped, line) < 0)
                return -1;
            s = next;
            continue;
        }
        long long value = 0;
        for (Py_ssize_t i = count_start; i < count_end && i < count_start + PMCG_COUNT_DIGITS; i++)
            value = value * 10 + (p[i] - '0');
        long long name_id = pmcg_intern(&b->names, p, name_start, name_end - name_start), image_id = -1;
        if (name_id < 0)
            return -1;
        if (AT(name_end) == ' ' && AT(name_end + 1) == '@' && AT(name_end + 2) == ' ') {
            Py_ssize_t last = e;     /* the end of the line's last word */
            while (last > s && pmcg_space(p[last - 1]))
                last--;
            if (last > name_end + 3) {
                Py_ssize_t start = name_end + 3, length = last - start;
                /* A callgraph prints few images, on many lines: the paths seen last are compared first. */
                for (int k = 0; k < PMCG_RECENT && image_id < 0; k++) {
                    long long id = recent[k];
                    if (id >= 0 && b->paths.lengths.items[id] == length
                            && memcmp(p + b->paths.starts.items[id], p + start, (size_t)length) == 0)
                        image_id = id;
                }
                if (image_id < 0) {
                    image_id = pmcg_intern(&b->paths, p, start, length);
                    if (image_id < 0)
                        return -1;
                    memmove(recent + 1, recent, (PMCG_RECENT - 1) * sizeof *recent);
                    recent[0] = image_id;
                }
            }
        }
        if (first - s > b->deepest)
            b->deepest = first - s;
        if (count_end - count_start > b->widest)
            b->widest = count_end - count_start;
        if (pmcg_push(&b->tree, line) < 0 || pmcg_push(&b->depth, first - s) < 0
                || pmcg_push(&b->digits, count_end - count_start) < 0 || pmcg_push(&b->counts, value) < 0
                || pmcg_push(&b->name_ids, name_id) < 0 || pmcg_push(&b->image_ids, image_id) < 0)
            return -1;
        s = next;
    }
    return 0;
#undef AT
}

static PyObject *
pmcg_column_bytes(const pmcg_column *c)
{
    return PyBytes_FromStringAndSize((const char *)c->items, (Py_ssize_t)(c->count * sizeof(long long)));
}

PyDoc_STRVAR(pmcgraph_scan_doc,
"pmcgraph_scan(data) -> (tree, depth, digits, counts, name_ids, names, image_ids, paths, headers,\n"
"header_lines, skipped, (newlines, deepest, widest))\n\n"
"One block of pmcstat -G text read as pmcgraph.scan_block reads it: int64 columns as bytes,\n"
"the distinct names and image paths as lists of bytes, the header lines' text, the block's\n"
"newlines and its tree lines' greatest depth and count digits.");

static PyObject *
py_pmcgraph_scan(PyObject *self, PyObject *data_obj)
{
    Py_buffer data;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    pmcg_block b;
    memset(&b, 0, sizeof b);
    PyObject *result = NULL;
    const unsigned char *p = data.buf;
    if (pmcg_scan(p, data.len, &b) == 0) {
        PyObject *items[12] = {
            pmcg_column_bytes(&b.tree), pmcg_column_bytes(&b.depth), pmcg_column_bytes(&b.digits),
            pmcg_column_bytes(&b.counts), pmcg_column_bytes(&b.name_ids), pmcg_strings(&b.names, p),
            pmcg_column_bytes(&b.image_ids), pmcg_strings(&b.paths, p), pmcg_column_bytes(&b.headers),
            PyList_New((Py_ssize_t)b.headers.count), pmcg_column_bytes(&b.skipped),
            Py_BuildValue("(LLL)", b.newlines, b.deepest, b.widest),
        };
        int complete = 1;
        for (size_t i = 0; i < 12; i++)
            complete = complete && items[i] != NULL;
        for (size_t i = 0; complete && i < b.headers.count; i++) {
            PyObject *text = PyBytes_FromStringAndSize((const char *)p + b.header_starts.items[i],
                                                       (Py_ssize_t)(b.header_ends.items[i] - b.header_starts.items[i]));
            complete = text != NULL;
            if (complete)
                PyList_SET_ITEM(items[9], (Py_ssize_t)i, text);
        }
        if (complete)
            result = PyTuple_New(12);
        for (size_t i = 0; i < 12; i++) {
            if (result != NULL)
                PyTuple_SET_ITEM(result, (Py_ssize_t)i, items[i]);
            else
                Py_XDECREF(items[i]);
        }
    }
    pmcg_block_free(&b);
    PyBuffer_Release(&data);
    return result;
}

/* The stacks of one block's tree lines added to the dict stacks, as CallgraphFolder._fold adds
 * them.  Line i sets latest[depth[i]] = ids[i]; when emit[i] is set, the stack
 * (latest[depth[i]], ..., latest[0]), with unknown standing for -1, gains counts[i].  ids, depth
 * and counts are int64 columns, emit one byte a line, latest a writable int64 column of the most
 * recent frame per depth (kept between blocks).  emit None stands for every PMC's lines kept: a
 * line ends a stack when the next is no deeper, and the last waits for the next block (the reader
 * then needs no column of its own).  Returns whether unknown was used. */
PyDoc_STRVAR(pmcgraph_fold_doc,
"pmcgraph_fold(ids, depth, counts, emit, latest, stacks, unknown[, numbers]) -> bool\n\n"
"Add the stacks of one block's -G tree lines to the dict stacks, as pmcgraph.CallgraphFolder\n"
"adds them; latest (int64, writable) is the most recent frame id per depth, kept between\n"
"blocks; emit None: each line but the last emitted when the next is no deeper.  True when a\n"
"stack used unknown for a depth never seen.  numbers, a list whose item i\n"
"is the int i, supplies the ids it covers (one object each, shared by all stacks).");

static PyObject *
py_pmcgraph_fold(PyObject *self, PyObject *args)
{
    PyObject *ids_obj, *depth_obj, *counts_obj, *emit_obj, *latest_obj, *stacks, *numbers = NULL;
    long long unknown;
    if (!PyArg_ParseTuple(args, "OOOOOO!L|O!", &ids_obj, &depth_obj, &counts_obj, &emit_obj, &latest_obj,
                          &PyDict_Type, &stacks, &unknown, &PyList_Type, &numbers))
        return NULL;
    Py_ssize_t shared = numbers != NULL ? PyList_GET_SIZE(numbers) : 0;
    Py_buffer views[5];
    PyObject *objects[5] = {ids_obj, depth_obj, counts_obj, latest_obj, emit_obj};
    int held = 0, given = emit_obj != Py_None;
    PyObject *result = NULL;
    for (; held < 4 + given; held++) {
        if (PyObject_GetBuffer(objects[held], &views[held], held == 3 ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
            goto done;
    }
    Py_ssize_t lines = views[0].len / 8, levels = views[3].len / 8;
    if (views[0].len % 8 || views[1].len != views[0].len || views[2].len != views[0].len
            || (given && views[4].len != lines) || views[3].len % 8) {
        PyErr_SetString(PyExc_ValueError, "ids, depth, counts: int64 columns of one length; emit: a byte a line");
        goto done;
    }
    const long long *ids = views[0].buf, *depth = views[1].buf, *counts = views[2].buf;
    const unsigned char *emit = given ? views[4].buf : NULL;
    long long *latest = views[3].buf;
    int used = 0;
    for (Py_ssize_t i = 0; i < lines; i++) {
        long long level = depth[i];
        if (level < 0 || level >= levels) {
            PyErr_Format(PyExc_ValueError, "line %zd is %lld deep, beyond the %zd depths kept", i, level, levels);
            goto done;
        }
        latest[level] = ids[i];
        if (emit != NULL ? !emit[i] : i + 1 == lines || depth[i + 1] > level)
            continue;
        PyObject *stack = PyTuple_New((Py_ssize_t)(level + 1));
        if (stack == NULL)
            goto done;
        for (long long k = 0; k <= level; k++) {
            long long id = latest[level - k];
            if (id == -1) {
                id = unknown;
                used = 1;
            }
            /* numbers[id] is id: one int object per frame shared by every stack, not one per place in each */
            PyObject *item = id >= 0 && id < shared ? Py_NewRef(PyList_GET_ITEM(numbers, (Py_ssize_t)id))
                                                    : PyLong_FromLongLong(id);
            if (item == NULL) {
                Py_DECREF(stack);
                goto done;
            }
            PyTuple_SET_ITEM(stack, (Py_ssize_t)k, item);
        }
        /* Nearly every stack is new: it is put in with its count by one lookup (the tuple hashed once); one
         * seen before gets the sum put in its place. */
        PyObject *count = PyLong_FromLongLong(counts[i]), *total = NULL;
        int failed = count == NULL;
        if (!failed) {
            Py_ssize_t size = PyDict_GET_SIZE(stacks);   /* grown: put in (the value may be a shared small int) */
            PyObject *before = PyDict_SetDefault(stacks, stack, count);   /* borrowed */
            failed = before == NULL;
            if (!failed && PyDict_GET_SIZE(stacks) == size) {
                total = PyNumber_Add(before, count);
                failed = total == NULL || PyDict_SetItem(stacks, stack, total) < 0;
            }
        }
        Py_XDECREF(total);
        Py_XDECREF(count);
        Py_DECREF(stack);
        if (failed)
            goto done;
    }
    result = PyBool_FromLong(used);
done:
    while (held > 0)
        PyBuffer_Release(&views[--held]);
    return result;
}

#endif
