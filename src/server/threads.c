/* SPDX-License-Identifier: MIT */
/* threads.c -- the listening socket, the acceptor and the HTTP threads.
 *
 * Each HTTP thread is an event loop of its own: a libmicrohttpd daemon in
 * external epoll mode (it has no listening socket and no thread of its
 * own) and a driven adapter loop (backends/loop.c), waited on together in
 * one poll. A relayed request is therefore read, sent to the vendor,
 * answered by it, journalled (the thread keeps its own relay journal) and
 * answered to the client on one thread, with no hand-off: libmicrohttpd's
 * own thread pool cannot carry the adapter loop, and the hand-offs to and
 * from a shared vendor thread and journal thread were most of a relay's
 * cost. One pass of a thread's loop:
 *
 *   take the connections the acceptor gave it
 *   MHD_run             requests read; handlers run (a relay starts its call)
 *   be_loop_turn        calls sent, answers read; finished relays queue records
 *   route_relay_flush   the queued records in one store call, then their
 *                       connections resumed -- and MHD_run again sends them
 *   be_loop_wait        sleep on the vendor sockets and the daemon's epoll fd
 *
 * One acceptor thread takes new connections and gives each to the thread
 * with the fewest, so that a client's keep-alive connections (opened in
 * one burst) spread over the threads instead of landing on whichever woke
 * first. Suspended connections are still resumed from any thread
 * (MHD_resume_connection signals the daemon's epoll fd). */
#include "server/internal.h"
#include "backends/backend.h"
#include "core/alloc.h"
#include "core/metrics.h"
#include "route/sched.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct srv_conn {                 /* accepted, not yet given to the daemon */
    int fd;
    socklen_t len;
    struct sockaddr_storage addr;
};

struct srv_thread {
    struct srv *s;
    pthread_t thread;
    int started;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    pthread_mutex_t mu;
    struct be_loop *loop;         /* under mu once the thread runs: it frees it */
    struct srv_conn *conns;       /* under mu */
    size_t n_conns, cap_conns;
    int quit;                     /* under mu */
    char label[12];               /* its index, the metric's label */
    /* When the thread's current pass began (monotonic ms), 0 while it
     * sleeps: a connection given to a thread stuck in a long pass waits
     * for it. Handlers do not block (srv_defer takes what would), but a
     * pass can still run long: a large body, a slow disk. */
    atomic_long busy_since;
};

#define SRV_BUSY_MS 20

/* Connections a thread serves or is about to: the gauge is the count the
 * acceptor balances on, and shows an operator the balance too. */
static void
count_connection(struct srv_thread *t, double v)
{
    const char *labels[] = {t->label};
    ig_metric_add(t->s->m_connections, labels, v);
}

/* ---- One HTTP thread ------------------------------------------------------ */

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
              enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    (void)socket_ctx;
    struct srv_thread *t = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        count_connection(t, -1);
}

/* Hands the daemon what the acceptor queued; 1 when the thread must stop. */
static int
take_connections(struct srv_thread *t)
{
    struct srv_conn batch[32];
    size_t n;
    int quit;
    do {
        pthread_mutex_lock(&t->mu);
        quit = t->quit;
        n = t->n_conns < 32 ? t->n_conns : 32;
        if (n) {
            memcpy(batch, t->conns, n * sizeof *batch);
            memmove(t->conns, t->conns + n, (t->n_conns - n) * sizeof *batch);
            t->n_conns -= n;
        }
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; i < n; i++)
            /* On failure libmicrohttpd has closed the socket already. */
            if (MHD_add_connection(t->daemon, batch[i].fd, (struct sockaddr *)&batch[i].addr,
                                   batch[i].len) != MHD_YES)
                count_connection(t, -1);
    } while (n == 32);
    return quit;
}

static void *
http_main(void *arg)
{
    struct srv_thread *t = arg;
    pthread_setname_np(pthread_self(), "ig-http");
    be_loop_bind(t->loop);
    route_relay_own_journal();
    struct curl_waitfd wfd = {.fd = t->epoll_fd, .events = CURL_WAIT_POLLIN};
    while (!take_connections(t)) {
        atomic_store(&t->busy_since, route_now_ms());
        MHD_run(t->daemon);
        long wait = be_loop_turn(t->loop);
        if (route_relay_flush())
            MHD_run(t->daemon);
        MHD_UNSIGNED_LONG_LONG mto;
        if (MHD_get_timeout(t->daemon, &mto) == MHD_YES && mto < (MHD_UNSIGNED_LONG_LONG)wait)
            wait = (long)mto;
        atomic_store(&t->busy_since, 0);
        be_loop_wait(t->loop, &wfd, 1, wait);
    }
    /* Calls still in flight end here, so that their records and answers
     * still go out from this thread before the daemon stops. */
    pthread_mutex_lock(&t->mu);
    struct be_loop *l = t->loop;
    t->loop = NULL;
    pthread_mutex_unlock(&t->mu);
    be_loop_free(l);
    if (route_relay_flush())
        MHD_run(t->daemon);
    return NULL;
}

/* ---- The acceptor --------------------------------------------------------- */

/* The thread with the fewest connections among those not stuck in a long
 * pass; among all of them when every one is. */
