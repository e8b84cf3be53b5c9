/* SPDX-License-Identifier: MIT */
/* limit_redis.c -- rate limits, concurrency slots and circuit breakers that
 * every gateway replica shares, in Redis (hiredis).
 *
 * Each operation is one Lua script, so Redis runs it atomically: two
 * replicas can never both take the last token. The scripts read the clock
 * with Redis's own TIME, so replicas whose clocks disagree still share one
 * bucket. Concurrency slots are a sorted set of holders scored by expiry: a
 * replica that dies holding slots loses them when they lapse, instead of
 * leaking them forever. Scripts are sent with EVAL (Redis caches them by
 * hash); at these rates that costs nothing worth the EVALSHA dance.
 *
 * When Redis is unreachable, admission answers -1 (the caller retries
 * later) and the next call reconnects. */
#include "route/limit_redis.h"
#include "core/alloc.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct route_limits_redis {
    pthread_mutex_t mu;
    redisContext *c;
    char host[256];
    int port;
    char prefix[64];
};

/* KEYS: requests bucket, images bucket, slots set.
 * ARGV: rpm, ipm, concurrency, n_images, holder, slot_ttl_ms.
 * Returns {admitted, wait_ms, reason}. */
static const char admit_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local rpm, ipm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local n, holder, ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])\n"
    "local function level(key, rate)\n"
    "  local v = redis.call('HMGET', key, 'tokens', 'ts')\n"
    "  local tokens, ts = tonumber(v[1]) or rate, tonumber(v[2]) or now\n"
    "  if now > ts then tokens = math.min(rate, tokens + (now - ts) * rate / 60000) end\n"
    "  return tokens\n"
    "end\n"
    "if conc > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "  if redis.call('ZCARD', KEYS[3]) >= conc then return {0, 0, 'concurrency'} end\n"
    "end\n"
    "local rt, it = 0, 0\n"
    "if rpm > 0 then\n"
    "  rt = level(KEYS[1], rpm)\n"
    "  if rt < 1 then return {0, math.ceil((1 - rt) * 60000 / rpm), 'rpm'} end\n"
    "end\n"
    "if ipm > 0 then\n"
    "  it = level(KEYS[2], ipm)\n"
    "  if n > ipm then return {0, -1, 'ipm'} end\n"
    "  if it < n then return {0, math.ceil((n - it) * 60000 / ipm), 'ipm'} end\n"
    "end\n"
    "if rpm > 0 then\n"
    "  redis.call('HSET', KEYS[1], 'tokens', tostring(rt - 1), 'ts', now)\n"
    "  redis.call('PEXPIRE', KEYS[1], 120000)\n"
    "end\n"
    "if ipm > 0 then\n"
    "  redis.call('HSET', KEYS[2], 'tokens', tostring(it - n), 'ts', now)\n"
    "  redis.call('PEXPIRE', KEYS[2], 120000)\n"
    "end\n"
    "if conc > 0 then\n"
    "  redis.call('ZADD', KEYS[3], now + ttl, holder)\n"
    "  redis.call('PEXPIRE', KEYS[3], ttl)\n"
    "end\n"
    "return {1, 0, ''}\n";

/* KEYS: breaker hash. ARGV: threshold, cooldown_ms. Returns 1 or 0. */
static const char allow_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local v = redis.call('HMGET', KEYS[1], 'state', 'opened', 'probe')\n"
    "redis.call('HSETNX', KEYS[1], 'threshold', ARGV[1])\n"
    "local state = v[1] or 'closed'\n"
    "if state == 'closed' then return 1 end\n"
    "if state == 'open' then\n"
    "  if now - tonumber(v[2] or '0') < tonumber(ARGV[2]) then return 0 end\n"
    "  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe', '1')\n"
    "  return 1\n"
    "end\n"
    "if v[3] == '1' then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'probe', '1')\n"
    "return 1\n";

