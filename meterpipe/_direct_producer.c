/*
 * meterpipe._direct_producer: a librdkafka producer driven from C, a chunk per call.
 *
 * Why C: confluent-kafka's Producer.produce() parses its arguments, builds a per-message
 * state and takes the GIL for every message: 2.0 CPU-s per million events on the
 * development machine, the whole of the publisher's sending and its largest single cost.
 * Here a chunk's keys and values are read once, then queued with the GIL released, and
 * delivery reports are counted in C (only failures are reported, see kafka_config.py).
 *
 * No private structures of confluent-kafka are touched: this drives its own handle
 * through librdkafka's public C API (meterpipe/rdkafka_api.h).
 *
 * Callbacks are served only by send(), send_one() and flush(), on the calling thread: delivery
 * failures and fatal errors are recorded without the GIL; log lines are handed to a
 * Python logger with it.
 */
#include "rdkafka_api.h"

/* ---- the producer ---- */
enum { FAILURE_TEXT = 512, FULL_WAIT_MS = 50, POLL_EVERY = 5000 };

typedef struct {
    PyObject_HEAD
    rd_kafka_t *handle;
    rd_kafka_topic_t *topic;
    PyObject *logger; /* logging.Logger for librdkafka's lines */
    long long failures;
    char first_failure[FAILURE_TEXT];
} DirectProducer;

static void record_failure(DirectProducer *self, const char *text) {
    if (self->failures++ == 0) snprintf(self->first_failure, FAILURE_TEXT, "%s", text);
}

static void on_delivery(rd_kafka_t *handle, const rd_kafka_message_t *message, void *opaque) {
    (void)handle;
    if (message->err == 0) return;
    char text[FAILURE_TEXT];
    snprintf(text, sizeof text, "%s (partition %d)", rk.err2str(message->err),
             (int)message->partition);
    record_failure((DirectProducer *)opaque, text);
}

static void on_error(rd_kafka_t *handle, int err, const char *reason, void *opaque) {
    if (err != RD_KAFKA_RESP_ERR__FATAL) return; /* transient: librdkafka retries */
    char cause[FAILURE_TEXT - 64] = "", text[FAILURE_TEXT];
    int fatal = rk.fatal_error(handle, cause, sizeof cause); /* the error behind _FATAL */
    snprintf(text, sizeof text, "fatal producer error: %s", fatal && cause[0] ? cause : reason);
    record_failure((DirectProducer *)opaque, text);
}

static void on_log(const rd_kafka_t *handle, int level, const char *facility, const char *text) {
    DirectProducer *self = (DirectProducer *)rk.opaque(handle);
    if (self != NULL) forward_log(self->logger, handle, level, facility, text);
}

static int DirectProducer_init(DirectProducer *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"library", "config", "topic", "logger", NULL};
    const char *path, *topic;
    PyObject *config, *logger;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO!sO", keywords, &path, &PyDict_Type,
                                     &config, &topic, &logger))
        return -1;
    if (self->handle != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "DirectProducer is already initialised");
        return -1;
    }
    if (load_librdkafka(path) < 0) return -1;
    rd_kafka_conf_t *conf = make_conf(config);
    if (conf == NULL) return -1;
    char problem[512];
    rk.conf_set_opaque(conf, self);
    rk.conf_set_dr_msg_cb(conf, on_delivery);
    rk.conf_set_error_cb(conf, on_error);
    rk.conf_set_log_cb(conf, on_log);
    Py_INCREF(logger);
    self->logger = logger;
    self->handle = rk.new(RD_KAFKA_PRODUCER, conf, problem, sizeof problem);
    if (self->handle == NULL) {
        rk.conf_destroy(conf);
        PyErr_Format(PyExc_ValueError, "cannot create a librdkafka producer: %s", problem);
        return -1;
    }
    rk.set_log_queue(self->handle, NULL); /* log lines wait for poll(), on a Python thread */
    self->topic = rk.topic_new(self->handle, topic, NULL);
    if (self->topic == NULL) {
        PyErr_Format(PyExc_ValueError, "cannot use topic %s: %s", topic,
                     rk.err2str(rk.last_error()));
        return -1;
    }
    return 0;
}

static int check_open(DirectProducer *self) {
    if (self->handle != NULL && self->topic != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "DirectProducer is not open");
    return -1;
}

