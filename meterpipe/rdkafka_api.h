/*
 * The part of librdkafka's public C API that meterpipe's C clients use, resolved at run time.
 *
 * producers/_direct_producer.c and consumers/_direct_consumer.c drive librdkafka through its
 * public C API (stable ABI: librdkafka.so.1), on the very library confluent-kafka loaded
 * (its path comes from meterpipe/librdkafka.py). It is opened with dlopen, so building needs
 * no librdkafka headers: the types, constants and signatures used are declared here as
 * rdkafka.h defines them, and the error codes are checked against the library's own names
 * when it is loaded. Each extension includes this file and keeps its own function table.
 *
 * Log lines are queued (log.queue) and handed to a Python logger by whichever thread serves
 * the client's queue, taking the GIL for it, in confluent-kafka's format and levels.
 */
#ifndef METERPIPE_RDKAFKA_API_H
#define METERPIPE_RDKAFKA_API_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_error_s rd_kafka_error_t;
typedef struct rd_kafka_metadata rd_kafka_metadata_t;
typedef struct {
    int err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *private_;
} rd_kafka_message_t;
typedef struct {
    char *topic;
    int32_t partition;
    int64_t offset;
    void *metadata;
    size_t metadata_size;
    void *opaque;
    int err;
    void *private_;
} rd_kafka_topic_partition_t;
typedef struct {
    int cnt;
    int size;
    rd_kafka_topic_partition_t *elems;
} rd_kafka_topic_partition_list_t;

enum {
    RD_KAFKA_PRODUCER = 0,
    RD_KAFKA_CONSUMER = 1,
    RD_KAFKA_CONF_OK = 0,
    RD_KAFKA_PARTITION_UA = -1,
    RD_KAFKA_MSG_F_COPY = 0x2,
    RD_KAFKA_PURGE_F_QUEUE = 0x1,
    RD_KAFKA_PURGE_F_INFLIGHT = 0x2,
    RD_KAFKA_VTYPE_END = 0,
    RD_KAFKA_VTYPE_RKT = 2,
    RD_KAFKA_VTYPE_VALUE = 4,
    RD_KAFKA_VTYPE_KEY = 5,
    RD_KAFKA_VTYPE_MSGFLAGS = 7,
    RD_KAFKA_VTYPE_HEADERS = 10,
};

/* Error codes, checked by name at load (check_error_codes). */
#define RD_KAFKA_ERRORS(X)                                 \
    X(RD_KAFKA_RESP_ERR__QUEUE_FULL, -184, "_QUEUE_FULL")  \
    X(RD_KAFKA_RESP_ERR__FATAL, -150, "_FATAL")            \
    X(RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, -175, "_ASSIGN_PARTITIONS") \
    X(RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, -174, "_REVOKE_PARTITIONS")
#define RD_KAFKA_ERROR_ENUM(symbol, code, name) symbol = code,
enum { RD_KAFKA_ERRORS(RD_KAFKA_ERROR_ENUM) };

typedef void (*dr_msg_cb_t)(rd_kafka_t *, const rd_kafka_message_t *, void *);
typedef void (*error_cb_t)(rd_kafka_t *, int, const char *, void *);
typedef void (*log_cb_t)(const rd_kafka_t *, int, const char *, const char *);
typedef void (*rebalance_cb_t)(rd_kafka_t *, int, rd_kafka_topic_partition_list_t *, void *);
typedef int (*stats_cb_t)(rd_kafka_t *, char *, size_t, void *);

