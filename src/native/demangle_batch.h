/* The per-name steps around the Rust demangler, for a whole module's names at once.
 *
 * tracebridge.image.demangle's _rust_demangled and crates_of, natively: the
 * demangler itself stays the Python callable it is given (pyderust's
 * rustc-demangle, or the pure package), but the tests, the result columns and
 * the crate of each name are made here.  On librustc_driver's 102k v0 names
 * those steps cost as much in Python as the demangler (about 1 us a name).
 * Names are only read: no index comes from the input, every string is
 * walked within its own length.
 */
#ifndef TRACEBRIDGE_DEMANGLE_BATCH_H
#define TRACEBRIDGE_DEMANGLE_BATCH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Code point i of s, or 0 past its end (s is a ready str). */
static inline Py_UCS4
batch_char(PyObject *s, Py_ssize_t i)
{
    return i < PyUnicode_GET_LENGTH(s) ? PyUnicode_READ_CHAR(s, i) : 0;
}

/* Does s start with the ASCII text prefix? */
static int
batch_starts(PyObject *s, const char *prefix)
{
    for (Py_ssize_t i = 0; prefix[i]; i++)
        if (batch_char(s, i) != (Py_UCS4)(unsigned char)prefix[i])
            return 0;
    return 1;
}

/* Every mangled form's start (demangle._MANGLED). */
static const char *const batch_mangled[] = {"_R", "R", "__R", "_Z", "ZN", "__Z"};

/* str.isascii() and str.isprintable(): every character from ' ' to '~'. */
static int
batch_printable_ascii(PyObject *s)
{
    if (!PyUnicode_IS_ASCII(s))
        return 0;
    const unsigned char *at = PyUnicode_1BYTE_DATA(s), *end = at + PyUnicode_GET_LENGTH(s);
    for (; at < end; at++)
        if (*at < 0x20 || *at > 0x7e)
            return 0;
    return 1;
}

/* No character of support.printable.CONTROL in s: C0 but the tab, DEL, C1, U+2028 and U+2029. */
static int
batch_no_control(PyObject *s)
{
    if (PyUnicode_IS_ASCII(s)) {  /* almost every name: one byte a character, only C0 and DEL to find */
        const unsigned char *at = PyUnicode_1BYTE_DATA(s), *end = at + PyUnicode_GET_LENGTH(s);
        int found = 0;
        for (; at < end; at++)
            found |= (*at < 0x20 && *at != 0x09) | (*at == 0x7f);
        return !found;
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t length = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c <= 0x08 || (c >= 0x0a && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029)
            return 0;
    }
    return 1;
}

/* rust_demangled(demangle, symbols, max_name, max_demangled, v0, legacy, c) -> (names, schemes, rest).
 * See demangle._rust_demangled, its twin, for what each answer is. */
static PyObject *
rust_demangled(PyObject *demangle, PyObject *symbols, Py_ssize_t max_name, Py_ssize_t max_demangled,
               PyObject *v0, PyObject *legacy, PyObject *c)
{
    Py_ssize_t count = PyList_GET_SIZE(symbols);
    PyObject *names = PyList_New(count), *schemes = PyList_New(count), *rest = PyList_New(0);
    if (names == NULL || schemes == NULL || rest == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < count; i++) {
        /* The demangler runs Python code, which could change the list: its length is checked at each
         * name, and the name is held while it is used. */
        if (i >= PyList_GET_SIZE(symbols)) {
            PyErr_SetString(PyExc_ValueError, "the names changed length");
            goto fail;
        }
        PyObject *symbol = Py_NewRef(PyList_GET_ITEM(symbols, i));
        if (!PyUnicode_CheckExact(symbol)) {
            Py_DECREF(symbol);
            PyErr_SetString(PyExc_TypeError, "symbol names are str");
            goto fail;
        }
        int v0_shaped = batch_starts(symbol, "_R");
        if ((v0_shaped || batch_starts(symbol, "_ZN")) && PyUnicode_GET_LENGTH(symbol) <= max_name) {
            PyObject *plain = PyObject_CallOneArg(demangle, symbol);
            if (plain == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_Exception)) {  /* KeyboardInterrupt and such go on */
                    Py_DECREF(symbol);
                    goto fail;
                }
                PyErr_Clear();
            }
            else if (PyUnicode_CheckExact(plain) && PyUnicode_GET_LENGTH(plain) <= max_demangled
                     && batch_no_control(plain)) {
                PyList_SET_ITEM(names, i, plain);  /* new lists, filled before anyone sees them */
                PyList_SET_ITEM(schemes, i, Py_NewRef(v0_shaped ? v0 : legacy));
                Py_DECREF(symbol);
                continue;
            }
            else
                Py_DECREF(plain);
        }
        int plain_c = batch_printable_ascii(symbol);
        for (size_t k = 0; plain_c && k < sizeof batch_mangled / sizeof *batch_mangled; k++)
            plain_c = !batch_starts(symbol, batch_mangled[k]);
        PyList_SET_ITEM(names, i, symbol);  /* takes the reference held */
        PyList_SET_ITEM(schemes, i, Py_NewRef(c));
        if (!plain_c) {
            PyObject *index = PyLong_FromSsize_t(i);
            int status = index == NULL ? -1 : PyList_Append(rest, index);
            Py_XDECREF(index);
            if (status < 0)
                goto fail;
        }
    }
    return Py_BuildValue("(NNN)", names, schemes, rest);