/* A key or value's bytes: str as UTF-8, bytes as they are, None as no bytes. */
static int bytes_of(PyObject *item, const char **data, size_t *size) {
    if (item == Py_None) {
        *data = NULL;
        *size = 0;
        return 0;
    }
    if (PyBytes_Check(item)) {
        *data = PyBytes_AS_STRING(item);
        *size = (size_t)PyBytes_GET_SIZE(item);
        return 0;
    }
    Py_ssize_t length;
    *data = PyUnicode_AsUTF8AndSize(item, &length);
    *size = (size_t)length;
    return *data == NULL ? -1 : 0;
}

typedef struct {
    const char *data;
    size_t size;
} Span;

/* Wait for room in a full queue: let Python decide first (on_full may raise to give up). */
static int wait_for_room(DirectProducer *self, PyObject *on_full) {
    PyObject *answer = PyObject_CallNoArgs(on_full);
    if (answer == NULL) return -1;
    Py_DECREF(answer);
    Py_BEGIN_ALLOW_THREADS
    rk.poll(self->handle, FULL_WAIT_MS);
    Py_END_ALLOW_THREADS
    return 0;
}

/* Queue spans[start:count] until done or the queue is full; the index reached. */
static Py_ssize_t queue_spans(DirectProducer *self, const Span *keys, const Span *values,
                              Py_ssize_t start, Py_ssize_t count, int *error) {
    Py_ssize_t index = start;
    *error = 0;
    for (; index < count; index++) {
        if (rk.produce(self->topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                       (void *)values[index].data, values[index].size, keys[index].data,
                       keys[index].size, NULL) != 0) {
            *error = rk.last_error();
            break;
        }
        if (index % POLL_EVERY == 0) rk.poll(self->handle, 0);
    }
    return index;
}

