/*
 * consumers._direct_consumer: a librdkafka group member that reads a batch as columns, in C.
 *
 * Why C: confluent-kafka's Consumer.consume() makes a Message object per event, and each
 * of its fields is then one more Python call: about half of the consumer thread's time on
 * the development machine went to reading a batch, under the GIL the rest of the
 * consumer needs. Here a batch becomes four columns (partitions, offsets, keys, values),
 * each one buffer filled straight from librdkafka's messages: no Python object per
 * message, so nothing per message to allocate, free or show the cyclic GC.
 *
 * No private structures of confluent-kafka are touched: this drives its own handle
 * through librdkafka's public C API (meterpipe/rdkafka_api.h).
 *
 * Callbacks are served by consume() and close(), on the calling thread, with the GIL
 * taken for them: rebalances call `on_rebalance(kind, partitions)`, which returns the
 * offsets to start from on "assign" (a raised exception is re-raised by the consume() that
 * served it, after the default assignment is made); statistics go to `on_stats(json)`;
 * log lines to the logger.
 */
#include "rdkafka_api.h"

typedef struct {
    PyObject_HEAD
    rd_kafka_t *handle;
    rd_kafka_queue_t *queue;
    char *topic;
    char *replay_header;
    PyObject *logger;
    PyObject *on_rebalance; /* (kind: str, partitions: list[int]) -> list[(partition, offset)] */
    PyObject *on_stats;     /* (json: str) -> None */
    PyObject *raised;       /* an exception from a callback, for consume() to re-raise */
} DirectConsumer;

/* Keep the exception being raised (the first one; later ones are reported and dropped). */
static void keep_raised(DirectConsumer *self) {
    if (self->raised != NULL) {
        PyErr_WriteUnraisable(self->on_rebalance);
        return;
    }
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) PyException_SetTraceback(value, traceback);
    self->raised = value;
    Py_XDECREF(type);
    Py_XDECREF(traceback);
}

static void on_log(const rd_kafka_t *handle, int level, const char *facility, const char *text) {
    DirectConsumer *self = (DirectConsumer *)rk.opaque(handle);
    if (self != NULL) forward_log(self->logger, handle, level, facility, text);
}

static int on_stats(rd_kafka_t *handle, char *json, size_t length, void *opaque) {
    (void)handle;
    DirectConsumer *self = (DirectConsumer *)opaque;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *result = PyObject_CallFunction(self->on_stats, "s#", json, (Py_ssize_t)length);
    if (result == NULL) PyErr_WriteUnraisable(self->on_stats);
    Py_XDECREF(result);
    PyGILState_Release(gil);
    return 0; /* librdkafka frees the text */
}

/* The partition numbers of a list, for Python. */
static PyObject *partition_numbers(const rd_kafka_topic_partition_list_t *partitions) {
    PyObject *numbers = PyList_New(partitions->cnt);
    for (int i = 0; numbers != NULL && i < partitions->cnt; i++) {
        PyList_SET_ITEM(numbers, i, PyLong_FromLong(partitions->elems[i].partition));
    }
    return numbers;
}

/* Set each partition's start offset from [(partition, offset), ...]; -1 with an exception. */
static int set_offsets(rd_kafka_topic_partition_list_t *partitions, PyObject *answer) {
    PyObject *pairs = PySequence_Fast(answer, "on_rebalance must return (partition, offset) pairs");
    if (pairs == NULL) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(pairs); i++) {
        int partition;
        long long offset;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(pairs, i), "iL", &partition, &offset)) {
            Py_DECREF(pairs);
            return -1;
        }
        for (int j = 0; j < partitions->cnt; j++) {
            if (partitions->elems[j].partition == partition) partitions->elems[j].offset = offset;
        }
    }
    Py_DECREF(pairs);
    return 0;
}

/* Take or give up partitions, in the group's protocol (eager or cooperative). */
static void change_assignment(rd_kafka_t *handle, int assigning,
                              rd_kafka_topic_partition_list_t *partitions) {
    if (strcmp(rk.rebalance_protocol(handle), "COOPERATIVE") == 0) {
        rd_kafka_error_t *error = assigning ? rk.incremental_assign(handle, partitions)
                                            : rk.incremental_unassign(handle, partitions);
        if (error != NULL) rk.error_destroy(error);
    } else {
        rk.assign(handle, assigning ? partitions : NULL);
    }
}