/* KEYS: breaker hash. ARGV: success (0/1), threshold. */
static const char record_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if ARGV[1] == '1' then\n"
    "  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'probe', '0')\n"
    "  return 'closed'\n"
    "end\n"
    "local state = redis.call('HGET', KEYS[1], 'state') or 'closed'\n"
    "local f = redis.call('HINCRBY', KEYS[1], 'failures', 1)\n"
    "local threshold = tonumber(redis.call('HGET', KEYS[1], 'threshold') or ARGV[2])\n"
    "if state == 'half_open' or (threshold > 0 and f >= threshold) then\n"
    "  redis.call('HSET', KEYS[1], 'state', 'open', 'opened', now, 'probe', '0')\n"
    "  return 'open'\n"
    "end\n"
    "return state\n";

static int
connect_locked(struct route_limits_redis *r, struct ig_error *err)
{
    if (r->c && !r->c->err)
        return 0;
    if (r->c)
        redisFree(r->c);
    struct timeval tv = {1, 0};
    r->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->c || r->c->err) {
        ig_error_set(err, 503, "limits_unavailable", "Redis at %s:%d: %s", r->host, r->port,
                     r->c ? r->c->errstr : "out of memory");
        if (r->c) {
            redisFree(r->c);
            r->c = NULL;
        }
        return -1;
    }
    redisSetTimeout(r->c, tv);
    return 0;
}

/* Runs a command; NULL when Redis cannot be reached (the connection is
 * dropped so the next call reconnects). Caller holds r->mu. */
static redisReply *
command(struct route_limits_redis *r, int argc, const char **argv, struct ig_error *err)
{
    if (connect_locked(r, err) != 0)
        return NULL;
    redisReply *rep = redisCommandArgv(r->c, argc, argv, NULL);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        ig_error_set(err, 503, "limits_unavailable", "Redis: %s",
                     rep ? rep->str : r->c->errstr);
        if (rep)
            freeReplyObject(rep);
        else {
            redisFree(r->c);
            r->c = NULL;
        }
        return NULL;
    }
    return rep;
}

struct route_limits_redis *
route_limits_redis_connect(const char *addr, const char *prefix, struct ig_error *err)
{
    struct route_limits_redis *r = ig_calloc(1, sizeof *r);
    if (!r) {
        ig_error_set(err, 500, "out_of_memory", "out of memory");
        return NULL;
    }
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof r->host || atoi(colon + 1) <= 0) {
        ig_free(r);
        ig_error_set(err, 400, "bad_config", "Redis address '%s' must be HOST:PORT", addr);
        return NULL;
    }
    memcpy(r->host, addr, (size_t)(colon - addr));
    r->port = atoi(colon + 1);
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix ? prefix : "imagegate");
    pthread_mutex_init(&r->mu, NULL);
    if (connect_locked(r, err) != 0) {
        route_limits_redis_free(r);
        return NULL;
    }
    return r;
}

void
route_limits_redis_free(struct route_limits_redis *r)
{
    if (!r)
        return;
    if (r->c)
        redisFree(r->c);
    pthread_mutex_destroy(&r->mu);
    ig_free(r);
}

int
route_limits_redis_admit(struct route_limits_redis *r, const char *name,
                         const struct route_limit_spec *s, int n_images, const char *holder,
                         long *wait_ms, char *why, size_t why_size)
{
    char k1[200], k2[200], k3[200], rpm[16], ipm[16], conc[16], n[16], ttl[24];
    snprintf(k1, sizeof k1, "%s:rq:%s", r->prefix, name);
    snprintf(k2, sizeof k2, "%s:im:%s", r->prefix, name);
    snprintf(k3, sizeof k3, "%s:slots:%s", r->prefix, name);
    snprintf(rpm, sizeof rpm, "%d", s->rpm);
    snprintf(ipm, sizeof ipm, "%d", s->ipm);
    snprintf(conc, sizeof conc, "%d", s->concurrency);
    snprintf(n, sizeof n, "%d", n_images);
    snprintf(ttl, sizeof ttl, "%ld", s->slot_ttl_ms > 0 ? s->slot_ttl_ms : 600000L);
    const char *argv[] = {"EVAL", admit_lua, "3", k1, k2, k3, rpm, ipm, conc, n,
                          holder ? holder : "-", ttl};
    struct ig_error err = {0};
    *wait_ms = 0;
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 12, argv, &err);
    pthread_mutex_unlock(&r->mu);
    if (!rep) {
        snprintf(why, why_size, "%s", err.message);
        return -1;
    }
    int ok = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        ok = rep->element[0]->integer == 1;
        *wait_ms = (long)rep->element[1]->integer;
        const char *reason = rep->element[2]->str ? rep->element[2]->str : "";
        if (!ok && strcmp(reason, "concurrency") == 0)
            snprintf(why, why_size, "%s: %d requests in flight cluster-wide (limit %d)", name,
                     s->concurrency, s->concurrency);
        else if (!ok && strcmp(reason, "rpm") == 0)
            snprintf(why, why_size, "%s: over %d requests per minute cluster-wide", name, s->rpm);
        else if (!ok)
            snprintf(why, why_size, "%s: over %d images per minute cluster-wide", name, s->ipm);
    } else {
        snprintf(why, why_size, "Redis answered the admission script oddly");
        freeReplyObject(rep);
        return -1;
    }
    freeReplyObject(rep);
    return ok;
}

