/* Rows given column by column, written exactly as json.dumps(rows, ensure_ascii=False) writes them
 * (as UTF-8 bytes).
 *
 * The output of tracebridge.render.tables.encode_json_columns without the
 * list of dicts: `{"key": value, ...}` objects separated by ", ", no
 * brackets.  A column is a list of values or, without the list, the objects
 * that hold them as an attribute (read from its slot: no reference is taken,
 * so a forked child writes no page it shares with its parent).  Values may
 * be str, int, bool, float or None; anything else
 * (or a str that is not valid Unicode) makes the caller use json.dumps.
 * Strings are escaped as the json module's C encoder does with
 * ensure_ascii=False: the two-character escapes for '"', '\\', '\b',
 * '\f', '\n', '\r' and '\t', \u00XX for the other bytes below 0x20, and
 * everything else as it is (UTF-8).
 */
#ifndef TRACEBRIDGE_JSON_ROWS_H
#define TRACEBRIDGE_JSON_ROWS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>

/* How many rows ahead json_rows asks for its values' memory (twice that for an attribute's object). */
#define JSON_PREFETCH_ROWS 8
#if defined(__GNUC__) || defined(__clang__)
#define JSON_PREFETCH(address) __builtin_prefetch(address)
#else
#define JSON_PREFETCH(address) ((void)(address))
#endif

typedef struct {
    char *data;
    size_t size, capacity;
} text_buffer;

