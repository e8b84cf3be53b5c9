/* SPDX-License-Identifier: MIT */
/* relay_floor.c -- the least a relay built on imagegate's two HTTP libraries
 * costs: libmicrohttpd in, libcurl out, with the thread structure of
 * `imagegate serve` (src/server/threads.c) and nothing else.
 *
 * One acceptor thread gives each connection to the HTTP thread with the
 * fewest; each HTTP thread is a libmicrohttpd daemon in external epoll mode
 * beside a libcurl multi handle, waited on together in curl_multi_poll. A
 * request's body is read, POSTed as it is to the upstream URL on a reused
 * keep-alive connection, and the upstream's status and body go back to the
 * client. No parsing, routing, limits, provenance or record: what it costs
 * per request, beside what imagegate costs on the same run, is how much of
 * imagegate's cost is its own work and how much the libraries'.
 * bench/gateway.sh runs it. Usage: relay_floor PORT UPSTREAM_URL THREADS */
#include <curl/curl.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IDLE_HANDLES 64

struct relay_thread {
    pthread_t thread;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    CURLM *multi;
    pthread_mutex_t mu;
    int *fds;                     /* accepted, not yet given to the daemon; under mu */
    size_t n_fds, cap_fds;
    unsigned long connections;    /* given to this thread; the acceptor's count */
    CURL *idle[IDLE_HANDLES];     /* easy handles kept for the next requests */
    int n_idle;
};

struct request {
    struct MHD_Connection *conn;
    struct relay_thread *t;
    char *body, *answer;
    size_t body_len, body_cap, answer_len, answer_cap;
    CURL *easy;
    struct curl_slist *headers;
    long status;
    int sent;
};

static const char *upstream;
static __thread struct relay_thread *current;

static int
append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t want = (*len + n) * 2;
        char *grown = realloc(*buf, want);
        if (!grown)
            return -1;
        *buf = grown;
        *cap = want;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return 0;
}

static size_t
on_answer(char *p, size_t size, size_t n, void *ud)
{
    struct request *r = ud;
    return append(&r->answer, &r->answer_len, &r->answer_cap, p, size * n) == 0 ? size * n : 0;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len)
{
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* Starts the upstream call; 0, or -1 when it cannot be made. */
static int
send_upstream(struct request *r)
{
    struct relay_thread *t = r->t;
    r->easy = t->n_idle ? t->idle[--t->n_idle] : curl_easy_init();
    if (!r->easy)
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h)
        return -1;
    r->headers = h;
    if (!(h = curl_slist_append(r->headers, "Authorization: Bearer sk-bench")))
        return -1;
    CURL *e = r->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, upstream) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK)
        return -1;
    return curl_multi_add_handle(t->multi, e) == CURLM_OK ? 0 : -1;
}

static void
release_easy(struct request *r)
{
    if (!r->easy)
        return;
    struct relay_thread *t = r->t;
    curl_multi_remove_handle(t->multi, r->easy);
    curl_easy_reset(r->easy);
    if (t->n_idle < IDLE_HANDLES)
        t->idle[t->n_idle++] = r->easy;
    else
        curl_easy_cleanup(r->easy);
    r->easy = NULL;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *data, size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct request *r = *state;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->conn = conn;
        r->t = current;
        *state = r;
        return MHD_YES;
    }
    if (*size) {
        if (append(&r->body, &r->body_len, &r->body_cap, data, *size) != 0)
            return MHD_NO;
        *size = 0;
        return MHD_YES;
    }
    if (!r->sent) {
        r->sent = 1;
        if (send_upstream(r) != 0) {
            release_easy(r);
            return reply(conn, 502, NULL, 0);
        }
        MHD_suspend_connection(conn);
        return MHD_YES;
    }
    char *answer = r->answer;
    r->answer = NULL;
    return reply(conn, (unsigned)r->status, answer, r->answer_len);
}

static void
completed(void *cls, struct MHD_Connection *conn, void **state,
          enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct request *r = *state;
    if (!r)
        return;
    release_easy(r);
    free(r->body);
    free(r->answer);
    free(r);
    *state = NULL;
}

