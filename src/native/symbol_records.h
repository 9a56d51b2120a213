/* A module's section headers, function symbols and records as Python objects, built in bulk.
 *
 * A big Rust module has ~100k functions among ~165k symbols (and up to 100k
 * sections): selecting them, making each name (a Latin-1 slice of the string
 * table) and each Function record must be done before any other work can
 * start (and gen-probes makes a Planned record per function too).  The
 * pure-Python twins, tracebridge.support.records (unpack_columns,
 * slot_records, uint64_columns, names_starting) and tracebridge.image.elf._function_symbols_py,
 * give equal objects.
 */
#ifndef TRACEBRIDGE_SYMBOL_RECORDS_H
#define TRACEBRIDGE_SYMBOL_RECORDS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#include "json_rows.h"  /* json_column_of and json_column_value: an attribute read from its slot */

/* An unsigned field of 1, 2, 4 or 8 bytes in the file's byte order. */
static unsigned long long
elf_field(const unsigned char *at, int width, int big)
{
    unsigned long long value = 0;
    for (int k = 0; k < width; k++)
        value |= (unsigned long long)at[big ? k : width - 1 - k] << (8 * (width - 1 - k));
    return value;
}

/* Fixed-size records of unsigned fields (layout: '<' or '>', then one of B H I Q per field) as
 * one list of ints per field: struct.iter_unpack(layout, data), transposed.  ValueError unless
 * data holds whole records. */
static PyObject *
unpack_columns(const unsigned char *data, Py_ssize_t size, const char *layout)
{
    int widths[64], width = 0, record = 0;
    if (layout[0] != '<' && layout[0] != '>') {
        PyErr_SetString(PyExc_ValueError, "the layout starts with < or >");
        return NULL;
    }
    int big = layout[0] == '>';
    for (const char *f = layout + 1; *f; f++) {
        int bytes = *f == 'B' ? 1 : *f == 'H' ? 2 : *f == 'I' ? 4 : *f == 'Q' ? 8 : 0;
        if (bytes == 0 || width == 64) {
            PyErr_SetString(PyExc_ValueError, "a layout has at most 64 fields, each B, H, I or Q");
            return NULL;
        }
        widths[width++] = bytes;
        record += bytes;
    }
    if (record == 0 || size % record != 0) {
        PyErr_SetString(PyExc_ValueError, "the data is not a whole number of records");
        return NULL;
    }
    Py_ssize_t count = size / record;
    PyObject *columns = PyTuple_New(width);
    if (columns == NULL)
        return NULL;
    for (int k = 0, at = 0; k < width; at += widths[k], k++) {
        PyObject *column = PyList_New(count);
        if (column == NULL) {
            Py_DECREF(columns);
            return NULL;
        }
        PyTuple_SET_ITEM(columns, k, column);
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *value = PyLong_FromUnsignedLongLong(elf_field(data + i * record + at, widths[k], big));
            if (value == NULL) {
                Py_DECREF(columns);
                return NULL;
            }
            PyList_SET_ITEM(column, i, value);
        }
    }
    return columns;
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

/* uint64_columns(objects, names): for each attribute name, the native uint64 value of it of every
 * object, as bytes.  Read from the objects' slots without a reference taken (json_column_value):
 * a process forked to work on half of a module's functions copies none of the pages it shares
 * with its parent, and 100k functions take a millisecond, not a Python loop.  A value that is not
 * an int is converted with its __index__; OverflowError below 0 or past 2**64 - 1, as
 * array("Q") raises. */