static int
text_reserve(text_buffer *b, size_t more)
{
    if (more > ((size_t)PY_SSIZE_T_MAX) - b->size) {
        PyErr_NoMemory();
        return -1;
    }
    if (b->size + more <= b->capacity)
        return 0;
    size_t capacity = b->capacity ? b->capacity : 1 << 16;
    while (capacity < b->size + more) {
        if (capacity > ((size_t)PY_SSIZE_T_MAX) / 2) {
            capacity = b->size + more;
            break;
        }
        capacity *= 2;
    }
    char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int
text_add(text_buffer *b, const char *text, size_t length)
{
    if (text_reserve(b, length) < 0)
        return -1;
    memcpy(b->data + b->size, text, length);
    b->size += length;
    return 0;
}

/* Does any of the 8 bytes in x need an escape (below 0x20, '"' or '\\')?  Exact: (v - 0x01..) & ~v
 * & 0x80.. is nonzero iff some byte of v is 0, and (x - 0x20..) & ~x & 0x80.. iff some byte is
 * below 0x20. */
static inline int
json_word_escapes(unsigned long long x)
{
    const unsigned long long ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    unsigned long long quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    return (((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & highs
        ? 1 : 0;
}

/* The decimal digits of value, written backwards so that they end just before `end` (at least 21
 * bytes of room): where they start.  Faster than snprintf, which cost more than the rest of a JSON
 * row (and a fifth of the folded writer's time). */
static char *
decimal_digits(char *end, long long value)
{
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        *--end = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        *--end = '-';
    return end;
}

/* A JSON string: quotes and the json module's escapes. */
static int
text_add_string(text_buffer *b, PyObject *string)
{
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(string, &length);
    if (utf8 == NULL)
        return -1;
    /* At most 6 bytes per input byte (\u00XX), plus the quotes (and 8 to spare: words are copied whole). */
    if ((size_t)length > ((size_t)PY_SSIZE_T_MAX - 10) / 6) {
        PyErr_NoMemory();
        return -1;
    }
    if (text_reserve(b, (size_t)length * 6 + 10) < 0)
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *out = b->data + b->size;
    const unsigned char *at = (const unsigned char *)utf8, *end = at + length;
    *out++ = '"';
    while (at < end) {
        /* Eight bytes at a time while none needs an escape, then one byte. */
        while (end - at >= 8) {
            unsigned long long word;
            memcpy(&word, at, 8);
            if (json_word_escapes(word))
                break;
            memcpy(out, &word, 8);
            out += 8;
            at += 8;
        }
        if (at == end)
            break;
        unsigned char c = *at++;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }
    *out++ = '"';
    b->size = (size_t)(out - b->data);
    return 0;
}

/* One value; -1 with TypeError for a type json_rows does not write. */
static int
text_add_value(text_buffer *b, PyObject *value)
{
    if (value == Py_None)
        return text_add(b, "null", 4);
    if (value == Py_True)
        return text_add(b, "true", 4);
    if (value == Py_False)
        return text_add(b, "false", 5);
    if (PyUnicode_CheckExact(value))
        return text_add_string(b, value);
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow) {
            char digits[24], *at = decimal_digits(digits + sizeof digits, number);
            return text_add(b, at, (size_t)(digits + sizeof digits - at));
        }
    }
    if (PyFloat_CheckExact(value) && !isfinite(PyFloat_AS_DOUBLE(value))) {
        PyErr_SetString(PyExc_TypeError, "json_rows leaves NaN and infinities to json.dumps");
        return -1;
    }
    if (PyLong_CheckExact(value) || PyFloat_CheckExact(value)) {
        /* json.dumps writes both with their repr (floats: float.__repr__). */
        PyObject *text = PyObject_Repr(value);
        if (text == NULL)
            return -1;
        Py_ssize_t length;
        const char *utf8 = PyUnicode_AsUTF8AndSize(text, &length);
        int status = utf8 == NULL ? -1 : text_add(b, utf8, (size_t)length);
        Py_DECREF(text);
        return status;
    }
    PyErr_Format(PyExc_TypeError, "json_rows writes no %.100s", Py_TYPE(value)->tp_name);
    return -1;
}

/* One column of json_rows: a list of the values, or the objects whose attribute `name` is the
 * value.  Objects of `type` (the first object's, when it reads attributes the generic way) hold it
 * in a slot at `offset`, read straight from there; others are asked with getattr. */
typedef struct {
    PyObject *list, *name;
    PyTypeObject *type;
    Py_ssize_t offset;
} json_column;

static int
json_column_of(PyObject *spec, json_column *column)
{
    *column = (json_column){spec, NULL, NULL, -1};
    if (PyList_CheckExact(spec))
        return 0;
    if (!PyTuple_CheckExact(spec) || PyTuple_GET_SIZE(spec) != 2 || !PyList_CheckExact(PyTuple_GET_ITEM(spec, 0))
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(spec, 1))) {
        PyErr_SetString(PyExc_TypeError, "a column is a list, or a tuple (objects, attribute name)");
        return -1;
    }
    column->list = PyTuple_GET_ITEM(spec, 0);
    column->name = PyTuple_GET_ITEM(spec, 1);
    if (PyList_GET_SIZE(column->list) == 0)
        return 0;
    PyTypeObject *type = Py_TYPE(PyList_GET_ITEM(column->list, 0));
    if (type->tp_getattro != PyObject_GenericGetAttr)
        return 0;
    PyObject *descr = _PyType_Lookup(type, column->name);  /* borrowed */
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX && member->offset >= (Py_ssize_t)sizeof(PyObject)
                && member->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize) {
            column->type = (PyTypeObject *)Py_NewRef(type);  /* held: compared with each object's type */
            column->offset = member->offset;
        }
    }
    return 0;
}

/* Row `row` of a column, or NULL with an exception.  Borrowed (no reference count written), unless
 * *owned says it came from getattr: the caller then releases it.  Borrowing is safe because writing
 * a value runs no Python code (exact str, int, float, bool and None only). */
static PyObject *
json_column_value(const json_column *column, Py_ssize_t row, int *owned)
{
    *owned = 0;
    /* A list may have changed length under us only through a getattr: checked each time. */
    if (row >= PyList_GET_SIZE(column->list)) {
        PyErr_SetString(PyExc_ValueError, "a column changed length");
        return NULL;
    }
    PyObject *item = PyList_GET_ITEM(column->list, row);
    if (column->name == NULL)
        return item;
    if (Py_TYPE(item) == column->type) {
        PyObject *value = *(PyObject **)((char *)item + column->offset);
        if (value != NULL)
            return value;
    }
    *owned = 1;
    Py_INCREF(item);  /* getattr may run code that drops it from the list */
    PyObject *value = PyObject_GetAttr(item, column->name);  /* an unset slot: its AttributeError */
    Py_DECREF(item);
    return value;
}

