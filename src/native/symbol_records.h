/* A module's symbols as Python objects, built in bulk: their names, then one record per function.
 *
 * tracebridge.image.elf reads the symbol table as numpy columns; what is left
 * per symbol is making its name (a Latin-1 slice of the string table) and its
 * Function record, ~100k of each for a big Rust module, before any other work
 * can start (and gen-probes makes a Planned record per function too).  The
 * pure-Python twins, tracebridge.image.elf._latin1_slices and
 * tracebridge.support.records.slot_records, give equal objects.
 */
#ifndef TRACEBRIDGE_SYMBOL_RECORDS_H
#define TRACEBRIDGE_SYMBOL_RECORDS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* data[starts[i]:ends[i]] decoded as Latin-1, for each i: a new list of str.  Every slice is
 * checked against the buffer before any string is made. */
static PyObject *
latin1_slices(const unsigned char *data, Py_ssize_t size, const long long *starts, const long long *ends,
              Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        if (starts[i] < 0 || starts[i] > ends[i] || ends[i] > size) {
            PyErr_Format(PyExc_ValueError, "slice %zd (%lld:%lld) lies outside the %zd-byte buffer", i,
                         starts[i], ends[i], size);
            return NULL;
        }
    }
    PyObject *list = PyList_New(count);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *text = PyUnicode_DecodeLatin1((const char *)data + starts[i], (Py_ssize_t)(ends[i] - starts[i]),
                                                NULL);
        if (text == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, text);
    }
    return list;
}

/* The byte offset of each of cls's __slots__ in its instances, checked: every slot an object
 * member descriptor of cls itself, as many as there are columns.  Returns a PyMem block or NULL. */
static Py_ssize_t *
slot_offsets(PyTypeObject *cls, Py_ssize_t width)
{
    PyObject *slots = PyObject_GetAttrString((PyObject *)cls, "__slots__");
    if (slots == NULL)
        return NULL;
    Py_ssize_t *offsets = NULL;
    if (!PyTuple_Check(slots) || PyTuple_GET_SIZE(slots) != width) {
        PyErr_SetString(PyExc_TypeError, "the class's __slots__ must be a tuple with one name per column");
        goto done;
    }
    offsets = PyMem_Calloc((size_t)(width ? width : 1), sizeof *offsets);
    if (offsets == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject *name = PyTuple_GET_ITEM(slots, k);
        PyObject *descr = PyUnicode_Check(name) ? PyDict_GetItemWithError(cls->tp_dict, name) : NULL;
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "every __slots__ name must be a member of the class itself");
            PyMem_Free(offsets);
            offsets = NULL;
            goto done;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY) || member->offset < (Py_ssize_t)sizeof(PyObject)
                || member->offset + (Py_ssize_t)sizeof(PyObject *) > cls->tp_basicsize) {
            PyErr_SetString(PyExc_TypeError, "a slot is not a plain writable object slot");
            PyMem_Free(offsets);
            offsets = NULL;
            goto done;
        }
        offsets[k] = member->offset;
    }
done:
    Py_DECREF(slots);
    return offsets;
}

/* cls(*row) for each row of columns (a tuple of equally long lists), for a slotted class whose
 * __init__ only stores its arguments in __slots__ order (a slots=True dataclass without
 * __post_init__): each value is stored in its slot without calling __init__. */
static PyObject *
slot_records(PyTypeObject *cls, PyObject *columns)
{
    Py_ssize_t width = PyTuple_GET_SIZE(columns), count = 0;
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject *column = PyTuple_GET_ITEM(columns, k);
        if (!PyList_CheckExact(column)) {
            PyErr_SetString(PyExc_TypeError, "columns must be lists");
            return NULL;
        }
        if (k && PyList_GET_SIZE(column) != count) {
            PyErr_SetString(PyExc_ValueError, "columns differ in length");
            return NULL;
        }
        count = PyList_GET_SIZE(column);
    }
    if (cls->tp_dictoffset != 0 || cls->tp_alloc == NULL) {
        PyErr_SetString(PyExc_TypeError, "the class's instances must have __slots__ and no __dict__");
        return NULL;
    }
    Py_ssize_t *offsets = slot_offsets(cls, width);
    if (offsets == NULL)
        return NULL;
    PyObject *list = PyList_New(count);
    if (list == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *record = cls->tp_alloc(cls, 0);
        if (record == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        for (Py_ssize_t k = 0; k < width; k++) {
            /* tp_alloc may collect garbage, and a finalizer run by it could shorten a list. */
            PyObject *column = PyTuple_GET_ITEM(columns, k);
            if (i >= PyList_GET_SIZE(column)) {
                Py_DECREF(record);
                Py_CLEAR(list);
                PyErr_SetString(PyExc_ValueError, "a column changed length");
                goto done;
            }
            PyObject *value = PyList_GET_ITEM(column, i);
            Py_INCREF(value);
            *(PyObject **)((char *)record + offsets[k]) = value;
        }
        PyList_SET_ITEM(list, i, record);
    }
done:
    PyMem_Free(offsets);
    return list;
}

#endif
