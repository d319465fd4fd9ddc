/*
 * schemas._avro_batch: Avro records of a whole batch, encoded or decoded in one pass in C.
 *
 * Why C: every event is encoded once by the publisher and decoded once by a consumer. Done
 * column by column with numpy (a dozen array operations per field per batch, and as many
 * again to build Arrow's string views or to cut the encoded rows apart), that cost 1-1.3 s
 * per million events to encode and 2.5 s to decode on the development machine. Here each
 * record is written or read once, byte by byte:
 *
 * - `encode_records` reads each column from its Arrow buffers and returns one bytes object
 *   per row, the framing header first; it encodes a block of rows at a time with the GIL
 *   released, so that the publisher's thread keeps producing the chunk before;
 * - `scan_records` reads the message values from their Arrow buffers (a large binary
 *   column, as the consumer reads them), checks each one's header, reads its body field by
 *   field and writes every column straight in Arrow's layout (validity bitmaps, 16-byte
 *   string views, int64 values, boolean bitmaps), which pyarrow then wraps without copying.
 *
 * The decoding rules are the ones schemas/avro_decode.py documents: a body is decoded only
 * if it is exactly one record; each union index is 0 (null) or 1 (the value); each boolean
 * is 0 or 1; each varint ends within 10 bytes and fits 64 bits; each string ends inside its
 * body and be UTF-8 (as Python's codec and Arrow define it: no overlong forms, no
 * surrogates, nothing past U+10FFFF), so the views are strings as they stand.
 *
 * Only the Python C API is used (buffers in, bytes and bytearrays out): no numpy or Arrow
 * headers, so the module builds with nothing but a C compiler and Python's headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { DECODED = 0, NOT_FRAMED = 1, UNKNOWN_HEADER = 2, UNDECODABLE = 3 };
enum { INLINE_BYTES = 12, VIEW_BYTES = 16 };
/* Rows encoded per release of the GIL: a few MB of scratch, whatever the batch size. */
enum { BLOCK_ROWS = 8192 };

/* A field's type code (see `kinds`): lower case for T, upper case for ["null", T]. */
typedef struct {
    char kind; /* 's' string, 'b' boolean, 'l' long */
    int nullable;
    PyObject *valid_array, *out_array; /* bytearrays, returned */
    uint8_t *valid;                    /* validity bitmap */
    uint8_t *out;                      /* views, int64 values or a boolean bitmap */
} Field;

/* ---- Arrow columns in ------------------------------------------------------------------ */

/* One column as Arrow buffers: a column to encode (see `encode_records` in the .pyi), or
 * the message values to decode (a large binary column). */
typedef struct {
    char kind;
    int nullable;
    Py_ssize_t offset;  /* the array's offset into its buffers */
    Py_buffer validity; /* buf NULL when every value is present */
    Py_buffer values;   /* int64 offsets (strings), int64 values or a boolean bitmap */
    Py_buffer data;     /* strings' bytes; buf NULL otherwise */
} Column;

static int bit_at(const Py_buffer *bitmap, Py_ssize_t index) {
    return (((const uint8_t *)bitmap->buf)[index >> 3] >> (index & 7)) & 1;
}

/* Borrow `source` as a buffer of at least `size` bytes (None: no buffer, if allowed). */
static int borrow(PyObject *source, Py_buffer *view, Py_ssize_t size, int optional,
                  const char *what) {
    if (source == Py_None) {
        if (optional || size == 0) return 0;
        PyErr_Format(PyExc_ValueError, "the %s buffer is missing", what);
        return -1;
    }
    if (PyObject_GetBuffer(source, view, PyBUF_SIMPLE) < 0) return -1;
    if (view->len < size) {
        PyErr_Format(PyExc_ValueError, "the %s buffer is too short", what);
        return -1;
    }
    return 0;
}

