/* Keeping freed big blocks in the process: the native twin of tracebridge.support.heap's ctypes call of
 * glibc's mallopt (the import of ctypes alone cost 2-3 ms at the start of every fold, before the fork).
 * Where the C library is not glibc, nothing is asked, as the twin finds no mallopt there. */
#ifndef TRACEBRIDGE_HEAP_POLICY_H
#define TRACEBRIDGE_HEAP_POLICY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

PyDoc_STRVAR(keep_freed_doc,
"keep_freed(mmap_threshold, trim_threshold) -> bool\n\n"
"glibc's mallopt(M_MMAP_THRESHOLD, mmap_threshold), then (if it succeeded) mallopt(M_TRIM_THRESHOLD,\n"
"trim_threshold): whether both succeeded; False where the C library is not glibc.");

static PyObject *
py_keep_freed(PyObject *self, PyObject *args)
{
    int mmap_threshold, trim_threshold;
    if (!PyArg_ParseTuple(args, "ii", &mmap_threshold, &trim_threshold))
        return NULL;
#if defined(__GLIBC__)
    return PyBool_FromLong(mallopt(M_MMAP_THRESHOLD, mmap_threshold) && mallopt(M_TRIM_THRESHOLD, trim_threshold));
#else
    Py_RETURN_FALSE;
#endif
}

#endif