/* The rows from `start` whose values are columns[k] (json_column_of) under keys[k], as
 * json.dumps(rows, ensure_ascii=False) writes them without the brackets: UTF-8 bytes.  The rows
 * stop after the first that brings the text to max_bytes (0: none stops them); *end is then the
 * next row.  A part at a time, a command writes each while the next is made, in memory it reuses,
 * instead of holding (and touching page by page) a whole module's 30 MB of rows. */
static PyObject *
json_rows(PyObject *keys, PyObject *specs, Py_ssize_t start, size_t max_bytes, Py_ssize_t *end)
{
    Py_ssize_t width = PyTuple_GET_SIZE(keys), count = -1;
    if (PyTuple_GET_SIZE(specs) != width) {
        PyErr_SetString(PyExc_ValueError, "as many columns as keys are needed");
        return NULL;
    }
    json_column *columns = PyMem_Calloc((size_t)(width ? width : 1), sizeof *columns);
    size_t *key_end = PyMem_Calloc((size_t)(width ? width : 1), sizeof *key_end);
    text_buffer b = {NULL, 0, 0}, key_text = {NULL, 0, 0};
    PyObject *result = NULL;
    if (columns == NULL || key_end == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(keys, k))) {
            PyErr_SetString(PyExc_TypeError, "keys are str");
            goto done;
        }
        if (json_column_of(PyTuple_GET_ITEM(specs, k), &columns[k]) < 0)
            goto done;
        if (count >= 0 && PyList_GET_SIZE(columns[k].list) != count) {
            PyErr_SetString(PyExc_ValueError, "columns differ in length");
            goto done;
        }
        count = PyList_GET_SIZE(columns[k].list);
    }
    if (start < 0) {
        PyErr_SetString(PyExc_ValueError, "the first row is negative");
        goto done;
    }
    *end = width == 0 || count <= start ? start : count;
    if (width == 0 || count <= start) {
        result = PyBytes_FromStringAndSize("", 0);
        goto done;
    }
    /* Each key once, as written before its value: "key": */
    for (Py_ssize_t k = 0; k < width; k++) {
        if (text_add_string(&key_text, PyTuple_GET_ITEM(keys, k)) < 0 || text_add(&key_text, ": ", 2) < 0)
            goto done;
        key_end[k] = key_text.size;
    }
    for (Py_ssize_t row = start; row < count; row++) {
        /* The values are scattered objects, each read once: ask for those of rows ahead now (the
         * wait for memory was most of the time), and for an attribute, first its object. */
        for (Py_ssize_t k = 0; k < width; k++) {
            const json_column *column = &columns[k];
            Py_ssize_t size = PyList_GET_SIZE(column->list);
            if (row + 2 * JSON_PREFETCH_ROWS < size)
                JSON_PREFETCH(PyList_GET_ITEM(column->list, row + 2 * JSON_PREFETCH_ROWS));
            if (row + JSON_PREFETCH_ROWS < size) {
                PyObject *item = PyList_GET_ITEM(column->list, row + JSON_PREFETCH_ROWS);
                JSON_PREFETCH(column->offset >= 0 && Py_TYPE(item) == column->type
                              ? *(PyObject **)((char *)item + column->offset) : item);
            }
        }
        if (text_add(&b, row > start ? ", {" : "{", row > start ? 3 : 1) < 0)
            goto done;
        size_t key_start = 0;
        for (Py_ssize_t k = 0; k < width; k++) {
            int owned;
            PyObject *value = json_column_value(&columns[k], row, &owned);
            int status = value == NULL ? -1
                : (k && text_add(&b, ", ", 2) < 0)
                    || text_add(&b, key_text.data + key_start, key_end[k] - key_start) < 0
                    || text_add_value(&b, value) < 0 ? -1 : 0;
            if (owned)
                Py_XDECREF(value);
            if (status < 0)
                goto done;
            key_start = key_end[k];
        }
        if (text_add(&b, "}", 1) < 0)
            goto done;
        if (max_bytes && b.size >= max_bytes) {
            *end = row + 1;
            break;
        }
    }
    result = PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.size);
done:
    if (columns != NULL)
        for (Py_ssize_t k = 0; k < width; k++)
            Py_XDECREF(columns[k].type);
    PyMem_Free(columns);
    PyMem_Free(key_end);
    PyMem_Free(key_text.data);
    PyMem_Free(b.data);
    return result;
}

#endif
