/* SPDX-License-Identifier: MIT */
/* sqlite.c -- the default job store: one SQLite database in WAL mode.
 *
 * One connection, serialised by SQLite's own mutex (FULLMUTEX), in WAL mode
 * with synchronous=NORMAL: a committed transaction survives the process being
 * killed (the WAL is in the OS's hands), though not a power cut between
 * checkpoints. A transaction belongs to the connection, not the thread, so
 * every call holds one lock (below); budget reservations run in BEGIN
 * IMMEDIATE transactions so a ceiling is checked and charged atomically.
 * One process owns a SQLite store, so leases are recorded but never
 * contended: the process that opens the store claims every unfinished job.
 * Finished jobs written whole (store_jobs_record) go through the record
 * journal (journal.c) and are imported by the store's background thread,
 * which also runs the checkpoints; every call imports what is pending
 * first, so the journal is invisible to readers. */
#include "store/internal.h"
#include "core/alloc.h"
#include "core/log.h"
#include "store/journal.h"

#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct sqlite_store {
    sqlite3 *db;
    /* One connection is shared by every thread, and a transaction belongs to
     * the connection, not the thread: each public call holds this lock so
     * that two threads' transactions never interleave. */
    pthread_mutex_t mu;
    /* The WAL is folded back into the database by a thread of its own, on
     * its own connection: SQLite's automatic checkpoint runs inside the
     * commit that crosses the threshold, and stalled every writer behind
     * that lock for tens of milliseconds under load. */
    sqlite3 *ckpt_db;
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    int ckpt_running, ckpt_stop;
    /* Statements of the hot record path, prepared once: preparing three
     * INSERTs and parsing BEGIN and COMMIT per batch cost more than the
     * inserts did. */
    sqlite3_stmt *rec[6];
    /* Finished jobs written whole go to the journal (journal.c), and the
     * background thread imports them; NULL: written here, as before. */
    struct jr *jr;
};

enum { REC_BEGIN, REC_JOB, REC_ATTEMPT, REC_LEDGER, REC_COMMIT, REC_MARK };
static const char *const rec_sql[] = {
    [REC_BEGIN] = "BEGIN IMMEDIATE",
    [REC_JOB] = "INSERT INTO jobs (id, tenant, class, state, request, result, error, attempts, "
                "created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,1,?,?)",
    [REC_ATTEMPT] = "INSERT INTO attempts (job_id, n, backend, outcome, detail, at_ms) "
                    "VALUES (?,1,?,?,?,?)",
    [REC_LEDGER] = "INSERT INTO ledger (tenant, job_id, attempt, state, usd, at_ms) "
                   "VALUES (?,?,1,'committed',?,?)",
    [REC_COMMIT] = "COMMIT",
    [REC_MARK] = "UPDATE journal_marker SET gen=?, off=? WHERE id=1",
};

/* How long the background thread sleeps when it finds nothing to import;
 * it checkpoints then too. */
#define CHECKPOINT_MS 100

/* How often it folds the WAL back while it is importing. Short enough that
 * the WAL is reset before it grows (a growing WAL is written into fresh
 * file pages) and that each checkpoint is a short burst: one takes a core
 * for as long as it copies, and the threads waiting for that core wait it
 * out. Relay, one core, c=16, alternating A/B: p99 2.7-3.6 ms at 500 ms,
 * 2.1-2.5 ms at 100 ms, same throughput; with no checkpoint for a minute,
 * p99 37-44 ms. Once the records went through the journal, 100 ms meant a
 * copy of ~2,500 records' pages, 2-2.5 ms at a time: relay, two cores,
 * c=16, five alternating pairs, p99 1.25-1.55 ms at 25 ms against
 * 1.60-2.01 ms at 100 ms (lower in all five), the same CPU per request
 * (49-54 us) and req/s; 10 and 50 ms measured alike to 25. Four more
 * pairs with this constant: 1.33-1.84 ms against 1.66-2.07 (lower in three). */
#define CHECKPOINT_BUSY_MS 25

/* Records per import transaction on the background thread. */
#define IMPORT_SLICE 128

