/* SPDX-License-Identifier: MIT */
/* protocol.c -- what every protocol shares: building exchanges, reading
 * answers under the limits, the error taxonomy, base64, notes. */
#include "backends/backend.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/str.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void
be_result_clear(struct be_result *r)
{
    for (int i = 0; i < r->n_images; i++)
        ig_free(r->images[i].data);
    json_decref(r->provenance);
    ig_buf_free(&r->provenance_text);
    ig_buf_free(&r->raw);
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
    r->cost_usd = -1;
}

static void
exchange_reset(struct be_exchange *x)
{
    ig_free(x->url);
    x->url = NULL;
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    ig_buf_reset(&x->body);
    if (x->mime)
        curl_mime_free(x->mime);
    x->mime = NULL;
    x->untrusted_url = 0;
    curl_slist_free_all(x->resolve);
    x->resolve = NULL;
    x->status = 0;
    ig_buf_reset(&x->answer);
    x->content_type[0] = '\0';
    ig_buf_reset(&x->answer_headers);
    x->over_cap = 0;
    x->curl_code = CURLE_OK;
    x->phase = BE_PHASE_SUBMIT;
}

int
be_x_start(struct be_call *c, const char *method, const char *fmt, ...)
{
    exchange_reset(&c->x);
    ig_scopy(c->x.method, sizeof c->x.method, method);
    /* Formatted once when the URL fits the stack (it nearly always does). */
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || !(c->x.url = ig_malloc((size_t)n + 1)))
        return -1;
    if ((size_t)n < sizeof small) {
        memcpy(c->x.url, small, (size_t)n + 1);
        return 0;
    }
    va_start(ap, fmt);
    vsnprintf(c->x.url, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return 0;
}

static int
add_header(struct be_call *c, const char *line)
{
    struct curl_slist *h = curl_slist_append(c->x.headers, line);
    if (!h)
        return -1;
    c->x.headers = h;
    return 0;
}

int
be_x_header(struct be_call *c, const char *fmt, ...)
{
    if (!strchr(fmt, '%'))
        return add_header(c, fmt);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return add_header(c, line);
}

int
be_x_credential(struct be_call *c, const char *head)
{
    char line[2048];
    ig_sjoin(line, sizeof line, head, c->credential ? c->credential : "");
    return add_header(c, line);
}

int
be_x_json(struct be_call *c, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return -1;
    int rc = ig_buf_puts(&c->x.body, text);
    free(text);
    return rc == 0 ? be_x_header(c, "Content-Type: application/json") : -1;
}

const char *
be_answer_header(const struct be_call *c, const char *name)
{
    size_t n = strlen(name);
    const struct ig_buf *h = &c->x.answer_headers;
    if (!h->data)
        return NULL;   /* no header yet */
    for (const char *line = h->data, *end = h->data + h->len; line < end;
         line += strlen(line) + 1)
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            return v;
        }
    return NULL;
}

enum be_next
be_fail(struct be_call *c, int status, const char *code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->result.ok = 0;
    ig_error_set(&c->result.err, status, code, "%s: %s", c->req.cfg->name, msg);
    return BE_DONE;
}

int
be_answer_is_json(struct be_call *c)
{
    const char *ct = c->x.content_type;
    if (ct[0] && !strstr(ct, "json")) {
        be_fail(c, 502, "malformed_response", "expected JSON, got %s (HTTP %ld)", ct,
                c->x.status);
        return 0;
    }
    return 1;
}

json_t *
be_answer_json(struct be_call *c)
{
    struct ig_error err = {0};
    if (!be_answer_is_json(c))
        return NULL;
    json_t *j = ig_json_parse(c->x.answer.data ? c->x.answer.data : "", c->x.answer.len,
                              c->req.max_json_depth > 0 ? c->req.max_json_depth : 32, &err);
    if (!j)
        be_fail(c, 502, "malformed_response", "%s (HTTP %ld)", err.message, c->x.status);
    return j;
}