/* Fill `column` from its tuple (kind, offset, validity, values, data) for `rows` rows. */
static int read_column(PyObject *spec, Column *column, Py_ssize_t rows) {
    PyObject *validity, *values, *data;
    int kind; /* "C": one character */
    if (!PyArg_ParseTuple(spec, "CnOOO", &kind, &column->offset, &validity, &values, &data))
        return -1;
    column->nullable = kind == 'S' || kind == 'B' || kind == 'L';
    column->kind = column->nullable ? (char)(kind + ('a' - 'A')) : (char)kind;
    if (strchr("sbl", column->kind) == NULL || column->kind == '\0' || column->offset < 0) {
        PyErr_Format(PyExc_ValueError, "unknown field kind %c or negative offset", kind);
        return -1;
    }
    Py_ssize_t end = column->offset + rows;
    Py_ssize_t width = column->kind == 'b' ? (end + 7) / 8 : (end + (column->kind == 's')) * 8;
    if (borrow(validity, &column->validity, (end + 7) / 8, 1, "validity") < 0 ||
        borrow(values, &column->values, width, 0, "values") < 0)
        return -1;
    if (column->kind != 's') return 0;
    const int64_t *offsets = (const int64_t *)column->values.buf;
    Py_ssize_t size = rows ? (Py_ssize_t)offsets[end] : 0;
    if (borrow(data, &column->data, size, 0, "data") < 0) return -1;
    for (Py_ssize_t row = column->offset; row < end; row++) {
        if (offsets[row] < 0 || offsets[row] > offsets[row + 1]) {
            PyErr_SetString(PyExc_ValueError, "string offsets are not ascending");
            return -1;
        }
    }
    return 0;
}

static void release_column(Column *column) {
    if (column->validity.obj != NULL) PyBuffer_Release(&column->validity);
    if (column->values.obj != NULL) PyBuffer_Release(&column->values);
    if (column->data.obj != NULL) PyBuffer_Release(&column->data);
}

/* ---- decoding ------------------------------------------------------------------------ */

/* Read one varint; 0 when it runs past `end` or needs more than 64 bits. */
static int read_varint(const uint8_t **cursor, const uint8_t *end, uint64_t *value) {
    uint64_t result = 0;
    for (int k = 0; k < 10; k++) {
        if (*cursor >= end) return 0;
        uint8_t byte = *(*cursor)++;
        if (k == 9 && byte > 1) return 0; /* the 10th byte may only carry bit 63 */
        result |= (uint64_t)(byte & 0x7F) << (7 * k);
        if (byte < 0x80) {
            *value = result;
            return 1;
        }
    }
    return 0;
}