/* How soon the background thread imports again after a pass that found
 * records; after one that found none it sleeps CHECKPOINT_MS. Its work is
 * then many short bursts rather than one long one per CHECKPOINT_MS: the
 * other threads on its core wait out each burst, and a relay's p99 follows
 * the longest. With the record left out (a build made to measure this), a
 * competing process taking 9 ms of CPU every 100 ms raised the p99 at
 * 15,000 req/s offered from 1.2 to 4.6 ms; the same share taken 0.2 ms
 * every 2 ms, to 1.2-1.4 ms. Relay, two cores, c=16, twelve alternating
 * pairs: p99 1.56-2.30 ms here against 1.97-2.92 ms with a pass every
 * 100 ms (better in all twelve), for up to 2 % fewer req/s (smaller
 * transactions); 5 ms measured in between, 1 ms no better than 2. */
#define IMPORT_BUSY_MS 2

static int
db_fail(struct sqlite_store *s, struct ig_error *err, const char *what)
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
    /* 2: job leases, so a job has one owner at a time */
    "ALTER TABLE jobs ADD COLUMN owner TEXT;"
    "ALTER TABLE jobs ADD COLUMN lease_ms INTEGER;",
    /* 3: how far the record journal has been imported */
    "CREATE TABLE journal_marker (id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  gen INTEGER NOT NULL, off INTEGER NOT NULL);"
    "INSERT INTO journal_marker VALUES (1, 0, 0);",
    /* 4: attempts stored in their primary key's B-tree alone (WITHOUT
     * ROWID), not in a rowid table beside an index of (job_id, n): one
     * B-tree insert fewer for every attempt, the relay's record included.
     * Importing a relay's record (the job and its attempt, 60 to a
     * transaction, checkpointed as the store does) measured 4.4-4.5 us of
     * CPU against 4.9-5.2. */
    "CREATE TABLE attempts_keyed ("
    "  job_id TEXT NOT NULL, n INTEGER NOT NULL, backend TEXT NOT NULL,"
    "  outcome TEXT NOT NULL, detail TEXT, at_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (job_id, n)) WITHOUT ROWID;"
    "INSERT INTO attempts_keyed SELECT job_id, n, backend, outcome, detail, at_ms FROM attempts;"
    "DROP TABLE attempts;"
    "ALTER TABLE attempts_keyed RENAME TO attempts;",
};

static int
migrate(struct sqlite_store *s, struct ig_error *err)
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






/* ---- Jobs ----------------------------------------------------------------- */

