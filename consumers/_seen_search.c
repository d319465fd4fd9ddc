/*
 * consumers._seen_search: the dedupe index's inner loops in C: hashing eventIds, and the
 * lookup of one sorted run.
 *
 * Why C: every consumed eventId is hashed (FNV-1a, byte by byte: as numpy passes over the
 * whole batch per byte position, 0.16-0.45 s per million events on the development
 * machine, the most of it on the consumer's busiest thread), and every hash is looked up
 * in every run of the index
 * (consumers/seen_index.py). With numpy each step of the binary searches is a handful of
 * array operations over the whole batch, for every run: with 50 million stored eventIds
 * that was about 1.6 s per million events on the development machine, most of what dedupe
 * at that scale costs. Here each key is searched on its own, inside its bucket of the run's
 * directory (a handful of hashes), and every row holding it is appended to the answer.
 *
 * Only the Python C API is used (buffers in, bytearrays out): it builds with nothing but
 * a C compiler and Python's headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { PREFETCH_AHEAD = 8 }; /* keys between a prefetch and its use */

/* The bucket of a hash: its top `bits` bits, in the hashes' own (signed) order. */
static Py_ssize_t bucket_of(int64_t hash, int bits) {
    if (bits == 0) return 0;
    uint64_t unsigned_order = (uint64_t)hash ^ ((uint64_t)1 << 63);
    return (Py_ssize_t)(unsigned_order >> (64 - bits));
}

/* The first position in hashes[low, high) holding a value >= key. */
static Py_ssize_t lower_bound(const int64_t *hashes, Py_ssize_t low, Py_ssize_t high,
                              int64_t key) {
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (hashes[middle] < key)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* Borrow `source` as an int64 buffer; its length in values goes to `count`. */
static int borrow_int64s(PyObject *source, Py_buffer *view, Py_ssize_t *count) {
    if (PyObject_GetBuffer(source, view, PyBUF_SIMPLE) < 0) return -1;
    if (view->len % 8 != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "an int64 buffer's length must be a multiple of 8");
        return -1;
    }
    *count = view->len / 8;
    return 0;
}

static const uint64_t FNV_OFFSET_BASIS = 0xCBF29CE484222325ULL, FNV_PRIME = 0x100000001B3ULL;

/* The FNV-1a 64 hash of each string of an Arrow string column (int64 offsets, bytes). */
static PyObject *fnv1a_64(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *offsets_obj;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "Oy*", &offsets_obj, &data)) return NULL;
    Py_buffer offsets_view;
    Py_ssize_t count;
    PyObject *hashes = NULL;
    if (borrow_int64s(offsets_obj, &offsets_view, &count) < 0) goto release_data;
    const int64_t *offsets = offsets_view.buf;
    int ordered = count > 0;
    for (Py_ssize_t i = 0; ordered && i + 1 < count; i++) ordered = offsets[i] <= offsets[i + 1];
    if (!ordered || offsets[0] < 0 || offsets[count - 1] > data.len) {
        PyErr_SetString(PyExc_ValueError, "offsets must ascend within the data");
        goto done;
    }
    hashes = PyByteArray_FromStringAndSize(NULL, (count - 1) * 8);
    if (hashes == NULL) goto done;
    uint64_t *out = (uint64_t *)PyByteArray_AS_STRING(hashes);
    const uint8_t *bytes = data.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i + 1 < count; i++) {
        uint64_t hash = FNV_OFFSET_BASIS;
        for (int64_t at = offsets[i]; at < offsets[i + 1]; at++) hash = (hash ^ bytes[at]) * FNV_PRIME;
        out[i] = hash;
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&offsets_view);
release_data:
    PyBuffer_Release(&data);
    return hashes;
}

/* One Arrow string_view column as fnv1a_rows reads it: 16-byte views (length, then the text
 * itself up to 12 bytes, else a prefix, a data buffer's index and an offset into it). */
typedef struct {
    Py_ssize_t offset;        /* the array's slice offset, in rows */
    int decimal;              /* hash each plain decimal as its shortest form */
    int has_validity;
    Py_buffer validity, views;
    Py_ssize_t data_count;    /* data buffers borrowed so far */
    Py_buffer *data;
} ViewColumn;

static void release_column(ViewColumn *column) {
    for (Py_ssize_t b = 0; b < column->data_count; b++) PyBuffer_Release(&column->data[b]);
    PyMem_Free(column->data);
    if (column->has_validity) PyBuffer_Release(&column->validity);
    PyBuffer_Release(&column->views);
}

/* Borrow (offset, validity or None, views, data buffers, decimal) for `rows` rows; -1 with
 * an error. */