static int64_t unzigzag(uint64_t value) {
    return (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
}

static void set_bit(uint8_t *bitmap, Py_ssize_t index) {
    bitmap[index >> 3] |= (uint8_t)(1u << (index & 7));
}

/* Write row `row` of every field from the body at `body` (`length` bytes), whose copy in
 * the data buffer starts at `data_at`; return 0 (and leave the row to be overwritten) if
 * the body is not exactly one record. */
/* Whether `size` bytes are UTF-8; ASCII, the usual text, is checked 8 bytes at a time. */
static int is_utf8(const uint8_t *text, int64_t size) {
    int64_t at = 0;
    while (at < size) {
        if (size - at >= 8) {
            uint64_t word;
            memcpy(&word, text + at, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                at += 8;
                continue;
            }
        }
        uint8_t lead = text[at];
        if (lead < 0x80) {
            at++;
            continue;
        }
        int64_t more;
        uint8_t low = 0x80, high = 0xBF; /* the range of the byte after the lead */
        if (lead >= 0xC2 && lead <= 0xDF) {
            more = 1;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            more = 2;
            if (lead == 0xE0) low = 0xA0;  /* no overlong forms */
            if (lead == 0xED) high = 0x9F; /* no surrogates */
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            more = 3;
            if (lead == 0xF0) low = 0x90;  /* no overlong forms */
            if (lead == 0xF4) high = 0x8F; /* nothing past U+10FFFF */
        } else {
            return 0;
        }
        if (size - at <= more || text[at + 1] < low || text[at + 1] > high) return 0;
        for (int64_t k = 2; k <= more; k++)
            if ((text[at + k] & 0xC0) != 0x80) return 0;
        at += more + 1;
    }
    return 1;
}

static int scan_body(Field *fields, Py_ssize_t field_count, Py_ssize_t row,
                     const uint8_t *body, Py_ssize_t length, Py_ssize_t data_at) {
    const uint8_t *cursor = body, *end = body + length;
    for (Py_ssize_t f = 0; f < field_count; f++) {
        Field *field = &fields[f];
        int present = 1;
        if (field->nullable) {
            if (cursor >= end || (*cursor != 0 && *cursor != 2)) return 0;
            present = *cursor++ == 2;
        }
        if (field->kind == 's') {
            uint8_t *view = field->out + row * VIEW_BYTES;
            memset(view, 0, VIEW_BYTES);
            if (present) {
                uint64_t raw;
                if (!read_varint(&cursor, end, &raw)) return 0;
                int64_t size = unzigzag(raw);
                if (size < 0 || size > end - cursor || !is_utf8(cursor, size)) return 0;
                int32_t size32 = (int32_t)size, offset = (int32_t)(data_at + (cursor - body));
                memcpy(view, &size32, 4);
                if (size <= INLINE_BYTES) {
                    memcpy(view + 4, cursor, (size_t)size);
                } else {
                    memcpy(view + 4, cursor, 4); /* prefix; buffer index 0; offset */
                    memcpy(view + 12, &offset, 4);
                }
                cursor += size;
            }
        } else if (field->kind == 'b') {
            if (present) {
                if (cursor >= end || *cursor > 1) return 0;
                if (*cursor++) set_bit(field->out, row);
            }
        } else {
            int64_t number = 0;
            if (present) {
                uint64_t raw;
                if (!read_varint(&cursor, end, &raw)) return 0;
                number = unzigzag(raw);
            }
            memcpy(field->out + row * 8, &number, 8);
        }
        if (present) set_bit(field->valid, row);
    }
    return cursor == end;
}

/* Clear what a rejected body may have set in row `row`, so the next body starts clean. */
static void clear_row(Field *fields, Py_ssize_t field_count, Py_ssize_t row) {
    for (Py_ssize_t f = 0; f < field_count; f++) {
        uint8_t mask = (uint8_t)~(1u << (row & 7));
        fields[f].valid[row >> 3] &= mask;
        if (fields[f].kind == 'b') fields[f].out[row >> 3] &= mask;
    }
}

static PyObject *zeroed_bytearray(Py_ssize_t size) {
    PyObject *array = PyByteArray_FromStringAndSize(NULL, size);
    if (array != NULL && size > 0) memset(PyByteArray_AS_STRING(array), 0, (size_t)size);
    return array;
}

/* Row `row` of the values: its bytes and size; NULL for a null. */
static const char *value_at(const Column *values, Py_ssize_t row, Py_ssize_t *size) {
    if (values->validity.buf != NULL && !bit_at(&values->validity, row)) return NULL;
    const int64_t *offsets = (const int64_t *)values->values.buf;
    *size = (Py_ssize_t)(offsets[row + 1] - offsets[row]);
    return (const char *)values->data.buf + offsets[row];
}

/* Which of `accepted` headers a value starts with: its framing status. */
static int framing(const char *bytes, Py_ssize_t size, Py_ssize_t header_size,
                   const char *marker, Py_ssize_t marker_size, const char **accepted,
                   Py_ssize_t accepted_count) {
    if (bytes == NULL || size < header_size) return NOT_FRAMED;
    if (memcmp(bytes, marker, (size_t)marker_size) != 0) return NOT_FRAMED;
    for (Py_ssize_t i = 0; i < accepted_count; i++) {
        if (memcmp(bytes, accepted[i], (size_t)header_size) == 0) return DECODED;
    }
    return UNKNOWN_HEADER;
}

/* The width in bytes of `rows` values of a field of `kind`. */
static Py_ssize_t out_size(char kind, Py_ssize_t rows) {
    return kind == 's' ? rows * VIEW_BYTES : kind == 'l' ? rows * 8 : (rows + 7) / 8;
}

/* Each field's validity bitmap (or values), cut to `rows`, as a new list. */
static PyObject *field_list(Field *fields, Py_ssize_t count, Py_ssize_t rows, int bitmaps) {
    PyObject *list = PyList_New(count);
    if (list == NULL) return NULL;
    for (Py_ssize_t f = 0; f < count; f++) {
        PyObject *array = bitmaps ? fields[f].valid_array : fields[f].out_array;
        Py_ssize_t size = bitmaps ? (rows + 7) / 8 : out_size(fields[f].kind, rows);
        if (PyByteArray_Resize(array, size) < 0) {
            Py_DECREF(list);
            return NULL;
        }
        Py_INCREF(array);
        PyList_SET_ITEM(list, f, array);
    }
    return list;
}

/* How many rows of a field are null: the clear bits of its first `rows` validity bits. */
static Py_ssize_t null_count(const uint8_t *valid, Py_ssize_t rows) {
    Py_ssize_t set = 0;
    for (Py_ssize_t b = 0; b < rows / 8; b++) set += __builtin_popcount(valid[b]);
    for (Py_ssize_t r = rows / 8 * 8; r < rows; r++) set += (valid[r >> 3] >> (r & 7)) & 1;
    return rows - set;
}

static PyObject *scan_records(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *values_spec, *accepted;
    Py_ssize_t n, header_size, marker_size, kinds_size, max_data;
    const char *marker, *kinds;
    if (!PyArg_ParseTuple(args, "nOny#O!y#n", &n, &values_spec, &header_size, &marker,
                          &marker_size, &PyTuple_Type, &accepted, &kinds, &kinds_size,
                          &max_data))
        return NULL;
    Py_ssize_t accepted_count = PyTuple_GET_SIZE(accepted);
    for (Py_ssize_t i = 0; i < accepted_count; i++) {
        PyObject *header = PyTuple_GET_ITEM(accepted, i);
        if (!PyBytes_Check(header) || PyBytes_GET_SIZE(header) != header_size) {
            PyErr_SetString(PyExc_ValueError, "every accepted header must be header_size bytes");
            return NULL;
        }
    }
    if (marker_size > header_size) {
        PyErr_SetString(PyExc_ValueError, "the marker is longer than the header");
        return NULL;
    }
    Column values = {0};
    if (n < 0 || read_column(values_spec, &values, n) < 0 || values.kind != 's') {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "values must be a binary column");
        release_column(&values);
        return NULL;
    }
    /* Header pointers, read without the GIL: the tuple holds the bytes alive. */
    size_t header_slots = (size_t)(accepted_count ? accepted_count : 1);
    const char **headers = PyMem_Calloc(header_slots, sizeof(char *));
    if (headers == NULL) {
        release_column(&values);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < accepted_count; i++)
        headers[i] = PyBytes_AS_STRING(PyTuple_GET_ITEM(accepted, i));

    PyObject *result = NULL, *status = NULL, *data = NULL;
    PyObject *valid_list = NULL, *value_list = NULL, *nulls = NULL;
    Field *fields = PyMem_Calloc((size_t)(kinds_size ? kinds_size : 1), sizeof(Field));
    if (fields == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t f = 0; f < kinds_size; f++) {
        char kind = kinds[f];
        fields[f].nullable = kind == 'S' || kind == 'B' || kind == 'L';
        fields[f].kind = fields[f].nullable ? (char)(kind + ('a' - 'A')) : kind;
        if (strchr("sbl", fields[f].kind) == NULL || fields[f].kind == '\0') {
            PyErr_Format(PyExc_ValueError, "unknown field kind %c", kind);
            goto done;
        }
        fields[f].valid_array = zeroed_bytearray((n + 7) / 8);
        fields[f].out_array = zeroed_bytearray(out_size(fields[f].kind, n));
        if (fields[f].valid_array == NULL || fields[f].out_array == NULL) goto done;
        fields[f].valid = (uint8_t *)PyByteArray_AS_STRING(fields[f].valid_array);
        fields[f].out = (uint8_t *)PyByteArray_AS_STRING(fields[f].out_array);
    }

    status = PyBytes_FromStringAndSize(NULL, n);
    if (status == NULL) goto done;
    uint8_t *codes = (uint8_t *)PyBytes_AS_STRING(status);
    Py_ssize_t capacity = 0;
    /* Only buffers held by this call are read without the GIL: another thread (the
     * consumer's, applying the batch before) runs meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t size = 0;
        const char *bytes = value_at(&values, values.offset + i, &size);
        codes[i] = (uint8_t)framing(bytes, size, header_size, marker, marker_size, headers,
                                    accepted_count);
        if (codes[i] == DECODED) capacity += size - header_size;
    }
    Py_END_ALLOW_THREADS
    data = PyByteArray_FromStringAndSize(NULL, capacity);
    if (data == NULL) goto done;
    uint8_t *text = (uint8_t *)PyByteArray_AS_STRING(data);
    Py_ssize_t rows = 0, used = 0;
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (codes[i] != DECODED) continue;
        Py_ssize_t length = 0;
        const uint8_t *body = (const uint8_t *)value_at(&values, values.offset + i, &length);
        body += header_size;
        length -= header_size;
        if (used + length > max_data) { /* string views address text with 32-bit offsets */
            overflow = 1;
            break;
        }
        if (scan_body(fields, kinds_size, rows, body, length, used)) {
            memcpy(text + used, body, (size_t)length);
            used += length;
            rows++;
        } else {
            clear_row(fields, kinds_size, rows);
            codes[i] = UNDECODABLE;
        }
    }
    Py_END_ALLOW_THREADS
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "the bodies exceed one view buffer");
        goto done;
    }
    if (PyByteArray_Resize(data, used) < 0) goto done;
    nulls = PyList_New(kinds_size);
    if (nulls == NULL) goto done;
    for (Py_ssize_t f = 0; f < kinds_size; f++) {
        PyObject *count = PyLong_FromSsize_t(null_count(fields[f].valid, rows));
        if (count == NULL) goto done;
        PyList_SET_ITEM(nulls, f, count);
    }
    /* Resizing may move the arrays: no field pointer is used after this. */
    valid_list = field_list(fields, kinds_size, rows, 1);
    value_list = field_list(fields, kinds_size, rows, 0);
    if (valid_list == NULL || value_list == NULL) goto done;
    result = Py_BuildValue("(OnOOOO)", status, rows, data, valid_list, value_list,
                           nulls);
