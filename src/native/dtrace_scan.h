/* The lines of a DTrace stack aggregation (`@[stack()] = count()`) scanned in one pass over a block.
 *
 * tracebridge.readers.dtrace_scan holds the pure-Python twin (scan_stacks) and says what the
 * state is; the two must agree byte for byte.  Each frame line is interned once by its printed
 * text (a dict), each new text also by its text without a trailing `+0xOFF` (the cut text, as
 * split_offset cuts it), and each entry (its frames as printed) once, with the root-first
 * tuple of its cut ids.  Python sees only the entries found (id, count), the new distinct
 * texts, and the rare lines this scanner does not read (probe lines, headers, anything else).
 * Every byte it reads is inside the block; every id it reads back from the state is checked
 * against the arrays it indexes.
 */
#ifndef TRACEBRIDGE_DTRACE_SCAN_H
#define TRACEBRIDGE_DTRACE_SCAN_H

#include <stdint.h>
#include <string.h>

/* Most frames one entry may have before the scanner gives up (the pure path's bound too). */
#define DTRACE_MAX_ENTRY 65536
/* DTrace prints 64-bit counts: at most 20 digits. */
#define DTRACE_MAX_DIGITS 20

enum { DTRACE_END = 0, DTRACE_OTHER = 1, DTRACE_BAD_BYTE = 2, DTRACE_NOT_PLAIN = 3 };

/* Printable ASCII and tab: what the scanner reads (anything else goes to the checked text path). */
static inline int
dtrace_byte_ok(unsigned char c)
{
    return (c >= 0x20 && c <= 0x7e) || c == '\t';
}

static inline int
dtrace_hex_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of s[0:n] without a trailing `+0x<hex>` that fits 64 bits and does not start the text. */
static Py_ssize_t
dtrace_cut_length(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t plus = -1;
    for (Py_ssize_t i = n - 3; i >= 0; i--) {
        if (s[i] == '+' && s[i + 1] == '0' && s[i + 2] == 'x') {
            plus = i;
            break;
        }
    }
    if (plus <= 0 || plus + 3 >= n)
        return n;
    Py_ssize_t significant = 0;
    for (Py_ssize_t i = plus + 3; i < n; i++) {
        if (!dtrace_hex_digit(s[i]))
            return n;
        if (significant || s[i] != '0')
            significant++;
    }
    return significant <= 16 ? plus : n;
}

/* Byte strings interned to ids 0, 1, 2, ... in the order first seen: an open-addressing table
 * over copies kept in one arena, hashed as Python hashes bytes (so as hard to flood as a dict). */
typedef struct {
    unsigned char *arena;
    size_t arena_size, arena_cap;
    size_t *offsets;      /* id -> start in the arena; the id's end is the next one's start */
    Py_hash_t *hashes;    /* id -> hash */
    size_t count, cap;    /* ids, room for ids */
    int32_t *slots;       /* -1 empty, else an id; a power of two long, at most half full */
    size_t mask;
} dtrace_index;

static Py_hash_t
dtrace_hash(const unsigned char *s, Py_ssize_t n)
{
#if PY_VERSION_HEX >= 0x030E0000
    return Py_HashBuffer(s, n);
#else
    return _Py_HashBytes(s, n);
#endif
}

static void
dtrace_index_free(dtrace_index *x)
{
    PyMem_Free(x->arena);
    PyMem_Free(x->offsets);
    PyMem_Free(x->hashes);
    PyMem_Free(x->slots);
    memset(x, 0, sizeof *x);
}

