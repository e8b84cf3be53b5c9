/* SPDX-License-Identifier: MIT */
/* openloop.c -- an open-loop HTTP/1.1 load generator: POSTs one body at a
 * fixed rate over C keep-alive connections and reports the latency
 * percentiles of what it sent.
 *
 * wrk, which gateway.sh uses for throughput, is closed-loop: each
 * connection sends its next request when the last answer arrives, so it
 * always runs the system at saturation, where the p99 says more about the
 * kernel's scheduling of four busy processes on two cores than about the
 * server. A latency goal quoted at a throughput ("20,000 req/s with p99
 * ...") needs the load offered at that rate instead. wrk2 does that, but
 * it is not packaged for Debian and this machine builds nothing fetched;
 * no packaged tool (hey, siege, httperf, ab) sends at a fixed rate over
 * persistent connections with latency counted from the intended send
 * time. So this one is written here, small on purpose.
 *
 * Request k is due at start + k/rate. It goes out on an idle connection as
 * soon as it is due; when every connection is busy it waits, and its
 * latency still counts from when it was due (the correction for
 * "coordinated omission" that wrk2 makes): a stalled server shows as a
 * stalled server, not as fewer requests.
 *
 * Usage: openloop HOST:PORT PATH BODYFILE RATE CONNS SECONDS [HEADER...]
 * Prints one line: sent, answered, achieved req/s, p50 p90 p99 p99.9 max
 * in ms. Stops with exit 1 at the first answer that is not a 200, or when a
 * connection fails: a latency of failures would mean nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    int busy;
    int64_t due_ns;      /* of the request in flight */
    char buf[65536];
    size_t have;
};

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int
dial(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Length of a whole answer at the head of buf, 0 while incomplete, -1 when
 * it is not a 200 with a Content-Length. */
static long
answer_len(const char *buf, size_t have)
{
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    if (have < 12 || memcmp(buf + 9, "200", 3) != 0)
        return -1;
    const char *cl = NULL;
    for (const char *p = buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        p += (*p == '\n');
        if (strncasecmp(p, "content-length:", 15) == 0) {
            cl = p + 15;
            break;
        }
    }
    if (!cl)
        return -1;
    long body = strtol(cl, NULL, 10);
    if (body < 0)
        return -1;
    return have >= head + (size_t)body ? (long)(head + (size_t)body) : 0;
}

int
main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: openloop HOST:PORT PATH BODYFILE RATE CONNS SECONDS [HEADER...]\n");
        return 2;
    }
    char host[64];
    const char *colon = strrchr(argv[1], ':');
    if (!colon || (size_t)(colon - argv[1]) >= sizeof host) {
        fprintf(stderr, "openloop: bad address %s\n", argv[1]);
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    int port = atoi(colon + 1);
    double rate = atof(argv[4]);
    int nconn = atoi(argv[5]);
    double secs = atof(argv[6]);
    if (rate <= 0 || nconn <= 0 || nconn > 1024 || secs <= 0) {
        fprintf(stderr, "openloop: rate, conns and seconds must be positive\n");
        return 2;
    }

    /* The request, whole: headers and body in one buffer, one send. */
    FILE *f = fopen(argv[3], "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "openloop: %s: %s\n", argv[3], strerror(errno));
        return 2;
    }
    size_t cap = (size_t)st.st_size + 4096;
    for (int i = 7; i < argc; i++)
        cap += strlen(argv[i]) + 2;
    char *req = malloc(cap);
    if (!req) {
        fprintf(stderr, "openloop: out of memory\n");
        return 2;
    }
    int n = snprintf(req, cap,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %lld\r\n",
                     argv[2], argv[1], (long long)st.st_size);
    size_t len = (size_t)n;
    for (int i = 7; i < argc; i++)
        len += (size_t)snprintf(req + len, cap - len, "%s\r\n", argv[i]);
    len += (size_t)snprintf(req + len, cap - len, "\r\n");
    if (fread(req + len, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "openloop: short read of %s\n", argv[3]);
        return 2;
    }
    fclose(f);
    len += (size_t)st.st_size;

    /* Sleeps end on time: the default 50 us slack is a twentieth of the
     * gap between requests at 20,000 req/s. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    size_t total = (size_t)(rate * secs) + 1;
    int64_t *lat = malloc(total * sizeof *lat);
    if (ep < 0 || !cs || !lat) {
        fprintf(stderr, "openloop: out of memory\n");
        return 2;
    }
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = dial(host, port);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (cs[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0) {
            fprintf(stderr, "openloop: cannot connect to %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
    }

    int64_t start = now_ns() + 20000000; /* connections settle first */
    int64_t gap = (int64_t)(1e9 / rate);
    size_t sent = 0, done = 0;
    int idle = nconn;
    while (done < total) {
        int64_t t = now_ns();
        /* Every due request goes out while a connection is free: one pass
         * suffices, as none before i has come free since it was passed. */
        for (int i = 0; i < nconn && idle > 0 && sent < total; i++) {
            int64_t due = start + (int64_t)sent * gap;
            if (due > t)
                break;
            if (cs[i].busy)
                continue;
            ssize_t w = send(cs[i].fd, req, len, MSG_NOSIGNAL);
            if (w != (ssize_t)len) {
                /* A body too large for one send would need a writer loop;
                 * the bodies here are small. */
                fprintf(stderr, "openloop: send: %s\n", w < 0 ? strerror(errno) : "short");
                return 1;
            }
            cs[i].busy = 1;
            cs[i].due_ns = due;
            idle--;
            sent++;
        }
        int64_t next = sent < total ? start + (int64_t)sent * gap : t + 100000000;
        int64_t wait = (idle > 0 && next > t) ? next - t : (idle > 0 ? 0 : 100000000);
        struct timespec to = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
        struct epoll_event evs[64];
        int k = epoll_pwait2(ep, evs, 64, &to, NULL);
        if (k < 0 && errno != EINTR) {
            perror("openloop: epoll_pwait2");
            return 1;
        }
        for (int e = 0; e < k; e++) {
            struct conn *c = &cs[evs[e].data.u32];
            ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                fprintf(stderr, "openloop: %s\n",
                        r < 0 ? strerror(errno) : "connection closed by the server");
                return 1;
            }
            c->have += (size_t)r;
            long whole = answer_len(c->buf, c->have);
            if (whole == 0 && c->have == sizeof c->buf)
                whole = -1;
            if (whole == 0)
                continue;
            int64_t got = now_ns();
            if (whole < 0) {
                fprintf(stderr, "openloop: bad answer: %.60s\n", c->buf);
                return 1;
            }
            if (!c->busy) {
                fprintf(stderr, "openloop: an answer nobody asked for\n");
                return 1;
            }
            lat[done++] = got - c->due_ns;
            memmove(c->buf, c->buf + whole, c->have - (size_t)whole);
            c->have -= (size_t)whole;
            c->busy = 0;
            idle++;
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    qsort(lat, done, sizeof *lat, cmp_i64);
#define PCT(p) ((double)lat[(size_t)((double)(done - 1) * (p))] / 1e6)
    printf("sent %zu answered %zu rate %.0f req/s p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f "
           "max %.3f ms\n",
           sent, done, (double)done / elapsed, PCT(0.50), PCT(0.90), PCT(0.99),
           PCT(0.999), (double)lat[done - 1] / 1e6);
    for (int i = 0; i < nconn; i++)
        close(cs[i].fd);
    close(ep);
    free(cs);
    free(lat);
    free(req);
    return 0;
}