done:
    if (fields != NULL) {
        for (Py_ssize_t f = 0; f < kinds_size; f++) {
            Py_XDECREF(fields[f].valid_array);
            Py_XDECREF(fields[f].out_array);
        }
        PyMem_Free(fields);
    }
    Py_XDECREF(status);
    Py_XDECREF(data);
    Py_XDECREF(valid_list);
    Py_XDECREF(value_list);
    Py_XDECREF(nulls);
    PyMem_Free(headers);
    release_column(&values);
    return result;
}


/* ---- encoding ------------------------------------------------------------------------ */

static uint8_t *write_varint(uint8_t *out, uint64_t value) {
    while (value >= 0x80) {
        *out++ = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    *out++ = (uint8_t)value;
    return out;
}

static uint64_t zigzag(int64_t value) {
    return ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
}

/* The most bytes row `row` of `column` can take: union index, varint, text. */
static Py_ssize_t most_bytes(const Column *column, Py_ssize_t row) {
    if (column->kind != 's') return 11;
    const int64_t *offsets = (const int64_t *)column->values.buf;
    return 11 + (Py_ssize_t)(offsets[row + 1] - offsets[row]);
}

/* Append row `row` of `column` at `out`; NULL for a null in a field that cannot hold it. */
static uint8_t *encode_field(const Column *column, Py_ssize_t row, uint8_t *out) {
    int present = column->validity.buf == NULL || bit_at(&column->validity, row);
    if (column->nullable) {
        *out++ = present ? 2 : 0;
        if (!present) return out;
    } else if (!present) {
        return NULL;
    }
    if (column->kind == 's') {
        const int64_t *offsets = (const int64_t *)column->values.buf;
        int64_t size = offsets[row + 1] - offsets[row];
        out = write_varint(out, zigzag(size));
        if (size) memcpy(out, (const uint8_t *)column->data.buf + offsets[row], (size_t)size);
        return out + size;
    }
    if (column->kind == 'b') {
        *out++ = (uint8_t)bit_at(&column->values, row);
        return out;
    }
    return write_varint(out, zigzag(((const int64_t *)column->values.buf)[row]));
}

/* Rows encoded together while other threads run: their bytes and where each one ends. */
typedef struct {
    uint8_t *bytes;
    Py_ssize_t capacity;
    Py_ssize_t ends[BLOCK_ROWS];
} Block;

/* Encode rows [first, first + rows) into `block` (no Python calls: run without the GIL).
 * Returns 0, -1 when memory ran out, or -2 for a null a field cannot hold. */
static int encode_block(const Column *columns, Py_ssize_t count, Py_ssize_t first,
                        Py_ssize_t rows, const char *prefix, Py_ssize_t prefix_size,
                        Block *block) {
    Py_ssize_t most = 0;
    for (Py_ssize_t row = first; row < first + rows; row++) {
        most += prefix_size;
        for (Py_ssize_t c = 0; c < count; c++)
            most += most_bytes(&columns[c], columns[c].offset + row);
    }
    if (most > block->capacity) {
        uint8_t *grown = realloc(block->bytes, (size_t)most);
        if (grown == NULL) return -1;
        block->bytes = grown;
        block->capacity = most;
    }
    uint8_t *out = block->bytes;
    for (Py_ssize_t row = first; row < first + rows; row++) {
        memcpy(out, prefix, (size_t)prefix_size);
        out += prefix_size;
        for (Py_ssize_t c = 0; c < count; c++) {
            out = encode_field(&columns[c], columns[c].offset + row, out);
            if (out == NULL) return -2;
        }
        block->ends[row - first] = out - block->bytes;
    }
    return 0;
}

/* One bytes object per row. Rows are encoded a block at a time with the GIL released (the
 * publisher's thread produces the chunk before meanwhile); only making the bytes objects
 * holds it. */
static PyObject *encode_rows(Column *columns, Py_ssize_t count, Py_ssize_t rows,
                             const char *prefix, Py_ssize_t prefix_size) {
    PyObject *encoded = PyList_New(rows);
    Block *block = PyMem_Calloc(1, sizeof(Block));
    if (encoded == NULL || block == NULL) goto failed;
    for (Py_ssize_t first = 0; first < rows; first += BLOCK_ROWS) {
        Py_ssize_t size = rows - first < BLOCK_ROWS ? rows - first : BLOCK_ROWS;
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = encode_block(columns, count, first, size, prefix, prefix_size, block);
        Py_END_ALLOW_THREADS
        if (status == -1) {
            PyErr_NoMemory();
            goto failed;
        }
        if (status == -2) {
            PyErr_SetString(PyExc_ValueError, "a null in a field that is not a union with null");
            goto failed;
        }
        for (Py_ssize_t row = 0; row < size; row++) {
            Py_ssize_t start = row ? block->ends[row - 1] : 0;
            PyObject *value = PyBytes_FromStringAndSize((const char *)block->bytes + start,
                                                        block->ends[row] - start);
            if (value == NULL) goto failed;
            PyList_SET_ITEM(encoded, first + row, value);
        }
    }
    free(block->bytes);
    PyMem_Free(block);
    return encoded;
failed:
    if (block != NULL) free(block->bytes);
    PyMem_Free(block);
    Py_XDECREF(encoded);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return NULL;
}

static PyObject *encode_records(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t rows, prefix_size;
    PyObject *specs;
    const char *prefix;
    if (!PyArg_ParseTuple(args, "nO!y#", &rows, &PyList_Type, &specs, &prefix, &prefix_size))
        return NULL;
    if (rows < 0) {
        PyErr_SetString(PyExc_ValueError, "rows must not be negative");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(specs);
    Column *columns = PyMem_Calloc((size_t)(count ? count : 1), sizeof(Column));
    if (columns == NULL) return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t c = 0;
    for (; c < count; c++)
        if (read_column(PyList_GET_ITEM(specs, c), &columns[c], rows) < 0) break;
    if (c == count) result = encode_rows(columns, count, rows, prefix, prefix_size);
    for (Py_ssize_t k = 0; k < count; k++) release_column(&columns[k]);
    PyMem_Free(columns);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_records", encode_records, METH_VARARGS,
     "encode_records(rows, columns, prefix)\n"
     "Encode each row of Arrow columns as prefix + Avro body; see the .pyi."},
    {"scan_records", scan_records, METH_VARARGS,
     "scan_records(values, header_size, marker, accepted, kinds, max_data)\n"
     "Decode a batch of framed Avro records into Arrow column buffers; see the .pyi."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_avro_batch", "Avro records of a whole batch, in one pass.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__avro_batch(void) { return PyModule_Create(&module); }