/* Answers the calls that ended; 1 when any did. */
static int
finish_calls(struct relay_thread *t)
{
    CURLMsg *msg;
    int left, any = 0;
    while ((msg = curl_multi_info_read(t->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct request *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (msg->data.result != CURLE_OK ||
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
            r->status = 502;
        release_easy(r);
        MHD_resume_connection(r->conn);
        any = 1;
    }
    return any;
}

static void *
thread_main(void *arg)
{
    struct relay_thread *t = arg;
    current = t;
    struct curl_waitfd wfd = {.fd = t->epoll_fd, .events = CURL_WAIT_POLLIN};
    for (;;) {
        pthread_mutex_lock(&t->mu);
        for (size_t i = 0; i < t->n_fds; i++) {
            struct sockaddr_in peer = {.sin_family = AF_INET};
            /* On failure libmicrohttpd has closed the socket. */
            MHD_add_connection(t->daemon, t->fds[i], (struct sockaddr *)&peer, sizeof peer);
        }
        t->n_fds = 0;
        pthread_mutex_unlock(&t->mu);
        MHD_run(t->daemon);
        int running;
        if (curl_multi_perform(t->multi, &running) != CURLM_OK)
            break;
        if (finish_calls(t))
            MHD_run(t->daemon);
        MHD_UNSIGNED_LONG_LONG mto;
        int wait = 1000;
        if (MHD_get_timeout(t->daemon, &mto) == MHD_YES && mto < 1000)
            wait = (int)mto;
        if (curl_multi_poll(t->multi, &wfd, 1, wait, NULL) != CURLM_OK)
            break;
    }
    fprintf(stderr, "relay_floor: a thread's loop failed\n");
    exit(1);
}

static int
start_thread(struct relay_thread *t)
{
    if (pthread_mutex_init(&t->mu, NULL) != 0 || !(t->multi = curl_multi_init()))
        return -1;
    t->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET,
                                 0, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                 completed, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        t->daemon ? MHD_get_daemon_info(t->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info)
        return -1;
    t->epoll_fd = info->epoll_fd;
    return pthread_create(&t->thread, NULL, thread_main, t) == 0 ? 0 : -1;
}

static int
give(struct relay_thread *t, int fd)
{
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    if (t->n_fds == t->cap_fds) {
        size_t cap = t->cap_fds ? t->cap_fds * 2 : 64;
        int *grown = realloc(t->fds, cap * sizeof *grown);
        if (grown) {
            t->fds = grown;
            t->cap_fds = cap;
        } else {
            rc = -1;
        }
    }
    if (rc == 0)
        t->fds[t->n_fds++] = fd;
    pthread_mutex_unlock(&t->mu);
    /* A wake-up that fails leaves the connection to the thread's next pass,
     * at most a second away. */
    if (rc == 0 && curl_multi_wakeup(t->multi) != CURLM_OK)
        fprintf(stderr, "relay_floor: cannot wake a thread\n");
    return rc;
}

int
main(int argc, char **argv)
{
    int port = argc == 4 ? atoi(argv[1]) : 0, n = argc == 4 ? atoi(argv[3]) : 0;
    if (port <= 0 || port > 65535 || n <= 0 || n > 64) {
        fprintf(stderr, "usage: relay_floor PORT UPSTREAM_URL THREADS\n");
        return 2;
    }
    upstream = argv[2];
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
        return 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, SOMAXCONN) != 0) {
        fprintf(stderr, "relay_floor: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    struct relay_thread *threads = calloc((size_t)n, sizeof *threads);
    if (!threads)
        return 1;
    for (int i = 0; i < n; i++)
        if (start_thread(&threads[i]) != 0) {
            fprintf(stderr, "relay_floor: cannot start thread %d\n", i);
            return 1;
        }
    printf("relay_floor: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
                continue;
            fprintf(stderr, "relay_floor: accept: %s\n", strerror(errno));
            return 1;
        }
        /* Connections are counted as given, never as closed: wrk opens
         * them all at the start and keeps them. */
        struct relay_thread *best = &threads[0];
        for (int i = 1; i < n; i++)
            if (threads[i].connections < best->connections)
                best = &threads[i];
        best->connections++;
        if (give(best, fd) != 0)
            close(fd);
    }
}