static void on_rebalance(rd_kafka_t *handle, int err, rd_kafka_topic_partition_list_t *partitions,
                         void *opaque) {
    DirectConsumer *self = (DirectConsumer *)opaque;
    int assigning = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    const char *kind = assigning ? "assign" : rk.assignment_lost(handle) ? "lost" : "revoke";
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *numbers = partition_numbers(partitions);
    PyObject *answer = numbers == NULL ? NULL
        : PyObject_CallFunction(self->on_rebalance, "sO", kind, numbers);
    Py_XDECREF(numbers);
    if (answer == NULL || (assigning && answer != Py_None && set_offsets(partitions, answer) < 0))
        keep_raised(self);
    Py_XDECREF(answer);
    Py_BEGIN_ALLOW_THREADS
    change_assignment(handle, assigning, partitions);
    Py_END_ALLOW_THREADS
    PyGILState_Release(gil);
}

static char *copy_text(const char *text) {
    char *copy = PyMem_Malloc(strlen(text) + 1);
    if (copy == NULL) return (char *)PyErr_NoMemory();
    return strcpy(copy, text);
}

static int DirectConsumer_init(DirectConsumer *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"library", "config", "topic", "logger", "on_rebalance",
                               "on_stats", "replay_header", NULL};
    const char *path, *topic, *replay_header;
    PyObject *config, *logger, *rebalance, *stats;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO!sOOOs", keywords, &path, &PyDict_Type,
                                     &config, &topic, &logger, &rebalance, &stats, &replay_header))
        return -1;
    if (self->handle != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "DirectConsumer is already initialised");
        return -1;
    }
    if (load_librdkafka(path) < 0) return -1;
    if ((self->topic = copy_text(topic)) == NULL) return -1;
    if ((self->replay_header = copy_text(replay_header)) == NULL) return -1;
    self->logger = Py_NewRef(logger);
    self->on_rebalance = Py_NewRef(rebalance);
    self->on_stats = Py_NewRef(stats);
    rd_kafka_conf_t *conf = make_conf(config);
    if (conf == NULL) return -1;
    rk.conf_set_opaque(conf, self);
    rk.conf_set_log_cb(conf, on_log);
    rk.conf_set_rebalance_cb(conf, on_rebalance);
    rk.conf_set_stats_cb(conf, on_stats);
    char problem[512];
    self->handle = rk.new(RD_KAFKA_CONSUMER, conf, problem, sizeof problem);
    if (self->handle == NULL) {
        rk.conf_destroy(conf);
        PyErr_Format(PyExc_ValueError, "cannot create a librdkafka consumer: %s", problem);
        return -1;
    }
    rk.set_log_queue(self->handle, NULL);
    rk.poll_set_consumer(self->handle); /* one queue: messages, rebalances, stats, logs */
    self->queue = rk.queue_get_consumer(self->handle);
    return 0;
}

static int check_open(DirectConsumer *self) {
    if (self->queue != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "DirectConsumer is closed");
    return -1;
}

/* A one-topic partition list: [(partition, offset), ...]; NULL with an exception. */
static rd_kafka_topic_partition_list_t *offset_list(DirectConsumer *self, PyObject *pairs_arg) {
    PyObject *pairs = PySequence_Fast(pairs_arg, "expected (partition, offset) pairs");
    if (pairs == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(pairs);
    rd_kafka_topic_partition_list_t *list = rk.topic_partition_list_new((int)count);
    for (Py_ssize_t i = 0; i < count; i++) {
        int partition;
        long long offset;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(pairs, i), "iL", &partition, &offset)) {
            rk.topic_partition_list_destroy(list);
            Py_DECREF(pairs);
            return NULL;
        }
        rk.topic_partition_list_add(list, self->topic, partition)->offset = offset;
    }
    Py_DECREF(pairs);
    return list;
}