void
route_limits_redis_release(struct route_limits_redis *r, const char *name, const char *holder)
{
    char key[200];
    snprintf(key, sizeof key, "%s:slots:%s", r->prefix, name);
    const char *argv[] = {"ZREM", key, holder ? holder : "-"};
    struct ig_error err = {0};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 3, argv, &err);
    pthread_mutex_unlock(&r->mu);
    /* Unreachable: the slot lapses on its own after its ttl. */
    if (rep)
        freeReplyObject(rep);
}

int
route_limits_redis_breaker_allow(struct route_limits_redis *r, const char *name,
                                 const struct route_limit_spec *s)
{
    char key[200], threshold[16], cooldown[24];
    snprintf(key, sizeof key, "%s:breaker:%s", r->prefix, name);
    snprintf(threshold, sizeof threshold, "%d", s->breaker_threshold);
    snprintf(cooldown, sizeof cooldown, "%ld", s->breaker_cooldown_ms);
    const char *argv[] = {"EVAL", allow_lua, "1", key, threshold, cooldown};
    struct ig_error err = {0};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 6, argv, &err);
    pthread_mutex_unlock(&r->mu);
    /* With Redis away the breaker cannot be read; let the call through and
     * let the admission step report the outage. */
    int ok = !rep || rep->integer == 1;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

void
route_limits_redis_breaker_record(struct route_limits_redis *r, const char *name, int success)
{
    char key[200];
    snprintf(key, sizeof key, "%s:breaker:%s", r->prefix, name);
    const char *argv[] = {"EVAL", record_lua, "1", key, success ? "1" : "0", "5"};
    struct ig_error err = {0};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 6, argv, &err);
    pthread_mutex_unlock(&r->mu);
    if (rep)
        freeReplyObject(rep);
}

enum route_breaker_state
route_limits_redis_breaker_state(struct route_limits_redis *r, const char *name)
{
    char key[200];
    snprintf(key, sizeof key, "%s:breaker:%s", r->prefix, name);
    const char *argv[] = {"HGET", key, "state"};
    struct ig_error err = {0};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 3, argv, &err);
    pthread_mutex_unlock(&r->mu);
    enum route_breaker_state s = ROUTE_BREAKER_CLOSED;
    if (rep && rep->type == REDIS_REPLY_STRING)
        s = strcmp(rep->str, "open") == 0        ? ROUTE_BREAKER_OPEN
            : strcmp(rep->str, "half_open") == 0 ? ROUTE_BREAKER_HALF_OPEN
                                                 : ROUTE_BREAKER_CLOSED;
    if (rep)
        freeReplyObject(rep);
    return s;
}

int
route_limits_redis_in_flight(struct route_limits_redis *r, const char *name)
{
    char key[200];
    snprintf(key, sizeof key, "%s:slots:%s", r->prefix, name);
    const char *argv[] = {"ZCARD", key};
    struct ig_error err = {0};
    pthread_mutex_lock(&r->mu);
    redisReply *rep = command(r, 2, argv, &err);
    pthread_mutex_unlock(&r->mu);
    int n = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : 0;
    if (rep)
        freeReplyObject(rep);
    return n;
}
