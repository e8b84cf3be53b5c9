/* SPDX-License-Identifier: MIT */
/* pg.c -- the shared job store: PostgreSQL through libpq.
 *
 * Several gateways share one database. What must hold across them is done
 * by PostgreSQL, not by us: an idempotency key is a primary key; a budget
 * reservation takes a transaction-scoped advisory lock on the tenant before
 * it sums the ledger, so two replicas can never both see room under a
 * ceiling; a job is claimed with UPDATE ... WHERE lease expired, so exactly
 * one replica wins it. Migrations run under an advisory lock, so replicas
 * starting together migrate once.
 *
 * One connection per store, serialised by a mutex. When the server goes away
 * every call fails with the retryable store_unavailable (503), and the next
 * call after it is back reconnects: no restart of the gateway is needed. */
#include "store/internal.h"
#include "core/alloc.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_store {
    PGconn *conn;
    pthread_mutex_t mu;
};

/* ---- Plumbing --------------------------------------------------------------- */

static int
pg_fail(struct pg_store *s, struct ig_error *err, const char *what)
{
    const char *msg = PQerrorMessage(s->conn);
    char first[256];
    size_t n = strcspn(msg, "\n");
    snprintf(first, sizeof first, "%.*s", (int)(n < 255 ? n : 255), msg);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return ig_error_set(err, 503, "store_unavailable", "%s: the database is unreachable (%s)",
                            what, first);
    return ig_error_set(err, 503, "store_error", "%s: %s", what, first);
}

/* Makes sure the connection is up; reconnects once if the server came back. */
static int
ensure(struct pg_store *s, struct ig_error *err)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    PQreset(s->conn);
    return PQstatus(s->conn) == CONNECTION_OK ? 0 : pg_fail(s, err, "connecting");
}

/* Runs one statement with text parameters. Returns the result (caller
 * PQclears it) or NULL with err filled. A dropped connection is retried once
 * after a reconnect, since the statement never reached the server. */
static PGresult *
run(struct pg_store *s, const char *sql, int n, const char *const *params, struct ig_error *err,
    const char *what)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure(s, err) != 0)
            return NULL;
        /* Without parameters, the simple protocol: it also runs the
         * multi-statement scripts of the migrations. */
        PGresult *r = n ? PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0)
                        : PQexec(s->conn, sql);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            return r;
        PQclear(r);
        if (PQstatus(s->conn) == CONNECTION_OK || attempt == 1) {
            pg_fail(s, err, what);
            return NULL;
        }
    }
    return NULL;
}