static int
locked_job_create(struct sqlite_store *s, struct store_job *job, const char *idem_key,
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
    job->created_ms = job->updated_ms = store_now_ms();
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO jobs (id, tenant, class, state, request, created_ms, "
                           "updated_ms, owner, lease_ms) VALUES (?,?,?,?,?,?,?,?,?)", -1, &st,
                           NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, job->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, job->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, job->cls, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, job->state);
    sqlite3_bind_text(st, 5, job->request, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, job->created_ms);
    sqlite3_bind_int64(st, 7, job->updated_ms);
    if (job->owner[0])
        sqlite3_bind_text(st, 8, job->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, job->created_ms + (job->lease_ms ? job->lease_ms : 30000));
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
locked_job_get(struct sqlite_store *s, const char *id, const char *tenant, struct store_job *out,
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
locked_job_update(struct sqlite_store *s, const char *id, enum store_state state, const char *result,
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
    sqlite3_bind_int64(st, 4, store_now_ms());
    sqlite3_bind_text(st, 5, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(s, err, "updating a job");
    return sqlite3_changes(s->db) == 1 ? 0 : 1;
}

static int
locked_job_set_vendor(struct sqlite_store *s, const char *id, const char *vendor_json,
                      struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET vendor=?, updated_ms=?, state=MAX(state, 1) WHERE id=?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "saving vendor state");
    sqlite3_bind_text(st, 1, vendor_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, store_now_ms());
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_fail(s, err, "saving vendor state");
}

static int
locked_jobs_unfinished(struct sqlite_store *s, void (*fn)(const struct store_job *, void *), void *ud,
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
locked_attempt_add(struct sqlite_store *s, const char *job_id, int n, const char *backend,
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
    sqlite3_bind_int64(st, 6, store_now_ms());
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_fail(s, err, "recording an attempt");
}

/* ---- Ledger --------------------------------------------------------------- */

static int
spent_since(struct sqlite_store *s, const char *tenant, long since_ms, double *usd)
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

static int
locked_budget_reserve(struct sqlite_store *s, const char *tenant, const char *job_id, int attempt,
                      double usd, double daily_cap, double monthly_cap, long at_ms,
                      long long *reservation, struct ig_error *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "starting a budget transaction");
    long day, month;
    store_period_starts(at_ms, &day, &month);
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
ledger_settle(struct sqlite_store *s, long long reservation, const char *state, double usd,
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
locked_budget_commit(struct sqlite_store *s, long long reservation, double usd, struct ig_error *err)
{
    return ledger_settle(s, reservation, "committed", usd, err);
}

static int
locked_budget_release(struct sqlite_store *s, long long reservation, struct ig_error *err)
{
    return ledger_settle(s, reservation, "released", 0, err);
}

static int
locked_budget_spent(struct sqlite_store *s, const char *tenant, long since_ms, double *usd,
                    struct ig_error *err)
{
    return spent_since(s, tenant, since_ms, usd) == 0 ? 0 : db_fail(s, err, "reading the ledger");
}

static int
locked_attempt_end(struct sqlite_store *s, const struct store_attempt_end *e, struct ig_error *err)
{
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "ending an attempt");
    int rc = locked_attempt_add(s, e->job_id, e->n, e->backend, e->outcome, e->detail, err);
    if (rc == 0 && e->reservation && e->settle != STORE_SETTLE_NONE)
        rc = ledger_settle(s, e->reservation,
                           e->settle == STORE_SETTLE_COMMIT ? "committed" : "released",
                           e->settle == STORE_SETTLE_COMMIT ? e->usd : 0, err);
    if (rc == 0 && e->finish) {
        rc = locked_job_update(s, e->job_id, e->state, e->result, e->error, err) < 0 ? -1 : 0;
    } else if (rc == 0) {
        /* Back from the vendor: nothing is in flight, nothing to resume. */
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(s->db, "UPDATE jobs SET state=0, vendor=NULL WHERE id=? AND state=1",
                                -1, &st, NULL) == SQLITE_OK ? 0 : -1;
        if (rc == 0) {
            sqlite3_bind_text(st, 1, e->job_id, -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
            sqlite3_finalize(st);
        }
        if (rc != 0)
            db_fail(s, err, "ending an attempt");
    }
    if (rc != 0 || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        if (rc == 0)
            rc = db_fail(s, err, "ending an attempt");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static int
locked_budget_close_job(struct sqlite_store *s, const char *job_id, long long keep,
                        struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE ledger SET state='committed' WHERE job_id=? AND "
                           "state='reserved' AND id<>?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "closing a job's reservations");
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, keep);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_fail(s, err, "closing a job's reservations");
}

/* ---- Finished jobs written whole (the relay) ------------------------------- */

static int
record_one(struct sqlite_store *s, sqlite3_stmt *job, sqlite3_stmt *att, sqlite3_stmt *led,
           const struct store_record *r, long now)
{
    sqlite3_reset(job);
    sqlite3_bind_text(job, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(job, 2, r->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(job, 3, r->cls, -1, SQLITE_STATIC);
    sqlite3_bind_int(job, 4, r->state);
    sqlite3_bind_text(job, 5, r->request, -1, SQLITE_STATIC);
    sqlite3_bind_text(job, 6, r->result, -1, SQLITE_STATIC);
    sqlite3_bind_text(job, 7, r->error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(job, 8, r->started_ms);
    sqlite3_bind_int64(job, 9, now);
    int step = sqlite3_step(job);
    if (step == SQLITE_CONSTRAINT)
        return 1;   /* its id is taken: nothing of it was written */
    if (step != SQLITE_DONE)
        return -1;
    sqlite3_reset(att);
    sqlite3_bind_text(att, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(att, 2, r->backend, -1, SQLITE_STATIC);
    sqlite3_bind_text(att, 3, r->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text(att, 4, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(att, 5, now);
    if (sqlite3_step(att) != SQLITE_DONE)
        return -1;
    if (r->usd <= 0)
        return 0;
    sqlite3_reset(led);
    sqlite3_bind_text(led, 1, r->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(led, 2, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_double(led, 3, r->usd);
    sqlite3_bind_int64(led, 4, now);
    return sqlite3_step(led) == SQLITE_DONE ? 0 : -1;
}

/* The cached statement i, prepared on first use; NULL when it cannot be. */
static sqlite3_stmt *
rec_stmt(struct sqlite_store *s, int i)
{
    if (!s->rec[i] && sqlite3_prepare_v3(s->db, rec_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                         &s->rec[i], NULL) != SQLITE_OK)
        s->rec[i] = NULL;
    return s->rec[i];
}

static int
rec_run(struct sqlite_store *s, int i)
{
    sqlite3_stmt *st = rec_stmt(s, i);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The record statements' bindings point into the caller's rows (or the
 * journal's mapping): none outlives the call that bound them. */
static void
rec_release(sqlite3_stmt *job, sqlite3_stmt *att, sqlite3_stmt *led)
{
    sqlite3_stmt *used[] = {job, att, led};
    for (int i = 0; i < 3; i++)
        if (used[i]) {
            sqlite3_reset(used[i]);
            sqlite3_clear_bindings(used[i]);
        }
}

static int
locked_jobs_record(struct sqlite_store *s, const struct store_record *r, size_t n,
                   struct ig_error *err)
{
    if (rec_run(s, REC_BEGIN) != 0)
        return db_fail(s, err, "recording jobs");
    sqlite3_stmt *job = rec_stmt(s, REC_JOB), *att = rec_stmt(s, REC_ATTEMPT),
                 *led = rec_stmt(s, REC_LEDGER);
    int ok = job && att && led;
    long now = store_now_ms();
    for (size_t i = 0; ok && i < n; i++)
        ok = record_one(s, job, att, led, &r[i], now) == 0;
    rec_release(job, att, led);
    if (!ok || rec_run(s, REC_COMMIT) != 0) {
        int rc = db_fail(s, err, "recording jobs");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

struct import {
    struct sqlite_store *s;
    sqlite3_stmt *job, *att, *led;
};

/* A record whose id is taken is refused alone, and logged: the journal
 * must not stall on it (ids are random, so this is a caller's bug). Any
 * other failure -- a full disk -- aborts the import, to be tried again. */
static int
import_one(const struct jr_record *rec, void *ud)
{
    struct import *im = ud;
    int rc = record_one(im->s, im->job, im->att, im->led, &rec->r, rec->at_ms);
    if (rc == 1)
        ig_log(IG_LOG_ERROR, "journal_record_refused",
               json_pack("{s:s,s:s}", "job_id", rec->r.id, "reason", "the job id is taken"));
    return rc < 0;
}

/* Moves what the journal holds into the database: at most max records, in
 * one transaction with the marker that says how far it got. Under the
 * connection's lock. 1: some were imported and more wait; 0: none wait, or
 * none could be imported; -1: err. */
static int
locked_import(struct sqlite_store *s, size_t max, struct ig_error *err)
{
    if (!s->jr || !jr_pending(s->jr))
        return 0;
    if (rec_run(s, REC_BEGIN) != 0)
        return db_fail(s, err, "importing the journal");
    struct import im = {s, rec_stmt(s, REC_JOB), rec_stmt(s, REC_ATTEMPT),
                        rec_stmt(s, REC_LEDGER)};
    sqlite3_stmt *mark = rec_stmt(s, REC_MARK);
    long long gen = 0, end = 0;
    int ok = im.job && im.att && im.led && mark;
    /* A walk that stopped on an unreadable record still commits what came
     * before it; it was logged. */
    int walked = ok ? jr_walk(s->jr, max, import_one, &im, &gen, &end) : 0;
    if (walked > 0)
        ok = 0;
    rec_release(im.job, im.att, im.led);
    if (ok) {
        sqlite3_bind_int64(mark, 1, gen);
        sqlite3_bind_int64(mark, 2, end);
        ok = sqlite3_step(mark) == SQLITE_DONE;
        sqlite3_reset(mark);
    }
    if (!ok || rec_run(s, REC_COMMIT) != 0) {
        int rc = db_fail(s, err, "importing the journal");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    jr_consumed(s->jr, gen, end);
    return walked == 0 && jr_pending(s->jr);
}

/* Before any read or write of the database: what the journal holds is
 * part of the store, and must be seen. A failure is logged and the call
 * goes on (the background thread tries again). */
static int
locked_import_logged(struct sqlite_store *s, size_t max)
{
    struct ig_error err = {0};
    int more = locked_import(s, max, &err);
    if (more < 0)
        ig_log(IG_LOG_WARN, "journal_import_failed", json_pack("{s:s}", "error", err.message));
    return more;
}

static void
catch_up(struct sqlite_store *s)
{
    if (s->jr)
        locked_import_logged(s, SIZE_MAX);
}

/* ---- Leases: one process owns the store ---------------------------------- */

static int
locked_jobs_claim(struct sqlite_store *s, const char *owner, long lease_ms, int force,
                  void (*fn)(const struct store_job *, void *), void *ud, struct ig_error *err)
{
    (void)force;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET owner=?, lease_ms=? WHERE state < 2", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "claiming jobs");
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, store_now_ms() + lease_ms);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return db_fail(s, err, "claiming jobs");
    return locked_jobs_unfinished(s, fn, ud, err);
}

static int
locked_lease_renew(struct sqlite_store *s, const char *owner, long lease_ms, struct ig_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET lease_ms=? WHERE owner=? AND state < 2", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "renewing leases");
    sqlite3_bind_int64(st, 1, store_now_ms() + lease_ms);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_fail(s, err, "renewing leases");
}

/* ---- The ops table: every call under the connection's lock --------------- */

#define LOCKED(impl, call)                            \
    do {                                              \
        struct sqlite_store *s = impl;                \
        pthread_mutex_lock(&s->mu);                   \
        catch_up(s);                                  \
        int rc_ = (call);                             \
        pthread_mutex_unlock(&s->mu);                 \
        return rc_;                                   \
    } while (0)

static int
sq_job_create(void *impl, struct store_job *job, const char *idem_key, const char *request_hash,
              struct ig_error *err)
{
    LOCKED(impl, locked_job_create(s, job, idem_key, request_hash, err));
}

static int
sq_job_get(void *impl, const char *id, const char *tenant, struct store_job *out,
           struct ig_error *err)
{
    LOCKED(impl, locked_job_get(s, id, tenant, out, err));
}

static int
sq_job_update(void *impl, const char *id, enum store_state state, const char *result,
              const char *error, struct ig_error *err)
{
    LOCKED(impl, locked_job_update(s, id, state, result, error, err));
}

static int
sq_job_set_vendor(void *impl, const char *id, const char *vendor_json, struct ig_error *err)
{
    LOCKED(impl, locked_job_set_vendor(s, id, vendor_json, err));
}

static int
sq_jobs_unfinished(void *impl, void (*fn)(const struct store_job *, void *), void *ud,
                   struct ig_error *err)
{
    LOCKED(impl, locked_jobs_unfinished(s, fn, ud, err));
}

static int
sq_attempt_add(void *impl, const char *job_id, int n, const char *backend, const char *outcome,
               const char *detail_json, struct ig_error *err)
{
    LOCKED(impl, locked_attempt_add(s, job_id, n, backend, outcome, detail_json, err));
}

static int
sq_attempt_end(void *impl, const struct store_attempt_end *e, struct ig_error *err)
{
    LOCKED(impl, locked_attempt_end(s, e, err));
}

static int
sq_budget_reserve(void *impl, const char *tenant, const char *job_id, int attempt, double usd,
                  double daily_cap, double monthly_cap, long at_ms, long long *reservation,
                  struct ig_error *err)
{
    LOCKED(impl, locked_budget_reserve(s, tenant, job_id, attempt, usd, daily_cap, monthly_cap,
                                       at_ms, reservation, err));
}

static int
sq_budget_commit(void *impl, long long reservation, double usd, struct ig_error *err)
{
    LOCKED(impl, locked_budget_commit(s, reservation, usd, err));
}

static int
sq_budget_release(void *impl, long long reservation, struct ig_error *err)
{
    LOCKED(impl, locked_budget_release(s, reservation, err));
}

static int
sq_budget_close_job(void *impl, const char *job_id, long long keep, struct ig_error *err)
{
    LOCKED(impl, locked_budget_close_job(s, job_id, keep, err));
}

static int
sq_budget_spent(void *impl, const char *tenant, long since_ms, double *usd, struct ig_error *err)
{
    LOCKED(impl, locked_budget_spent(s, tenant, since_ms, usd, err));
}

static int
sq_jobs_claim(void *impl, const char *owner, long lease_ms, int force,
              void (*fn)(const struct store_job *, void *), void *ud, struct ig_error *err)
{
    LOCKED(impl, locked_jobs_claim(s, owner, lease_ms, force, fn, ud, err));
}

static int
sq_lease_renew(void *impl, const char *owner, long lease_ms, struct ig_error *err)
{
    LOCKED(impl, locked_lease_renew(s, owner, lease_ms, err));
}

static void
sq_close(void *impl)
{
    struct sqlite_store *s = impl;
    if (!s)
        return;
    if (s->ckpt_running) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_stop = 1;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
        pthread_join(s->ckpt_thread, NULL);
        pthread_cond_destroy(&s->ckpt_cv);
        pthread_mutex_destroy(&s->ckpt_mu);
    }
    if (s->jr) {
        /* What is left stays in the journal if this fails: the next open
         * imports it. */
        catch_up(s);
        jr_close(s->jr);
    }
    for (size_t i = 0; i < sizeof s->rec / sizeof s->rec[0]; i++)
        sqlite3_finalize(s->rec[i]);
    sqlite3_close(s->ckpt_db);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    ig_free(s);
}

static void *
checkpointer(void *arg)
{
    pthread_setname_np(pthread_self(), "ig-store");
    struct sqlite_store *s = arg;
    /* `serve` runs under SCHED_BATCH (cmd-serve.c); this thread does not:
     * an HTTP thread waking on its core waited out its import slices then,
     * up to a tick, and with the gateway on one core a relay's p99 at c=16
     * was 5.0-5.5 ms against 2.6-2.7 ms with this thread at normal policy. */
    if (sched_getscheduler(0) == SCHED_BATCH) {
        struct sched_param sp = {.sched_priority = 0};
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }

    pthread_mutex_lock(&s->ckpt_mu);
    long wait_ms = CHECKPOINT_MS;
    struct timespec last_ckpt;
    clock_gettime(CLOCK_MONOTONIC, &last_ckpt);
    while (!s->ckpt_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += wait_ms * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->ckpt_cv, &s->ckpt_mu, &ts);
        if (s->ckpt_stop)
            break;
        pthread_mutex_unlock(&s->ckpt_mu);
        /* In slices, letting the connection go between them: a durable
         * job's call never waits behind a whole backlog. */
        int found = s->jr && jr_pending(s->jr), more = found;
        while (more > 0) {
            pthread_mutex_lock(&s->mu);
            more = locked_import_logged(s, IMPORT_SLICE);
            pthread_mutex_unlock(&s->mu);
            if (more > 0)
                sched_yield();
        }
        /* A failed import (logged) is tried again at the idle pace, not
         * 500 times a second. */
        wait_ms = found && more == 0 ? IMPORT_BUSY_MS : CHECKPOINT_MS;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - last_ckpt.tv_sec) * 1000 + (now.tv_nsec - last_ckpt.tv_nsec) / 1000000 >=
            CHECKPOINT_BUSY_MS) {
            /* PASSIVE: copies what no reader needs, never waits for a writer. */
            sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            last_ckpt = now;
        }
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

/* Hands checkpoints to the checkpointer thread; on any failure the store
 * keeps SQLite's automatic checkpoints, which are correct, only slower. */
static void
start_checkpointer(struct sqlite_store *s, const char *path)
{
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    /* The read makes the connection open the WAL; a connection that never
     * read the database checkpoints nothing. */
    if (sqlite3_open_v2(path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(s->ckpt_db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) !=
            SQLITE_OK) {
        sqlite3_close(s->ckpt_db);
        s->ckpt_db = NULL;
        return;
    }
    if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) != 0) {
        sqlite3_close(s->ckpt_db);
        s->ckpt_db = NULL;
        return;
    }
    s->ckpt_running = 1;
    sqlite3_wal_autocheckpoint(s->db, 0);
}

static int
sq_jobs_record(void *impl, const struct store_record *r, size_t n, struct ig_error *err)
{
    struct sqlite_store *s = impl;
    if (s->jr) {
        /* Full: the background thread has fallen behind; import here and
         * try once more. */
        for (int tries = 0; tries < 2; tries++) {
            int rc = jr_append(s->jr, r, n, store_now_ms(), err);
            if (rc != 1)
                return rc;
            pthread_mutex_lock(&s->mu);
            rc = locked_import(s, SIZE_MAX, err);
            pthread_mutex_unlock(&s->mu);
            if (rc < 0)
                return rc;
        }
        return ig_error_set(err, 503, "store_busy", "the record journal stays full");
    }
    pthread_mutex_lock(&s->mu);
    int rc = locked_jobs_record(s, r, n, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .job_create = sq_job_create,
    .job_get = sq_job_get,
    .job_update = sq_job_update,
    .job_set_vendor = sq_job_set_vendor,
    .jobs_unfinished = sq_jobs_unfinished,
    .attempt_add = sq_attempt_add,
    .attempt_end = sq_attempt_end,
    .budget_reserve = sq_budget_reserve,
    .budget_commit = sq_budget_commit,
    .budget_release = sq_budget_release,
    .budget_close_job = sq_budget_close_job,
    .budget_spent = sq_budget_spent,
    .jobs_claim = sq_jobs_claim,
    .lease_renew = sq_lease_renew,
    .jobs_record = sq_jobs_record,
};

/* The journal, with what a crash left in it imported. Without a thread to
 * import in the background, when another process holds the journal, or
 * when it cannot be set up (no room on the disk for it: logged), records
 * are written straight to the database instead. */
static int
open_journal(struct sqlite_store *s, const char *dir, struct ig_error *err)
{
    sqlite3_stmt *st;
    long long gen = 0, off = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT gen, off FROM journal_marker WHERE id=1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "reading the journal marker");
    if (sqlite3_step(st) == SQLITE_ROW) {
        gen = sqlite3_column_int64(st, 0);
        off = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    int busy = 0;
    struct ig_error jerr = {0};
    struct jr *jr = jr_open(dir, gen, off, &busy, &jerr);
    if (!jr && !busy)
        /* No room, or no mapping: the store still works without it. */
        ig_log(IG_LOG_WARN, "journal_unavailable", json_pack("{s:s}", "error", jerr.message));
    if (!jr)
        return 0;
    pthread_mutex_lock(&s->mu);
    s->jr = jr;
    int rc = locked_import(s, SIZE_MAX, err);
    pthread_mutex_unlock(&s->mu);
    return rc < 0 ? -1 : 0;
}

/* SQLite counts every allocation it makes under a global mutex unless told
 * not to, for sqlite3_memory_used, which imagegate never reads. Only
 * possible before SQLite is initialised; if something initialised it
 * first, the call is refused and nothing changes. */
static void
sqlite_setup(void)
{
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        ig_log(IG_LOG_DEBUG, "sqlite_memstatus_kept", NULL);
}

int
store_sqlite_open(struct store *st, const char *dir, struct ig_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    struct sqlite_store *s = ig_calloc(1, sizeof *s);
    if (!s)
        return ig_error_set(err, 500, "out_of_memory", "out of memory opening the store");
    pthread_mutex_init(&s->mu, NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/imagegate.db", dir);
    /* NOMUTEX: every use of this connection is under s->mu already.
     * SQLite's own mutex took a lock and an unlock on each bind, step and
     * reset: under relay load, a tenth of the importer's CPU. */
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ig_error_set(err, 500, "store_error", "cannot open %s: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sq_close(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK) {
        db_fail(s, err, "configuring the store");
        sq_close(s);
        return -1;
    }
    if (migrate(s, err) != 0) {
        sq_close(s);
        return -1;
    }
    start_checkpointer(s, path);
    if (s->ckpt_running && open_journal(s, dir, err) != 0) {
        sq_close(s);
        return -1;
    }
    st->ops = &sqlite_ops;
    st->impl = s;
    return 0;
}
