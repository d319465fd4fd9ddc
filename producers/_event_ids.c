/*
 * producers._event_ids: the UUIDv5 eventIds of a chunk's rows, in C.
 *
 * Why C: a file without eventIds needs one per row, and a UUIDv5 is a SHA-1 digest. In
 * Python, even with the hash state of the common prefix copied per row, that cost 1.8 s
 * per million rows on the development machine: a third of publishing such a file. Here
 * SHA-1 (FIPS 180-4) runs over the rows' short tails only, and each id is written
 * straight into a str.
 *
 * Only the Python C API is used (a buffer in, a list of str out): it builds with nothing
 * but a C compiler and Python's headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { BLOCK_BYTES = 64, UUID_CHARS = 36 };

typedef struct {
    uint32_t h[5];
    uint64_t length; /* bytes hashed so far */
} Sha1;

static uint32_t rotate_left(uint32_t value, int bits) {
    return (value << bits) | (value >> (32 - bits));
}

/* Fold one 64-byte block into the state. */
static void sha1_block(uint32_t h[5], const uint8_t *block) {
    uint32_t w[80];
    for (int t = 0; t < 16; t++) {
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
    }
    for (int t = 16; t < 80; t++) w[t] = rotate_left(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t next = rotate_left(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = rotate_left(b, 30);
        b = a;
        a = next;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* The digest of the bytes hashed into `state` followed by `tail` (any length). */
static void sha1_finish(Sha1 state, const uint8_t *tail, size_t size, uint8_t digest[20]) {
    uint64_t bits = (state.length + size) * 8;
    while (size >= BLOCK_BYTES) {
        sha1_block(state.h, tail);
        tail += BLOCK_BYTES;
        size -= BLOCK_BYTES;
    }
    uint8_t last[2 * BLOCK_BYTES] = {0};
    memcpy(last, tail, size);
    last[size] = 0x80;
    size_t blocks = size + 1 + 8 <= BLOCK_BYTES ? 1 : 2;
    for (int i = 0; i < 8; i++) last[blocks * BLOCK_BYTES - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t i = 0; i < blocks; i++) sha1_block(state.h, last + i * BLOCK_BYTES);
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 4; j++) digest[4 * i + j] = (uint8_t)(state.h[i] >> (24 - 8 * j));
    }
}

/* The text of the UUIDv5 whose SHA-1 digest is `digest` (version 5, RFC variant). */
static void uuid_text(uint8_t digest[20], char out[UUID_CHARS]) {
    static const char hex[] = "0123456789abcdef";
    digest[6] = (uint8_t)((digest[6] & 0x0F) | 0x50);
    digest[8] = (uint8_t)((digest[8] & 0x3F) | 0x80);
    int at = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[at++] = '-';
        out[at++] = hex[digest[i] >> 4];
        out[at++] = hex[digest[i] & 0x0F];
    }
}

static PyObject *uuid5_texts(PyObject *self, PyObject *args) {
    (void)self;
    const char *prefix;
    Py_ssize_t prefix_size;
    Py_buffer rows;
    if (!PyArg_ParseTuple(args, "y#y*", &prefix, &prefix_size, &rows)) return NULL;
    PyObject *ids = NULL;
    if (rows.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "rows must be int64 values");
        goto done;
    }
    /* The prefix's whole blocks are hashed once; each row hashes the rest and its digits. */
    Sha1 state = {{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}, 0};
    Py_ssize_t whole = prefix_size - prefix_size % BLOCK_BYTES;
    for (Py_ssize_t at = 0; at < whole; at += BLOCK_BYTES) {
        sha1_block(state.h, (const uint8_t *)prefix + at);
    }
    state.length = (uint64_t)whole;
    size_t rest = (size_t)(prefix_size - whole);
    uint8_t tail[BLOCK_BYTES + 24];
    memcpy(tail, prefix + whole, rest);

    Py_ssize_t count = rows.len / 8;
    ids = PyList_New(count);
    if (ids == NULL) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        long long row;
        memcpy(&row, (const char *)rows.buf + i * 8, 8);
        int digits = snprintf((char *)tail + rest, 24, "%lld", row);
        uint8_t digest[20];
        sha1_finish(state, tail, rest + (size_t)digits, digest);
        PyObject *text = PyUnicode_New(UUID_CHARS, 127);
        if (text == NULL) {
            Py_CLEAR(ids);
            goto done;
        }
        uuid_text(digest, (char *)PyUnicode_1BYTE_DATA(text));
        PyList_SET_ITEM(ids, i, text);
    }
done:
    PyBuffer_Release(&rows);
    return ids;
}

static PyMethodDef methods[] = {
    {"uuid5_texts", uuid5_texts, METH_VARARGS,
     "uuid5_texts(prefix, rows)\n"
     "The UUIDv5 text of prefix + each row's decimal digits; see the .pyi."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_event_ids", "The UUIDv5 eventIds of a chunk's rows.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__event_ids(void) { return PyModule_Create(&module); }
