/* Folded stacks written in one pass: the native twin of tracebridge.render.folded.folded_text.
 *
 * Each frame's label is escaped (a backslash doubled, ';' written "\;") and encoded to UTF-8
 * once; each stack's key is its labels joined by ';'; the keys are sorted as Python sorts
 * str (UTF-8 byte order is code point order), equal keys (labels that collide) merged by
 * adding their weights in the stacks' order, and every line is "KEY COUNT\n", the count
 * written as render.folded._count writes it.  Anything the pure path would treat another way
 * -- a label that is not encodable, a weight that is neither an int nor a finite float, a
 * frame id that is not an index of the labels -- makes the function answer None, and the
 * caller takes the pure path.
 */
#ifndef TRACEBRIDGE_FOLDED_TEXT_H
#define TRACEBRIDGE_FOLDED_TEXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_rows.h"   /* text_buffer, text_reserve, text_add, decimal_digits */

/* One stack: its key's first 8 bytes (big-endian, zero-padded), where the key lies, its place in the
 * dict, its weight (borrowed). */
typedef struct {
    uint64_t head;
    const char *key;
    size_t length;
    Py_ssize_t order;
    PyObject *weight;
} ft_key;

/* Orders pointers to rows (the sort moves 8-byte pointers, not rows): by key, a prefix first, then by place. */
static int
ft_compare(const void *a, const void *b)
{
    const ft_key *x = *(const ft_key *const *)a, *y = *(const ft_key *const *)b;
    if (x->head != y->head)   /* the first 8 bytes differ: they decide (padding sorts as a shorter key) */
        return x->head < y->head ? -1 : 1;
    size_t n = x->length < y->length ? x->length : y->length;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    if (x->length != y->length)
        return x->length < y->length ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The byte of a key at depth d, plus one; 0 past its end (a key sorts before those it is a prefix of). */
static inline int
ft_byte(const ft_key *row, size_t d)
{
    return d < row->length ? (unsigned char)row->key[d] + 1 : 0;
}

/* Partitions at one depth after which a part is left to qsort: keys crafted so that each partition splits off
 * few would otherwise make the radix sort slower than comparing. */
#define FT_PARTITIONS 48
/* Parts this small are sorted by insertion. */
#define FT_SMALL 12

typedef struct {
    size_t start, count, depth, partitions;
} ft_part;

/* rows[0:n] in ft_compare's order: a three-way radix quicksort (Bentley and Sedgewick) that looks at each byte
 * of a prefix the keys share once per partition, instead of comparing the prefix again in every comparison (the
 * 118k keys of a callgraph's half share their first frames), ties then put in dict order.  The parts to sort are
 * kept in heap memory, not on the C stack (a hostile file's keys may be long and alike).  -1 on a memory error. */
static int
ft_sort_keys(ft_key **rows, size_t n)
{
    size_t capacity = 64, top = 0;
    ft_part *parts = PyMem_Malloc(capacity * sizeof *parts);
    if (parts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    parts[top++] = (ft_part){0, n, 0, 0};
    while (top > 0) {
        ft_part part = parts[--top];
        while (part.count > 1) {
            ft_key **a = rows + part.start;
            if (part.count <= FT_SMALL || part.partitions >= FT_PARTITIONS) {
                /* all share their first part.depth bytes: comparing whole keys orders them */
                if (part.count <= FT_SMALL) {
                    for (size_t i = 1; i < part.count; i++) {
                        for (size_t j = i; j > 0 && ft_compare(&a[j - 1], &a[j]) > 0; j--) {
                            ft_key *swap = a[j - 1];
                            a[j - 1] = a[j];
                            a[j] = swap;
                        }
                    }
                }
                else
                    qsort(a, part.count, sizeof *a, ft_compare);
                break;
            }
            size_t d = part.depth, count = part.count;
            int x = ft_byte(a[0], d), y = ft_byte(a[count / 2], d), z = ft_byte(a[count - 1], d);
            int pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
            size_t lt = 0, i = 0, gt = count;   /* a[0:lt] below the pivot, a[lt:i] equal, a[gt:count] above */
            while (i < gt) {
                int c = ft_byte(a[i], d);
                if (c < pivot) {
                    ft_key *swap = a[lt];
                    a[lt++] = a[i];
                    a[i++] = swap;
                }
                else if (c > pivot) {
                    ft_key *swap = a[--gt];
                    a[gt] = a[i];
                    a[i] = swap;
                }
                else
                    i++;
            }
            if (top + 2 > capacity) {
                ft_part *grown = PyMem_Realloc(parts, 2 * capacity * sizeof *parts);
                if (grown == NULL) {
                    PyMem_Free(parts);
                    PyErr_NoMemory();
                    return -1;
                }
                parts = grown;
                capacity *= 2;
            }
            if (lt > 1)
                parts[top++] = (ft_part){part.start, lt, d, part.partitions + 1};
            if (count - gt > 1)
                parts[top++] = (ft_part){part.start + gt, count - gt, d, part.partitions + 1};
            if (pivot == 0) {   /* the middle keys all end here: equal keys, put in dict order */
                if (gt - lt > 1)
                    qsort(a + lt, gt - lt, sizeof *a, ft_compare);
                break;
            }
            part = (ft_part){part.start + lt, gt - lt, d + 1, 0};
        }
    }
    PyMem_Free(parts);
    return 0;
}

/* The text made in the bytes object it is returned as (no copy of its megabytes at the end): *size bytes
 * written of a capacity of PyBytes_GET_SIZE(bytes), grown by _PyBytes_Resize (rarely: room for every line
 * is made at once), cut to size at the end. */
typedef struct {
    PyObject *bytes;
    size_t size;
} ft_out;

static int
ft_out_reserve(ft_out *out, size_t more)
{
    size_t capacity = (size_t)PyBytes_GET_SIZE(out->bytes);
    if (more > ((size_t)PY_SSIZE_T_MAX) - out->size) {
        PyErr_NoMemory();
        return -1;
    }
    if (out->size + more <= capacity)
        return 0;
    size_t grown = capacity > ((size_t)PY_SSIZE_T_MAX) / 2 ? (size_t)PY_SSIZE_T_MAX : capacity * 2;
    if (grown < out->size + more)
        grown = out->size + more;
    return _PyBytes_Resize(&out->bytes, (Py_ssize_t)grown);   /* frees the object and sets NULL on an error */
}

static int
ft_out_add(ft_out *out, const char *text, size_t length)
{
    if (ft_out_reserve(out, length) < 0)
        return -1;
    memcpy(PyBytes_AS_STRING(out->bytes) + out->size, text, length);
    out->size += length;
    return 0;
}

/* " COUNT\n" for a weight as render.folded._count writes it; 1 when the pure path must decide. */
static int
ft_count(ft_out *out, PyObject *weight)
{
    PyObject *number = NULL;
    if (PyLong_CheckExact(weight)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(weight, &overflow);
        if (value == -1 && PyErr_Occurred())
            return -1;
        if (!overflow) {   /* " %lld\n", written from the end (snprintf took a fifth of the writer's time) */
            char text[32];
            char *at = text + sizeof text;
            *--at = '\n';
            at = decimal_digits(at, value);
            *--at = ' ';
            return ft_out_add(out, at, (size_t)(text + sizeof text - at));
        }
        number = PyObject_Str(weight);
    }
    else if (PyFloat_CheckExact(weight)) {
        double value = PyFloat_AS_DOUBLE(weight);
        if (!isfinite(value))
            return 1;   /* int() of it raises there */
        if (value == floor(value)) {
            PyObject *whole = PyLong_FromDouble(value);
            if (whole == NULL)
                return -1;
            number = PyObject_Str(whole);
            Py_DECREF(whole);
        }
        else
            number = PyObject_Str(weight);
    }
    else
        return 1;
    if (number == NULL)
        return -1;
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(number, &n);
    int result = text == NULL ? -1 : (ft_out_add(out, " ", 1) < 0 || ft_out_add(out, text, (size_t)n) < 0
                                      || ft_out_add(out, "\n", 1) < 0) ? -1 : 0;
    Py_DECREF(number);
    return result;
}

/* The first k >= from with p[k] a backslash or ';' (the bytes a label escapes), or n: eight bytes at a time. */
static inline Py_ssize_t
ft_plain_run(const char *p, Py_ssize_t from, Py_ssize_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    Py_ssize_t k = from;
    while (n - k >= 8) {
        uint64_t x, backslash, semicolon;
        memcpy(&x, p + k, 8);
        backslash = x ^ (ones * '\\');
        semicolon = x ^ (ones * ';');
        /* a zero byte in either: some byte of x is one of the two */
        if ((((backslash - ones) & ~backslash) | ((semicolon - ones) & ~semicolon)) & highs)
            break;
        k += 8;
    }
    while (k < n && p[k] != '\\' && p[k] != ';')
        k++;
    return k;
}

/* The labels escaped and encoded in one buffer; 1 when one is not encodable (the pure path decides). */
static int
ft_labels(PyObject *labels, text_buffer *text, size_t *starts, size_t *lengths)
{
    Py_ssize_t count = PyList_GET_SIZE(labels);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *label = PyList_GET_ITEM(labels, i);
        if (!PyUnicode_Check(label))
            return 1;
        Py_ssize_t n;
        const char *p = PyUnicode_AsUTF8AndSize(label, &n);
        if (p == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
                return -1;
            PyErr_Clear();
            return 1;
        }
        if (text_reserve(text, 2 * (size_t)n) < 0)
            return -1;
        starts[i] = text->size;
        for (Py_ssize_t k = 0; k < n;) {
            Py_ssize_t plain = ft_plain_run(p, k, n);   /* copied at once: nearly every label has nothing to escape */
            memcpy(text->data + text->size, p + k, (size_t)(plain - k));
            text->size += (size_t)(plain - k);
            if (plain == n)
                break;
            text->data[text->size++] = '\\';
            text->data[text->size++] = p[plain];
            k = plain + 1;
        }
        lengths[i] = text->size - starts[i];
    }
    return 0;
}

/* Where the keys are written: pieces of FT_PIECE bytes (or one key's length, when longer), each key whole
 * in one piece, so that a key never moves once written (a buffer grown by realloc copies its megabytes
 * again at every doubling, into fresh pages). */
#define FT_PIECE (1 << 20)

typedef struct {
    char **pieces;
    size_t count, capacity;
    char *at, *end;         /* the room left in the last piece */
    size_t total;           /* bytes of all keys */
} ft_pieces;

/* Room for a key of length bytes at p->at; -1 on a memory error. */
static int
ft_pieces_room(ft_pieces *p, size_t length)
{
    if ((size_t)(p->end - p->at) >= length && p->at != NULL)
        return 0;
    if (p->count == p->capacity) {
        size_t capacity = p->capacity ? p->capacity * 2 : 64;
        char **pieces = PyMem_Realloc(p->pieces, capacity * sizeof *pieces);
        if (pieces == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        p->pieces = pieces;
        p->capacity = capacity;
    }
    size_t size = length > FT_PIECE ? length : FT_PIECE;
    char *piece = PyMem_Malloc(size);
    if (piece == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->pieces[p->count++] = piece;
    p->at = piece;
    p->end = piece + size;
    return 0;
}

static void
ft_pieces_free(ft_pieces *p)
{
    for (size_t i = 0; i < p->count; i++)
        PyMem_Free(p->pieces[i]);
    PyMem_Free(p->pieces);
}

/* The keys of every stack, in the dict's order; 1 when the pure path must decide. */
static int
ft_keys(PyObject *stacks, const text_buffer *names, const size_t *starts, const size_t *lengths, Py_ssize_t count,
        ft_pieces *keys, ft_key *rows)
{
    Py_ssize_t position = 0, row = 0;
    PyObject *stack, *weight;
    while (PyDict_Next(stacks, &position, &stack, &weight)) {
        if (!PyTuple_CheckExact(stack) || !(PyLong_CheckExact(weight) || PyFloat_CheckExact(weight)))
            return 1;
        Py_ssize_t depth = PyTuple_GET_SIZE(stack);
        size_t length = depth > 0 ? (size_t)depth - 1 : 0;   /* the ';' between frames, then the labels */
        for (Py_ssize_t k = 0; k < depth; k++) {
            PyObject *item = PyTuple_GET_ITEM(stack, k);
            if (!PyLong_CheckExact(item))
                return 1;
            Py_ssize_t id = PyLong_AsSsize_t(item);
            if (id == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                return 1;
            }
            if (id < 0 || id >= count)
                return 1;
            if (lengths[id] > SIZE_MAX - length) {   /* a key longer than memory (a 32-bit size_t) */
                PyErr_NoMemory();
                return -1;
            }
            length += lengths[id];
        }
        if (length > SIZE_MAX - keys->total) {
            PyErr_NoMemory();
            return -1;
        }
        if (ft_pieces_room(keys, length) < 0)
            return -1;
        char *key = keys->at;
        for (Py_ssize_t k = 0; k < depth; k++) {
            Py_ssize_t id = PyLong_AsSsize_t(PyTuple_GET_ITEM(stack, k));   /* checked above */
            if (k > 0)
                *keys->at++ = ';';
            memcpy(keys->at, names->data + starts[id], lengths[id]);
            keys->at += lengths[id];
        }
        keys->total += length;
        rows[row].key = key;
        rows[row].length = length;
        rows[row].order = row;
        rows[row].weight = weight;
        uint64_t head = 0;
        for (size_t k = 0; k < 8; k++)
            head = head << 8 | (k < length ? (unsigned char)key[k] : 0);
        rows[row].head = head;
        row++;
    }
    return 0;
}

PyDoc_STRVAR(folded_text_doc,
"folded_text(labels, stacks[, encoded]) -> str | bytes | None\n\n"
"The folded lines of stacks (a dict of frame-id tuples to int or float weights) with each\n"
"frame written as its label, sorted, colliding stacks added up, as render.folded writes them;\n"
"encoded true: as UTF-8 bytes, the text never decoded.  None when a label, id or weight needs\n"
"the pure path.");

static PyObject *
py_folded_text(PyObject *self, PyObject *args)
{
    PyObject *labels, *stacks;
    int encoded = 0;
    if (!PyArg_ParseTuple(args, "O!O!|p", &PyList_Type, &labels, &PyDict_Type, &stacks, &encoded))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(labels), rows_count = PyDict_GET_SIZE(stacks);
    text_buffer names = {0};
    ft_pieces keys = {0};
    ft_out out = {NULL, 0};
    size_t *starts = PyMem_Calloc((size_t)count + 1, sizeof(size_t));
    size_t *lengths = PyMem_Calloc((size_t)count + 1, sizeof(size_t));
    ft_key *rows = PyMem_Calloc((size_t)rows_count + 1, sizeof(ft_key));
    ft_key **sorted = PyMem_Calloc((size_t)rows_count + 1, sizeof(ft_key *));
    PyObject *result = NULL, *total = NULL;
    int status;
    if (starts == NULL || lengths == NULL || rows == NULL || sorted == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* No buffer's data is ever NULL, so copies of empty labels never hand memcpy a NULL. */
    if (text_reserve(&names, 1) < 0)
        goto done;
    status = ft_labels(labels, &names, starts, lengths);
    if (status == 0)
        status = ft_keys(stacks, &names, starts, lengths, count, &keys, rows);
    if (status != 0)
        goto answer;
    /* every line, unless a count is long: the key, a space, at most 20 digits and a sign, a newline */
    if ((size_t)rows_count > (((size_t)PY_SSIZE_T_MAX) - keys.total) / 24) {
        PyErr_NoMemory();
        goto done;
    }
    out.bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(keys.total + 24 * (size_t)rows_count));
    if (out.bytes == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < rows_count; i++)
        sorted[i] = &rows[i];
    if (rows_count > 1 && ft_sort_keys(sorted, (size_t)rows_count) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < rows_count && status == 0;) {
        const ft_key *row = sorted[i];
        Py_ssize_t j = i + 1;
        while (j < rows_count && sorted[j]->length == row->length
               && memcmp(sorted[j]->key, row->key, row->length) == 0)
            j++;
        PyObject *weight = row->weight;
        if (j > i + 1) {   /* as merged.get(key, 0) + weight, in the stacks' order */
            total = PyLong_FromLong(0);
            for (Py_ssize_t k = i; k < j && total != NULL; k++) {
                PyObject *sum = PyNumber_Add(total, sorted[k]->weight);
                Py_SETREF(total, sum);
            }
            if (total == NULL)
                goto done;
            weight = total;
        }
        status = ft_out_add(&out, row->key, row->length);
        if (status == 0)
            status = ft_count(&out, weight);
        Py_CLEAR(total);
        i = j;
    }
answer:
    if (status < 0)
        goto done;
    if (status > 0)
        result = Py_NewRef(Py_None);
    else if (!encoded)   /* out.bytes was made before any row (status 0 past the keys) */
        result = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(out.bytes), (Py_ssize_t)out.size, "strict");
    else if (_PyBytes_Resize(&out.bytes, (Py_ssize_t)out.size) == 0) {   /* shrinks in place */
        result = out.bytes;
        out.bytes = NULL;
    }
done:
    Py_XDECREF(total);
    Py_XDECREF(out.bytes);
    PyMem_Free(starts);
    PyMem_Free(lengths);
    PyMem_Free(rows);
    PyMem_Free(sorted);
    PyMem_Free(names.data);
    ft_pieces_free(&keys);
    return result;
}

/* One line of a folded text from `at`: its key [*key, *key + *key_length), its count (at most
 * FT_MERGE_DIGITS digits), the line after it.  0, or 1 when the line is not "KEY DIGITS\n". */
#define FT_MERGE_DIGITS 18

static int
ft_line(const char *text, Py_ssize_t size, Py_ssize_t at, Py_ssize_t *key_length, long long *count,
        Py_ssize_t *next)
{
    const char *end = memchr(text + at, '\n', (size_t)(size - at));
    if (end == NULL)
        return 1;
    Py_ssize_t stop = end - text, space = stop;
    while (space > at && text[space - 1] != ' ')
        space--;
    Py_ssize_t digits = stop - space;
    if (space == at || digits < 1 || digits > FT_MERGE_DIGITS)
        return 1;
    long long value = 0;
    for (Py_ssize_t i = space; i < stop; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 1;
        value = value * 10 + (text[i] - '0');
    }
    *key_length = space - 1 - at;
    *count = value;
    *next = stop + 1;
    return 0;
}

/* Keys compared as Python compares str (UTF-8 byte order is code point order, a prefix first). */
static int
ft_key_order(const char *a, Py_ssize_t a_length, const char *b, Py_ssize_t b_length)
{
    int c = memcmp(a, b, (size_t)(a_length < b_length ? a_length : b_length));
    if (c != 0)
        return c;
    return a_length < b_length ? -1 : a_length > b_length;
}

/* Where the merged text is written: [at, end) is the room left.  Without a writer, the merge never needs more
 * than its two texts' sizes (a line of a key in one text is copied as it is; a key in both is written once, with
 * a count of at most one digit more than either of its two counts), so the output is made in place, in the bytes
 * object it is returned as: no second copy of its megabytes.  With a writer, it is made in pieces of
 * FT_MERGE_PIECE bytes (or one line, when longer), each a bytes object handed to the writer once full, so
 * that the merged text never lies whole in memory (megabytes of fresh pages, a fault per 4 KiB). */
#define FT_MERGE_PIECE (1 << 20)

typedef struct {
    char *at, *end;
    PyObject *piece;        /* with a writer: the bytes being filled */
    PyObject *write;        /* the writer, or NULL */
} ft_room;

/* With a writer: the piece written so far handed to it, and a new one of at least `least` bytes. */
static int
ft_flush(ft_room *out, size_t least)
{
    if (out->piece != NULL) {
        Py_ssize_t used = out->at - PyBytes_AS_STRING(out->piece);
        if (_PyBytes_Resize(&out->piece, used) < 0)   /* frees the piece and sets NULL on an error */
            return -1;
        PyObject *answer = used ? PyObject_CallOneArg(out->write, out->piece) : Py_NewRef(Py_None);
        Py_CLEAR(out->piece);
        if (answer == NULL)
            return -1;
        Py_DECREF(answer);
    }
    if (least == 0)
        return 0;
    size_t size = least > FT_MERGE_PIECE ? least : FT_MERGE_PIECE;
    if (size > (size_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        return -1;
    }
    out->piece = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (out->piece == NULL)
        return -1;
    out->at = PyBytes_AS_STRING(out->piece);
    out->end = out->at + size;
    return 0;
}

static int
ft_put(ft_room *out, const char *p, size_t n)
{
    if ((size_t)(out->end - out->at) < n) {   /* cannot happen without a writer (see ft_room); checked all the same */
        PyErr_SetString(PyExc_SystemError, "folded_merge: the merged text outgrew its two texts");
        return -1;
    }
    memcpy(out->at, p, n);
    out->at += n;
    return 0;
}

static int
ft_merge_line(ft_room *out, const char *key, Py_ssize_t length, unsigned long long count)
{
    char digits[24];
    char *at = digits + sizeof digits;
    *--at = '\n';
    do {
        *--at = (char)('0' + count % 10);
        count /= 10;
    } while (count);
    *--at = ' ';
    size_t tail = (size_t)(digits + sizeof digits - at);
    if (out->write != NULL && (size_t)(out->end - out->at) < (size_t)length + tail
            && ft_flush(out, (size_t)length + tail) < 0)
        return -1;
    if (ft_put(out, key, (size_t)length) < 0)
        return -1;
    return ft_put(out, at, tail);
}

PyDoc_STRVAR(folded_merge_doc,
"folded_merge(first, second[, write]) -> str | bytes | True | None\n\n"
"Two folded texts (sorted \"KEY COUNT\" lines, each key once) as one, as render.folded.merge_folded\n"
"merges them: keys in order, the counts of a key in both added; two str give str, two bytes-like\n"
"objects (the texts in UTF-8) bytes.  With write, the merged bytes are handed to it a megabyte at a\n"
"time instead, and the answer is True.  None when a line is not \"KEY DIGITS\" with at most 18 digits\n"
"or a text's keys do not ascend (the pure path decides; with write, some of the text may have been\n"
"written).");

static PyObject *
py_folded_merge(PyObject *self, PyObject *args)
{
    PyObject *objects[2], *write = NULL;
    if (!PyArg_ParseTuple(args, "OO|O", &objects[0], &objects[1], &write))
        return NULL;
    int text_in = PyUnicode_Check(objects[0]);
    if (write != NULL && (text_in || !PyCallable_Check(write))) {
        PyErr_SetString(PyExc_TypeError, "folded_merge writes bytes texts to a callable");
        return NULL;
    }
    const char *text[2];
    Py_ssize_t size[2], at[2] = {0, 0}, key[2] = {0, 0}, next[2] = {0, 0}, before[2] = {-1, -1}, previous[2] = {0, 0};
    long long count[2] = {0, 0};
    int more[2], held = 0;
    Py_buffer views[2];
    PyObject *merged = NULL, *result = NULL;
    ft_room out = {NULL, NULL, NULL, write};
    for (; held < 2; held++) {
        if (text_in ? !PyUnicode_Check(objects[held]) : PyUnicode_Check(objects[held])) {
            PyErr_SetString(PyExc_TypeError, "folded_merge takes two str or two bytes-like objects");
            goto done;
        }
        if (text_in) {
            if ((text[held] = PyUnicode_AsUTF8AndSize(objects[held], &size[held])) == NULL)
                goto done;
        }
        else {
            if (PyObject_GetBuffer(objects[held], &views[held], PyBUF_SIMPLE) < 0)
                goto done;
            text[held] = views[held].buf;
            size[held] = views[held].len;
        }
    }
    if (size[0] > PY_SSIZE_T_MAX - size[1]) {
        PyErr_NoMemory();
        goto done;
    }
    if (write == NULL) {
        merged = PyBytes_FromStringAndSize(NULL, size[0] + size[1]);
        if (merged == NULL)
            goto done;
        out.at = PyBytes_AS_STRING(merged);
        out.end = out.at + size[0] + size[1];
    }
    int unfit = 0;
    for (int k = 0; k < 2; k++) {
        more[k] = at[k] < size[k];
        if (more[k] && ft_line(text[k], size[k], at[k], &key[k], &count[k], &next[k]))
            unfit = 1;
    }
    while (!unfit && (more[0] || more[1])) {
        int order = !more[0] ? 1 : !more[1] ? -1 : ft_key_order(text[0] + at[0], key[0], text[1] + at[1], key[1]);
        unsigned long long total = 0;
        const char *which = order <= 0 ? text[0] + at[0] : text[1] + at[1];
        Py_ssize_t length = order <= 0 ? key[0] : key[1];
        for (int k = 0; k < 2; k++) {
            if (!(k == 0 ? order <= 0 : order >= 0))
                continue;
            total += (unsigned long long)count[k];   /* two counts of at most 18 digits: below 2^64 */
            /* each text's keys must ascend strictly, as folded_text writes them */
            if (before[k] >= 0 && ft_key_order(text[k] + before[k], previous[k], text[k] + at[k], key[k]) >= 0) {
                unfit = 1;
                break;
            }
            before[k] = at[k];
            previous[k] = key[k];
            at[k] = next[k];
            more[k] = at[k] < size[k];
            if (more[k] && ft_line(text[k], size[k], at[k], &key[k], &count[k], &next[k]))
                unfit = 1;
        }
        if (!unfit && ft_merge_line(&out, which, length, total) < 0)
            goto done;
    }
    if (unfit)
        result = Py_NewRef(Py_None);
    else if (write != NULL)
        result = ft_flush(&out, 0) < 0 ? NULL : Py_NewRef(Py_True);
    else if (text_in)
        result = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(merged), out.at - PyBytes_AS_STRING(merged), "strict");
    else if (_PyBytes_Resize(&merged, out.at - PyBytes_AS_STRING(merged)) == 0)   /* shrinks in place */
        result = Py_NewRef(merged);   /* on an error merged is freed and NULL */
done:
    Py_XDECREF(merged);
    Py_XDECREF(out.piece);
    if (!text_in) {
        while (held > 0)
            PyBuffer_Release(&views[--held]);
    }
    return result;
}

#endif