#define RD_KAFKA_FUNCTIONS(X)                                                                   \
    X(rd_kafka_conf_t *, conf_new, (void))                                                      \
    X(int, conf_set, (rd_kafka_conf_t *, const char *, const char *, char *, size_t))           \
    X(void, conf_destroy, (rd_kafka_conf_t *))                                                  \
    X(void, conf_set_opaque, (rd_kafka_conf_t *, void *))                                       \
    X(void, conf_set_dr_msg_cb, (rd_kafka_conf_t *, dr_msg_cb_t))                               \
    X(void, conf_set_error_cb, (rd_kafka_conf_t *, error_cb_t))                                 \
    X(void, conf_set_log_cb, (rd_kafka_conf_t *, log_cb_t))                                     \
    X(void, conf_set_rebalance_cb, (rd_kafka_conf_t *, rebalance_cb_t))                         \
    X(void, conf_set_stats_cb, (rd_kafka_conf_t *, stats_cb_t))                                 \
    X(rd_kafka_t *, new, (int, rd_kafka_conf_t *, char *, size_t))                              \
    X(int, set_log_queue, (rd_kafka_t *, rd_kafka_queue_t *))                                   \
    X(void *, opaque, (const rd_kafka_t *))                                                     \
    X(const char *, name, (const rd_kafka_t *))                                                 \
    X(const char *, err2str, (int))                                                             \
    X(const char *, err2name, (int))                                                            \
    X(int, last_error, (void))                                                                  \
    X(int, fatal_error, (rd_kafka_t *, char *, size_t))                                         \
    X(const char *, error_string, (const rd_kafka_error_t *))                                   \
    X(void, error_destroy, (rd_kafka_error_t *))                                                \
    X(int, poll, (rd_kafka_t *, int))                                                           \
    X(void, destroy, (rd_kafka_t *))                                                            \
    X(rd_kafka_topic_t *, topic_new, (rd_kafka_t *, const char *, void *))                      \
    X(void, topic_destroy, (rd_kafka_topic_t *))                                                \
    X(int, produce, (rd_kafka_topic_t *, int32_t, int, void *, size_t, const void *, size_t,    \
                     void *))                                                                   \
    X(int, producev, (rd_kafka_t *, ...))                                                       \
    X(rd_kafka_headers_t *, headers_new, (size_t))                                              \
    X(int, header_add, (rd_kafka_headers_t *, const char *, ssize_t, const void *, ssize_t))    \
    X(void, headers_destroy, (rd_kafka_headers_t *))                                            \
    X(int, header_get_last, (const rd_kafka_headers_t *, const char *, const void **, size_t *)) \
    X(int, flush, (rd_kafka_t *, int))                                                          \
    X(int, outq_len, (rd_kafka_t *))                                                            \
    X(int, purge, (rd_kafka_t *, int))                                                          \
    X(int, metadata, (rd_kafka_t *, int, rd_kafka_topic_t *, const rd_kafka_metadata_t **, int)) \
    X(void, metadata_destroy, (const rd_kafka_metadata_t *))                                    \
    X(int, poll_set_consumer, (rd_kafka_t *))                                                   \
    X(rd_kafka_queue_t *, queue_get_consumer, (rd_kafka_t *))                                   \
    X(void, queue_destroy, (rd_kafka_queue_t *))                                                \
    X(ssize_t, consume_batch_queue, (rd_kafka_queue_t *, int, rd_kafka_message_t **, size_t))   \
    X(void, message_destroy, (rd_kafka_message_t *))                                            \
    X(const char *, message_errstr, (const rd_kafka_message_t *))                               \
    X(int, message_headers, (const rd_kafka_message_t *, rd_kafka_headers_t **))               \
    X(int, subscribe, (rd_kafka_t *, const rd_kafka_topic_partition_list_t *))                  \
    X(int, assign, (rd_kafka_t *, const rd_kafka_topic_partition_list_t *))                     \
    X(rd_kafka_error_t *, incremental_assign, (rd_kafka_t *,                                    \
                                               const rd_kafka_topic_partition_list_t *))        \
    X(rd_kafka_error_t *, incremental_unassign, (rd_kafka_t *,                                  \
                                                 const rd_kafka_topic_partition_list_t *))      \
    X(const char *, rebalance_protocol, (rd_kafka_t *))                                         \
    X(int, assignment_lost, (rd_kafka_t *))                                                     \
    X(int, commit, (rd_kafka_t *, const rd_kafka_topic_partition_list_t *, int))                \
    X(rd_kafka_error_t *, seek_partitions, (rd_kafka_t *, rd_kafka_topic_partition_list_t *,    \
                                            int))                                               \
    X(int, consumer_close, (rd_kafka_t *))                                                      \
    X(rd_kafka_topic_partition_list_t *, topic_partition_list_new, (int))                       \
    X(rd_kafka_topic_partition_t *, topic_partition_list_add, (rd_kafka_topic_partition_list_t *, \
                                                               const char *, int32_t))          \
    X(void, topic_partition_list_destroy, (rd_kafka_topic_partition_list_t *))

