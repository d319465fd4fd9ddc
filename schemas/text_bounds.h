/*
 * Texts handed to the schemas' C passes: one UTF-8 buffer and n + 1 int64 offsets into it
 * (schemas/arrow_text.py). Shared by _event_dates.c and _cell_patterns.c, so that both
 * refuse the same malformed offsets with the same messages.
 */
#ifndef METERPIPE_TEXT_BOUNDS_H
#define METERPIPE_TEXT_BOUNDS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* How many texts `bounds` delimits in `size` bytes of data; -1 with ValueError set unless it
 * is n + 1 int64 offsets, each at least the one before, none past the data. */
static Py_ssize_t text_count(const Py_buffer *bounds, Py_ssize_t size) {
    Py_ssize_t rows = bounds->len / 8 - 1;
    if (bounds->len % 8 != 0 || rows < 0) {
        PyErr_SetString(PyExc_ValueError, "bounds must be n + 1 int64 offsets");
        return -1;
    }
    int64_t previous = 0;
    for (Py_ssize_t i = 0; i <= rows; i++) {
        int64_t bound;
        memcpy(&bound, (const char *)bounds->buf + i * 8, 8);
        if (bound < previous || bound > size) {
            PyErr_SetString(PyExc_ValueError, "bounds must rise within the data");
            return -1;
        }
        previous = bound;
    }
    return rows;
}

/* Text `i`: where it starts in the data, and its length in bytes (bounds already checked). */
static Py_ssize_t text_at(const Py_buffer *bounds, Py_ssize_t i, Py_ssize_t *size) {
    int64_t start, end;
    memcpy(&start, (const char *)bounds->buf + i * 8, 8);
    memcpy(&end, (const char *)bounds->buf + (i + 1) * 8, 8);
    *size = (Py_ssize_t)(end - start);
    return (Py_ssize_t)start;
}

#endif
