/*
 * schemas._cell_patterns: whole-cell matches of the model's fixed patterns, in C.
 *
 * Why C: every file row is checked against four patterns when it is scanned, and every
 * event again when a consumer prepares its batch. As polars regular expressions
 * (`str.contains("^(?:...)$")`) the UUID, decimal, currency and boolean rules took about
 * 0.3 CPU-s per million rows on each side, the larger part of validating; each of these
 * patterns is a fixed shape of ASCII classes, checked here in one pass over the bytes.
 *
 * The patterns are schemas.model's, matched against the whole text:
 *   'u'  UUID_PATTERN      8-4-4-4-12 hexadecimal digits (either case) joined by '-'
 *   'd'  DECIMAL_PATTERN   1 to 20 digits, then optionally '.' and 1 to 12 digits
 *   'c'  CURRENCY_PATTERN  exactly 3 ASCII letters (either case)
 *   'b'  BOOLEAN_PATTERN   "true" or "false", each letter in either case
 * Every class is ASCII, so any byte of a multi-byte UTF-8 character fails to match;
 * schemas/validation.py maps each pattern string to its code, and the tests hold each
 * code to Python's `re.fullmatch` of the model's pattern.
 *
 * Only the Python C API is used (buffers in, a bytearray out).
 */
#include "text_bounds.h"

enum { UUID_CHARS = 36, MAX_WHOLE_DIGITS = 20, MAX_FRACTION_DIGITS = 12, CURRENCY_CHARS = 3 };

/* Each byte's ASCII classes, looked up: branching on them mispredicted on random hex text. */
enum { DIGIT = 1, HEX = 2, LETTER = 4 };
static uint8_t classes[256];

static void fill_classes(void) {
    for (int c = 0; c < 256; c++) {
        int digit = c >= '0' && c <= '9', letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        int hex = digit || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f' && letter);
        classes[c] = (uint8_t)((digit ? DIGIT : 0) | (hex ? HEX : 0) | (letter ? LETTER : 0));
    }
}

static int is_digit(uint8_t c) { return classes[c] & DIGIT; }

static int is_letter(uint8_t c) { return classes[c] & LETTER; }

static int is_uuid(const uint8_t *text, Py_ssize_t size) {
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (size != UUID_CHARS) return 0;
    int fits = 1;
    for (Py_ssize_t i = 0; i < UUID_CHARS; i++)
        fits &= shape[i] == '-' ? text[i] == '-' : (classes[text[i]] & HEX) != 0;
    return fits;
}

/* How many digits start `text`, looking at no more than `limit + 1` of them. */
static Py_ssize_t leading_digits(const uint8_t *text, Py_ssize_t size, Py_ssize_t limit) {
    Py_ssize_t count = 0;
    while (count < size && count <= limit && is_digit(text[count])) count++;
    return count;
}

static int is_decimal(const uint8_t *text, Py_ssize_t size) {
    Py_ssize_t whole = leading_digits(text, size, MAX_WHOLE_DIGITS);
    if (whole < 1 || whole > MAX_WHOLE_DIGITS) return 0;
    if (whole == size) return 1;
    if (text[whole] != '.') return 0;
    Py_ssize_t fraction = leading_digits(text + whole + 1, size - whole - 1, MAX_FRACTION_DIGITS);
    return fraction >= 1 && fraction <= MAX_FRACTION_DIGITS && whole + 1 + fraction == size;
}

static int is_currency_shape(const uint8_t *text, Py_ssize_t size) {
    return size == CURRENCY_CHARS && is_letter(text[0]) && is_letter(text[1]) &&
           is_letter(text[2]);
}

/* Equal to the lower-case ASCII `word`, each letter of `text` in either case. */
static int is_word(const uint8_t *text, Py_ssize_t size, const char *word) {
    if ((size_t)size != strlen(word)) return 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (!is_letter(text[i]) || (text[i] | 0x20) != (uint8_t)word[i]) return 0;
    }
    return 1;
}

static int is_boolean(const uint8_t *text, Py_ssize_t size) {
    return is_word(text, size, "true") || is_word(text, size, "false");
}

typedef int (*Matcher)(const uint8_t *, Py_ssize_t);

static Matcher matcher_for(int code) {
    switch (code) {
    case 'u': return is_uuid;
    case 'd': return is_decimal;
    case 'c': return is_currency_shape;
    case 'b': return is_boolean;
    default: return NULL;
    }
}

static PyObject *match_cells(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bounds, data;
    int code;
    if (!PyArg_ParseTuple(args, "y*y*C", &bounds, &data, &code)) return NULL;
    PyObject *matches = NULL;
    Matcher matcher = matcher_for(code);
    Py_ssize_t rows = matcher == NULL ? -1 : text_count(&bounds, data.len);
    if (matcher == NULL) PyErr_Format(PyExc_ValueError, "no pattern has the code %c", code);
    if (rows >= 0 && (matches = PyByteArray_FromStringAndSize(NULL, rows)) != NULL) {
        uint8_t *out = (uint8_t *)PyByteArray_AS_STRING(matches);
        const uint8_t *text = data.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < rows; i++) {
            Py_ssize_t size, start = text_at(&bounds, i, &size);
            out[i] = (uint8_t)matcher(text + start, size);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&bounds);
    PyBuffer_Release(&data);
    return matches;
}

static PyMethodDef methods[] = {
    {"match_cells", match_cells, METH_VARARGS,
     "match_cells(bounds, data, code)\n"
     "1 where a text wholly matches the pattern `code`, else 0; see the .pyi."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cell_patterns", "The model's fixed cell patterns, matched in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cell_patterns(void) {
    fill_classes();
    return PyModule_Create(&module);
}