static long
retry_after(const struct be_call *c)
{
    const char *ms = be_answer_header(c, "retry-after-ms");
    if (ms) {
        char *end;
        double v = strtod(ms, &end);
        if (end != ms && v >= 0)
            return (long)v;
    }
    const char *ra = be_answer_header(c, "retry-after");
    if (!ra)
        return -1;
    char *end;
    double secs = strtod(ra, &end);
    if (end != ra && secs >= 0)
        return (long)(secs * 1000);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (strptime(ra, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
        long at = (long)timegm(&tm), now = (long)time(NULL);
        return at > now ? (at - now) * 1000 : 0;
    }
    return -1;
}

enum be_next
be_fail_status(struct be_call *c, const char *vendor_message)
{
    long s = c->x.status;
    const char *code = s == 401 || s == 403                                      ? "auth"
                       : s == 402                                                ? "quota"
                       : s == 429                                                ? "rate_limited"
                       : s == 408 || s == 504                                    ? "timeout"
                       : s >= 500                                                ? "upstream_error"
                       : s == 400 || s == 404 || s == 409 || s == 413 || s == 415 || s == 422
                           ? "invalid_request"
                           : "upstream_error";
    c->result.retry_after_ms = retry_after(c);
    return be_fail(c, s >= 500 ? 502 : (int)s, code, "HTTP %ld: %.300s", s,
                   vendor_message ? vendor_message : "no message");
}

int
be_result_add_image(struct be_result *r, const void *data, size_t len, const char *mime)
{
    if (r->n_images >= BE_MAX_IMAGES)
        return -1;
    struct be_image *im = &r->images[r->n_images];
    im->data = ig_malloc(len ? len : 1);
    if (!im->data)
        return -1;
    memcpy(im->data, data, len);
    im->len = len;
    ig_scopy(im->mime, sizeof im->mime, mime ? mime : "application/octet-stream");
    r->n_images++;
    return 0;
}

int
be_add_image(struct be_call *c, const void *data, size_t len, const char *mime)
{
    /* A vendor that sends more images than we keep loses the extra ones. */
    if (c->result.n_images >= BE_MAX_IMAGES)
        return 0;
    return be_result_add_image(&c->result, data, len, mime);
}

int
be_take_image(struct be_call *c, int octet, const char *what)
{
    const char *ct = c->x.content_type;
    if (strncmp(ct, "image/", 6) != 0 &&
        !(octet && strncmp(ct, "application/octet-stream", 24) == 0)) {
        be_fail(c, 502, "malformed_response", "%s is %s, not an image", what,
                ct[0] ? ct : "untyped");
        return -1;
    }
    if (c->x.answer.len == 0) {
        be_fail(c, 502, "malformed_response", "%s is empty (HTTP %ld)", what, c->x.status);
        return -1;
    }
    char mime[32];
    snprintf(mime, sizeof mime, "%.*s", (int)strcspn(ct, ";"), ct);
    if (be_add_image(c, c->x.answer.data, c->x.answer.len, mime) != 0) {
        be_fail(c, 500, "upstream_error", "out of memory");
        return -1;
    }
    return 0;
}

enum be_next
be_answer_is_image(struct be_call *c)
{
    if (be_take_image(c, 0, "the answer") != 0)
        return BE_DONE;
    c->result.ok = 1;
    c->result.charged = 1;
    return BE_DONE;
}

enum be_next
be_download_next(struct be_call *c, const json_t *pending, size_t *next)
{
    const char *url = json_string_value(json_array_get(pending, *next));
    if (!url) {
        c->result.ok = 1;
        return BE_DONE;
    }
    (*next)++;
    if (be_x_start(c, "GET", "%s", url) != 0)
        return be_fail(c, 500, "upstream_error", "out of memory");
    c->x.phase = BE_PHASE_FETCH;
    c->x.untrusted_url = 1;
    return BE_SEND;
}

int
be_base64_decode(const char *in, struct ig_buf *out)
{
    return be_base64_decode_n(in, strlen(in), out);
}

int
be_base64_decode_n(const char *in, size_t len, struct ig_buf *out)
{
    if (len >= 5 && strncmp(in, "data:", 5) == 0) {
        const char *comma = memchr(in, ',', len);
        if (!comma)
            return -1;
        len -= (size_t)(comma + 1 - in);
        in = comma + 1;
    }
    if (len % 4 || len > (size_t)INT_MAX)
        return -1;
    ig_buf_reset(out);
    /* one decode into the buffer, grown once */
    if (ig_buf_append(out, "", 0) != 0)
        return -1;
    void *data = out->data;
    if (ig_grow(&data, &out->cap, len / 4 * 3 + 1, 1) != 0)
        return -1;
    out->data = data;
    int n = EVP_DecodeBlock((unsigned char *)out->data, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -1;
    while (len && in[len - 1] == '=') {
        len--;
        n--;
    }
    out->len = (size_t)n;
    return 0;
}

int
be_base64_encode(const void *data, size_t len, struct ig_buf *out)
{
    ig_buf_reset(out);
    if (ig_buf_append(out, "", 0) != 0)
        return -1;
    void *p = out->data;
    if (ig_grow(&p, &out->cap, 4 * ((len + 2) / 3) + 1, 1) != 0)
        return -1;
    out->data = p;
    out->len = (size_t)EVP_EncodeBlock((unsigned char *)out->data, data, (int)len);
    return 0;
}

void
be_note(struct be_call *c, const char *kind, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *p = be_provenance(c);
    json_t *notes = json_object_get(p, "notes");
    if (!notes) {
        notes = json_array();
        json_object_set_new(p, "notes", notes);
    }
    json_array_append_new(notes, json_pack("{s:s,s:s}", "kind", kind, "message", msg));
}

int
be_provenance_json(const struct be_result *r, struct ig_buf *out)
{
    const struct ig_buf *t = &r->provenance_text;
    if (t->len)
        return ig_buf_reserve(out, t->len + 2) == 0 && ig_buf_append(out, "{", 1) == 0 &&
                       ig_buf_append(out, t->data, t->len) == 0 && ig_buf_append(out, "}", 1) == 0
                   ? 0
                   : -1;
    if (!r->provenance)
        return 1;
    return ig_json_dump(r->provenance, out);
}

json_t *
be_provenance(struct be_call *c)
{
    struct be_result *r = &c->result;
    if (!r->provenance && r->provenance_text.len) {
        /* Written as text so far (a relay), and now wanted as a tree. */
        struct ig_buf whole = {0};
        if (be_provenance_json(r, &whole) == 0)
            r->provenance = json_loadb(whole.data, whole.len, 0, NULL);
        ig_buf_free(&whole);
        ig_buf_free(&r->provenance_text);
    }
    if (!r->provenance)
        r->provenance = json_object();
    return r->provenance;
}

void
be_prov_begin(struct be_prov *p, struct be_call *c)
{
    p->c = c;
    p->w = (struct ig_jw){.b = &c->result.provenance_text};
    p->tree = c->req.relay_body && !c->result.provenance ? NULL : be_provenance(c);
}

/* ,"key": in the text (the comma unless it is the first member) */
static void
prov_key(struct be_prov *p, const char *key)
{
    if (p->w.b->len)
        ig_jw_raw(&p->w, ",");
    ig_jw_str(&p->w, key);
    ig_jw_raw(&p->w, ":");
}

/* Whether s is ASCII: the common case, which needs no UTF-8 check. */
static int
ascii_n(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

void
be_prov_str(struct be_prov *p, const char *key, const char *value)
{
    if (p->tree) {
        json_object_set_new(p->tree, key, json_string(value));
        return;
    }
    if (!ascii_n(value, strlen(value))) {
        /* Dropped where the tree drops it: json_string refuses bad UTF-8. */
        json_t *v = json_string(value);
        if (!v)
            return;
        json_decref(v);
    }
    prov_key(p, key);
    ig_jw_str(&p->w, value);
}

void
be_prov_int(struct be_prov *p, const char *key, long long value)
{
    if (p->tree) {
        json_object_set_new(p->tree, key, json_integer(value));
        return;
    }
    char t[IG_INT_TEXT];
    ig_fmt_ll(t, value);
    prov_key(p, key);
    ig_jw_raw(&p->w, t);
}

void
be_prov_json(struct be_prov *p, const char *key, const char *text, size_t len)
{
    if (p->tree || !ascii_n(text, len)) {
        json_t *v = ig_json_from_scanned(text, len);
        if (!v)
            return;
        if (p->tree) {
            json_object_set_new(p->tree, key, v);
            return;
        }
        prov_key(p, key);
        if (!p->w.failed && ig_json_dump(v, p->w.b) != 0)
            p->w.failed = 1;
        json_decref(v);
        return;
    }
    prov_key(p, key);
    if (!p->w.failed && ig_json_compact(p->w.b, text, len) != 0)
        p->w.failed = 1;
}

int
be_prov_end(struct be_prov *p)
{
    if (!p->tree && ig_jw_end(&p->w) != 0) {
        ig_buf_free(&p->c->result.provenance_text);
        return -1;
    }
    return 0;
}