static struct srv_thread *
least_busy(struct srv *s)
{
    struct srv_thread *best = NULL;
    double fewest = 0;
    int best_free = 0;
    long now = route_now_ms();
    for (unsigned i = 0; i < s->n_threads; i++) {
        struct srv_thread *t = &s->threads[i];
        const char *labels[] = {t->label};
        double n = ig_metric_get(s->m_connections, labels);
        long since = atomic_load(&t->busy_since);
        int free = !since || now - since < SRV_BUSY_MS;
        if (!best || free > best_free || (free == best_free && n < fewest)) {
            best = t;
            fewest = n;
            best_free = free;
        }
    }
    return best;
}

static int
give(struct srv_thread *t, const struct srv_conn *c)
{
    pthread_mutex_lock(&t->mu);
    void *v = t->conns;
    int rc = ig_grow(&v, &t->cap_conns, t->n_conns + 1, sizeof *t->conns);
    if (rc == 0) {
        t->conns = v;
        t->conns[t->n_conns++] = *c;
        count_connection(t, 1);
        be_loop_wakeup(t->loop);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void *
accept_main(void *arg)
{
    struct srv *s = arg;
    pthread_setname_np(pthread_self(), "ig-accept");
    for (;;) {
        struct srv_conn c = {.len = sizeof c.addr};
        c.fd = accept4(s->listen_fd, (struct sockaddr *)&c.addr, &c.len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c.fd >= 0) {
            if (give(least_busy(s), &c) != 0)
                close(c.fd);
            continue;
        }
        if (atomic_load(&s->closing))
            break;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors or memory: let connections close first. */
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        } else if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN &&
                   errno != EPROTO && errno != EPERM) {
            break;
        }
    }
    return NULL;
}

/* ---- Start and stop ------------------------------------------------------- */

static int
open_listener(struct srv *s, const struct sockaddr *sa, socklen_t len, struct ig_error *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ig_error_set(err, 500, "listen_failed", "cannot make a socket: %s",
                            strerror(errno));
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (sa->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) ||
        bind(fd, sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return ig_error_set(err, 500, "listen_failed", "cannot listen on %s (%s)", s->address,
                            strerror(e));
    }
    s->listen_fd = fd;
    return 0;
}

static int
start_thread(struct srv *s, struct srv_thread *t, unsigned limit, struct ig_error *err)
{
    t->s = s;
    t->epoll_fd = -1;
    snprintf(t->label, sizeof t->label, "%u", (unsigned)(t - s->threads));
    /* Every thread shows in /metrics from the start, idle ones at 0. */
    count_connection(t, 0);
    pthread_mutex_init(&t->mu, NULL);
    t->loop = be_loop_new_driven(err);
    if (!t->loop)
        return -1;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET;
    /* A connection's memory is limits.max_header_bytes, 16 KiB unless set,
     * where libmicrohttpd's default is 32: it zeroes all of it after every
     * request of a keep-alive connection, and that was a tenth of a relay's
     * instructions (callgrind, 1,000 relays: 335.7M against 311.5M). */
    t->daemon = MHD_start_daemon(flags, 0, NULL, NULL, srv_handle, s,
                                 MHD_OPTION_NOTIFY_COMPLETED, srv_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, t,
                                 MHD_OPTION_CONNECTION_LIMIT, limit,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                 (size_t)s->cfg->limits.max_header_bytes,
                                 MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)(s->cfg->limits.request_timeout_ms / 1000 + 1),
                                 MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        t->daemon ? MHD_get_daemon_info(t->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info)
        return ig_error_set(err, 500, "listen_failed", "cannot start the HTTP daemon");
    t->epoll_fd = info->epoll_fd;
    if (pthread_create(&t->thread, NULL, http_main, t) != 0)
        return ig_error_set(err, 500, "threads", "cannot start an HTTP thread");
    t->started = 1;
    return 0;
}

int
srv_threads_start(struct srv *s, const struct sockaddr *sa, socklen_t len, unsigned n,
                  struct ig_error *err)
{
    if (open_listener(s, sa, len, err) != 0)
        return -1;
    s->threads = ig_calloc(n, sizeof *s->threads);
    if (!s->threads)
        return ig_error_set(err, 500, "out_of_memory", "out of memory starting the server");
    s->n_threads = n;
    unsigned limit = 10000u / n;
    for (unsigned i = 0; i < n; i++)
        if (start_thread(s, &s->threads[i], limit, err) != 0)
            return -1;
    if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0)
        return ig_error_set(err, 500, "threads", "cannot start the acceptor");
    s->accepting = 1;
    return 0;
}

void
srv_threads_stop(struct srv *s)
{
    if (s->listen_fd >= 0) {
        atomic_store(&s->closing, 1);
        /* shutdown wakes an accept blocked on the socket (Linux). */
        shutdown(s->listen_fd, SHUT_RDWR);
        if (s->accepting)
            pthread_join(s->accept_thread, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    for (unsigned i = 0; s->threads && i < s->n_threads; i++) {
        struct srv_thread *t = &s->threads[i];
        if (!t->s)
            continue;   /* a start that failed before this one */
        if (t->started) {
            pthread_mutex_lock(&t->mu);
            t->quit = 1;
            if (t->loop)
                be_loop_wakeup(t->loop);
            pthread_mutex_unlock(&t->mu);
            pthread_join(t->thread, NULL);
        } else {
            be_loop_free(t->loop);
        }
        for (size_t k = 0; k < t->n_conns; k++)
            close(t->conns[k].fd);
        ig_free(t->conns);
        if (t->daemon)
            MHD_stop_daemon(t->daemon);
        pthread_mutex_destroy(&t->mu);
    }
    ig_free(s->threads);
    s->threads = NULL;
}