static PyObject *DirectConsumer_subscribe(DirectConsumer *self, PyObject *unused) {
    (void)unused;
    if (check_open(self) < 0) return NULL;
    rd_kafka_topic_partition_list_t *topics = rk.topic_partition_list_new(1);
    rk.topic_partition_list_add(topics, self->topic, RD_KAFKA_PARTITION_UA);
    int error = rk.subscribe(self->handle, topics);
    rk.topic_partition_list_destroy(topics);
    if (error != 0) {
        PyErr_Format(PyExc_RuntimeError, "cannot subscribe to %s: %s", self->topic,
                     rk.err2str(error));
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Does the message carry the replay header? */
static int is_replayed(DirectConsumer *self, const rd_kafka_message_t *message) {
    rd_kafka_headers_t *headers;
    const void *value;
    size_t size;
    return rk.message_headers(message, &headers) == 0 &&
           rk.header_get_last(headers, self->replay_header, &value, &size) == 0;
}

/* The keys or the values of a batch in Arrow's large-binary layout: int64 offsets (one
 * more than rows), the bytes back to back, and a validity bitmap (None when none is null). */
typedef struct {
    PyObject *offsets, *data, *validity;
    Py_ssize_t nulls;
} Column;

static int column_alloc(Column *column, Py_ssize_t rows, Py_ssize_t size, Py_ssize_t nulls) {
    column->nulls = nulls;
    column->offsets = PyBytes_FromStringAndSize(NULL, (rows + 1) * 8);
    column->data = PyBytes_FromStringAndSize(NULL, size);
    column->validity = nulls ? PyBytes_FromStringAndSize(NULL, (rows + 7) / 8) : Py_NewRef(Py_None);
    if (!column->offsets || !column->data || !column->validity) return -1;
    if (nulls) memset(PyBytes_AS_STRING(column->validity), 0, (size_t)(rows + 7) / 8);
    ((int64_t *)PyBytes_AS_STRING(column->offsets))[0] = 0;
    return 0;
}

/* Append row `row`: `size` bytes at `bytes`, or a null. */
static void column_put(Column *column, Py_ssize_t row, const void *bytes, size_t size) {
    int64_t *offsets = (int64_t *)PyBytes_AS_STRING(column->offsets);
    offsets[row + 1] = offsets[row] + (bytes ? (int64_t)size : 0);
    if (bytes == NULL) return;
    memcpy(PyBytes_AS_STRING(column->data) + offsets[row], bytes, size);
    if (column->nulls) {
        uint8_t *valid = (uint8_t *)PyBytes_AS_STRING(column->validity);
        valid[row >> 3] |= (uint8_t)(1u << (row & 7));
    }
}

static PyObject *column_tuple(Column *column) {
    return Py_BuildValue("(OOOn)", column->offsets, column->data, column->validity, column->nulls);
}

static void column_free(Column *column) {
    Py_XDECREF(column->offsets);
    Py_XDECREF(column->data);
    Py_XDECREF(column->validity);
}

/* (partitions, offsets, keys, values, replayed indexes, error texts) of the messages: the
 * positions as int32 and int64 arrays, keys and values as `Column`s. One buffer per
 * column, not an object per message: no allocation, and nothing for the GC, per event. */
static PyObject *batch_columns(DirectConsumer *self, rd_kafka_message_t **messages,
                               Py_ssize_t count) {
    Column keys = {0}, values = {0};
    PyObject *partitions = NULL, *offsets = NULL;
    PyObject *replayed = PyList_New(0), *errors = PyList_New(0);
    PyObject *result = NULL;
    if (!replayed || !errors) goto done;
    Py_ssize_t rows = 0, key_bytes = 0, value_bytes = 0, key_nulls = 0, value_nulls = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        const rd_kafka_message_t *message = messages[i];
        if (message->err != 0) {
            PyObject *text = PyUnicode_FromString(rk.message_errstr(message));
            int failed = text == NULL || PyList_Append(errors, text) < 0;
            Py_XDECREF(text);
            if (failed) goto done;
            continue;
        }
        if (is_replayed(self, message)) {
            PyObject *index = PyLong_FromSsize_t(rows);
            int failed = index == NULL || PyList_Append(replayed, index) < 0;
            Py_XDECREF(index);
            if (failed) goto done;
        }
        rows++;
        key_bytes += message->key ? (Py_ssize_t)message->key_len : 0;
        value_bytes += message->payload ? (Py_ssize_t)message->len : 0;
        key_nulls += message->key == NULL;
        value_nulls += message->payload == NULL;
    }
    partitions = PyBytes_FromStringAndSize(NULL, rows * 4);
    offsets = PyBytes_FromStringAndSize(NULL, rows * 8);
    if (!partitions || !offsets || column_alloc(&keys, rows, key_bytes, key_nulls) < 0 ||
        column_alloc(&values, rows, value_bytes, value_nulls) < 0)
        goto done;
    int32_t *partition_at = (int32_t *)PyBytes_AS_STRING(partitions);
    int64_t *offset_at = (int64_t *)PyBytes_AS_STRING(offsets);
    /* The buffers are this call's alone until returned: filled without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t row = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        const rd_kafka_message_t *message = messages[i];
        if (message->err != 0) continue;
        partition_at[row] = message->partition;
        offset_at[row] = message->offset;
        column_put(&keys, row, message->key, message->key_len);
        column_put(&values, row, message->payload, message->len);
        row++;
    }
    Py_END_ALLOW_THREADS
    PyObject *key_column = column_tuple(&keys), *value_column = column_tuple(&values);
    if (key_column && value_column)
        result = PyTuple_Pack(6, partitions, offsets, key_column, value_column, replayed, errors);
    Py_XDECREF(key_column);
    Py_XDECREF(value_column);
done:
    column_free(&keys);
    column_free(&values);
    Py_XDECREF(partitions);
    Py_XDECREF(offsets);
    Py_XDECREF(replayed);
    Py_XDECREF(errors);
    return result;
}

static PyObject *reraise_kept(DirectConsumer *self) {
    PyObject *raised = self->raised;
    self->raised = NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(raised), raised);
    Py_DECREF(raised);
    return NULL;
}

static PyObject *DirectConsumer_consume(DirectConsumer *self, PyObject *args) {
    Py_ssize_t max_messages;
    int timeout_ms;
    if (!PyArg_ParseTuple(args, "ni", &max_messages, &timeout_ms) || check_open(self) < 0)
        return NULL;
    if (max_messages < 1) {
        PyErr_SetString(PyExc_ValueError, "max_messages must be at least 1");
        return NULL;
    }
    rd_kafka_message_t **messages = PyMem_Malloc(sizeof(rd_kafka_message_t *) * max_messages);
    if (messages == NULL) return PyErr_NoMemory();
    ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    count = rk.consume_batch_queue(self->queue, timeout_ms, messages, (size_t)max_messages);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (count < 0) {
        PyErr_Format(PyExc_RuntimeError, "consume failed: %s", rk.err2str(rk.last_error()));
    } else if (self->raised == NULL) {
        result = batch_columns(self, messages, count);
    }
    for (ssize_t i = 0; i < count; i++) rk.message_destroy(messages[i]);
    PyMem_Free(messages);
    if (self->raised != NULL) {
        Py_XDECREF(result);
        return reraise_kept(self);
    }
    return result;
}

static PyObject *DirectConsumer_commit(DirectConsumer *self, PyObject *pairs) {
    if (check_open(self) < 0) return NULL;
    rd_kafka_topic_partition_list_t *offsets = offset_list(self, pairs);
    if (offsets == NULL) return NULL;
    int error = rk.commit(self->handle, offsets, 1);
    rk.topic_partition_list_destroy(offsets);
    if (error != 0) {
        PyErr_Format(PyExc_RuntimeError, "commit failed: %s", rk.err2str(error));
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *DirectConsumer_seek(DirectConsumer *self, PyObject *args) {
    PyObject *pairs;
    int timeout_ms;
    if (!PyArg_ParseTuple(args, "Oi", &pairs, &timeout_ms) || check_open(self) < 0) return NULL;
    rd_kafka_topic_partition_list_t *offsets = offset_list(self, pairs);
    if (offsets == NULL) return NULL;
    rd_kafka_error_t *error;
    Py_BEGIN_ALLOW_THREADS
    error = rk.seek_partitions(self->handle, offsets, timeout_ms);
    Py_END_ALLOW_THREADS
    PyObject *refused = PyList_New(0);
    if (error != NULL) {
        PyErr_Format(PyExc_RuntimeError, "seek failed: %s", rk.error_string(error));
        rk.error_destroy(error);
        Py_CLEAR(refused);
    }
    for (int i = 0; refused != NULL && i < offsets->cnt; i++) {
        if (offsets->elems[i].err == 0) continue;
        PyObject *pair = Py_BuildValue("is", offsets->elems[i].partition,
                                       rk.err2str(offsets->elems[i].err));
        if (pair == NULL || PyList_Append(refused, pair) < 0) Py_CLEAR(refused);
        Py_XDECREF(pair);
    }
    rk.topic_partition_list_destroy(offsets);
    return refused;
}

/* Leave the group (serving the last rebalance) and free the handle; idempotent. */
static void release(DirectConsumer *self) {
    rd_kafka_queue_t *queue = self->queue;
    rd_kafka_t *handle = self->handle;
    self->queue = NULL;
    self->handle = NULL;
    if (handle != NULL) {
        Py_BEGIN_ALLOW_THREADS
        rk.consumer_close(handle);
        rk.queue_destroy(queue);
        rk.destroy(handle);
        Py_END_ALLOW_THREADS
    }
}

static PyObject *DirectConsumer_close(DirectConsumer *self, PyObject *unused) {
    (void)unused;
    release(self);
    /* The callbacks are bound methods of the owner, which holds this object: a cycle. */
    Py_CLEAR(self->on_rebalance);
    Py_CLEAR(self->on_stats);
    if (self->raised != NULL) return reraise_kept(self);
    Py_RETURN_NONE;
}

static void DirectConsumer_dealloc(DirectConsumer *self) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback); /* the rebalance served by closing runs Python */
    release(self);
    PyErr_Restore(type, value, traceback);
    Py_CLEAR(self->logger);
    Py_CLEAR(self->on_rebalance);
    Py_CLEAR(self->on_stats);
    Py_CLEAR(self->raised);
    PyMem_Free(self->topic);
    PyMem_Free(self->replay_header);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef DirectConsumer_methods[] = {
    {"subscribe", (PyCFunction)DirectConsumer_subscribe, METH_NOARGS,
     "subscribe(): join the group for the topic."},
    {"consume", (PyCFunction)DirectConsumer_consume, METH_VARARGS,
     "consume(max_messages, timeout_ms): (partitions, offsets, keys, values, replayed,\n"
     "errors) of up to max_messages messages, as buffers; serves rebalances, statistics\n"
     "and logs."},
    {"commit", (PyCFunction)DirectConsumer_commit, METH_O,
     "commit([(partition, next offset), ...]): commit to Kafka, asynchronously."},
    {"seek", (PyCFunction)DirectConsumer_seek, METH_VARARGS,
     "seek([(partition, offset), ...], timeout_ms): continue there; the (partition, reason)\n"
     "pairs refused."},
    {"close", (PyCFunction)DirectConsumer_close, METH_NOARGS,
     "close(): leave the group and free the client."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DirectConsumerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "consumers._direct_consumer.DirectConsumer",
    .tp_basicsize = sizeof(DirectConsumer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "DirectConsumer(library, config, topic, logger, on_rebalance, on_stats, "
              "replay_header): a librdkafka group member for one topic.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DirectConsumer_init,
    .tp_dealloc = (destructor)DirectConsumer_dealloc,
    .tp_methods = DirectConsumer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "consumers._direct_consumer",
    "A librdkafka group member that reads a batch as column buffers, in C.", -1, NULL,
};

PyMODINIT_FUNC PyInit__direct_consumer(void) {
    return module_with_type(&module, &DirectConsumerType, "DirectConsumer");
}