/* Room for one more id (and the table at most half full after it); -1 with MemoryError. */
static int
dtrace_index_room(dtrace_index *x, Py_ssize_t n)
{
    if (x->arena == NULL || x->arena_size + (size_t)n > x->arena_cap) {
        size_t cap = x->arena_cap ? x->arena_cap : 1 << 16;
        while (cap < x->arena_size + (size_t)n) {
            if (cap > ((size_t)PY_SSIZE_T_MAX >> 1))
                goto no_memory;
            cap <<= 1;
        }
        unsigned char *arena = PyMem_Realloc(x->arena, cap);
        if (arena == NULL)
            goto no_memory;
        x->arena = arena;
        x->arena_cap = cap;
    }
    if (x->count + 1 >= x->cap) {
        if (x->count >= INT32_MAX - 1)
            goto no_memory;
        size_t cap = x->cap ? x->cap << 1 : 1024;
        size_t *offsets = PyMem_Realloc(x->offsets, (cap + 1) * sizeof *offsets);
        if (offsets == NULL)
            goto no_memory;
        x->offsets = offsets;
        Py_hash_t *hashes = PyMem_Realloc(x->hashes, cap * sizeof *hashes);
        if (hashes == NULL)
            goto no_memory;
        x->hashes = hashes;
        int32_t *slots = PyMem_Malloc(2 * cap * sizeof *slots);
        if (slots == NULL)
            goto no_memory;
        memset(slots, 0xff, 2 * cap * sizeof *slots);
        size_t mask = 2 * cap - 1;
        for (size_t id = 0; id < x->count; id++) {
            size_t at = (size_t)x->hashes[id] & mask;
            while (slots[at] >= 0)
                at = (at + 1) & mask;
            slots[at] = (int32_t)id;
        }
        PyMem_Free(x->slots);
        x->slots = slots;
        x->mask = mask;
        x->cap = cap;
    }
    return 0;
no_memory:
    PyErr_NoMemory();
    return -1;
}

/* The id of s[0:n], added when new (*added set); -1 with an exception. */
static Py_ssize_t
dtrace_index_id(dtrace_index *x, const unsigned char *s, Py_ssize_t n, int *added)
{
    Py_hash_t hash = dtrace_hash(s, n);
    *added = 0;
    if (hash == -1 && PyErr_Occurred())
        return -1;
    if (x->slots != NULL) {
        for (size_t at = (size_t)hash & x->mask;; at = (at + 1) & x->mask) {
            int32_t id = x->slots[at];
            if (id < 0)
                break;
            size_t start = x->offsets[id], length = x->offsets[id + 1] - start;
            if (x->hashes[id] == hash && length == (size_t)n && memcmp(x->arena + start, s, (size_t)n) == 0)
                return id;
        }
    }
    if (dtrace_index_room(x, n) < 0)
        return -1;
    size_t id = x->count++, at = (size_t)hash & x->mask;
    if (x->count == 1)
        x->offsets[0] = 0;
    memcpy(x->arena + x->arena_size, s, (size_t)n);
    x->arena_size += (size_t)n;
    x->offsets[id + 1] = x->arena_size;
    x->hashes[id] = hash;
    while (x->slots[at] >= 0)
        at = (at + 1) & x->mask;
    x->slots[at] = (int32_t)id;
    *added = 1;
    return (Py_ssize_t)id;
}

/* The native half of a StackTable: its printed texts, cut texts and entries interned. */
typedef struct {
    dtrace_index texts, cuts, entries, stacks;
} dtrace_indexes;

#define DTRACE_CAPSULE "tracebridge.dtrace_scan.index"

static void
dtrace_indexes_free(PyObject *capsule)
{
    dtrace_indexes *x = PyCapsule_GetPointer(capsule, DTRACE_CAPSULE);
    if (x != NULL) {
        dtrace_index_free(&x->texts);
        dtrace_index_free(&x->cuts);
        dtrace_index_free(&x->entries);
        dtrace_index_free(&x->stacks);
        PyMem_Free(x);
    }
}

/* Append one int32 to a bytearray. */
static int
dtrace_push(PyObject *array, int32_t value)
{
    Py_ssize_t size = PyByteArray_GET_SIZE(array);
    if (PyByteArray_Resize(array, size + (Py_ssize_t)sizeof value) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(array) + size, &value, sizeof value);
    return 0;
}

/* Append s[0:n] as a str to a list. */
static int
dtrace_append_text(PyObject *list, const unsigned char *s, Py_ssize_t n)
{
    PyObject *text = PyUnicode_DecodeASCII((const char *)s, n, NULL);
    if (text == NULL)
        return -1;
    int result = PyList_Append(list, text);
    Py_DECREF(text);
    return result;
}

typedef struct {
    dtrace_indexes *index;
    PyObject *texts, *cut_of, *cuts, *entries, *stacks, *stack_of, *pending, *found, *counts;
    int keep_offsets;
} dtrace_state;