static int borrow_column(PyObject *spec, Py_ssize_t rows, ViewColumn *column) {
    PyObject *validity, *views, *data;
    memset(column, 0, sizeof *column);
    if (!PyArg_ParseTuple(spec, "nOOOp", &column->offset, &validity, &views, &data,
                          &column->decimal))
        return -1;
    PyObject *buffers = PySequence_Fast(data, "data buffers must be a sequence");
    if (buffers == NULL) return -1;
    if (PyObject_GetBuffer(views, &column->views, PyBUF_SIMPLE) < 0) goto fail_views;
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &column->validity, PyBUF_SIMPLE) < 0) goto fail;
        column->has_validity = 1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(buffers);
    column->data = PyMem_Calloc(count ? count : 1, sizeof(Py_buffer));
    if (column->data == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (; column->data_count < count; column->data_count++) {
        PyObject *buffer = PySequence_Fast_GET_ITEM(buffers, column->data_count);
        if (PyObject_GetBuffer(buffer, &column->data[column->data_count], PyBUF_SIMPLE) < 0)
            goto fail;
    }
    Py_ssize_t end = column->offset + rows;
    if (column->offset < 0 || column->views.len / 16 < end ||
        (column->has_validity && column->validity.len * 8 < end)) {
        PyErr_SetString(PyExc_ValueError, "a column is shorter than the rows");
        goto fail;
    }
    Py_DECREF(buffers);
    return 0;
fail:
    release_column(column);
    Py_DECREF(buffers);
    return -1;
fail_views:
    Py_DECREF(buffers);
    return -1;
}

#define FNV_MIX(hash, byte) ((hash) = ((hash) ^ (uint8_t)(byte)) * FNV_PRIME)

/* A plain decimal's shortest form, as consumers/content_digest.py's `_decimal` writes it:
 * with a point, trailing zeros then trailing points cut; then leading zeros cut; "0" if
 * nothing is left, and a "0" before a bare leading point. Narrows [text, text + length)
 * and sets `leading_zero` when a "0" comes first. */
static void shortest_decimal(const uint8_t **text, int32_t *length, int32_t *leading_zero) {
    const uint8_t *start = *text, *end = *text + *length;
    if (memchr(start, '.', (size_t)*length) != NULL) {
        while (end > start && end[-1] == '0') end--;
        while (end > start && end[-1] == '.') end--;
    }
    while (start < end && *start == '0') start++;
    *leading_zero = start == end || *start == '.';
    *text = start;
    *length = (int32_t)(end - start);
}

/* Mix field `row` of `column` as `<bytes>:<text>`, or `-` if null; 0 if a view points
 * outside its data. */
static int mix_field(uint64_t *hash, const ViewColumn *column, Py_ssize_t row) {
    Py_ssize_t at = column->offset + row;
    if (column->has_validity &&
        !(((const uint8_t *)column->validity.buf)[at >> 3] & (1u << (at & 7)))) {
        FNV_MIX(*hash, '-');
        return 1;
    }
    const uint8_t *view = (const uint8_t *)column->views.buf + at * 16;
    int32_t length, index, offset;
    memcpy(&length, view, 4);
    const uint8_t *text = view + 4;
    if (length > 12) {
        memcpy(&index, view + 8, 4);
        memcpy(&offset, view + 12, 4);
        if (index < 0 || index >= column->data_count || offset < 0 ||
            (Py_ssize_t)offset + length > column->data[index].len)
            return 0;
        text = (const uint8_t *)column->data[index].buf + offset;
    } else if (length < 0) {
        return 0;
    }
    int32_t leading_zero = 0; /* a decimal's "0" before its point, or its whole "0" */
    if (column->decimal) shortest_decimal(&text, &length, &leading_zero);
    char digits[12];
    int used = 0;
    int32_t rest = length + leading_zero;
    do {
        digits[used++] = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest > 0);
    while (used > 0) FNV_MIX(*hash, digits[--used]);
    FNV_MIX(*hash, ':');
    if (leading_zero) FNV_MIX(*hash, '0');
    for (int32_t i = 0; i < length; i++) FNV_MIX(*hash, text[i]);
    return 1;
}

/* The FNV-1a 64 hash of each row's fields written `<bytes>:<text>` (a null as `-`) and
 * joined by `|`, as if that text were built and hashed; string_view columns in, decimal
 * ones read as their shortest form. */
static PyObject *fnv1a_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t rows;
    PyObject *specs;
    if (!PyArg_ParseTuple(args, "nO", &rows, &specs)) return NULL;
    if (rows < 0) {
        PyErr_SetString(PyExc_ValueError, "rows must not be negative");
        return NULL;
    }
    PyObject *fields = PySequence_Fast(specs, "columns must be a sequence");
    if (fields == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fields), borrowed = 0;
    ViewColumn *columns = PyMem_Calloc(count ? count : 1, sizeof(ViewColumn));
    PyObject *hashes = NULL;
    if (columns == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; borrowed < count; borrowed++)
        if (borrow_column(PySequence_Fast_GET_ITEM(fields, borrowed), rows,
                          &columns[borrowed]) < 0)
            goto done;
    hashes = PyByteArray_FromStringAndSize(NULL, rows * 8);
    if (hashes == NULL) goto done;
    uint64_t *out = (uint64_t *)PyByteArray_AS_STRING(hashes);
    int fits = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t row = 0; fits && row < rows; row++) {
        uint64_t hash = FNV_OFFSET_BASIS;
        for (Py_ssize_t c = 0; fits && c < count; c++) {
            if (c > 0) FNV_MIX(hash, '|');
            fits = mix_field(&hash, &columns[c], row);
        }
        out[row] = hash;
    }
    Py_END_ALLOW_THREADS
    if (!fits) {
        PyErr_SetString(PyExc_ValueError, "a string view points outside its data");
        Py_CLEAR(hashes);
    }