#define RD_KAFKA_SLOT(result, name, params) result(*name) params;
static struct {
    RD_KAFKA_FUNCTIONS(RD_KAFKA_SLOT)
} rk;
static void *rk_library = NULL;

/* Every code this file names must mean what rdkafka.h says: a changed ABI fails loudly. */
static int check_error_codes(const char *path) {
#define RD_KAFKA_CHECK(symbol, code, expected)                                                  \
    if (strcmp(rk.err2name(code), expected) != 0) {                                             \
        PyErr_Format(PyExc_OSError, "%s: error %d is %s, not %s", path, code, rk.err2name(code),  \
                     expected);                                                                 \
        return -1;                                                                              \
    }
    RD_KAFKA_ERRORS(RD_KAFKA_CHECK)
#undef RD_KAFKA_CHECK
    return 0;
}

/* Resolve every function above from the library at `path`; once per extension. */
static int load_librdkafka(const char *path) {
    if (rk_library != NULL) return 0;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        PyErr_Format(PyExc_OSError, "cannot load librdkafka from %s: %s", path, dlerror());
        return -1;
    }
#define RD_KAFKA_RESOLVE(result, name, params)                                                  \
    *(void **)&rk.name = dlsym(handle, "rd_kafka_" #name);                                      \
    if (rk.name == NULL) {                                                                      \
        PyErr_Format(PyExc_OSError, "%s has no rd_kafka_" #name, path);                         \
        dlclose(handle);                                                                        \
        return -1;                                                                              \
    }
    RD_KAFKA_FUNCTIONS(RD_KAFKA_RESOLVE)
#undef RD_KAFKA_RESOLVE
    if (check_error_codes(path) < 0) {
        dlclose(handle);
        return -1;
    }
    rk_library = handle;
    return 0;
}

/* Apply {name: text}; NULL with an exception if librdkafka refuses a key. Log lines queued
 * for the thread that serves the client (see forward_log). */
static rd_kafka_conf_t *make_conf(PyObject *config) {
    rd_kafka_conf_t *conf = rk.conf_new();
    char problem[512];
    PyObject *name, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(config, &position, &name, &value)) {
        const char *name_text = PyUnicode_AsUTF8(name);
        const char *value_text = name_text == NULL ? NULL : PyUnicode_AsUTF8(value);
        if (value_text == NULL) {
            rk.conf_destroy(conf);
            return NULL;
        }
        if (rk.conf_set(conf, name_text, value_text, problem, sizeof problem) != RD_KAFKA_CONF_OK) {
            PyErr_Format(PyExc_ValueError, "librdkafka refused %s: %s", name_text, problem);
            rk.conf_destroy(conf);
            return NULL;
        }
    }
    if (rk.conf_set(conf, "log.queue", "true", problem, sizeof problem) != RD_KAFKA_CONF_OK) {
        PyErr_Format(PyExc_ValueError, "librdkafka refused log.queue: %s", problem);
        rk.conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* syslog level (librdkafka) to Python logging level, as confluent-kafka maps them. */
static int python_level(int syslog_level) {
    if (syslog_level <= 2) return 50;
    if (syslog_level == 3) return 40;
    if (syslog_level == 4) return 30;
    if (syslog_level <= 6) return 20;
    return 10;
}

/* logger.log(level, "%s [%s] %s", facility, client name, text), with the GIL. */
static void forward_log(PyObject *logger, const rd_kafka_t *handle, int level,
                        const char *facility, const char *text) {
    if (logger == NULL || !Py_IsInitialized()) return;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *line = PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
    PyObject *result = line == NULL ? NULL
        : PyObject_CallMethod(logger, "log", "isssO", python_level(level), "%s [%s] %s",
                              facility, rk.name(handle), line);
    Py_XDECREF(line);
    if (result == NULL) PyErr_WriteUnraisable(logger);
    Py_XDECREF(result);
    PyGILState_Release(gil);
}

/* The extension module: `type` under `name`, its only member. */
static PyObject *module_with_type(struct PyModuleDef *definition, PyTypeObject *type,
                                  const char *name) {
    if (PyType_Ready(type) < 0) return NULL;
    PyObject *created = PyModule_Create(definition);
    if (created != NULL && PyModule_AddObjectRef(created, name, (PyObject *)type) < 0) {
        Py_CLEAR(created);
    }
    return created;
}

#endif
