/* SPDX-License-Identifier: MIT */
/* urlguard.h -- the one guard every outbound fetch of a URL passes.
 *
 * A URL a user gave (an input image, a webhook) or a vendor gave (a result
 * to download, a redirect) is fetched only if its scheme is allowed and every
 * address its host resolves to is public: private, loopback, link-local,
 * multicast and reserved ranges are refused unless the configuration allows
 * them. The host is resolved once, and the connection is pinned to the
 * checked address (CURLOPT_RESOLVE), so a DNS answer that changes between
 * the check and the connect cannot slip through. Redirects are followed by
 * hand, each hop checked again. */
#ifndef IG_BACKENDS_URLGUARD_H
#define IG_BACKENDS_URLGUARD_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

struct be_urlguard {
    int allow_http;        /* plain http:// (https:// is always allowed) */
    int allow_loopback;    /* 127.0.0.0/8, ::1 (emulators, tests) */
    int allow_private;     /* RFC 1918, unique-local, link-local */
};

/* Checks url and resolves its host once. On success *pin is a
 * "host:port:address" string for CURLOPT_RESOLVE (ig_malloc'd). Errors:
 * url_refused (scheme, address), url_invalid, url_unresolvable. */
int be_url_check(const char *url, const struct be_urlguard *g, char **pin, struct ig_error *err);

/* Is this numeric address one the guard refuses? (Exposed for tests.) */
int be_addr_refused(const char *numeric, const struct be_urlguard *g);

struct be_fetch {
    const char *method;          /* "GET" (default) or "POST" */
    const char *body;            /* POST body */
    size_t body_len;
    const char *const *headers;  /* NULL-terminated "Name: value" lines */
    long max_bytes;              /* answer cap; 0: 32 MiB */
    long timeout_ms;             /* whole fetch; 0: 30 s */
    int max_redirects;           /* 0: 5 */
};

/* A blocking fetch through the guard: redirects followed by hand, each hop
 * checked; the answer capped at max_bytes. Fills *status and out. */
int be_fetch_url(const char *url, const struct be_urlguard *g, const struct be_fetch *f,
                 long *status, struct ig_buf *out, char *content_type, size_t ct_size,
                 struct ig_error *err);

#endif