static PyObject *
uint64_columns(PyObject *objects, PyObject *names)
{
    Py_ssize_t width = PyTuple_GET_SIZE(names), count = PyList_GET_SIZE(objects);
    if (count > PY_SSIZE_T_MAX / 8) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *result = PyTuple_New(width);
    json_column *columns = PyMem_Calloc((size_t)(width ? width : 1), sizeof *columns);
    PyObject **specs = PyMem_Calloc((size_t)(width ? width : 1), sizeof *specs);
    if (result == NULL || columns == NULL || specs == NULL) {
        if (result != NULL)
            PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject *name = PyTuple_GET_ITEM(names, k), *column;
        if (!PyUnicode_CheckExact(name)) {
            PyErr_SetString(PyExc_TypeError, "attribute names are str");
            goto fail;
        }
        specs[k] = PyTuple_Pack(2, objects, name);  /* held: the column reads through it */
        if (specs[k] == NULL || json_column_of(specs[k], &columns[k]) < 0
                || (column = PyBytes_FromStringAndSize(NULL, count * 8)) == NULL)
            goto fail;
        PyTuple_SET_ITEM(result, k, column);
    }
    for (Py_ssize_t row = 0; row < count; row++) {
        if (row + JSON_PREFETCH_ROWS < PyList_GET_SIZE(objects))
            JSON_PREFETCH(PyList_GET_ITEM(objects, row + JSON_PREFETCH_ROWS));
        for (Py_ssize_t k = 0; k < width; k++) {
            int owned;
            PyObject *value = json_column_value(&columns[k], row, &owned), *number = NULL;
            if (value == NULL)
                goto fail;
            /* An int is read where it is, no reference taken (a reference count written is a page
             * copied in a forked process); anything else through its __index__. */
            int is_int = PyLong_Check(value);
            if (!is_int)
                number = PyNumber_Index(value);
            unsigned long long bits = is_int ? PyLong_AsUnsignedLongLong(value)
                                      : number == NULL ? 0 : PyLong_AsUnsignedLongLong(number);
            Py_XDECREF(number);
            if (owned)
                Py_DECREF(value);
            if (PyErr_Occurred())
                goto fail;
            memcpy(PyBytes_AS_STRING(PyTuple_GET_ITEM(result, k)) + row * 8, &bits, 8);
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    for (Py_ssize_t k = 0; columns != NULL && k < width; k++)
        Py_XDECREF(columns[k].type);
    for (Py_ssize_t k = 0; specs != NULL && k < width; k++)
        Py_XDECREF(specs[k]);
    PyMem_Free(columns);
    PyMem_Free(specs);
    return result;
}

/* Does s (a str) start with any of heads (a tuple of str)?  As str.startswith(heads).  first[c] is
 * nonzero for each code point c < 256 some head starts with (all of them for an empty head or one
 * starting above 255): a name whose first character starts no head (nearly all) is answered at once. */
static int
starts_with_any(PyObject *s, PyObject *heads, const unsigned char first[256])
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(s);
    if (length > 0) {
        Py_UCS4 c = PyUnicode_READ_CHAR(s, 0);
        if (c < 256 && !first[c])
            return 0;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(heads); k++) {
        PyObject *head = PyTuple_GET_ITEM(heads, k);
        Py_ssize_t size = PyUnicode_GET_LENGTH(head);
        if (size <= length && PyUnicode_Tailmatch(s, head, 0, size, -1) == 1)
            return 1;
    }
    return 0;
}

/* names_starting(objects, name, heads): the positions of the objects whose attribute `name` (a str)
 * starts with one of heads, read from their slots as uint64_columns reads them: FBT's name rules
 * start with literal heads that almost no name of a big module has, and a Python pass over 50k
 * names was a tenth of the scan. */
static PyObject *
names_starting(PyObject *objects, PyObject *name, PyObject *heads)
{
    unsigned char first[256] = {0};
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(heads); k++) {
        PyObject *head = PyTuple_GET_ITEM(heads, k);
        if (!PyUnicode_CheckExact(head)) {
            PyErr_SetString(PyExc_TypeError, "heads are str");
            return NULL;
        }
        Py_UCS4 c = PyUnicode_GET_LENGTH(head) > 0 ? PyUnicode_READ_CHAR(head, 0) : 256;
        if (c < 256)
            first[c] = 1;
        else
            memset(first, 1, sizeof first);
    }
    PyObject *spec = PyTuple_Pack(2, objects, name), *found = PyList_New(0);
    json_column column = {NULL, NULL, NULL, -1};
    if (spec == NULL || found == NULL || json_column_of(spec, &column) < 0)
        goto fail;
    for (Py_ssize_t row = 0; row < PyList_GET_SIZE(objects); row++) {
        if (row + JSON_PREFETCH_ROWS < PyList_GET_SIZE(objects))
            JSON_PREFETCH(PyList_GET_ITEM(objects, row + JSON_PREFETCH_ROWS));
        int owned;
        PyObject *value = json_column_value(&column, row, &owned);
        if (value == NULL)
            goto fail;
        int hit = PyUnicode_Check(value) ? starts_with_any(value, heads, first) : -1;
        if (owned)
            Py_DECREF(value);
        if (hit < 0) {
            PyErr_SetString(PyExc_TypeError, "a name is not a str");
            goto fail;
        }
        if (hit) {
            PyObject *at = PyLong_FromSsize_t(row);
            int status = at == NULL ? -1 : PyList_Append(found, at);
            Py_XDECREF(at);
            if (status < 0)
                goto fail;
        }
    }
    Py_XDECREF(column.type);
    Py_DECREF(spec);
    return found;
fail:
    Py_XDECREF(column.type);
    Py_XDECREF(spec);
    Py_XDECREF(found);
    return NULL;
}