static int
exec_ok(struct pg_store *s, const char *sql, int n, const char *const *params,
        struct ig_error *err, const char *what)
{
    PGresult *r = run(s, sql, n, params, err, what);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static void
rollback(struct pg_store *s)
{
    PQclear(PQexec(s->conn, "ROLLBACK"));
}

/* ---- Schema ------------------------------------------------------------------ */

static const char *const migrations[] = {
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, class TEXT NOT NULL,"
    "  state INTEGER NOT NULL, request TEXT, result TEXT, error TEXT, vendor TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, owner TEXT, lease_ms BIGINT);"
    "CREATE INDEX jobs_unfinished ON jobs(state) WHERE state < 2;"
    "CREATE TABLE attempts ("
    "  job_id TEXT NOT NULL, n INTEGER NOT NULL, backend TEXT NOT NULL,"
    "  outcome TEXT NOT NULL, detail TEXT, at_ms BIGINT NOT NULL, PRIMARY KEY (job_id, n));"
    "CREATE TABLE idempotency ("
    "  tenant TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT, job_id TEXT NOT NULL,"
    "  created_ms BIGINT NOT NULL, PRIMARY KEY (tenant, key));"
    "CREATE TABLE ledger ("
    "  id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, job_id TEXT, attempt INTEGER,"
    "  state TEXT NOT NULL CHECK (state IN ('reserved','committed','released')),"
    "  usd DOUBLE PRECISION NOT NULL, at_ms BIGINT NOT NULL);"
    "CREATE INDEX ledger_tenant ON ledger(tenant, at_ms);",
};

/* The advisory lock key for migrations: any fixed number, "imagegate" in hex-ish. */
#define MIGRATION_LOCK "7309134520"

static int
migrate(struct pg_store *s, struct ig_error *err)
{
    if (exec_ok(s, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", 0, NULL, err, "locking") != 0)
        return -1;
    int rc = -1;
    int latest = (int)(sizeof migrations / sizeof migrations[0]);
    PGresult *r;
    if (exec_ok(s, "CREATE TABLE IF NOT EXISTS imagegate_schema (version INTEGER NOT NULL)", 0,
                NULL, err, "migrating") != 0 ||
        !(r = run(s, "SELECT COALESCE(MAX(version), 0) FROM imagegate_schema", 0, NULL, err,
                  "reading the schema version")))
        goto out;
    int version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (version > latest) {
        ig_error_set(err, 500, "store_version",
                     "the database has schema version %d; this imagegate knows up to %d", version,
                     latest);
        goto out;
    }
    for (int v = version; v < latest; v++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO imagegate_schema VALUES (%d)", v + 1);
        if (exec_ok(s, "BEGIN", 0, NULL, err, "migrating") != 0)
            goto out;
        if (exec_ok(s, migrations[v], 0, NULL, err, "migrating") != 0 ||
            exec_ok(s, sql, 0, NULL, err, "migrating") != 0 ||
            exec_ok(s, "COMMIT", 0, NULL, err, "migrating") != 0) {
            rollback(s);
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(PQexec(s->conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")"));
    return rc;
}

/* ---- Jobs ------------------------------------------------------------------- */

static char *
dup_value(PGresult *r, int row, int col, int *oom)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    char *v = ig_strdup(PQgetvalue(r, row, col));
    if (!v)
        *oom = 1;
    return v;
}

#define JOB_COLUMNS "id, tenant, class, state, request, result, error, vendor, attempts, " \
                    "created_ms, updated_ms"

static int
row_to_job(PGresult *r, int row, struct store_job *j)
{
    int oom = 0;
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", PQgetvalue(r, row, 0));
    snprintf(j->tenant, sizeof j->tenant, "%s", PQgetvalue(r, row, 1));
    snprintf(j->cls, sizeof j->cls, "%s", PQgetvalue(r, row, 2));
    j->state = (enum store_state)atoi(PQgetvalue(r, row, 3));
    j->request = dup_value(r, row, 4, &oom);
    j->result = dup_value(r, row, 5, &oom);
    j->error = dup_value(r, row, 6, &oom);
    j->vendor = dup_value(r, row, 7, &oom);
    j->attempts = atoi(PQgetvalue(r, row, 8));
    j->created_ms = atol(PQgetvalue(r, row, 9));
    j->updated_ms = atol(PQgetvalue(r, row, 10));
    if (oom)
        store_job_clear(j);
    return oom ? -1 : 0;
}

static int
locked_job_create(struct pg_store *s, struct store_job *job, const char *idem_key,
                  const char *request_hash, struct ig_error *err)
{
    if (!job->id[0] && store_new_id(job->id, "job") != 0)
        return ig_error_set(err, 500, "random", "no randomness for a job id");
    job->created_ms = job->updated_ms = store_now_ms();
    char now[32], state[8];
    snprintf(now, sizeof now, "%ld", job->created_ms);
    snprintf(state, sizeof state, "%d", job->state);
    if (exec_ok(s, "BEGIN", 0, NULL, err, "creating a job") != 0)
        return -1;
    if (idem_key) {
        /* The key's row is inserted first: a concurrent twin blocks on the
         * primary key until this transaction ends, then sees the row. */
        const char *p[] = {job->tenant, idem_key, request_hash, job->id, now};
        PGresult *r = run(s,
                          "INSERT INTO idempotency (tenant, key, request_hash, job_id, created_ms) "
                          "VALUES ($1,$2,$3,$4,$5) ON CONFLICT (tenant, key) DO NOTHING "
                          "RETURNING job_id", 5, p, err, "creating a job");
        if (!r) {
            rollback(s);
            return -1;
        }
        int inserted = PQntuples(r) == 1;
        PQclear(r);
        if (!inserted) {
            const char *q[] = {job->tenant, idem_key};
            r = run(s, "SELECT job_id, request_hash FROM idempotency WHERE tenant=$1 AND key=$2",
                    2, q, err, "reading an idempotency key");
            if (!r || PQntuples(r) != 1) {
                if (r)
                    PQclear(r);
                rollback(s);
                return r ? ig_error_set(err, 503, "store_error", "idempotency key vanished") : -1;
            }
            int conflict = request_hash && !PQgetisnull(r, 0, 1) &&
                           strcmp(PQgetvalue(r, 0, 1), request_hash) != 0;
            snprintf(job->id, sizeof job->id, "%s", PQgetvalue(r, 0, 0));
            PQclear(r);
            rollback(s);
            if (conflict)
                return ig_error_set(err, 409, "idempotency_conflict",
                                    "Idempotency-Key '%.64s' was used for a different request",
                                    idem_key);
            return 1;
        }
    }
    char lease[32];
    snprintf(lease, sizeof lease, "%ld", job->created_ms + (job->lease_ms ? job->lease_ms : 30000));
    const char *p[] = {job->id, job->tenant, job->cls, state, job->request, now,
                       job->owner[0] ? job->owner : NULL, lease};
    if (exec_ok(s,
                "INSERT INTO jobs (id, tenant, class, state, request, created_ms, updated_ms, "
                "owner, lease_ms) VALUES ($1,$2,$3,$4,$5,$6,$6,$7,$8)", 8, p, err,
                "creating a job") != 0 ||
        exec_ok(s, "COMMIT", 0, NULL, err, "creating a job") != 0) {
        rollback(s);
        return -1;
    }
    return 0;
}

static int
locked_job_get(struct pg_store *s, const char *id, const char *tenant, struct store_job *out,
               struct ig_error *err)
{
    const char *p[] = {id};
    PGresult *r = run(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE id=$1", 1, p, err,
                      "reading a job");
    if (!r)
        return -1;
    int rc;
    if (PQntuples(r) == 1 && (!tenant || strcmp(PQgetvalue(r, 0, 1), tenant) == 0))
        rc = row_to_job(r, 0, out) == 0
                 ? 0
                 : ig_error_set(err, 500, "out_of_memory", "out of memory reading a job");
    else
        rc = ig_error_set(err, 404, "not_found", "no job '%.40s'", id);
    PQclear(r);
    return rc;
}

static int
locked_job_update(struct pg_store *s, const char *id, enum store_state state, const char *result,
                  const char *error, struct ig_error *err)
{
    char st[8], now[32];
    snprintf(st, sizeof st, "%d", state);
    snprintf(now, sizeof now, "%ld", store_now_ms());
    const char *p[] = {st, result, error, now, id};
    PGresult *r = run(s,
                      "UPDATE jobs SET state=$1, result=COALESCE($2, result), "
                      "error=COALESCE($3, error), updated_ms=$4, "
                      "attempts=(SELECT COUNT(*) FROM attempts WHERE job_id=jobs.id) "
                      "WHERE id=$5 AND state < 2", 5, p, err, "updating a job");
    if (!r)
        return -1;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed == 1 ? 0 : 1;
}

static int
locked_job_set_vendor(struct pg_store *s, const char *id, const char *vendor_json,
                      struct ig_error *err)
{
    char now[32];
    snprintf(now, sizeof now, "%ld", store_now_ms());
    const char *p[] = {vendor_json, now, id};
    return exec_ok(s, "UPDATE jobs SET vendor=$1, updated_ms=$2, state=GREATEST(state, 1) WHERE id=$3", 3, p, err,
                   "saving vendor state");
}

static int
each_job(PGresult *r, void (*fn)(const struct store_job *, void *), void *ud,
         struct ig_error *err)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct store_job j;
        if (row_to_job(r, i, &j) != 0)
            return ig_error_set(err, 500, "out_of_memory", "out of memory listing jobs");
        fn(&j, ud);
        store_job_clear(&j);
    }
    return 0;
}

static int
locked_jobs_unfinished(struct pg_store *s, void (*fn)(const struct store_job *, void *),
                       void *ud, struct ig_error *err)
{
    PGresult *r = run(s, "SELECT " JOB_COLUMNS " FROM jobs WHERE state < 2 ORDER BY created_ms",
                      0, NULL, err, "listing unfinished jobs");
    if (!r)
        return -1;
    int rc = each_job(r, fn, ud, err);
    PQclear(r);
    return rc;
}

static int
locked_jobs_claim(struct pg_store *s, const char *owner, long lease_ms, int force,
                  void (*fn)(const struct store_job *, void *), void *ud, struct ig_error *err)
{
    char now[32], until[32];
    long t = store_now_ms();
    snprintf(now, sizeof now, "%ld", force ? (long)9e17 : t);
    snprintf(until, sizeof until, "%ld", t + lease_ms);
    const char *p[] = {owner, until, now};
    /* SKIP LOCKED: replicas claiming at once split the jobs between them
     * instead of waiting on each other's rows. */
    PGresult *r = run(s,
                      "UPDATE jobs SET owner=$1, lease_ms=$2 WHERE id IN ("
                      "  SELECT id FROM jobs WHERE state < 2 AND "
                      "  (lease_ms IS NULL OR lease_ms < $3) AND (owner IS NULL OR owner <> $1) "
                      "  FOR UPDATE SKIP LOCKED) RETURNING " JOB_COLUMNS, 3, p, err,
                      "claiming jobs");
    if (!r)
        return -1;
    int rc = each_job(r, fn, ud, err);
    PQclear(r);
    return rc;
}

static int
locked_lease_renew(struct pg_store *s, const char *owner, long lease_ms, struct ig_error *err)
{
    char until[32];
    snprintf(until, sizeof until, "%ld", store_now_ms() + lease_ms);
    const char *p[] = {until, owner};
    return exec_ok(s, "UPDATE jobs SET lease_ms=$1 WHERE owner=$2 AND state < 2", 2, p, err,
                   "renewing leases");
}

static int
locked_attempt_add(struct pg_store *s, const char *job_id, int n, const char *backend,
                   const char *outcome, const char *detail_json, struct ig_error *err)
{
    char nn[16], now[32];
    snprintf(nn, sizeof nn, "%d", n);
    snprintf(now, sizeof now, "%ld", store_now_ms());
    const char *p[] = {job_id, nn, backend, outcome, detail_json, now};
    return exec_ok(s,
                   "INSERT INTO attempts (job_id, n, backend, outcome, detail, at_ms) "
                   "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (job_id, n) DO UPDATE SET "
                   "backend=EXCLUDED.backend, outcome=EXCLUDED.outcome, detail=EXCLUDED.detail, "
                   "at_ms=EXCLUDED.at_ms", 6, p, err, "recording an attempt");
}

/* ---- Ledger --------------------------------------------------------------- */

static int
spent_since(struct pg_store *s, const char *tenant, long since_ms, double *usd,
            struct ig_error *err)
{
    char since[32];
    snprintf(since, sizeof since, "%ld", since_ms);
    const char *p[] = {tenant, since};
    PGresult *r = run(s,
                      "SELECT COALESCE(SUM(usd), 0) FROM ledger WHERE tenant=$1 AND at_ms>=$2 "
                      "AND state IN ('reserved','committed')", 2, p, err, "reading the ledger");
    if (!r)
        return -1;
    *usd = atof(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int
locked_budget_reserve(struct pg_store *s, const char *tenant, const char *job_id, int attempt,
                      double usd, double daily_cap, double monthly_cap, long at_ms,
                      long long *reservation, struct ig_error *err)
{
    if (exec_ok(s, "BEGIN", 0, NULL, err, "reserving budget") != 0)
        return -1;
    const char *lp[] = {tenant};
    long day, month;
    store_period_starts(at_ms, &day, &month);
    double spent_day = 0, spent_month = 0;
    /* The tenant's lock serialises reservations across every replica. */
    if (exec_ok(s, "SELECT pg_advisory_xact_lock(hashtext('budget:' || $1))", 1, lp, err,
                "locking the budget") != 0 ||
        spent_since(s, tenant, day, &spent_day, err) != 0 ||
        spent_since(s, tenant, month, &spent_month, err) != 0) {
        rollback(s);
        return -1;
    }
    const char *which = NULL;
    double cap = 0, spent = 0;
    if (daily_cap > 0 && spent_day + usd > daily_cap + 1e-9) {
        which = "daily";
        cap = daily_cap;
        spent = spent_day;
    } else if (monthly_cap > 0 && spent_month + usd > monthly_cap + 1e-9) {
        which = "monthly";
        cap = monthly_cap;
        spent = spent_month;
    }
    if (which) {
        rollback(s);
        return ig_error_set(err, 402, "budget_exceeded",
                            "tenant %s: $%.4f more would pass its %s ceiling of $%.2f "
                            "($%.4f spent or reserved)", tenant, usd, which, cap, spent);
    }
    char a[16], u[64], at[32];
    snprintf(a, sizeof a, "%d", attempt);
    snprintf(u, sizeof u, "%.17g", usd);
    snprintf(at, sizeof at, "%ld", at_ms);
    const char *p[] = {tenant, job_id, a, u, at};
    PGresult *r = run(s,
                      "INSERT INTO ledger (tenant, job_id, attempt, state, usd, at_ms) "
                      "VALUES ($1,$2,$3,'reserved',$4,$5) RETURNING id", 5, p, err,
                      "reserving budget");
    if (!r) {
        rollback(s);
        return -1;
    }
    *reservation = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (exec_ok(s, "COMMIT", 0, NULL, err, "reserving budget") != 0) {
        rollback(s);
        return -1;
    }
    return 0;
}

static int
ledger_settle(struct pg_store *s, long long reservation, const char *state, double usd,
              struct ig_error *err)
{
    char id[32], u[64];
    snprintf(id, sizeof id, "%lld", reservation);
    snprintf(u, sizeof u, "%.17g", usd);
    const char *p[] = {state, u, id};
    PGresult *r = run(s, "UPDATE ledger SET state=$1, usd=$2 WHERE id=$3 AND state='reserved'", 3,
                      p, err, "settling a reservation");
    if (!r)
        return -1;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    if (changed != 1)
        return ig_error_set(err, 409, "reservation_settled",
                            "reservation %lld is unknown or already settled", reservation);
    return 0;
}

static int
locked_attempt_end(struct pg_store *s, const struct store_attempt_end *e, struct ig_error *err)
{
    if (exec_ok(s, "BEGIN", 0, NULL, err, "ending an attempt") != 0)
        return -1;
    int rc = locked_attempt_add(s, e->job_id, e->n, e->backend, e->outcome, e->detail, err);
    if (rc == 0 && e->reservation && e->settle != STORE_SETTLE_NONE)
        rc = ledger_settle(s, e->reservation,
                           e->settle == STORE_SETTLE_COMMIT ? "committed" : "released",
                           e->settle == STORE_SETTLE_COMMIT ? e->usd : 0, err);
    if (rc == 0 && e->finish) {
        rc = locked_job_update(s, e->job_id, e->state, e->result, e->error, err) < 0 ? -1 : 0;
    } else if (rc == 0) {
        /* Back from the vendor: nothing is in flight, nothing to resume. */
        const char *p[] = {e->job_id};
        rc = exec_ok(s, "UPDATE jobs SET state=0, vendor=NULL WHERE id=$1 AND state=1", 1, p, err,
                     "ending an attempt");
    }
    if (rc != 0 || exec_ok(s, "COMMIT", 0, NULL, err, "ending an attempt") != 0) {
        rollback(s);
        return -1;
    }
    return 0;
}

static int
locked_budget_close_job(struct pg_store *s, const char *job_id, long long keep,
                        struct ig_error *err)
{
    char k[32];
    snprintf(k, sizeof k, "%lld", keep);
    const char *p[] = {job_id, k};
    return exec_ok(s,
                   "UPDATE ledger SET state='committed' WHERE job_id=$1 AND state='reserved' "
                   "AND id<>$2", 2, p, err, "closing a job's reservations");
}

/* ---- Finished jobs written whole (the relay) ------------------------------- */

static int
locked_jobs_record(struct pg_store *s, const struct store_record *r, size_t n,
                   struct ig_error *err)
{
    if (exec_ok(s, "BEGIN", 0, NULL, err, "recording jobs") != 0)
        return -1;
    char now[32];
    snprintf(now, sizeof now, "%ld", store_now_ms());
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char state[8], started[32], usd[64];
        snprintf(state, sizeof state, "%d", r[i].state);
        snprintf(started, sizeof started, "%ld", r[i].started_ms);
        snprintf(usd, sizeof usd, "%.10g", r[i].usd);
        const char *pj[] = {r[i].id, r[i].tenant, r[i].cls, state, r[i].request, r[i].result,
                            r[i].error, started, now};
        const char *pa[] = {r[i].id, r[i].backend, r[i].outcome, r[i].detail, now};
        const char *pl[] = {r[i].tenant, r[i].id, usd, now};
        rc = exec_ok(s,
                     "INSERT INTO jobs (id, tenant, class, state, request, result, error, "
                     "attempts, created_ms, updated_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,1,$8,$9)",
                     9, pj, err, "recording jobs");
        if (rc == 0)
            rc = exec_ok(s,
                         "INSERT INTO attempts (job_id, n, backend, outcome, detail, at_ms) "
                         "VALUES ($1,1,$2,$3,$4,$5)", 5, pa, err, "recording jobs");
        if (rc == 0 && r[i].usd > 0)
            rc = exec_ok(s,
                         "INSERT INTO ledger (tenant, job_id, attempt, state, usd, at_ms) "
                         "VALUES ($1,$2,1,'committed',$3,$4)", 4, pl, err, "recording jobs");
    }
    if (rc != 0 || exec_ok(s, "COMMIT", 0, NULL, err, "recording jobs") != 0) {
        rollback(s);
        return -1;
    }
    return 0;
}

/* ---- The ops table ----------------------------------------------------------- */

#define LOCKED(impl, call)                        \
    do {                                          \
        struct pg_store *s = impl;                \
        pthread_mutex_lock(&s->mu);               \
        int rc_ = (call);                         \
        pthread_mutex_unlock(&s->mu);             \
        return rc_;                               \
    } while (0)

static int
pg_job_create(void *impl, struct store_job *job, const char *idem_key, const char *request_hash,
              struct ig_error *err)
{
    LOCKED(impl, locked_job_create(s, job, idem_key, request_hash, err));
}

static int
pg_job_get(void *impl, const char *id, const char *tenant, struct store_job *out,
           struct ig_error *err)
{
    LOCKED(impl, locked_job_get(s, id, tenant, out, err));
}

static int
pg_job_update(void *impl, const char *id, enum store_state state, const char *result,
              const char *error, struct ig_error *err)
{
    LOCKED(impl, locked_job_update(s, id, state, result, error, err));
}

static int
pg_job_set_vendor(void *impl, const char *id, const char *vendor_json, struct ig_error *err)
{
    LOCKED(impl, locked_job_set_vendor(s, id, vendor_json, err));
}

static int
pg_jobs_unfinished(void *impl, void (*fn)(const struct store_job *, void *), void *ud,
                   struct ig_error *err)
{
    LOCKED(impl, locked_jobs_unfinished(s, fn, ud, err));
}

static int
pg_attempt_add(void *impl, const char *job_id, int n, const char *backend, const char *outcome,
               const char *detail_json, struct ig_error *err)
{
    LOCKED(impl, locked_attempt_add(s, job_id, n, backend, outcome, detail_json, err));
}

static int
pg_attempt_end(void *impl, const struct store_attempt_end *e, struct ig_error *err)
{
    LOCKED(impl, locked_attempt_end(s, e, err));
}

static int
pg_budget_reserve(void *impl, const char *tenant, const char *job_id, int attempt, double usd,
                  double daily_cap, double monthly_cap, long at_ms, long long *reservation,
                  struct ig_error *err)
{
    LOCKED(impl, locked_budget_reserve(s, tenant, job_id, attempt, usd, daily_cap, monthly_cap,
                                       at_ms, reservation, err));
}

static int
pg_budget_commit(void *impl, long long reservation, double usd, struct ig_error *err)
{
    LOCKED(impl, ledger_settle(s, reservation, "committed", usd, err));
}

static int
pg_budget_release(void *impl, long long reservation, struct ig_error *err)
{
    LOCKED(impl, ledger_settle(s, reservation, "released", 0, err));
}

static int
pg_budget_close_job(void *impl, const char *job_id, long long keep, struct ig_error *err)
{
    LOCKED(impl, locked_budget_close_job(s, job_id, keep, err));
}

static int
pg_budget_spent(void *impl, const char *tenant, long since_ms, double *usd, struct ig_error *err)
{
    LOCKED(impl, spent_since(s, tenant, since_ms, usd, err));
}

static int
pg_jobs_claim(void *impl, const char *owner, long lease_ms, int force,
              void (*fn)(const struct store_job *, void *), void *ud, struct ig_error *err)
{
    LOCKED(impl, locked_jobs_claim(s, owner, lease_ms, force, fn, ud, err));
}

static int
pg_lease_renew(void *impl, const char *owner, long lease_ms, struct ig_error *err)
{
    LOCKED(impl, locked_lease_renew(s, owner, lease_ms, err));
}

static void
pg_close(void *impl)
{
    struct pg_store *s = impl;
    if (!s)
        return;
    PQfinish(s->conn);
    pthread_mutex_destroy(&s->mu);
    ig_free(s);
}

static int
pg_jobs_record(void *impl, const struct store_record *r, size_t n, struct ig_error *err)
{
    LOCKED(impl, locked_jobs_record(s, r, n, err));
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .job_create = pg_job_create,
    .job_get = pg_job_get,
    .job_update = pg_job_update,
    .job_set_vendor = pg_job_set_vendor,
    .jobs_unfinished = pg_jobs_unfinished,
    .attempt_add = pg_attempt_add,
    .attempt_end = pg_attempt_end,
    .budget_reserve = pg_budget_reserve,
    .budget_commit = pg_budget_commit,
    .budget_release = pg_budget_release,
    .budget_close_job = pg_budget_close_job,
    .budget_spent = pg_budget_spent,
    .jobs_claim = pg_jobs_claim,
    .lease_renew = pg_lease_renew,
    .jobs_record = pg_jobs_record,
};

int
store_pg_open(struct store *st, const char *conninfo, struct ig_error *err)
{
    struct pg_store *s = ig_calloc(1, sizeof *s);
    if (!s)
        return ig_error_set(err, 500, "out_of_memory", "out of memory opening the store");
    pthread_mutex_init(&s->mu, NULL);
    s->conn = PQconnectdb(conninfo);
    if (!s->conn) {
        pg_close(s);
        return ig_error_set(err, 500, "out_of_memory", "out of memory connecting");
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        /* The message may hold the conninfo; it never holds a password,
         * which libpq does not echo. */
        pg_fail(s, err, "connecting to PostgreSQL");
        pg_close(s);
        return -1;
    }
    PQclear(PQexec(s->conn, "SET client_min_messages TO warning"));
    if (migrate(s, err) != 0) {
        pg_close(s);
        return -1;
    }
    st->ops = &pg_ops;
    st->impl = s;
    return 0;
}
