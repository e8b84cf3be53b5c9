/* SPDX-License-Identifier: MIT */
/* urlguard.c -- SSRF guard and guarded fetches (see urlguard.h).
 *
 * URLs are parsed with libcurl's own parser (curl_url), so the host checked
 * is the host libcurl will connect to. */
#include "backends/urlguard.h"
#include "core/alloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static int
v4_refused(const unsigned char *a, const struct be_urlguard *g)
{
    if (a[0] == 127)
        return !g->allow_loopback;
    /* RFC 1918, link-local, shared (CGN) space, benchmarking (used inside
     * some networks) */
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
        (a[0] == 169 && a[1] == 254) || (a[0] == 100 && (a[1] & 0xc0) == 64) ||
        (a[0] == 198 && (a[1] & 0xfe) == 18))
        return !g->allow_private;
    /* this network, multicast, reserved and broadcast, IETF protocol
     * assignments and the documentation ranges are never fetched */
    return a[0] == 0 || a[0] >= 224 || (a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) ||
           (a[0] == 198 && a[1] == 51 && a[2] == 100) || (a[0] == 203 && a[1] == 0 && a[2] == 113);
}

int
be_addr_refused(const char *numeric, const struct be_urlguard *g)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, numeric, a) == 1)
        return v4_refused(a, g);
    if (inet_pton(AF_INET6, numeric, a) != 1)
        return 1;
    static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char zero6[16] = {0};
    if (memcmp(a, loop6, 16) == 0)
        return !g->allow_loopback;
    if (memcmp(a, zero6, 16) == 0 || a[0] == 0xff)
        return 1;
    /* Addresses that carry an IPv4 address are judged as that address:
     * IPv4-mapped (::ffff:a.b.c.d), the deprecated IPv4-compatible
     * (::a.b.c.d), NAT64's well-known prefix (64:ff9b::/96, RFC 6052),
     * which a NAT64 gateway turns into the IPv4 address inside, and 6to4
     * (2002:AABB:CCDD::/48). */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, zero6, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_refused(a + 12, g);
    if (a[0] == 0x20 && a[1] == 0x02)
        return v4_refused(a + 2, g);
    /* unique-local, link-local, the deprecated site-local, and NAT64's
     * local-use prefix (64:ff9b:1::/48, RFC 8215) */
    if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0x80) == 0x80) ||
        (memcmp(a, nat64, 4) == 0 && a[4] == 0 && a[5] == 1))
        return !g->allow_private;
    /* discard-only (100::/64) and documentation (2001:db8::/32) */
    static const unsigned char discard[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    return memcmp(a, discard, 8) == 0 || (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8);
}

int
be_url_check(const char *url, const struct be_urlguard *g, char **pin, struct ig_error *err)
{
    *pin = NULL;
    CURLU *u = curl_url();
    if (!u)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        ig_error_set(err, 400, "url_invalid", "not a valid URL: %.200s", url);
        goto out;
    }
    if (strcasecmp(scheme, "https") != 0 && !(g->allow_http && strcasecmp(scheme, "http") == 0)) {
        ig_error_set(err, 400, "url_refused", "the %s scheme is not allowed", scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        ig_error_set(err, 400, "url_invalid", "not a valid URL: %.200s", url);
        goto out;
    }
    /* curl gives IPv6 literals in brackets. */
    char name[256];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
        snprintf(name, sizeof name, "%.*s", (int)(hl - 2), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, port, &hints, &res) != 0 || !res) {
        ig_error_set(err, 400, "url_unresolvable", "cannot resolve %.200s", name);
        goto out;
    }
    char first[INET6_ADDRSTRLEN] = "";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char num[INET6_ADDRSTRLEN];
        const void *addr = ai->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (!inet_ntop(ai->ai_family, addr, num, sizeof num))
            continue;
        /* Every address must pass: a host with one public and one private
         * address could be connected to either. */
        if (be_addr_refused(num, g)) {
            freeaddrinfo(res);
            ig_error_set(err, 400, "url_refused",
                         "%.200s resolves to %s, a private, loopback or reserved address", name,
                         num);
            goto out;
        }
        if (!first[0])
            snprintf(first, sizeof first, "%s", num);
    }
    freeaddrinfo(res);
    if (!first[0]) {
        ig_error_set(err, 400, "url_unresolvable", "cannot resolve %.200s", name);
        goto out;
    }
    size_t n = strlen(host) + strlen(port) + strlen(first) + 8;
    *pin = ig_malloc(n);
    if (!*pin) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        goto out;
    }
    snprintf(*pin, n, strchr(first, ':') ? "%s:%s:[%s]" : "%s:%s:%s", host, port, first);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

struct sink {
    struct ig_buf *out;
    long max;
    int over;
};

static size_t
on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    if ((long)(s->out->len + len) > s->max) {
        s->over = 1;
        return 0;
    }
    return ig_buf_append(s->out, p, len) == 0 ? len : 0;
}

int
be_fetch_url(const char *url, const struct be_urlguard *g, const struct be_fetch *f,
             long *status, struct ig_buf *out, char *content_type, size_t ct_size,
             struct ig_error *err)
{
    int max_redirects = f->max_redirects > 0 ? f->max_redirects : 5;
    char *current = ig_strdup(url);
    if (!current)
        return ig_error_set(err, 500, "out_of_memory", "out of memory");
    int rc = -1;
    for (int hop = 0; hop <= max_redirects; hop++) {
        char *pin = NULL;
        if (be_url_check(current, g, &pin, err) != 0)
            break;
        CURL *c = curl_easy_init();
        struct curl_slist *resolve = curl_slist_append(NULL, pin), *headers = NULL;
        ig_free(pin);
        for (int i = 0; f->headers && f->headers[i]; i++)
            headers = curl_slist_append(headers, f->headers[i]);
        if (!c || !resolve) {
            ig_error_set(err, 500, "out_of_memory", "out of memory");
            curl_easy_cleanup(c);
            curl_slist_free_all(resolve);
            curl_slist_free_all(headers);
            break;
        }
        struct sink sink = {out, f->max_bytes > 0 ? f->max_bytes : 32L << 20, 0};
        ig_buf_reset(out);
        curl_easy_setopt(c, CURLOPT_URL, current);
        curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, g->allow_http ? "http,https" : "https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, f->timeout_ms > 0 ? f->timeout_ms : 30000L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        if (f->method && strcmp(f->method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body ? f->body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)f->body_len);
        }
        CURLcode res = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        char *location = NULL, *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (content_type && ct_size)
            snprintf(content_type, ct_size, "%s", ct ? ct : "");
        char *next = location && code >= 300 && code < 400 ? ig_strdup(location) : NULL;
        curl_easy_cleanup(c);
        curl_slist_free_all(resolve);
        curl_slist_free_all(headers);
        if (sink.over) {
            ig_error_set(err, 413, "body_too_large", "the answer from %.200s is over %ld bytes",
                         current, sink.max);
            ig_free(next);
            break;
        }
        if (res != CURLE_OK) {
            ig_error_set(err, 504, res == CURLE_OPERATION_TIMEDOUT ? "timeout" : "fetch_failed",
                         "fetching %.200s: %s", current, curl_easy_strerror(res));
            ig_free(next);
            break;
        }
        if (next) {
            ig_free(current);
            current = next;
            if (hop == max_redirects)
                ig_error_set(err, 502, "too_many_redirects", "more than %d redirects",
                             max_redirects);
            continue;
        }
        *status = code;
        rc = 0;
        break;
    }
    ig_free(current);
    return rc;
}