static PyObject *DirectProducer_send(DirectProducer *self, PyObject *args) {
    PyObject *keys_arg, *values_arg, *on_full;
    if (!PyArg_ParseTuple(args, "OOO", &keys_arg, &values_arg, &on_full) || check_open(self) < 0)
        return NULL;
    /* Tuples hold the items alive, unchanged, while the GIL is released. */
    PyObject *keys = PySequence_Tuple(keys_arg);
    PyObject *values = keys == NULL ? NULL : PySequence_Tuple(values_arg);
    Span *spans = NULL;
    PyObject *result = NULL;
    if (values == NULL) goto done;
    Py_ssize_t count = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(values) != count) {
        PyErr_SetString(PyExc_ValueError, "keys and values differ in length");
        goto done;
    }
    spans = PyMem_Malloc(sizeof(Span) * 2 * (size_t)(count ? count : 1));
    if (spans == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Span *key_spans = spans, *value_spans = spans + count;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (bytes_of(PyTuple_GET_ITEM(keys, i), &key_spans[i].data, &key_spans[i].size) < 0 ||
            bytes_of(PyTuple_GET_ITEM(values, i), &value_spans[i].data, &value_spans[i].size) < 0)
            goto done;
    }
    Py_ssize_t index = 0;
    while (index < count) {
        int error;
        Py_BEGIN_ALLOW_THREADS
        index = queue_spans(self, key_spans, value_spans, index, count, &error);
        Py_END_ALLOW_THREADS
        if (error == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (wait_for_room(self, on_full) < 0) goto done;
        } else if (error != 0) {
            PyErr_Format(PyExc_RuntimeError, "librdkafka refused a message: %s", rk.err2str(error));
            goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(spans);
    Py_XDECREF(keys);
    Py_XDECREF(values);
    return result;
}

/* headers: a list of (name, str | bytes | None); NULL with an exception if one is not. */
static rd_kafka_headers_t *make_headers(PyObject *pairs) {
    PyObject *items = PySequence_Fast(pairs, "headers must be a sequence of (name, value)");
    if (items == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    rd_kafka_headers_t *headers = rk.headers_new((size_t)count);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(items, i), *name_item, *value_item;
        const char *name, *value;
        size_t size;
        if (!PyArg_ParseTuple(pair, "OO", &name_item, &value_item) ||
            (name = PyUnicode_AsUTF8(name_item)) == NULL ||
            bytes_of(value_item, &value, &size) < 0) {
            rk.headers_destroy(headers);
            Py_DECREF(items);
            return NULL;
        }
        rk.header_add(headers, name, -1, value, value == NULL ? 0 : (ssize_t)size);
    }
    Py_DECREF(items);
    return headers;
}

static PyObject *DirectProducer_send_one(DirectProducer *self, PyObject *args) {
    PyObject *key_item, *value_item, *header_pairs, *on_full;
    const char *key, *value;
    size_t key_size, value_size;
    if (!PyArg_ParseTuple(args, "OOOO", &key_item, &value_item, &header_pairs, &on_full) ||
        check_open(self) < 0 || bytes_of(key_item, &key, &key_size) < 0 ||
        bytes_of(value_item, &value, &value_size) < 0)
        return NULL;
    for (;;) {
        rd_kafka_headers_t *headers = make_headers(header_pairs);
        if (headers == NULL) return NULL;
        int error = rk.producev(self->handle, RD_KAFKA_VTYPE_RKT, self->topic,
                                RD_KAFKA_VTYPE_MSGFLAGS, RD_KAFKA_MSG_F_COPY, RD_KAFKA_VTYPE_VALUE,
                                (void *)value, value_size, RD_KAFKA_VTYPE_KEY, key, key_size,
                                RD_KAFKA_VTYPE_HEADERS, headers, RD_KAFKA_VTYPE_END);
        if (error == 0) break; /* the headers now belong to the message */
        rk.headers_destroy(headers);
        if (error != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            PyErr_Format(PyExc_RuntimeError, "librdkafka refused a message: %s", rk.err2str(error));
            return NULL;
        }
        if (wait_for_room(self, on_full) < 0) return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rk.poll(self->handle, 0);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *DirectProducer_flush(DirectProducer *self, PyObject *arg) {
    int timeout_ms = PyLong_AsLong(arg);
    if ((timeout_ms == -1 && PyErr_Occurred()) || check_open(self) < 0) return NULL;
    int outstanding;
    Py_BEGIN_ALLOW_THREADS
    rk.flush(self->handle, timeout_ms);
    outstanding = rk.outq_len(self->handle);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(outstanding);
}

static PyObject *DirectProducer_purge(DirectProducer *self, PyObject *unused) {
    (void)unused;
    if (check_open(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    rk.purge(self->handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *DirectProducer_learn_topic(DirectProducer *self, PyObject *arg) {
    int timeout_ms = PyLong_AsLong(arg);
    if ((timeout_ms == -1 && PyErr_Occurred()) || check_open(self) < 0) return NULL;
    const rd_kafka_metadata_t *metadata = NULL;
    int error;
    Py_BEGIN_ALLOW_THREADS
    error = rk.metadata(self->handle, 0, self->topic, &metadata, timeout_ms);
    if (error == 0) rk.metadata_destroy(metadata);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(error == 0);
}

static PyObject *DirectProducer_take_failures(DirectProducer *self, PyObject *unused) {
    (void)unused;
    PyObject *result = Py_BuildValue("Ls", self->failures, self->first_failure);
    self->failures = 0;
    self->first_failure[0] = '\0';
    return result;
}

static void DirectProducer_dealloc(DirectProducer *self) {
    rd_kafka_topic_t *topic = self->topic;
    rd_kafka_t *handle = self->handle;
    self->topic = NULL;
    self->handle = NULL;
    if (handle != NULL) {
        Py_BEGIN_ALLOW_THREADS
        if (topic != NULL) rk.topic_destroy(topic);
        rk.destroy(handle);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self->logger);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef DirectProducer_methods[] = {
    {"send", (PyCFunction)DirectProducer_send, METH_VARARGS,
     "send(keys, values, on_full): queue one message per (key, value); when the queue is\n"
     "full, call on_full() (it may raise to give up) and wait for room."},
    {"send_one", (PyCFunction)DirectProducer_send_one, METH_VARARGS,
     "send_one(key, value, headers, on_full): queue one message with headers."},
    {"flush", (PyCFunction)DirectProducer_flush, METH_O,
     "flush(timeout_ms): wait for acknowledgements; the number still outstanding."},
    {"purge", (PyCFunction)DirectProducer_purge, METH_NOARGS,
     "purge(): drop every queued and in-flight message."},
    {"learn_topic", (PyCFunction)DirectProducer_learn_topic, METH_O,
     "learn_topic(timeout_ms): fetch the topic's partitions; True if it could."},
    {"take_failures", (PyCFunction)DirectProducer_take_failures, METH_NOARGS,
     "take_failures(): (delivery failures since the last call, text of the first)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DirectProducerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "meterpipe._direct_producer.DirectProducer",
    .tp_basicsize = sizeof(DirectProducer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "DirectProducer(library, config, topic, logger): a librdkafka producer for one "
              "topic.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DirectProducer_init,
    .tp_dealloc = (destructor)DirectProducer_dealloc,
    .tp_methods = DirectProducer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "meterpipe._direct_producer",
    "A librdkafka producer driven from C, a chunk per call.", -1, NULL,
};

PyMODINIT_FUNC PyInit__direct_producer(void) {
    return module_with_type(&module, &DirectProducerType, "DirectProducer");
}
