/* The column passes of FBT's prediction (tracebridge.probes.fbt) over all of a module's functions:
 * where each function's bytes lie in the file (code_spans) and which functions' byte ranges
 * overlap (overlap_groups).  Each is one pass over uint64 columns (the functions' fields, read
 * by uint64_columns; the section headers' fields), so that a big module's 100k functions cost no
 * Python step each and no numpy import.  The pure-Python twins, with the same answers on any
 * input, are tracebridge.image.elf._code_spans_py, tracebridge.probes.fbt._overlap_groups_py and
 * tracebridge.image.relocs._addresses_hit_py.
 * Every index into the section columns is checked; a column of another length is refused.
 */
#ifndef TRACEBRIDGE_FBT_COLUMNS_H
#define TRACEBRIDGE_FBT_COLUMNS_H

#include <Python.h>
#include <string.h>

#define FBT_SHT_NOBITS 8ULL

/* Append position `at` to list; -1 on failure. */
static int
append_position(PyObject *list, Py_ssize_t at)
{
    PyObject *number = PyLong_FromSsize_t(at);
    int status = number == NULL ? -1 : PyList_Append(list, number);
    Py_XDECREF(number);
    return status;
}

/* code_spans(shndx, value, size, kinds, sizes, offsets, addrs, relative, data_len): see the doc string. */
static PyObject *
py_code_spans(PyObject *self, PyObject *args)
{
    PyObject *objects[7];
    int relative;
    unsigned long long data_len;
    if (!PyArg_ParseTuple(args, "OOOOOOOpK", &objects[0], &objects[1], &objects[2], &objects[3], &objects[4],
                          &objects[5], &objects[6], &relative, &data_len))
        return NULL;
    if (data_len > (unsigned long long)PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_ValueError, "data_len is not the size of a buffer");
        return NULL;
    }
    Py_buffer views[7];
    Py_ssize_t counts[7];
    int held = 0;
    PyObject *result = NULL, *starts_obj = NULL, *lengths_obj = NULL, *empty = NULL;
    for (; held < 7; held++)
        if (int64_column(objects[held], &views[held], &counts[held]) < 0)
            goto done;
    Py_ssize_t count = counts[0], sections = counts[3];
    if (counts[1] != count || counts[2] != count || counts[4] != sections || counts[5] != sections
            || counts[6] != sections) {
        PyErr_SetString(PyExc_ValueError, "the function columns, or the section columns, differ in length");
        goto done;
    }
    const unsigned long long *shndx = views[0].buf, *value = views[1].buf, *length = views[2].buf;
    const unsigned long long *kind = views[3].buf, *size = views[4].buf, *base = views[5].buf, *addr = views[6].buf;
    starts_obj = PyBytes_FromStringAndSize(NULL, count * 8);
    lengths_obj = PyBytes_FromStringAndSize(NULL, count * 8);
    empty = PyList_New(0);
    if (starts_obj == NULL || lengths_obj == NULL || empty == NULL)
        goto done;
    long long *starts = (long long *)PyBytes_AS_STRING(starts_obj);
    long long *lengths = (long long *)PyBytes_AS_STRING(lengths_obj);
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned long long s = shndx[i];
        if (s >= (unsigned long long)sections) {
            PyErr_Format(PyExc_IndexError, "function %zd names section %llu of %zd", i, s, sections);
            goto done;
        }
        /* As ModuleImage.code_span: the offset inside the section, the end cut at the section's end and
         * the file's, all modulo 2**64 as the Python twin computes them. */
        unsigned long long offset = relative ? value[i] : value[i] - addr[s];
        int inside = (relative || value[i] >= addr[s]) && offset < size[s] && kind[s] != FBT_SHT_NOBITS;
        unsigned long long start = 0, take = 0;
        /* Exactly, without wrapping: bytes from base + offset to the end of the section, of the
         * function and of the file, whichever comes first (none when it starts past the file). */
        if (inside && base[s] < data_len && offset < data_len - base[s]) {
            unsigned long long room = size[s] - offset;
            start = base[s] + offset;
            take = length[i] < room ? length[i] : room;
            if (take > data_len - start)
                take = data_len - start;
        }
        if (take == 0)
            start = 0;
        starts[i] = (long long)start;
        lengths[i] = (long long)take;
        if (take == 0 && append_position(empty, i) < 0)
            goto done;
    }
    result = PyTuple_Pack(3, starts_obj, lengths_obj, empty);
