/* The (name, image) pairs of a `pmcstat -G` callgraph interned across blocks: the native half of
 * tracebridge.readers.pmcgraph.CallgraphFolder's pair table (its pure-Python twin is
 * CallgraphFolder._frame_ids, which finds each block's distinct pairs with numpy).
 *
 * A callgraph names each function on many lines, with the image (` @ path`) carried from the
 * last line that printed one.  The table keeps every pair seen so far (the name's bytes copied
 * into an arena, the image as a small path id) and the image of the last tree line, so each
 * block's tree lines come back as pair ids and Python sees each NEW pair once, in the order
 * _frame_ids would intern it: by the name's first line in the block, then by the image's first
 * line in the block (the image carried into the block last unless the block prints it).
 *
 * Every length is checked before it grows a table; pair and path ids index only what the table
 * itself added.
 */
#ifndef TRACEBRIDGE_NAME_TABLE_H
#define TRACEBRIDGE_NAME_TABLE_H

#include "pmcgraph_scan.h"

#define NAMES_CAPSULE "tracebridge.pmcgraph_names"

typedef struct {
    unsigned char *arena;       /* every pair's name bytes, one after another */
    size_t arena_len, arena_cap;
    pmcg_column starts, lengths, paths, hashes;   /* per pair: name in arena, path id (-1 none), hash */
    pmcg_column frames;         /* per pair: its frame id, once pmcgraph_frame_ids was told it (-1 before) */
    Py_ssize_t *slots;          /* pair id, or -1; mask + 1 slots, a power of two, at least twice the pairs */
    size_t mask;
    PyObject *path_list;        /* path id -> bytes */
    PyObject *path_ids;         /* bytes -> path id */
    long long current;          /* path id of the last tree line's image, -1 none yet */
    pmcg_block block;           /* the block being scanned, and its lines' pair ids: their memory kept */
    pmcg_column pairs;          /* from block to block */
} names_table;

static void
names_free(PyObject *capsule)
{
    names_table *t = PyCapsule_GetPointer(capsule, NAMES_CAPSULE);
    if (t == NULL)
        return;
    PyMem_Free(t->arena);
    PyMem_Free(t->starts.items);
    PyMem_Free(t->lengths.items);
    PyMem_Free(t->paths.items);
    PyMem_Free(t->hashes.items);
    PyMem_Free(t->frames.items);
    PyMem_Free(t->slots);
    Py_XDECREF(t->path_list);
    Py_XDECREF(t->path_ids);
    pmcg_block_free(&t->block);
    PyMem_Free(t->pairs.items);
    PyMem_Free(t);
}

PyDoc_STRVAR(pmcgraph_names_doc,
"pmcgraph_names([image]) -> table\n\n"
"An empty table of (name, image) pairs for pmcgraph_pairs, kept across the blocks of one callgraph;\n"
"image (bytes), the path of the image carried into its first block (path id 0), when it starts\n"
"inside a callgraph.");

static long long names_path(names_table *t, PyObject *path);

static PyObject *
py_pmcgraph_names(PyObject *self, PyObject *args)
{
    PyObject *image = NULL;
    if (!PyArg_ParseTuple(args, "|O!", &PyBytes_Type, &image))
        return NULL;
    names_table *t = PyMem_Calloc(1, sizeof *t);
    if (t == NULL)
        return PyErr_NoMemory();
    t->current = -1;
    t->path_list = PyList_New(0);
    t->path_ids = PyDict_New();
    PyObject *capsule = NULL;
    if (t->path_list != NULL && t->path_ids != NULL)
        capsule = PyCapsule_New(t, NAMES_CAPSULE, names_free);
    if (capsule == NULL) {
        Py_XDECREF(t->path_list);
        Py_XDECREF(t->path_ids);
        PyMem_Free(t);
        return NULL;
    }
    if (image != NULL) {   /* the capsule owns the table now: freed with it on an error */
        t->current = names_path(t, image);
        if (t->current < 0)
            Py_CLEAR(capsule);
    }
    return capsule;
}

static uint64_t
names_pair_hash(uint64_t name_hash, long long path)
{
    return name_hash ^ ((uint64_t)(path + 1) * 0x9E3779B97F4A7C15ull);
}

