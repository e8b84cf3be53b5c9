/* SPDX-License-Identifier: MIT */
/* store.c -- the SQLite job store and the on-disk blob store.
 *
 * One connection, serialised by SQLite's own mutex (FULLMUTEX), in WAL mode
 * with synchronous=NORMAL: a committed transaction survives the process being
 * killed (the WAL is in the OS's hands), though not a power cut between
 * checkpoints. Calls are serialised by one mutex. Budget reservations run in BEGIN IMMEDIATE transactions so two
 * threads can never both see room under a ceiling. Blobs are written to a
 * temporary name, fsynced and renamed, so a reader never sees half a file. */
#include "store/store.h"
#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store {
    sqlite3 *db;
    /* One connection is shared by every thread, and a transaction belongs to
     * the connection, not the thread: each public call holds this lock so
     * that two threads' transactions never interleave. */
    pthread_mutex_t mu;
    char dir[4096];
};

static const char *const state_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

const char *
store_state_name(enum store_state s)
{
    return s <= STORE_CANCELLED ? state_names[s] : "?";
}

int
store_state_terminal(enum store_state s)
{
    return s == STORE_SUCCEEDED || s == STORE_FAILED || s == STORE_CANCELLED;
}

static long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
db_fail(struct store *s, struct ig_error *err, const char *what)
{
    return ig_error_set(err, 503, "store_error", "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Versioned schema: each entry moves the database from version i to i+1. */
static const char *const migrations[] = {
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, class TEXT NOT NULL,"
    "  state INTEGER NOT NULL, request TEXT, result TEXT, error TEXT, vendor TEXT,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX jobs_unfinished ON jobs(state) WHERE state < 2;"
    "CREATE TABLE attempts ("
    "  job_id TEXT NOT NULL, n INTEGER NOT NULL, backend TEXT NOT NULL,"
    "  outcome TEXT NOT NULL, detail TEXT, at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (job_id, n));"
    "CREATE TABLE idempotency ("
    "  tenant TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT, job_id TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, PRIMARY KEY (tenant, key));"
    "CREATE TABLE ledger ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, job_id TEXT,"
    "  attempt INTEGER, state TEXT NOT NULL CHECK (state IN ('reserved','committed','released')),"
    "  usd REAL NOT NULL, at_ms INTEGER NOT NULL);"
    "CREATE INDEX ledger_tenant ON ledger(tenant, at_ms);",
};

static int
migrate(struct store *s, struct ig_error *err)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "reading the schema version");
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int latest = (int)(sizeof migrations / sizeof migrations[0]);
    if (version > latest)
        return ig_error_set(err, 500, "store_version",
                            "the store has schema version %d; this imagegate knows up to %d",
                            version, latest);
    for (int v = version; v < latest; v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            int rc = db_fail(s, err, "migrating the store");
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    return 0;
}

static int
mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

struct store *
store_open(const char *dir, struct ig_error *err)
{
    if (strlen(dir) > 3900) {
        ig_error_set(err, 400, "store_path", "data directory path too long");
        return NULL;
    }
    char blobs[4096];
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    if (mkdir_p(blobs) != 0) {
        ig_error_set(err, 500, "store_path", "cannot create %s: %s", blobs, strerror(errno));
        return NULL;
    }
    struct store *s = ig_calloc(1, sizeof *s);
    if (!s) {
        ig_error_set(err, 500, "out_of_memory", "out of memory opening the store");
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    pthread_mutex_init(&s->mu, NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/imagegate.db", dir);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        ig_error_set(err, 500, "store_error", "cannot open %s: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        pthread_mutex_destroy(&s->mu);
        ig_free(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                            "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) != SQLITE_OK ||
        migrate(s, err) != 0) {
        if (!err || !err->code[0])
            db_fail(s, err, "configuring the store");
        store_close(s);
        return NULL;
    }
    return s;
}

void
store_close(struct store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    ig_free(s);
}

void
store_job_clear(struct store_job *j)
{
    ig_free(j->request);
    ig_free(j->result);
    ig_free(j->error);
    ig_free(j->vendor);
    j->request = j->result = j->error = j->vendor = NULL;
}

int
store_new_id(char out[40], const char *prefix)
{
    static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    unsigned char rnd[26];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    size_t n = (size_t)snprintf(out, 40, "%s_", prefix);
    for (size_t i = 0; i < sizeof rnd && n < 39; i++)
        out[n++] = alphabet[rnd[i] & 31];
    out[n] = '\0';
    return 0;
}

/* ---- Jobs ----------------------------------------------------------------- */

static int
locked_job_create(struct store *s, struct store_job *job, const char *idem_key,
                  const char *request_hash, struct ig_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "starting a transaction");
    if (idem_key) {
        if (sqlite3_prepare_v2(s->db,
                               "SELECT job_id, request_hash FROM idempotency WHERE tenant=? AND key=?",
                               -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, job->tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, idem_key, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            const char *old_hash = (const char *)sqlite3_column_text(st, 1);
            if (request_hash && old_hash && strcmp(old_hash, request_hash) != 0) {
                ig_error_set(err, 409, "idempotency_conflict",
                             "Idempotency-Key '%.64s' was used for a different request", idem_key);
                sqlite3_finalize(st);
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
            }
            snprintf(job->id, sizeof job->id, "%s", (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
            sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
            return 1;
        }
        if (step != SQLITE_DONE)
            goto fail;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (!job->id[0] && store_new_id(job->id, "job") != 0) {
        ig_error_set(err, 500, "random", "no randomness for a job id");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    job->created_ms = job->updated_ms = now_ms();
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO jobs (id, tenant, class, state, request, created_ms, "
                           "updated_ms) VALUES (?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, job->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, job->cls, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, job->state);
    sqlite3_bind_text(st, 5, job->request, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, job->created_ms);
    sqlite3_bind_int64(st, 7, job->updated_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (idem_key) {
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO idempotency (tenant, key, request_hash, job_id, "
                               "created_ms) VALUES (?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(st, 1, job->tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, idem_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, request_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, job->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, job->created_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    rc = db_fail(s, err, "creating a job");
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static char *
column_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? ig_strdup((const char *)t) : NULL;
}

static int
row_to_job(sqlite3_stmt *st, struct store_job *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(j->tenant, sizeof j->tenant, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(j->cls, sizeof j->cls, "%s", (const char *)sqlite3_column_text(st, 2));
    j->state = (enum store_state)sqlite3_column_int(st, 3);
    j->attempts = sqlite3_column_int(st, 8);
    j->created_ms = (long)sqlite3_column_int64(st, 9);
    j->updated_ms = (long)sqlite3_column_int64(st, 10);
    j->request = column_dup(st, 4);
    j->result = column_dup(st, 5);
    j->error = column_dup(st, 6);
    j->vendor = column_dup(st, 7);
    if ((sqlite3_column_type(st, 4) != SQLITE_NULL && !j->request) ||
        (sqlite3_column_type(st, 5) != SQLITE_NULL && !j->result) ||
        (sqlite3_column_type(st, 6) != SQLITE_NULL && !j->error) ||
        (sqlite3_column_type(st, 7) != SQLITE_NULL && !j->vendor)) {
        store_job_clear(j);
        return -1;
    }
    return 0;
}

#define JOB_COLUMNS "id, tenant, class, state, request, result, error, vendor, attempts, " \
                    "created_ms, updated_ms"

static int
locked_job_get(struct store *s, const char *id, const char *tenant, struct store_job *out,
               struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT " JOB_COLUMNS " FROM jobs WHERE id=?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, err, "reading a job");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc;
    if (step == SQLITE_ROW &&
        (!tenant || strcmp((const char *)sqlite3_column_text(st, 1), tenant) == 0)) {
        rc = row_to_job(st, out);
        if (rc != 0)
            ig_error_set(err, 500, "out_of_memory", "out of memory reading a job");
    } else if (step == SQLITE_ROW || step == SQLITE_DONE) {
        /* Another tenant's job is answered exactly like a missing one. */
        rc = ig_error_set(err, 404, "not_found", "no job '%.40s'", id);
    } else {
        rc = db_fail(s, err, "reading a job");
    }
    sqlite3_finalize(st);
    return rc;
}

static int
locked_job_update(struct store *s, const char *id, enum store_state state, const char *result,
                  const char *error, struct ig_error *err)
{
    sqlite3_stmt *st;
    /* The WHERE clause keeps terminal jobs terminal, atomically. */
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET state=?, result=COALESCE(?, result), "
                           "error=COALESCE(?, error), updated_ms=?, "
                           "attempts=(SELECT COUNT(*) FROM attempts WHERE job_id=jobs.id) "
                           "WHERE id=? AND state < 2", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "updating a job");
    sqlite3_bind_int(st, 1, state);
    sqlite3_bind_text(st, 2, result, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms());
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(s, err, "updating a job");
    return sqlite3_changes(s->db) == 1 ? 0 : 1;
}

static int
locked_job_set_vendor(struct store *s, const char *id, const char *vendor_json,
                      struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET vendor=?, updated_ms=? WHERE id=?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "saving vendor state");
    sqlite3_bind_text(st, 1, vendor_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms());
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_fail(s, err, "saving vendor state");
}

static int
locked_jobs_unfinished(struct store *s, void (*fn)(const struct store_job *, void *), void *ud,
                             struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " JOB_COLUMNS " FROM jobs WHERE state < 2 ORDER BY created_ms",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "listing unfinished jobs");
    int step, rc = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_job j;
        if (row_to_job(st, &j) != 0) {
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory listing jobs");
            break;
        }
        fn(&j, ud);
        store_job_clear(&j);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, err, "listing unfinished jobs");
    sqlite3_finalize(st);
    return rc;
}

static int
locked_attempt_add(struct store *s, const char *job_id, int n, const char *backend,
                   const char *outcome, const char *detail_json, struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO attempts (job_id, n, backend, outcome, detail, "
                           "at_ms) VALUES (?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "recording an attempt");
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, n);
    sqlite3_bind_text(st, 3, backend, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, detail_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now_ms());
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_fail(s, err, "recording an attempt");
}

/* ---- Ledger --------------------------------------------------------------- */

static int
spent_since(struct store *s, const char *tenant, long since_ms, double *usd)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT COALESCE(SUM(usd), 0) FROM ledger WHERE tenant=? AND at_ms>=? "
                           "AND state IN ('reserved','committed')", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since_ms);
    int ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok)
        *usd = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* Start of the UTC day and month containing t_ms. */
static void
period_starts(long t_ms, long *day_ms, long *month_ms)
{
    time_t t = (time_t)(t_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    *day_ms = (long)timegm(&tm) * 1000;
    tm.tm_mday = 1;
    *month_ms = (long)timegm(&tm) * 1000;
}

static int
locked_budget_reserve(struct store *s, const char *tenant, const char *job_id, int attempt,
                      double usd, double daily_cap, double monthly_cap, long at_ms,
                      long long *reservation, struct ig_error *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "starting a budget transaction");
    long day, month;
    period_starts(at_ms, &day, &month);
    double spent_day = 0, spent_month = 0;
    if (spent_since(s, tenant, day, &spent_day) != 0 ||
        spent_since(s, tenant, month, &spent_month) != 0) {
        int rc = db_fail(s, err, "reading the ledger");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    /* A small epsilon keeps float sums of cents from refusing an exact fit. */
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
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return ig_error_set(err, 402, "budget_exceeded",
                            "tenant %s: $%.4f more would pass its %s ceiling of $%.2f "
                            "($%.4f spent or reserved)", tenant, usd, which, cap, spent);
    }
    sqlite3_stmt *st;
    int ok = sqlite3_prepare_v2(s->db,
                                "INSERT INTO ledger (tenant, job_id, attempt, state, usd, at_ms) "
                                "VALUES (?,?,?,'reserved',?,?)", -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, job_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, attempt);
        sqlite3_bind_double(st, 4, usd);
        sqlite3_bind_int64(st, 5, at_ms);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
    }
    if (!ok || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(s, err, "reserving budget");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    *reservation = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static int
ledger_settle(struct store *s, long long reservation, const char *state, double usd,
              struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE ledger SET state=?, usd=? WHERE id=? AND state='reserved'", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "settling a reservation");
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, usd);
    sqlite3_bind_int64(st, 3, reservation);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(s, err, "settling a reservation");
    if (sqlite3_changes(s->db) != 1)
        return ig_error_set(err, 409, "reservation_settled",
                            "reservation %lld is unknown or already settled", reservation);
    return 0;
}

static int
locked_budget_commit(struct store *s, long long reservation, double usd, struct ig_error *err)
{
    return ledger_settle(s, reservation, "committed", usd, err);
}

static int
locked_budget_release(struct store *s, long long reservation, struct ig_error *err)
{
    return ledger_settle(s, reservation, "released", 0, err);
}

static int
locked_budget_spent(struct store *s, const char *tenant, long since_ms, double *usd,
                    struct ig_error *err)
{
    return spent_since(s, tenant, since_ms, usd) == 0 ? 0 : db_fail(s, err, "reading the ledger");
}

/* ---- Locked entry points ---------------------------------------------------- */

#define LOCKED(s, call)                      \
    do {                                     \
        pthread_mutex_lock(&(s)->mu);        \
        int rc_ = (call);                    \
        pthread_mutex_unlock(&(s)->mu);      \
        return rc_;                          \
    } while (0)

int
store_job_create(struct store *s, struct store_job *job, const char *idem_key,
                 const char *request_hash, struct ig_error *err)
{
    LOCKED(s, locked_job_create(s, job, idem_key, request_hash, err));
}

int
store_job_get(struct store *s, const char *id, const char *tenant, struct store_job *out,
              struct ig_error *err)
{
    LOCKED(s, locked_job_get(s, id, tenant, out, err));
}

int
store_job_update(struct store *s, const char *id, enum store_state state, const char *result,
                 const char *error, struct ig_error *err)
{
    LOCKED(s, locked_job_update(s, id, state, result, error, err));
}

int
store_job_set_vendor(struct store *s, const char *id, const char *vendor_json,
                     struct ig_error *err)
{
    LOCKED(s, locked_job_set_vendor(s, id, vendor_json, err));
}

int
store_jobs_unfinished(struct store *s, void (*fn)(const struct store_job *, void *), void *ud,
                      struct ig_error *err)
{
    LOCKED(s, locked_jobs_unfinished(s, fn, ud, err));
}

int
store_attempt_add(struct store *s, const char *job_id, int n, const char *backend,
                  const char *outcome, const char *detail_json, struct ig_error *err)
{
    LOCKED(s, locked_attempt_add(s, job_id, n, backend, outcome, detail_json, err));
}

int
store_budget_reserve(struct store *s, const char *tenant, const char *job_id, int attempt,
                     double usd, double daily_cap, double monthly_cap, long at_ms,
                     long long *reservation, struct ig_error *err)
{
    LOCKED(s, locked_budget_reserve(s, tenant, job_id, attempt, usd, daily_cap, monthly_cap, at_ms,
                                    reservation, err));
}

int
store_budget_commit(struct store *s, long long reservation, double usd, struct ig_error *err)
{
    LOCKED(s, locked_budget_commit(s, reservation, usd, err));
}

int
store_budget_release(struct store *s, long long reservation, struct ig_error *err)
{
    LOCKED(s, locked_budget_release(s, reservation, err));
}

int
store_budget_spent(struct store *s, const char *tenant, long since_ms, double *usd,
                   struct ig_error *err)
{
    LOCKED(s, locked_budget_spent(s, tenant, since_ms, usd, err));
}

/* ---- Blobs ---------------------------------------------------------------- */

static int
blob_path(const struct store *s, const char *hex, char *out, size_t size)
{
    if (strlen(hex) != 64 || strspn(hex, "0123456789abcdef") != 64)
        return -1;
    snprintf(out, size, "%s/blobs/%.2s/%s", s->dir, hex, hex);
    return 0;
}

int
store_blob_put(struct store *s, const void *data, size_t len, char hex[65], struct ig_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        return ig_error_set(err, 500, "digest", "sha256 failed");
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    char path[4200], dir[4200], tmp[4300];
    blob_path(s, hex, path, sizeof path);
    if (access(path, F_OK) == 0)
        return 0;   /* content-addressed: already there means already right */
    snprintf(dir, sizeof dir, "%s/blobs/%.2s", s->dir, hex);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ig_error_set(err, 500, "store_io", "cannot create %s: %s", dir, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%lx", path, (int)getpid(), (unsigned long)pthread_self());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return ig_error_set(err, 500, "store_io", "cannot write %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ig_error_set(err, 500, "store_io", "writing a blob: %s", strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ig_error_set(err, 500, "store_io", "saving a blob: %s", strerror(e));
    }
    return 0;
}

int
store_blob_get(struct store *s, const char *hex, struct ig_buf *out, struct ig_error *err)
{
    char path[4200];
    if (blob_path(s, hex, path, sizeof path) != 0)
        return ig_error_set(err, 404, "not_found", "no such file");
    FILE *f = fopen(path, "rb");
    if (!f)
        return ig_error_set(err, 404, "not_found", "no such file");
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (ig_buf_append(out, chunk, n) != 0) {
            rc = ig_error_set(err, 500, "out_of_memory", "out of memory reading a blob");
            break;
        }
    if (rc == 0 && ferror(f))
        rc = ig_error_set(err, 500, "store_io", "reading a blob failed");
    fclose(f);
    return rc;
}