/* One selected symbol, as read from the table. */
typedef struct {
    Py_ssize_t index;
    unsigned long long name, shndx, value, size, offset;
    unsigned char info;
} elf_symbol;

/* A sort key and the item it belongs to. */
typedef struct {
    unsigned long long key;
    Py_ssize_t item;
} keyed_item;

/* Sorts n pairs by key, stably (equal keys keep their order, as Python's sort does), with tmp room for
 * n more: a radix sort, a byte of the key a pass, that skips the bytes all keys share.  librustc_driver's
 * 106k offsets and name offsets vary in their low 3-4 bytes only: qsort's 1.7 million calls of a
 * comparison took 20 ms of the 75 ms of reading its functions, before the fork, on the critical path. */
static void
sort_keyed(keyed_item *pairs, keyed_item *tmp, Py_ssize_t n)
{
    for (int shift = 0; n > 1 && shift < 64; shift += 8) {
        Py_ssize_t places[256] = {0};
        for (Py_ssize_t i = 0; i < n; i++)
            places[(pairs[i].key >> shift) & 0xFF]++;
        if (places[(pairs[0].key >> shift) & 0xFF] == n)
            continue;
        for (Py_ssize_t b = 0, at = 0; b < 256; b++) {
            Py_ssize_t in_bucket = places[b];
            places[b] = at;
            at += in_bucket;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            tmp[places[(pairs[i].key >> shift) & 0xFF]++] = pairs[i];
        memcpy(pairs, tmp, (size_t)n * sizeof *pairs);
    }
}

/* A two-item tuple (tag, value): how function_symbols reports what the caller turns into a refusal. */
static PyObject *
symbols_refusal(const char *tag, PyObject *value)
{
    if (value == NULL)
        return NULL;
    return Py_BuildValue("(sN)", tag, value);
}

/* The name of a section: section_names (Latin-1 text, NUL-terminated) from name_offsets[index] to
 * the next NUL, made once per section (cache) and given to the first record that needs it. */
static PyObject *
section_name(PyObject *section_names, PyObject *name_offsets, Py_ssize_t index, PyObject **cache)
{
    if (cache[index] != NULL) {
        Py_INCREF(cache[index]);
        return cache[index];
    }
    /* Checked again: a finalizer run by a collection while records are made could shorten the list. */
    if (index >= PyList_GET_SIZE(name_offsets)) {
        PyErr_SetString(PyExc_ValueError, "the section name offsets changed length");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(PyList_GET_ITEM(name_offsets, index));
    if (start == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(section_names);
    const char *text = (const char *)PyUnicode_DATA(section_names);
    const char *nul = start >= 0 && start < length ? memchr(text + start, 0, (size_t)(length - start)) : NULL;
    if (nul == NULL) {
        PyErr_SetString(PyExc_ValueError, "a section name offset has no NUL after it in the section names");
        return NULL;
    }
    return cache[index] = PyUnicode_Substring(section_names, start, nul - text);
}

/* The function symbols of an ELF symbol table, as the kernel linker lists them: Function records.
 *
 * symtab holds the whole table (Elf64_Sym or Elf32_Sym, byte order big or not), xindex its
 * SHT_SYMTAB_SHNDX table or NULL, loaded one byte per section (nonzero: the kernel linker maps it)
 * and bases one uint64 per section in native order: a function's offset is bases[shndx] + st_value,
 * modulo 2**64.  Selected: STT_FUNC or STT_GNU_IFUNC in a loaded section (an index between 1 and
 * the section count, not a reserved one unless it came from xindex).  Returns, as the pure twin
 * tracebridge.image.elf._function_symbols_py does:
 *   ("xindex", None)  a symbol has SHN_XINDEX and there is no xindex table;
 *   ("name", i)       selected symbol i (the first) has a name offset past the string table;
 *   ("total", n)      the distinct names would take n > limit characters;
 *   ("ok", (records, by_offset, name_chars))  one cls record (symbol index, name, section name,
 *                     section index, value, size, binding, type, offset) per selected symbol in
 *                     table order, the same records in offset order (ties in table order), and
 *                     the characters of all their names (those shared counted each time).
 * Names are Latin-1 text up to the next NUL (or the table's end), one str per distinct offset;
 * section names come from section_names at name_offsets[section index], one str per section. */
static PyObject *
function_symbols(PyTypeObject *cls, const unsigned char *symtab, Py_ssize_t symtab_size, int is64, int big,
                 const unsigned char *xindex, Py_ssize_t xindex_size, const unsigned char *loaded,
                 const unsigned char *bases, Py_ssize_t nsections, const unsigned char *strtab,
                 Py_ssize_t strtab_size, unsigned long long limit, PyObject *bindings, PyObject *types,
                 PyObject *section_names, PyObject *name_offsets)
{
    const Py_ssize_t entsize = is64 ? 24 : 16;
    const Py_ssize_t count = symtab_size / entsize;
    if (xindex != NULL && xindex_size / 4 < count) {
        PyErr_SetString(PyExc_ValueError, "the extended section index table is shorter than the symbol table");
        return NULL;
    }
    if (PyList_GET_SIZE(name_offsets) != nsections || PyUnicode_KIND(section_names) != PyUnicode_1BYTE_KIND) {
        PyErr_SetString(PyExc_ValueError, "one name offset per section, and Latin-1 section names, are needed");
        return NULL;
    }
    if (cls->tp_dictoffset != 0 || cls->tp_alloc == NULL) {
        PyErr_SetString(PyExc_TypeError, "the class's instances must have __slots__ and no __dict__");
        return NULL;
    }
    Py_ssize_t *slots = slot_offsets(cls, 9);
    if (slots == NULL)
        return NULL;
    elf_symbol *chosen = PyMem_Malloc((size_t)(count ? count : 1) * sizeof *chosen);
    unsigned long long *starts = NULL, *ends = NULL;
    keyed_item *pairs = NULL, *tmp = NULL;
    Py_ssize_t *name_of = NULL;
    PyObject **texts = NULL, **sections = NULL, *result = NULL, *records = NULL, *by_offset = NULL;
    Py_ssize_t selected = 0, distinct = 0;
    unsigned long long name_chars = 0;
    if (chosen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *at = symtab + i * entsize;
        elf_symbol s = {.index = i, .name = elf_field(at, 4, big)};
        if (is64) {
            s.info = at[4];
            s.shndx = elf_field(at + 6, 2, big);
            s.value = elf_field(at + 8, 8, big);
            s.size = elf_field(at + 16, 8, big);
        } else {
            s.value = elf_field(at + 4, 4, big);
            s.size = elf_field(at + 8, 4, big);
            s.info = at[12];
            s.shndx = elf_field(at + 14, 2, big);
        }
        int extended = s.shndx == 0xFFFF;
        if (extended) {
            if (xindex == NULL) {
                Py_INCREF(Py_None);
                result = symbols_refusal("xindex", Py_None);
                goto done;
            }
            s.shndx = elf_field(xindex + 4 * i, 4, big);
        }
        int kind = s.info & 0xF;
        if ((kind != 2 && kind != 10) || s.shndx == 0 || s.shndx >= (unsigned long long)nsections
                || (s.shndx >= 0xFF00 && !extended) || !loaded[s.shndx])
            continue;
        unsigned long long base;
        memcpy(&base, bases + 8 * s.shndx, sizeof base);
        s.offset = base + s.value;
        chosen[selected++] = s;
    }
    for (Py_ssize_t k = 0; k < selected; k++) {
        if (chosen[k].name > (unsigned long long)strtab_size) {
            result = symbols_refusal("name", PyLong_FromSsize_t(chosen[k].index));
            goto done;
        }
    }
    /* The distinct name offsets in order, each symbol's among them (name_of), and where each name ends
     * (its first NUL, or the table's end): one forward pass, as a later start before the last NUL found
     * ends there too. */
    pairs = PyMem_Malloc((size_t)(selected ? selected : 1) * sizeof *pairs);
    tmp = PyMem_Malloc((size_t)(selected ? selected : 1) * sizeof *tmp);
    name_of = PyMem_Malloc((size_t)(selected ? selected : 1) * sizeof *name_of);
    starts = PyMem_Malloc((size_t)(selected ? selected : 1) * sizeof *starts);
    ends = PyMem_Malloc((size_t)(selected ? selected : 1) * sizeof *ends);
    texts = PyMem_Calloc((size_t)(selected ? selected : 1), sizeof *texts);
    sections = PyMem_Calloc((size_t)(nsections ? nsections : 1), sizeof *sections);
    if (pairs == NULL || tmp == NULL || name_of == NULL || starts == NULL || ends == NULL || texts == NULL
            || sections == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < selected; k++)
        pairs[k] = (keyed_item){chosen[k].name, k};
    sort_keyed(pairs, tmp, selected);
    for (Py_ssize_t k = 0; k < selected; k++) {
        if (distinct == 0 || pairs[k].key != starts[distinct - 1])
            starts[distinct++] = pairs[k].key;
        name_of[pairs[k].item] = distinct - 1;
    }
    unsigned long long total = 0;
    for (Py_ssize_t k = 0; k < distinct; k++) {
        if (k == 0 || starts[k] > ends[k - 1]) {
            const unsigned char *nul = memchr(strtab + starts[k], 0, (size_t)(strtab_size - (Py_ssize_t)starts[k]));
            ends[k] = nul != NULL ? (unsigned long long)(nul - strtab) : (unsigned long long)strtab_size;
        } else {
            ends[k] = ends[k - 1];
        }
        total += ends[k] - starts[k];
    }
    if (total > limit) {
        result = symbols_refusal("total", PyLong_FromUnsignedLongLong(total));
        goto done;
    }
    if ((records = PyList_New(selected)) == NULL)
        goto done;
    /* Names and section names are made when a record first needs them (while they are in the
     * cache), their reference given to that record; texts[] and sections[] then only borrow them. */
    for (Py_ssize_t k = 0; k < selected; k++) {
        const elf_symbol *s = &chosen[k];
        Py_ssize_t name = name_of[k];
        name_chars += ends[name] - starts[name];
        PyObject *record = cls->tp_alloc(cls, 0);
        if (record == NULL)
            goto done;
        PyList_SET_ITEM(records, k, record);
        /* Each value goes to its slot as it is made; at the first failure the list frees what was made.
         * An offset equal to the value (an ET_DYN module mapped from 0) is the same int. */
        PyObject *st_value = NULL;
        for (int n = 0; n < 9; n++) {
            PyObject *value;
            switch (n) {
            case 0: value = PyLong_FromSsize_t(s->index); break;
            case 1:
                value = texts[name];
                if (value == NULL)
                    value = texts[name] = PyUnicode_DecodeLatin1((const char *)strtab + starts[name],
                                                                 (Py_ssize_t)(ends[name] - starts[name]), NULL);
                else
                    Py_INCREF(value);
                break;
            case 2: value = section_name(section_names, name_offsets, (Py_ssize_t)s->shndx, sections); break;
            case 3: value = PyLong_FromUnsignedLongLong(s->shndx); break;
            case 4: value = st_value = PyLong_FromUnsignedLongLong(s->value); break;
            case 5: value = PyLong_FromUnsignedLongLong(s->size); break;
            case 6: value = Py_NewRef(PyTuple_GET_ITEM(bindings, s->info >> 4)); break;
            case 7: value = Py_NewRef(PyTuple_GET_ITEM(types, (s->info & 0xF) == 2 ? 0 : 1)); break;
            default:
                value = s->offset == s->value ? Py_NewRef(st_value) : PyLong_FromUnsignedLongLong(s->offset);
            }
            *(PyObject **)((char *)record + slots[n]) = value;
            if (value == NULL)
                goto done;
        }
    }
    /* In table order, so ties in offset stay in table order. */
    for (Py_ssize_t k = 0; k < selected; k++)
        pairs[k] = (keyed_item){chosen[k].offset, k};
    sort_keyed(pairs, tmp, selected);
    if ((by_offset = PyList_New(selected)) == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < selected; k++) {
        PyObject *record = PyList_GET_ITEM(records, pairs[k].item);
        Py_INCREF(record);
        PyList_SET_ITEM(by_offset, k, record);
    }
    result = Py_BuildValue("(s(OOK))", "ok", records, by_offset, name_chars);
done:
    Py_XDECREF(records);
    Py_XDECREF(by_offset);
    PyMem_Free(sections);
    PyMem_Free(texts);
    PyMem_Free(ends);
    PyMem_Free(starts);
    PyMem_Free(name_of);
    PyMem_Free(tmp);
    PyMem_Free(pairs);
    PyMem_Free(chosen);
    PyMem_Free(slots);
    return result;
}

#endif