/* The pair id of (p[0:length], path); *added set when it is new.  -1 on a memory error. */
static long long
names_pair(names_table *t, const unsigned char *p, Py_ssize_t length, uint64_t name_hash, long long path, int *added)
{
    if (t->slots == NULL || (t->starts.count + 1) * 2 > t->mask + 1) {
        if (pmcg_regrow(&t->slots, &t->mask, &t->hashes) < 0)
            return -1;
    }
    uint64_t hash = names_pair_hash(name_hash, path);
    size_t at = (size_t)hash & t->mask;
    while (t->slots[at] >= 0) {
        Py_ssize_t id = t->slots[at];
        if (t->paths.items[id] == path && t->lengths.items[id] == length
                && memcmp(t->arena + t->starts.items[id], p, (size_t)length) == 0) {
            *added = 0;
            return id;
        }
        at = (at + 1) & t->mask;
    }
    if ((size_t)length > ((size_t)PY_SSIZE_T_MAX) - t->arena_len) {
        PyErr_NoMemory();
        return -1;
    }
    if (t->arena_len + (size_t)length > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        while (cap < t->arena_len + (size_t)length) {
            if (cap > ((size_t)PY_SSIZE_T_MAX) / 2) {
                PyErr_NoMemory();
                return -1;
            }
            cap *= 2;
        }
        unsigned char *arena = PyMem_Realloc(t->arena, cap);
        if (arena == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->arena = arena;
        t->arena_cap = cap;
    }
    long long id = (long long)t->starts.count;
    if (pmcg_push(&t->starts, (long long)t->arena_len) < 0 || pmcg_push(&t->lengths, length) < 0
            || pmcg_push(&t->paths, path) < 0 || pmcg_push(&t->hashes, (long long)hash) < 0
            || pmcg_push(&t->frames, -1) < 0)
        return -1;
    if (length)
        memcpy(t->arena + t->arena_len, p, (size_t)length);
    t->arena_len += (size_t)length;
    t->slots[at] = (Py_ssize_t)id;
    *added = 1;
    return id;
}

/* The path id of bytes path, added to the table when new; -1 on error. */
static long long
names_path(names_table *t, PyObject *path)
{
    PyObject *known = PyDict_GetItemWithError(t->path_ids, path);   /* borrowed */
    if (known != NULL)
        return PyLong_AsLongLong(known);
    if (PyErr_Occurred())
        return -1;
    Py_ssize_t id = PyList_GET_SIZE(t->path_list);
    PyObject *number = PyLong_FromSsize_t(id);
    int failed = number == NULL || PyDict_SetItem(t->path_ids, path, number) < 0
        || PyList_Append(t->path_list, path) < 0;
    Py_XDECREF(number);
    return failed ? -1 : (long long)id;
}

/* Whether a name is an address pmcstat printed for a node it found no symbol for: ^0x[0-9a-fA-F]{1,16}$. */
static int
names_hex(const unsigned char *p, Py_ssize_t n)
{
    if (n < 3 || n > 18 || p[0] != '0' || p[1] != 'x')
        return 0;
    for (Py_ssize_t i = 2; i < n; i++) {
        unsigned char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

/* A pair new in this block, with its place in the order _frame_ids interns pairs. */
typedef struct {
    long long name, rank, pair;
} names_new;

/* fresh[0:count] stably ordered by key (name or rank, each below keys) into into[0:count]: a counting sort. */
static int
names_order_by(const names_new *fresh, names_new *into, size_t count, size_t keys, int by_name)
{
    size_t *next = PyMem_Calloc(keys + 1, sizeof *next);
    if (next == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        next[(size_t)(by_name ? fresh[i].name : fresh[i].rank) + 1]++;
    for (size_t k = 1; k <= keys; k++)
        next[k] += next[k - 1];
    for (size_t i = 0; i < count; i++)
        into[next[(size_t)(by_name ? fresh[i].name : fresh[i].rank)]++] = fresh[i];
    PyMem_Free(next);
    return 0;
}

/* Whether image.demangle.is_plain_c says no to a name: not printable ASCII (bytes 32 to 126), empty, or
 * starting as a mangled name may ('_', 'R', 'Z').  Only those names need a demangler. */
static int
names_unplain(const unsigned char *p, Py_ssize_t n)
{
    if (n == 0 || p[0] == '_' || p[0] == 'R' || p[0] == 'Z')
        return 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < 32 || p[i] > 126)
            return 1;
    }
    return 0;
}

/* Whether a str of ASCII characters hashes as its bytes do (CPython hashes a str's 1-byte characters with the
 * function that hashes bytes, pmcg_hash): checked once, on one string, before any hash is handed over. */
static int
names_str_hash_is_bytes_hash(void)
{
    static int known = -1;
    if (known < 0) {
        static const char probe[] = "tracebridge";
        PyObject *text = PyUnicode_FromStringAndSize(probe, (Py_ssize_t)(sizeof probe - 1));
        Py_hash_t hash = text != NULL ? PyObject_Hash(text) : -1;
        Py_XDECREF(text);
        if (hash == -1) {
            PyErr_Clear();
            return 0;   /* asked again next time */
        }
        known = (uint64_t)hash == pmcg_hash((const unsigned char *)probe, (Py_ssize_t)(sizeof probe - 1));
    }
    return known;
}

/* A name as str, as its bytes decode as UTF-8 with bad bytes replaced: an ASCII name (nearly all) copied into a
 * new ASCII str at once, without the decoder's set-up per name, and given the hash the block's scan made of its
 * bytes, which is its hash as a str (the set of symbols a profile keeps then hashes none of 128k new names). */
static PyObject *
names_text(const unsigned char *p, Py_ssize_t n, uint64_t hash)
{
    const uint64_t highs = 0x8080808080808080ull;
    uint64_t any = 0;
    Py_ssize_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        any |= x;
    }
    for (; i < n; i++)
        any |= p[i];
    if (any & highs)
        return PyUnicode_DecodeUTF8((const char *)p, n, "replace");
    PyObject *text = PyUnicode_New(n, 127);
    if (text == NULL)
        return NULL;
    if (n > 0) {
        memcpy(PyUnicode_DATA(text), p, (size_t)n);
        if (names_str_hash_is_bytes_hash())
            ((PyASCIIObject *)text)->hash = (Py_hash_t)hash;
    }
    return text;
}

/* The new pairs, in order: (pair ids, names as str, path ids, indices of the hex names, indices of the names
 * that are not plain C). */
static PyObject *
names_new_pairs(const names_table *t, const pmcg_block *b, const names_new *fresh, size_t count)
{
    pmcg_column ids = {0}, paths = {0}, hexes = {0}, unplain = {0};
    PyObject *texts = PyList_New((Py_ssize_t)count), *result = NULL;
    if (texts == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        long long pair = fresh[i].pair;
        const unsigned char *name = t->arena + t->starts.items[pair];
        Py_ssize_t length = (Py_ssize_t)t->lengths.items[pair];
        PyObject *text = names_text(name, length, (uint64_t)b->names.hashes.items[fresh[i].name]);
        if (text == NULL)
            goto done;
        PyList_SET_ITEM(texts, (Py_ssize_t)i, text);
        if (pmcg_push(&ids, pair) < 0 || pmcg_push(&paths, t->paths.items[pair]) < 0
                || (names_hex(name, length) && pmcg_push(&hexes, (long long)i) < 0)
                || (names_unplain(name, length) && pmcg_push(&unplain, (long long)i) < 0))
            goto done;
    }
    result = Py_BuildValue("(NONNN)", pmcg_column_bytes(&ids), texts, pmcg_column_bytes(&paths),
                           pmcg_column_bytes(&hexes), pmcg_column_bytes(&unplain));
done:
    Py_DECREF(texts);
    PyMem_Free(ids.items);
    PyMem_Free(paths.items);
    PyMem_Free(hexes.items);
    PyMem_Free(unplain.items);
    return result;
}

/* Turn a scanned block's per-block name and image ids into the table's pair ids (one per tree line),
 * collecting the pairs new to the table. */
static int
names_block_pairs(names_table *t, const unsigned char *p, const pmcg_block *b, pmcg_column *pairs,
                  names_new **fresh_out, size_t *fresh_count)
{
    size_t names = b->names.starts.count, paths = b->paths.starts.count, lines = b->tree.count;
    long long *global = PyMem_Calloc(paths ? paths : 1, sizeof *global);
    /* Per block name: the last (path, pair) it was seen with (most names keep one image). */
    long long *memo_path = PyMem_Malloc((names ? names : 1) * sizeof *memo_path);
    long long *memo_pair = PyMem_Malloc((names ? names : 1) * sizeof *memo_pair);
    names_new *fresh = PyMem_Malloc((lines ? lines : 1) * sizeof *fresh);
    int status = -1;
    size_t count = 0;
    if (global == NULL || memo_path == NULL || memo_pair == NULL || fresh == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t k = 0; k < paths; k++) {
        PyObject *path = PyBytes_FromStringAndSize((const char *)p + b->paths.starts.items[k],
                                                   (Py_ssize_t)b->paths.lengths.items[k]);
        if (path == NULL)
            goto done;
        global[k] = names_path(t, path);
        Py_DECREF(path);
        if (global[k] < 0)
            goto done;
    }
    for (size_t k = 0; k < names; k++)
        memo_pair[k] = -1;
    /* The carried image ranks as its own first line in the block if the block prints it, else after all. */
    long long path = t->current, rank = (long long)paths;
    for (size_t k = 0; k < paths; k++) {
        if (path >= 0 && global[k] == path) {
            rank = (long long)k;
            break;
        }
    }
    for (size_t i = 0; i < lines; i++) {
        long long image = b->image_ids.items[i], name = b->name_ids.items[i];
        if (image >= 0) {
            path = global[image];
            rank = image;
        }
        long long pair = memo_pair[name];
        if (pair < 0 || memo_path[name] != path) {
            int added = 0;
            Py_ssize_t start = (Py_ssize_t)b->names.starts.items[name];
            /* the name's hash: the block's interner's, made once per distinct name of the block */
            pair = names_pair(t, p + start, (Py_ssize_t)b->names.lengths.items[name],
                              (uint64_t)b->names.hashes.items[name], path, &added);
            if (pair < 0)
                goto done;
            if (added)
                fresh[count++] = (names_new){name, rank, pair};
            memo_path[name] = path;
            memo_pair[name] = pair;
        }
        if (pmcg_push(pairs, pair) < 0)
            goto done;
    }
    t->current = path;
    /* In _frame_ids' order: by name, then by rank (ranks run to paths, names below names): two stable sorts. */
    if (count > 1) {
        names_new *by_rank = PyMem_Malloc(count * sizeof *by_rank);
        int sorted = by_rank != NULL && names_order_by(fresh, by_rank, count, paths + 1, 0) == 0
            && names_order_by(by_rank, fresh, count, names, 1) == 0;
        if (by_rank == NULL)
            PyErr_NoMemory();
        PyMem_Free(by_rank);
        if (!sorted)
            goto done;
    }
    status = 0;
done:
    PyMem_Free(global);
    PyMem_Free(memo_path);
    PyMem_Free(memo_pair);
    if (status == 0) {
        *fresh_out = fresh;
        *fresh_count = count;
    }
    else
        PyMem_Free(fresh);
    return status;
}

PyDoc_STRVAR(pmcgraph_pairs_doc,
"pmcgraph_pairs(table, data) -> (tree, depth, digits, counts, pairs, new, paths, headers, header_lines, skipped,\n"
"(newlines, deepest, widest))\n\n"
"One block of pmcstat -G text scanned as pmcgraph_scan scans it, each tree line's (name, image) pair\n"
"interned in table (from pmcgraph_names, kept across blocks): pairs holds a pair id per line, new is\n"
"(pair ids, names, path ids, hex indices, indices of the names not plain C) of the pairs new to the\n"
"table in the order pmcgraph's\n"
"_frame_ids interns them, paths every image path of the table by path id (-1: none).");

static PyObject *
py_pmcgraph_pairs(PyObject *self, PyObject *args)
{
    PyObject *capsule, *data_obj;
    if (!PyArg_ParseTuple(args, "OO", &capsule, &data_obj))
        return NULL;
    names_table *t = PyCapsule_GetPointer(capsule, NAMES_CAPSULE);
    if (t == NULL)
        return NULL;
    Py_buffer data;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    pmcg_block *b = &t->block;
    pmcg_block_reset(b);
    pmcg_column *pairs = &t->pairs;
    pairs->count = 0;
    names_new *fresh = NULL;
    size_t fresh_count = 0;
    PyObject *result = NULL;
    const unsigned char *p = data.buf;
    if (pmcg_scan(p, data.len, b) == 0 && names_block_pairs(t, p, b, pairs, &fresh, &fresh_count) == 0) {
        PyObject *headers = PyList_New((Py_ssize_t)b->headers.count);
        for (size_t i = 0; headers != NULL && i < b->headers.count; i++) {
            PyObject *text = PyBytes_FromStringAndSize((const char *)p + b->header_starts.items[i],
                                                       (Py_ssize_t)(b->header_ends.items[i] - b->header_starts.items[i]));
            if (text == NULL)
                Py_CLEAR(headers);
            else
                PyList_SET_ITEM(headers, (Py_ssize_t)i, text);
        }
        if (headers != NULL)
            result = Py_BuildValue("(NNNNNNONNN(LLL))", pmcg_column_bytes(&b->tree), pmcg_column_bytes(&b->depth),
                                   pmcg_column_bytes(&b->digits), pmcg_column_bytes(&b->counts),
                                   pmcg_column_bytes(pairs), names_new_pairs(t, b, fresh, fresh_count),
                                   t->path_list, pmcg_column_bytes(&b->headers), headers,
                                   pmcg_column_bytes(&b->skipped), b->newlines, b->deepest, b->widest);
    }
    PyMem_Free(fresh);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(pmcgraph_frame_ids_doc,
"pmcgraph_frame_ids(table, new_pairs, frames, pairs) -> bytes\n\n"
"Record frames[i] as the frame id of pair new_pairs[i] in table, then return the frame id of\n"
"each of pairs (int64 columns; ValueError for a pair the table does not hold or whose frame it\n"
"was never told).");

static PyObject *
py_pmcgraph_frame_ids(PyObject *self, PyObject *args)
{
    PyObject *capsule, *objects[3];
    if (!PyArg_ParseTuple(args, "OOOO", &capsule, &objects[0], &objects[1], &objects[2]))
        return NULL;
    names_table *t = PyCapsule_GetPointer(capsule, NAMES_CAPSULE);
    if (t == NULL)
        return NULL;
    Py_buffer views[3];
    Py_ssize_t counts[3];
    int held = 0;
    PyObject *result = NULL;
    for (; held < 3; held++) {
        if (int64_column(objects[held], &views[held], &counts[held]) < 0)
            goto done;
    }
    if (counts[0] != counts[1]) {
        PyErr_SetString(PyExc_ValueError, "new_pairs and frames differ in length");
        goto done;
    }
    const long long *fresh = views[0].buf, *frames = views[1].buf, *pairs = views[2].buf;
    long long known = (long long)t->frames.count;
    for (Py_ssize_t i = 0; i < counts[0]; i++) {
        if (fresh[i] < 0 || fresh[i] >= known) {
            PyErr_Format(PyExc_ValueError, "pair %lld is not in the table", fresh[i]);
            goto done;
        }
        t->frames.items[fresh[i]] = frames[i];
    }
    result = PyBytes_FromStringAndSize(NULL, counts[2] * (Py_ssize_t)sizeof(long long));
    if (result == NULL)
        goto done;
    long long *out = (long long *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < counts[2]; i++) {
        long long frame = pairs[i] >= 0 && pairs[i] < known ? t->frames.items[pairs[i]] : -1;
        if (frame < 0) {
            PyErr_Format(PyExc_ValueError, "pair %lld has no frame", pairs[i]);
            Py_CLEAR(result);
            goto done;
        }
        out[i] = frame;
    }
done:
    while (held > 0)
        PyBuffer_Release(&views[--held]);
    return result;
}

#endif
