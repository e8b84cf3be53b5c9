/* SPDX-License-Identifier: MIT */
/* internal.h -- what the server's files share: the request, the handler
 * table entry, and the answer helpers. Not for use outside src/server. */
#ifndef IG_SERVER_INTERNAL_H
#define IG_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/metrics.h"
#include "route/gateway.h"
#include "server/server.h"

#define SRV_MAX_PARTS 24

struct srv_part {                 /* one multipart/form-data field */
    char name[64];
    char filename[128];
    char type[64];
    struct ig_buf data;
};

struct srv_req;
typedef enum MHD_Result (*srv_handler)(struct srv_req *r, const char *tail);

struct srv_req {
    struct srv *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    char id[40];                  /* request id, echoed as X-Request-Id */
    long started_ms;
    struct ig_buf body;
    int body_too_large;
    struct MHD_PostProcessor *pp;
    /* SRV_MAX_PARTS of them, allocated at the first: only a form (an
     * edit) has any, and the array is 7 KB that every request cleared. */
    struct srv_part *parts;
    int n_parts, too_many_parts;
    const struct ig_tenant_cfg *tenant;
    char tenant_name[64];
    /* Waiting for a job (Prefer: wait, or the OpenAI endpoints): the
     * connection is suspended and resumed by the waiter thread. */
    int waiting, resumed;
    char wait_job[40];
    long wait_until_ms;
    srv_handler after_wait;       /* answers once the wait is over */
    struct srv_req *next_waiter;
    /* A relayed request (route_gateway_relay): 1 while the vendor works,
     * 2 once relay holds the outcome. Under relay_mu, the request's own:
     * the server's wmu, which every relay took three times, was where the
     * HTTP threads waited on each other most. */
    pthread_mutex_t relay_mu;
    int relay_state;
    struct route_relay_result relay;
    /* Work deferred to a fetch worker (srv_defer): its input, its error. */
    json_t *deferred_body;
    struct ig_error deferred_err;
};

struct srv_thread;

struct srv {
    /* the socket, the acceptor and the HTTP threads (threads.c) */
    int listen_fd;
    pthread_t accept_thread;
    int accepting;
    atomic_int closing;
    struct srv_thread *threads;
    unsigned n_threads;
    const struct ig_config *cfg;
    struct srv_deps deps;
    unsigned char sign_key[32];
    int open_mode;                /* no tenant holds keys: everyone is the default tenant */
    char address[300];
    struct ig_metric *m_requests, *m_latency, *m_connections;
    /* waiters */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    struct srv_req *waiters;
    atomic_int suspended;         /* connections suspended and not yet answered */
    pthread_t waiter_thread;
    int stopping;
    struct route_sched *fetchers;  /* srv_defer's workers, made on first use, under wmu */
};

/* libmicrohttpd's callbacks for every daemon (server.c). */
enum MHD_Result srv_handle(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_size, void **req_cls);
void srv_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                   enum MHD_RequestTerminationCode toe);

/* Listens on sa and starts n HTTP threads and the acceptor (threads.c);
 * srv_threads_stop undoes whatever part of that was done. */
int srv_threads_start(struct srv *s, const struct sockaddr *sa, socklen_t len, unsigned n,
                      struct ig_error *err);
void srv_threads_stop(struct srv *s);

/* Answers (each takes ownership of body). */
enum MHD_Result srv_json(struct srv_req *r, unsigned status, json_t *body);
enum MHD_Result srv_error(struct srv_req *r, const struct ig_error *e);
enum MHD_Result srv_errorf(struct srv_req *r, unsigned status, const char *code, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));
/* An error carrying a job's id and attempts ({"code","message","attempts"} JSON). */
enum MHD_Result srv_job_error(struct srv_req *r, unsigned status, const char *job_id,
                              const char *error_json);
enum MHD_Result srv_bytes(struct srv_req *r, unsigned status, const char *mime, void *data,
                          size_t len, const char *const *headers);

const char *srv_header(struct srv_req *r, const char *name);
const struct srv_part *srv_part(struct srv_req *r, const char *name, int nth);
json_t *srv_body_json(struct srv_req *r, struct ig_error *err);
/* Suspends the connection until job_id is terminal or timeout_ms passes,
 * then calls after(r, NULL). */
enum MHD_Result srv_wait(struct srv_req *r, const char *job_id, long timeout_ms,
                         srv_handler after);

/* Resumes a suspended connection (from any thread, under the lock its
 * suspension was made under: wmu, or a relay's relay_mu): its after_wait
 * answers it. */
void srv_wake(struct srv_req *r);
/* Runs work(r) on a fetch worker with the connection suspended, then
 * after(r, NULL) answers on the HTTP thread: for a handler that would
 * otherwise block its thread (a URL input's download). */
enum MHD_Result srv_defer(struct srv_req *r, void (*work)(struct srv_req *r), srv_handler after);

/* Signed, expiring file URLs: /v1/files/HEX?tenant=T&exp=UNIX&sig=HMAC. */
int srv_sign_file_url(const struct srv *s, const char *hex, const char *tenant, long ttl_s,
                      char *out, size_t size);
int srv_check_file_sig(const struct srv *s, const char *hex, const char *tenant, const char *exp,
                       const char *sig);

/* Handlers, by file. */
enum MHD_Result srv_api_health(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_ready(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_metrics(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_files(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_jobs_create(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_jobs_get(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_jobs_cancel(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_openai_generations(struct srv_req *r, const char *tail);
enum MHD_Result srv_api_openai_edits(struct srv_req *r, const char *tail);

/* The job as the API shows it (state, outputs with signed URLs, provenance,
 * attempts, error). */
json_t *srv_job_view(struct srv_req *r, const char *job_id, int *state, struct ig_error *err);
/* Stores an uploaded image (probed under the limits first); hex gets its id. */
int srv_store_input(struct srv_req *r, const void *data, size_t len, char hex[65],
                    struct ig_error *err);

#endif