done:
    Py_XDECREF(starts_obj);
    Py_XDECREF(lengths_obj);
    Py_XDECREF(empty);
    while (held > 0)
        PyBuffer_Release(&views[--held]);
    return result;
}

PyDoc_STRVAR(code_spans_doc,
"code_spans(shndx, value, size, kinds, sizes, offsets, addrs, relative, data_len)\n"
"    -> (starts, lengths, empty)\n\n"
"ModuleImage.code_span of each function whose st_shndx, st_value and st_size are the first three\n"
"uint64 columns, given the section headers' sh_type, sh_size, sh_offset and sh_addr columns\n"
"(relative: the values are offsets in their sections, ET_REL), in a file of data_len bytes:\n"
"starts and lengths as bytes of native int64 (0, 0 where the file holds none of its bytes) and the\n"
"list of the positions of those empty spans.  IndexError for a section index past the columns.");

/* overlap_groups(offset, size): see the doc string. */
static PyObject *
py_overlap_groups(PyObject *self, PyObject *args)
{
    PyObject *offset_obj, *size_obj;
    if (!PyArg_ParseTuple(args, "OO", &offset_obj, &size_obj))
        return NULL;
    Py_buffer offset_view, size_view;
    Py_ssize_t count, size_count;
    if (int64_column(offset_obj, &offset_view, &count) < 0)
        return NULL;
    if (int64_column(size_obj, &size_view, &size_count) < 0) {
        PyBuffer_Release(&offset_view);
        return NULL;
    }
    PyObject *result = NULL, *members = NULL, *starts = NULL;
    if (size_count != count) {
        PyErr_SetString(PyExc_ValueError, "offset and size differ in length");
        goto done;
    }
    members = PyList_New(0);
    starts = PyList_New(0);
    if (members == NULL || starts == NULL)
        goto done;
    const unsigned long long *offset = offset_view.buf, *size = size_view.buf;
    /* The open group: its first member's position and how many sized functions it has so far. */
    Py_ssize_t first = -1, in_group = 0;
    unsigned long long reach = 0;  /* the last byte any function of the open group reaches */
    for (Py_ssize_t i = 0; i <= count; i++) {
        if (i < count && size[i] == 0)
            continue;
        if (i < count && first >= 0 && offset[i] <= reach) {
            unsigned long long room = ~0ULL - offset[i];  /* a last byte past 2**64 - 1 is 2**64 - 1 */
            unsigned long long last = size[i] - 1 > room ? ~0ULL : offset[i] + (size[i] - 1);
            if (last > reach)
                reach = last;
            in_group++;
            continue;
        }
        if (in_group > 1) {  /* close the open group: its sized members, in order */
            if (append_position(starts, PyList_GET_SIZE(members)) < 0)
                goto done;
            for (Py_ssize_t k = first; k < i; k++)
                if (size[k] != 0 && append_position(members, k) < 0)
                    goto done;
        }
        if (i < count) {
            unsigned long long room = ~0ULL - offset[i];
            first = i;
            in_group = 1;
            reach = size[i] - 1 > room ? ~0ULL : offset[i] + (size[i] - 1);
        }
    }
    result = PyTuple_Pack(2, members, starts);
done:
    Py_XDECREF(members);
    Py_XDECREF(starts);
    PyBuffer_Release(&size_view);
    PyBuffer_Release(&offset_view);
    return result;
}

PyDoc_STRVAR(overlap_groups_doc,
"overlap_groups(offset, size) -> (members, starts)\n\n"
"The groups of two or more functions of nonzero size whose byte ranges overlap, for functions\n"
"given in (offset, symbol index) order as two uint64 columns: in that order a function starts a\n"
"new group unless it starts at or before the last byte any earlier one reaches (a last byte past\n"
"2**64 - 1 taken as 2**64 - 1).  members: every member's position, group after group; starts:\n"
"where each group starts among them.");

