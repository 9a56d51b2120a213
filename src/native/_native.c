/* tracebridge's optional compiled core (the tracebridge.support._native module).
 *
 * Loops that cost a Python bytecode dispatch per byte or per instruction, each a
 * function over one whole buffer; tracebridge.support.native loads this module
 * and every caller keeps its pure-Python path, which must give the same output.
 * Every offset and length from the input is checked against the buffer it
 * indexes: the input is a file from someone else's machine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "fbt_amd64.h"

/* A read-only view of an int64 column ('q' items, or plain bytes a multiple of 8 long). */
static int
int64_column(PyObject *object, Py_buffer *view, Py_ssize_t *count)
{
    if (PyObject_GetBuffer(object, view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view->len % 8 != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "an int64 column's size is not a multiple of 8");
        return -1;
    }
    *count = view->len / 8;
    return 0;
}

static PyObject *
py_x86_length(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    unsigned char window[X86_WINDOW] = {0};
    memcpy(window, view.buf, view.len < X86_WINDOW ? (size_t)view.len : X86_WINDOW);
    PyBuffer_Release(&view);
    return PyLong_FromLong(x86_length(window));
}

PyDoc_STRVAR(x86_length_doc,
"x86_length(code) -> int\n\n"
"Length of the x86-64 instruction at the start of code (zeros past its end): 0 when\n"
"iced-x86 rejects it, -1 when the native tables cannot say.");

static PyObject *
py_fbt_amd64(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *starts_obj, *sizes_obj;
    if (!PyArg_ParseTuple(args, "OOO", &data_obj, &starts_obj, &sizes_obj))
        return NULL;
    Py_buffer data, starts, sizes;
    Py_ssize_t count, size_count;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (int64_column(starts_obj, &starts, &count) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (int64_column(sizes_obj, &sizes, &size_count) < 0) {
        PyBuffer_Release(&starts);
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL, *entries_obj = NULL, *counts_obj = NULL;
    const long long *start = starts.buf, *size = sizes.buf;
    if (size_count != count) {
        PyErr_SetString(PyExc_ValueError, "starts and sizes differ in length");
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (start[i] < 0 || size[i] < 0 || start[i] > data.len || size[i] > data.len - start[i]) {
            PyErr_Format(PyExc_ValueError, "function %zd lies outside the buffer", i);
            goto done;
        }
    }
    entries_obj = PyBytes_FromStringAndSize(NULL, count * 8);
    counts_obj = PyBytes_FromStringAndSize(NULL, count * 8);
    if (entries_obj == NULL || counts_obj == NULL)
        goto done;
    long long *entries = (long long *)PyBytes_AS_STRING(entries_obj);
    long long *counts = (long long *)PyBytes_AS_STRING(counts_obj);
    offset_list rets = {NULL, 0, 0, 1};
    const unsigned char *bytes = data.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && rets.ok; i++) {
        size_t before = rets.count;
        entries[i] = size[i] == 0 ? FBT_NO_FRAME : fbt_walk_amd64(bytes + start[i], (size_t)size[i], &rets);
        counts[i] = (long long)(rets.count - before);
    }
    Py_END_ALLOW_THREADS
    if (!rets.ok)
        PyErr_NoMemory();
    else {
        PyObject *rets_obj = PyBytes_FromStringAndSize((const char *)rets.items, (Py_ssize_t)(rets.count * 8));
        if (rets_obj != NULL)
            result = Py_BuildValue("(OON)", entries_obj, counts_obj, rets_obj);
    }
    free(rets.items);
done:
    Py_XDECREF(entries_obj);
    Py_XDECREF(counts_obj);
    PyBuffer_Release(&sizes);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(fbt_amd64_doc,
"fbt_amd64(data, starts, sizes) -> (entries, counts, rets)\n\n"
"FBT's amd64 walk over the functions data[starts[i]:starts[i] + sizes[i]] (int64 columns).\n"
"entries[i]: the entry offset, or -1 no push %rbp, -2 decoder failure first, -3 an\n"
"instruction the native tables do not model (ask iced-x86); counts[i] return-site\n"
"candidates of function i follow in rets, function by function.  All three are bytes of\n"
"native int64.");

static PyMethodDef methods[] = {
    {"x86_length", py_x86_length, METH_O, x86_length_doc},
    {"fbt_amd64", py_fbt_amd64, METH_VARARGS, fbt_amd64_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tracebridge.support._native",
    "tracebridge's optional compiled core; see tracebridge.support.native.", -1, methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&module);
}