done:
    for (Py_ssize_t c = 0; c < borrowed; c++) release_column(&columns[c]);
    PyMem_Free(columns);
    Py_DECREF(fields);
    return hashes;
}

static PyObject *rows_matching(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *keys_obj, *hashes_obj, *rows_obj, *directory_obj;
    int bits;
    if (!PyArg_ParseTuple(args, "OOOOi", &keys_obj, &hashes_obj, &rows_obj, &directory_obj,
                          &bits))
        return NULL;
    Py_buffer views[4];
    Py_ssize_t counts[4];
    PyObject *sources[4] = {keys_obj, hashes_obj, rows_obj, directory_obj};
    int borrowed = 0;
    PyObject *found = NULL;
    for (; borrowed < 4; borrowed++)
        if (borrow_int64s(sources[borrowed], &views[borrowed], &counts[borrowed]) < 0) goto done;
    const int64_t *keys = views[0].buf, *hashes = views[1].buf, *rows = views[2].buf;
    const int64_t *directory = views[3].buf;
    Py_ssize_t key_count = counts[0], hash_count = counts[1];
    if (bits < 0 || bits > 62 || counts[2] != hash_count ||
        counts[3] != ((Py_ssize_t)1 << bits) + 1 || directory[counts[3] - 1] != hash_count) {
        PyErr_SetString(PyExc_ValueError, "rows, hashes and directory do not fit together");
        goto done;
    }
    found = PyByteArray_FromStringAndSize(NULL, 0);
    if (found == NULL) goto done;
    Py_ssize_t used = 0, capacity = 0;
    for (Py_ssize_t k = 0; k < key_count; k++) {
        /* Each key costs a cache miss in the directory and another in the hashes: prefetch
         * the directory entry of a key well ahead, and the hashes of a nearer one (whose
         * entry was prefetched earlier), so that the misses of many keys overlap. */
        if (k + 2 * PREFETCH_AHEAD < key_count)
            __builtin_prefetch(&directory[bucket_of(keys[k + 2 * PREFETCH_AHEAD], bits)]);
        if (k + PREFETCH_AHEAD < key_count) {
            Py_ssize_t ahead = directory[bucket_of(keys[k + PREFETCH_AHEAD], bits)];
            if (ahead >= 0 && ahead < hash_count) __builtin_prefetch(&hashes[ahead]);
        }
        Py_ssize_t bucket = bucket_of(keys[k], bits);
        Py_ssize_t low = directory[bucket], high = directory[bucket + 1];
        if (low < 0 || high > hash_count || low > high) {
            PyErr_SetString(PyExc_ValueError, "the directory points outside the run");
            Py_CLEAR(found);
            goto done;
        }
        for (Py_ssize_t at = lower_bound(hashes, low, high, keys[k]);
             at < high && hashes[at] == keys[k]; at++) {
            if (used == capacity) {
                capacity = capacity ? capacity * 2 : 64;
                if (PyByteArray_Resize(found, capacity * 8) < 0) {
                    Py_CLEAR(found);
                    goto done;
                }
            }
            memcpy(PyByteArray_AS_STRING(found) + used * 8, &rows[at], 8);
            used++;
        }
    }
    if (PyByteArray_Resize(found, used * 8) < 0) Py_CLEAR(found);
done:
    for (int b = 0; b < borrowed; b++) PyBuffer_Release(&views[b]);
    return found;
}

static PyMethodDef methods[] = {
    {"fnv1a_64", fnv1a_64, METH_VARARGS,
     "fnv1a_64(offsets, data)\n"
     "The FNV-1a 64 hash of each string of an Arrow string column; see the .pyi."},
    {"fnv1a_rows", fnv1a_rows, METH_VARARGS,
     "fnv1a_rows(rows, columns)\n"
     "The FNV-1a 64 hash of each row's fields as one length-prefixed text; see the .pyi."},
    {"rows_matching", rows_matching, METH_VARARGS,
     "rows_matching(keys, hashes, rows, directory, bits)\n"
     "Every row of a sorted run whose hash is one of `keys`; see the .pyi."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_seen_search", "The dedupe index's inner loops: hashing, searching.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__seen_search(void) { return PyModule_Create(&module); }