/* The printed id of a frame line (interning it, and its cut text when new); -1 on error. */
static Py_ssize_t
dtrace_frame(dtrace_state *st, const unsigned char *s, Py_ssize_t n)
{
    int added;
    Py_ssize_t id = dtrace_index_id(&st->index->texts, s, n, &added);
    if (id < 0 || !added)
        return id;
    Py_ssize_t cut_length = st->keep_offsets ? n : dtrace_cut_length(s, n);
    Py_ssize_t cut = dtrace_index_id(&st->index->cuts, s, cut_length, &added);
    if (cut < 0 || dtrace_append_text(st->texts, s, n) < 0 || dtrace_push(st->cut_of, (int32_t)cut) < 0
            || (added && dtrace_append_text(st->cuts, s, cut_length) < 0))
        return -1;
    return id;
}

/* The entry of the pending frames (interned; when new, its printed ids kept and its root-first cut
 * stack interned) and its count, into found and counts. */
static int
dtrace_entry(dtrace_state *st, const unsigned char *digits, Py_ssize_t n)
{
    const unsigned char *ids = (const unsigned char *)PyByteArray_AS_STRING(st->pending);
    Py_ssize_t size = PyByteArray_GET_SIZE(st->pending), frames = size / (Py_ssize_t)sizeof(int32_t);
    int added;
    Py_ssize_t entry = dtrace_index_id(&st->index->entries, ids, size, &added);
    if (entry < 0)
        return -1;
    if (added) {
        Py_ssize_t known = PyByteArray_GET_SIZE(st->cut_of) / (Py_ssize_t)sizeof(int32_t);
        const char *cut_of = PyByteArray_AS_STRING(st->cut_of);
        PyObject *stack = PyBytes_FromStringAndSize(NULL, size);
        if (stack == NULL)
            return -1;
        char *cuts = PyBytes_AS_STRING(stack);
        for (Py_ssize_t i = 0; i < frames; i++) {
            int32_t id;
            memcpy(&id, ids + (frames - 1 - i) * (Py_ssize_t)sizeof id, sizeof id);
            if (id < 0 || id >= known) {
                Py_DECREF(stack);
                PyErr_SetString(PyExc_ValueError, "frame id outside the table");
                return -1;
            }
            memcpy(cuts + i * (Py_ssize_t)sizeof id, cut_of + (Py_ssize_t)id * (Py_ssize_t)sizeof id, sizeof id);
        }
        Py_ssize_t stack_id = dtrace_index_id(&st->index->stacks, (const unsigned char *)cuts, size, &added);
        int appended = stack_id < 0 || dtrace_push(st->stack_of, (int32_t)stack_id) < 0
            || (added && PyList_Append(st->stacks, stack) < 0) ? -1 : 0;
        Py_DECREF(stack);
        PyObject *printed = PyBytes_FromStringAndSize((const char *)ids, size);
        appended = appended < 0 || printed == NULL ? -1 : PyList_Append(st->entries, printed);
        Py_XDECREF(printed);
        if (appended < 0)
            return -1;
    }
    PyObject *count;
    if (n <= 18) {
        long long value = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            value = value * 10 + (digits[i] - '0');
        count = PyLong_FromLongLong(value);
    } else {
        char text[DTRACE_MAX_DIGITS + 1];
        memcpy(text, digits, (size_t)n);
        text[n] = '\0';
        count = PyLong_FromString(text, NULL, 10);
    }
    PyObject *number = PyLong_FromSsize_t(entry);
    int result = count != NULL && number != NULL && PyList_Append(st->found, number) == 0
        && PyList_Append(st->counts, count) == 0 && PyByteArray_Resize(st->pending, 0) == 0 ? 0 : -1;
    Py_XDECREF(count);
    Py_XDECREF(number);
    return result;
}

/* The StackTable attributes the scan reads, the index last. */
#define DTRACE_STATE_SIZE 11

