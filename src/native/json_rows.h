/* Rows given column by column, written exactly as json.dumps(rows, ensure_ascii=False) writes them.
 *
 * The output of tracebridge.render.tables.encode_json_columns without the
 * list of dicts: `{"key": value, ...}` objects separated by ", ", no
 * brackets.  Values may be str, int, bool, float or None; anything else
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
#include <math.h>
#include <string.h>

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

/* A JSON string: quotes and the json module's escapes. */
static int
text_add_string(text_buffer *b, PyObject *string)
{
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(string, &length);
    if (utf8 == NULL)
        return -1;
    /* At most 6 bytes per input byte (\u00XX), plus the quotes. */
    if ((size_t)length > ((size_t)PY_SSIZE_T_MAX - 2) / 6) {
        PyErr_NoMemory();
        return -1;
    }
    if (text_reserve(b, (size_t)length * 6 + 2) < 0)
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *out = b->data + b->size;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)utf8[i];
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
            char digits[32];
            int length = snprintf(digits, sizeof digits, "%lld", number);
            return text_add(b, digits, (size_t)length);
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

#endif
