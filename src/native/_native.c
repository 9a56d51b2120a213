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

#include "dtrace_scan.h"
#include "fbt_amd64.h"
#include "json_rows.h"
#include "pmcgraph_scan.h"
#include "dwarf_walk.h"
#include "callchain_scan.h"
#include "folded_text.h"
#include "symbol_records.h"
#include "demangle_batch.h"
#include "heap_policy.h"

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

#include "name_table.h"   /* after int64_column, which it uses */
#include "fbt_columns.h"  /* after int64_column, which it uses */

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

static PyObject *
py_json_rows(PyObject *self, PyObject *args)
{
    PyObject *keys, *columns;
    Py_ssize_t end;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &keys, &PyTuple_Type, &columns))
        return NULL;
    return json_rows(keys, columns, 0, 0, &end);
}

static PyObject *
py_json_rows_from(PyObject *self, PyObject *args)
{
    PyObject *keys, *columns;
    Py_ssize_t start, end;
    unsigned long long max_bytes;
    if (!PyArg_ParseTuple(args, "O!O!nK", &PyTuple_Type, &keys, &PyTuple_Type, &columns, &start, &max_bytes))
        return NULL;
    PyObject *text = json_rows(keys, columns, start, (size_t)max_bytes, &end);
    return text == NULL ? NULL : Py_BuildValue("(Nn)", text, end);
}

PyDoc_STRVAR(json_rows_from_doc,
"json_rows_from(keys, columns, start, max_bytes) -> (bytes, end)\n\n"
"json_rows of the rows from start, stopping after the first row that brings the text to\n"
"max_bytes (0: at the last row); end is the row after the last written.");

PyDoc_STRVAR(json_rows_doc,
"json_rows(keys, columns) -> bytes\n\n"
"The rows whose values are columns[k][i] under keys[k] as json.dumps(rows, ensure_ascii=False)\n"
"writes them, without the brackets, in UTF-8.  A column may also be a tuple (objects, name):\n"
"then row i's value is getattr(objects[i], name).  TypeError for a value other than str, int,\n"
"bool, float, None.");

static PyObject *
py_function_symbols(PyObject *self, PyObject *args)
{
    PyObject *cls, *symtab_obj, *xindex_obj, *loaded_obj, *bases_obj, *strtab_obj, *bindings, *types, *names,
             *name_offsets;
    int is64, big;
    unsigned long long limit;
    if (!PyArg_ParseTuple(args, "O!OppOOOOKO!O!UO!", &PyType_Type, &cls, &symtab_obj, &is64, &big, &xindex_obj,
                          &loaded_obj, &bases_obj, &strtab_obj, &limit, &PyTuple_Type, &bindings, &PyTuple_Type,
                          &types, &names, &PyList_Type, &name_offsets))
        return NULL;
    if (PyTuple_GET_SIZE(bindings) != 16 || PyTuple_GET_SIZE(types) != 2) {
        PyErr_SetString(PyExc_ValueError, "16 binding names and 2 type names are needed");
        return NULL;
    }
    Py_buffer views[5];
    PyObject *objects[5] = {symtab_obj, xindex_obj, loaded_obj, bases_obj, strtab_obj};
    int got = 0;
    PyObject *result = NULL;
    for (; got < 5; got++) {
        if (got == 1 && xindex_obj == Py_None) {
            views[got].buf = NULL;
            views[got].len = 0;
            continue;
        }
        if (PyObject_GetBuffer(objects[got], &views[got], PyBUF_SIMPLE) < 0)
            goto done;
    }
    if (views[3].len != views[2].len * 8)
        PyErr_SetString(PyExc_ValueError, "one base (8 bytes) per section (a byte of loaded) is needed");
    else
        result = function_symbols((PyTypeObject *)cls, views[0].buf, views[0].len, is64, big, views[1].buf,
                                  views[1].len, views[2].buf, views[3].buf, views[2].len, views[4].buf, views[4].len,
                                  limit, bindings, types, names, name_offsets);
done:
    for (int k = 0; k < got; k++)
        if (k != 1 || xindex_obj != Py_None)
            PyBuffer_Release(&views[k]);
    return result;
}

PyDoc_STRVAR(function_symbols_doc,
"function_symbols(cls, symtab, is64, big_endian, xindex, loaded, bases, strtab, limit, bindings, types,\n"
"                 section_names, name_offsets)\n\n"
"The STT_FUNC/STT_GNU_IFUNC symbols of an ELF symbol table in a loaded section, as cls\n"
"records; see src/native/symbol_records.h.  (\"ok\", (records, records by offset, name\n"
"characters)), or"
" (\"xindex\", None), (\"name\", symbol index) or (\"total\", characters) for what the caller\n"
"refuses.");

static PyObject *
py_unpack_columns(PyObject *self, PyObject *args)
{
    const char *layout;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "sy*", &layout, &data))
        return NULL;
    PyObject *result = unpack_columns(data.buf, data.len, layout);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(unpack_columns_doc,
"unpack_columns(layout, data) -> tuple[list[int], ...]\n\n"
"The fields of struct.iter_unpack(layout, data), one list per field, for a layout of '<' or\n"
"'>' and unsigned fields B, H, I and Q.");

static PyObject *
py_slot_records(PyObject *self, PyObject *args)
{
    PyObject *cls, *columns;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &cls, &PyTuple_Type, &columns))
        return NULL;
    return slot_records((PyTypeObject *)cls, columns);
}

PyDoc_STRVAR(slot_records_doc,
"slot_records(cls, columns) -> list\n\n"
"[cls(*row) for row in zip(*columns)] for a slotted class whose __init__ only stores its\n"
"arguments in __slots__ order (columns: a tuple of equally long lists, one per slot), each\n"
"value stored in its slot without calling __init__.");