/* The table's attributes, and its native index (made on the first scan); -1 with an exception. */
static int
dtrace_get_state(PyObject *table, dtrace_state *st, PyObject **held)
{
    static const char *names[] = {"texts", "cut_of", "cuts", "entries", "stacks", "stack_of", "pending", "found",
                                  "counts", "keep_offsets", "index"};
    PyTypeObject *types[] = {&PyList_Type, &PyByteArray_Type, &PyList_Type, &PyList_Type, &PyList_Type,
                             &PyByteArray_Type, &PyByteArray_Type, &PyList_Type, &PyList_Type, NULL, NULL};
    for (int i = 0; i < DTRACE_STATE_SIZE; i++) {
        held[i] = PyObject_GetAttrString(table, names[i]);
        if (held[i] == NULL)
            return -1;
        if (types[i] != NULL && !PyObject_TypeCheck(held[i], types[i])) {
            PyErr_Format(PyExc_TypeError, "StackTable.%s has the wrong type", names[i]);
            return -1;
        }
    }
    st->texts = held[0], st->cut_of = held[1], st->cuts = held[2], st->entries = held[3], st->stacks = held[4];
    st->stack_of = held[5], st->pending = held[6], st->found = held[7], st->counts = held[8];
    st->keep_offsets = PyObject_IsTrue(held[9]);
    if (st->keep_offsets < 0)
        return -1;
    if (held[10] == Py_None) {
        dtrace_indexes *x = PyMem_Calloc(1, sizeof *x);
        if (x == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        PyObject *capsule = PyCapsule_New(x, DTRACE_CAPSULE, dtrace_indexes_free);
        if (capsule == NULL) {
            PyMem_Free(x);
            return -1;
        }
        Py_DECREF(held[10]);
        held[10] = capsule;
        if (PyObject_SetAttrString(table, "index", capsule) < 0)
            return -1;
    }
    st->index = PyCapsule_GetPointer(held[10], DTRACE_CAPSULE);
    if (st->index == NULL)
        return -1;
    /* The lists must be as long as the index says: the ids index them. */
    Py_ssize_t texts = (Py_ssize_t)st->index->texts.count;
    if (PyList_GET_SIZE(st->texts) != texts || PyByteArray_GET_SIZE(st->cut_of) != texts * (Py_ssize_t)sizeof(int32_t)
            || PyList_GET_SIZE(st->cuts) != (Py_ssize_t)st->index->cuts.count
            || PyList_GET_SIZE(st->entries) != (Py_ssize_t)st->index->entries.count
            || PyList_GET_SIZE(st->stacks) != (Py_ssize_t)st->index->stacks.count
            || PyByteArray_GET_SIZE(st->stack_of) != (Py_ssize_t)st->index->entries.count * (Py_ssize_t)sizeof(int32_t)
            || PyByteArray_GET_SIZE(st->pending) % (Py_ssize_t)sizeof(int32_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "StackTable out of step with its index");
        return -1;
    }
    return 0;
}

static PyObject *
py_dtrace_stacks(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    int after_probe;
    PyObject *table, *held[DTRACE_STATE_SIZE] = {NULL};
    dtrace_state st;
    if (!PyArg_ParseTuple(args, "y*npO", &view, &pos, &after_probe, &table))
        return NULL;
    if (dtrace_get_state(table, &st, held) < 0)
        goto fail;
    const unsigned char *b = view.buf;
    Py_ssize_t len = view.len, at = pos;
    int status = DTRACE_END;
    if (pos < 0 || pos > len) {
        PyErr_SetString(PyExc_ValueError, "position outside the block");
        goto fail;
    }
    while (at < len) {
        const unsigned char *newline = memchr(b + at, '\n', (size_t)(len - at));
        Py_ssize_t end = newline != NULL ? newline - b : len;
        Py_ssize_t first = -1, last = -1;
        int inner_space = 0, space_after = 0, tick = 0, digits = 1;
        for (Py_ssize_t i = at; i < end; i++) {
            unsigned char c = b[i];
            if (c == ' ' || c == '\t') {
                space_after = first >= 0;
                continue;
            }
            if (!dtrace_byte_ok(c)) {
                status = DTRACE_BAD_BYTE;
                break;
            }
            if (first < 0)
                first = i;
            inner_space |= space_after;
            last = i;
            tick |= c == '`';
            digits &= c >= '0' && c <= '9';
        }
        if (status != DTRACE_END)
            break;
        if (first < 0) {  /* a blank line */
            after_probe = 0;
        } else if (after_probe) {  /* a probe line must be followed by a blank one: read by Python */
            status = DTRACE_OTHER;
            break;
        } else {
            Py_ssize_t n = last + 1 - first;
            if (!inner_space && (tick || (n >= 2 && b[first] == '0' && b[first + 1] == 'x'))) {
                if (PyByteArray_GET_SIZE(st.pending) >= DTRACE_MAX_ENTRY * (Py_ssize_t)sizeof(int32_t)) {
                    status = DTRACE_NOT_PLAIN;
                    break;
                }
                Py_ssize_t id = dtrace_frame(&st, b + first, n);
                if (id < 0 || dtrace_push(st.pending, (int32_t)id) < 0)
                    goto fail;
            } else if (!inner_space && digits && n <= DTRACE_MAX_DIGITS && first > at) {
                /* one word of digits, indented as a count is (" %16lld"); at column 0 it is a value
                   traced by a quiet firing (`%lld`): read by Python */
                if (PyByteArray_GET_SIZE(st.pending) == 0) {  /* a key or a value without a stack */
                    status = DTRACE_NOT_PLAIN;
                    break;
                }
                if (dtrace_entry(&st, b + first, n) < 0)
                    goto fail;
            } else {
                status = DTRACE_OTHER;
                break;
            }
        }
        at = newline != NULL ? end + 1 : len;
    }
    PyObject *result = Py_BuildValue("(inO)", status, at, after_probe ? Py_True : Py_False);
    PyBuffer_Release(&view);
    for (int i = 0; i < DTRACE_STATE_SIZE; i++)
        Py_XDECREF(held[i]);
    return result;
fail:
    PyBuffer_Release(&view);
    for (int i = 0; i < DTRACE_STATE_SIZE; i++)
        Py_XDECREF(held[i]);
    return NULL;
}

PyDoc_STRVAR(dtrace_stacks_doc,
"dtrace_stacks(block, pos, after_probe, table) -> (status, pos, after_probe)\n\n"
"Scan the lines of block (bytes) from pos as tracebridge.readers.dtrace_scan.scan_stacks does:\n"
"frames and counts into table (a StackTable), up to the end (0), a line for Python (1), a byte outside\n"
"printable ASCII and tab (2) or a line that is not a plain stack entry (3), whose start pos is.");

static PyObject *
py_dtrace_stack_tuples(PyObject *self, PyObject *args)
{
    PyObject *stacks;
    Py_buffer map;
    if (!PyArg_ParseTuple(args, "O!y*", &PyList_Type, &stacks, &map))
        return NULL;
    const char *ids = map.buf;
    Py_ssize_t known = map.len / (Py_ssize_t)sizeof(int32_t), count = PyList_GET_SIZE(stacks);
    PyObject *result = PyList_New(count);
    if (result == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *stack = PyList_GET_ITEM(stacks, k);
        if (!PyBytes_Check(stack) || PyBytes_GET_SIZE(stack) % (Py_ssize_t)sizeof(int32_t) != 0) {
            PyErr_SetString(PyExc_TypeError, "a stack is bytes of int32 ids");
            goto fail;
        }
        Py_ssize_t frames = PyBytes_GET_SIZE(stack) / (Py_ssize_t)sizeof(int32_t);
        const char *cuts = PyBytes_AS_STRING(stack);
        PyObject *tuple = PyTuple_New(frames);
        if (tuple == NULL)
            goto fail;
        PyList_SET_ITEM(result, k, tuple);
        for (Py_ssize_t i = 0; i < frames; i++) {
            int32_t cut, id;
            memcpy(&cut, cuts + i * (Py_ssize_t)sizeof cut, sizeof cut);
            if (cut < 0 || cut >= known) {
                PyErr_SetString(PyExc_ValueError, "a stack's id is outside the map");
                goto fail;
            }
            memcpy(&id, ids + (Py_ssize_t)cut * (Py_ssize_t)sizeof id, sizeof id);
            PyObject *value = PyLong_FromLong(id);
            if (value == NULL)
                goto fail;
            PyTuple_SET_ITEM(tuple, i, value);
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    PyBuffer_Release(&map);
    return result;
}

PyDoc_STRVAR(dtrace_stack_tuples_doc,
"dtrace_stack_tuples(stacks, map) -> list of tuples\n\n"
"Each stack (bytes of native int32 ids) as a tuple of map[id] (map: bytes of native int32s),\n"
"as tracebridge.readers.dtrace_scan.stack_tuples makes them.");

#endif