/* The first index of sorted[0..n) not below key. */
static size_t
lower_bound_u64(const unsigned long long *sorted, size_t n, unsigned long long key)
{
    size_t low = 0, high = n;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (sorted[middle] < key)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static int
compare_addresses(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return (x > y) - (x < y);
}

/* Runs of ascending addresses searched one by one; more than this many: the addresses are sorted. */
#define ADDRESS_RUNS 8

/* addresses_hit(raw, entry, width, swap, lows, sizes): see the doc string. */
static PyObject *
py_addresses_hit(PyObject *self, PyObject *args)
{
    PyObject *raw_obj, *lows_obj, *sizes_obj;
    Py_ssize_t entry, width;
    int swap;
    if (!PyArg_ParseTuple(args, "OnnpOO", &raw_obj, &entry, &width, &swap, &lows_obj, &sizes_obj))
        return NULL;
    if ((width != 4 && width != 8) || entry < width || entry % width != 0) {
        PyErr_SetString(PyExc_ValueError, "a field is 4 or 8 bytes wide, inside its entry, a whole number of times");
        return NULL;
    }
    Py_buffer raw, lows_view, sizes_view;
    Py_ssize_t sections, size_count;
    if (PyObject_GetBuffer(raw_obj, &raw, PyBUF_SIMPLE) < 0)
        return NULL;
    if (int64_column(lows_obj, &lows_view, &sections) < 0) {
        PyBuffer_Release(&raw);
        return NULL;
    }
    if (int64_column(sizes_obj, &sizes_view, &size_count) < 0) {
        PyBuffer_Release(&lows_view);
        PyBuffer_Release(&raw);
        return NULL;
    }
    PyObject *result = NULL, *hit = NULL;
    unsigned long long *addresses = NULL;
    if (size_count != sections || raw.len % entry != 0) {
        PyErr_SetString(PyExc_ValueError, "lows and sizes differ in length, or the entries are not whole");
        goto done;
    }
    size_t count = (size_t)(raw.len / entry);
    addresses = PyMem_Malloc(count ? count * sizeof *addresses : 1);
    hit = PyList_New(0);
    if (addresses == NULL || hit == NULL) {
        if (addresses == NULL)
            PyErr_NoMemory();
        goto done;
    }
    const unsigned char *bytes = raw.buf;
    size_t runs[ADDRESS_RUNS + 1], run_count = count ? 1 : 0;
    runs[0] = 0;
    for (size_t i = 0; i < count; i++) {
        unsigned char field[8];
        memcpy(field, bytes + i * (size_t)entry, (size_t)width);
        if (swap)
            for (Py_ssize_t k = 0; k < width / 2; k++) {
                unsigned char byte = field[k];
                field[k] = field[width - 1 - k];
                field[width - 1 - k] = byte;
            }
        unsigned int narrow;
        if (width == 8)
            memcpy(&addresses[i], field, 8);
        else {
            memcpy(&narrow, field, 4);
            addresses[i] = narrow;
        }
        if (i > 0 && addresses[i] < addresses[i - 1] && run_count <= ADDRESS_RUNS)
            runs[run_count++] = i;  /* past ADDRESS_RUNS, counting stops: they are sorted below */
    }
    if (run_count > ADDRESS_RUNS) {
        qsort(addresses, count, sizeof *addresses, compare_addresses);
        run_count = 1;
    }
    const unsigned long long *low = lows_view.buf, *size = sizes_view.buf;
    for (Py_ssize_t j = 0; j < sections; j++) {
        for (size_t r = 0; r < run_count; r++) {
            size_t start = runs[r], end = r + 1 < run_count ? runs[r + 1] : count;
            size_t at = start + lower_bound_u64(addresses + start, end - start, low[j]);
            if (at < end && addresses[at] - low[j] < size[j]) {
                if (append_position(hit, j) < 0)
                    goto done;
                break;
            }
        }
    }
    result = Py_NewRef(hit);
done:
    Py_XDECREF(hit);
    PyMem_Free(addresses);
    PyBuffer_Release(&sizes_view);
    PyBuffer_Release(&lows_view);
    PyBuffer_Release(&raw);
    return result;
}

PyDoc_STRVAR(addresses_hit_doc,
"addresses_hit(raw, entry, width, swap, lows, sizes) -> list\n\n"
"The positions j of the ranges [lows[j], lows[j] + sizes[j]) (uint64 columns) that hold one of the\n"
"addresses of raw: the first width (4 or 8) bytes of each of its entries of entry bytes, in this\n"
"machine's byte order (swap: the other).  raw holds whole entries (ValueError otherwise).");

#endif
