/* SPDX-License-Identifier: MIT */
/* server.c -- libmicrohttpd daemon, routing of paths to handlers, and the
 * one error shape.
 *
 * The daemon runs its own epoll thread pool; handlers answer from memory and
 * never block on a vendor (long work is queued to jobs by later parts). */
#include "server/server.h"
#include "core/alloc.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct srv {
    struct MHD_Daemon *daemon;
    const struct ig_config *cfg;
    char address[300];
};

int
srv_parse_listen(const char *listen, char *host, size_t host_size, int *port,
                 struct ig_error *err)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hlen;
    if (!colon)
        return ig_error_set(err, 400, "bad_listen", "listen address '%s' must be HOST:PORT",
                            listen);
    hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return ig_error_set(err, 400, "bad_listen", "port in '%s' must be 0..65535", listen);
    if (hlen == 0) {
        h = "127.0.0.1";
        hlen = strlen(h);
    }
    if (hlen >= host_size)
        return ig_error_set(err, 400, "bad_listen", "host in '%s' is too long", listen);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

static enum MHD_Result
send_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result
send_error(struct MHD_Connection *conn, unsigned status, const char *code, const char *message)
{
    json_t *body = json_pack("{s:{s:s,s:s,s:n,s:[]}}", "error", "code", code, "message", message,
                             "job_id", "attempts");
    if (!body)
        return MHD_NO;
    return send_json(conn, status, body);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct srv *s = cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        /* First call: headers only. Answer after the body has been read. */
        *req_cls = s;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Bodies are not taken by any route yet; drop them unread. */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return send_error(conn, 405, "method_not_allowed", "use GET");
        return send_json(conn, 200, json_pack("{s:s,s:s}", "status", "ok", "version", IG_VERSION));
    }
    char msg[300];
    snprintf(msg, sizeof msg, "no route for %s %.200s", method, url);
    return send_error(conn, 404, "not_found", msg);
}

struct srv *
srv_start(const struct ig_config *cfg, const char *listen_override, struct ig_error *err)
{
    const char *listen = listen_override ? listen_override
                         : cfg->server.listen ? cfg->server.listen : "127.0.0.1:8080";
    char host[256];
    int port;
    if (srv_parse_listen(listen, host, sizeof host, &port, err) != 0)
        return NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        ig_error_set(err, 400, "bad_listen", "listen host '%s' must be an IP address", host);
        return NULL;
    }
    struct srv *s = ig_calloc(1, sizeof *s);
    if (!s) {
        ig_error_set(err, 500, "out_of_memory", "out of memory starting the server");
        return NULL;
    }
    s->cfg = cfg;
    unsigned threads = cfg->server.threads > 0 ? (unsigned)cfg->server.threads : 2;
    s->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)(cfg->limits.request_timeout_ms / 1000 + 1),
                                 MHD_OPTION_END);
    if (!s->daemon) {
        ig_free(s);
        ig_error_set(err, 500, "listen_failed", "cannot listen on %s (in use, or not permitted)",
                     listen);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : port;
    snprintf(s->address, sizeof s->address, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, bound);
    return s;
}

const char *
srv_address(const struct srv *s)
{
    return s->address;
}

void
srv_stop(struct srv *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    ig_free(s);
}