static PyObject *
py_uint64_columns(PyObject *self, PyObject *args)
{
    PyObject *objects, *names;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &objects, &PyTuple_Type, &names))
        return NULL;
    return uint64_columns(objects, names);
}

PyDoc_STRVAR(uint64_columns_doc,
"uint64_columns(objects, names) -> tuple[bytes, ...]\n\n"
"For each attribute name, array('Q', (getattr(o, name) for o in objects)).tobytes(): slots\n"
"are read in place, without a reference taken.");

static PyObject *
py_names_starting(PyObject *self, PyObject *args)
{
    PyObject *objects, *name, *heads;
    if (!PyArg_ParseTuple(args, "O!UO!", &PyList_Type, &objects, &name, &PyTuple_Type, &heads))
        return NULL;
    return names_starting(objects, name, heads);
}

PyDoc_STRVAR(names_starting_doc,
"names_starting(objects, name, heads) -> list[int]\n\n"
"[i for i, o in enumerate(objects) if getattr(o, name).startswith(heads)], the attribute read\n"
"from its slot (TypeError for one that is not a str).");

static PyObject *
py_rust_demangled(PyObject *self, PyObject *args)
{
    PyObject *demangle, *symbols, *v0, *legacy, *c;
    Py_ssize_t max_name, max_demangled;
    if (!PyArg_ParseTuple(args, "OO!nnUUU", &demangle, &PyList_Type, &symbols, &max_name, &max_demangled, &v0,
                          &legacy, &c))
        return NULL;
    return rust_demangled(demangle, symbols, max_name, max_demangled, v0, legacy, c);
}

PyDoc_STRVAR(rust_demangled_doc,
"rust_demangled(demangle, symbols, max_name, max_demangled, v0, legacy, c) -> (names, schemes, rest)\n\n"
"tracebridge.image.demangle._rust_demangled natively: the _R and _ZN names of at most max_name\n"
"characters through demangle (a str, or None or an exception: not read), its answers of at most\n"
"max_demangled characters without a control character kept with scheme v0 or legacy; every\n"
"other name as it is with scheme c, and its index in rest unless it is printable ASCII that\n"
"starts like no mangled form.");

static PyObject *
py_crates_of(PyObject *self, PyObject *args)
{
    PyObject *names, *schemes, *rust_schemes, *crate_of;
    if (!PyArg_ParseTuple(args, "O!O!O!O", &PyList_Type, &names, &PyList_Type, &schemes, &PyTuple_Type,
                          &rust_schemes, &crate_of))
        return NULL;
    return crates_of(names, schemes, rust_schemes, crate_of);
}

PyDoc_STRVAR(crates_of_doc,
"crates_of(names, schemes, rust_schemes, crate_of) -> list\n\n"
"crate_of(names[i]) where schemes[i] is in rust_schemes, else None; for ASCII names without\n"
"calling crate_of (tracebridge.image.demangle.crates_of).");

static PyMethodDef methods[] = {
    {"x86_length", py_x86_length, METH_O, x86_length_doc},
    {"fbt_amd64", py_fbt_amd64, METH_VARARGS, fbt_amd64_doc},
    {"json_rows", py_json_rows, METH_VARARGS, json_rows_doc},
    {"json_rows_from", py_json_rows_from, METH_VARARGS, json_rows_from_doc},
    {"pmcgraph_scan", py_pmcgraph_scan, METH_O, pmcgraph_scan_doc},
    {"dwarf_walk", py_dwarf_walk, METH_VARARGS, dwarf_walk_doc},
    {"dtrace_stacks", py_dtrace_stacks, METH_VARARGS, dtrace_stacks_doc},
    {"dtrace_stack_tuples", py_dtrace_stack_tuples, METH_VARARGS, dtrace_stack_tuples_doc},
    {"pmcgraph_fold", py_pmcgraph_fold, METH_VARARGS, pmcgraph_fold_doc},
    {"callchain_scan", py_callchain_scan, METH_VARARGS, callchain_scan_doc},
    {"folded_text", py_folded_text, METH_VARARGS, folded_text_doc},
    {"folded_merge", py_folded_merge, METH_VARARGS, folded_merge_doc},
    {"pmcgraph_names", py_pmcgraph_names, METH_VARARGS, pmcgraph_names_doc},
    {"pmcgraph_pairs", py_pmcgraph_pairs, METH_VARARGS, pmcgraph_pairs_doc},
    {"pmcgraph_frame_ids", py_pmcgraph_frame_ids, METH_VARARGS, pmcgraph_frame_ids_doc},
    {"function_symbols", py_function_symbols, METH_VARARGS, function_symbols_doc},
    {"slot_records", py_slot_records, METH_VARARGS, slot_records_doc},
    {"unpack_columns", py_unpack_columns, METH_VARARGS, unpack_columns_doc},
    {"uint64_columns", py_uint64_columns, METH_VARARGS, uint64_columns_doc},
    {"names_starting", py_names_starting, METH_VARARGS, names_starting_doc},
    {"rust_demangled", py_rust_demangled, METH_VARARGS, rust_demangled_doc},
    {"crates_of", py_crates_of, METH_VARARGS, crates_of_doc},
    {"code_spans", py_code_spans, METH_VARARGS, code_spans_doc},
    {"overlap_groups", py_overlap_groups, METH_VARARGS, overlap_groups_doc},
    {"addresses_hit", py_addresses_hit, METH_VARARGS, addresses_hit_doc},
    {"keep_freed", py_keep_freed, METH_VARARGS, keep_freed_doc},
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