fail:  /* slots not yet filled are NULL, which freeing a list allows */
    Py_XDECREF(names);
    Py_XDECREF(schemes);
    Py_XDECREF(rest);
    return NULL;
}

/* The crate of an ASCII demangled path: its first identifier ([A-Za-z_][A-Za-z0-9_]*) followed by
 * "::", as demangle._CRATE.search finds it; None if there is none.  A run of identifier characters
 * not followed by "::" fails from every start inside it, so the search goes on after the run. */
static PyObject *
batch_ascii_crate(PyObject *name)
{
    const unsigned char *text = PyUnicode_1BYTE_DATA(name);
    Py_ssize_t length = PyUnicode_GET_LENGTH(name), i = 0;
    while (i < length) {
        unsigned char ch = text[i];
        if (!(ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'))) {
            i++;
            continue;
        }
        Py_ssize_t end = i + 1;
        while (end < length && (text[end] == '_' || (text[end] >= 'A' && text[end] <= 'Z')
                                || (text[end] >= 'a' && text[end] <= 'z') || (text[end] >= '0' && text[end] <= '9')))
            end++;
        if (end + 1 < length && text[end] == ':' && text[end + 1] == ':')
            return PyUnicode_Substring(name, i, end);
        i = end;
    }
    Py_RETURN_NONE;
}

/* crates_of(names, schemes, rust_schemes, crate_of) -> list: crate_of(name) where the scheme is one of
 * rust_schemes, else None; crate_of itself is called only for names that are not ASCII. */
static PyObject *
crates_of(PyObject *names, PyObject *schemes, PyObject *rust_schemes, PyObject *crate_of)
{
    Py_ssize_t count = PyList_GET_SIZE(names);
    if (PyList_GET_SIZE(schemes) != count) {
        PyErr_SetString(PyExc_ValueError, "as many schemes as names are needed");
        return NULL;
    }
    PyObject *crates = PyList_New(count);
    if (crates == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        /* crate_of may run any code: the lists are read again, checked, at each name. */
        if (i >= PyList_GET_SIZE(names) || i >= PyList_GET_SIZE(schemes)) {
            PyErr_SetString(PyExc_ValueError, "the names or schemes changed length");
            goto fail;
        }
        PyObject *name = Py_NewRef(PyList_GET_ITEM(names, i)), *crate = NULL;
        int rust = PySequence_Contains(rust_schemes, PyList_GET_ITEM(schemes, i));
        if (rust < 0)
            crate = NULL;
        else if (!rust)
            crate = Py_NewRef(Py_None);
        else if (PyUnicode_CheckExact(name) && PyUnicode_IS_ASCII(name))
            crate = batch_ascii_crate(name);
        else
            crate = PyObject_CallOneArg(crate_of, name);
        Py_DECREF(name);
        if (crate == NULL)
            goto fail;
        PyList_SET_ITEM(crates, i, crate);
    }
    return crates;
fail:
    Py_DECREF(crates);
    return NULL;
}

#endif
