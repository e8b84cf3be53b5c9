/* SPDX-License-Identifier: MIT */
/* test_store.c -- the job store, run twice: on SQLite, and on a real
 * PostgreSQL server the test starts on loopback (tests/servers.sh). Jobs and
 * their states, idempotency, tenant isolation, budget ceilings under
 * concurrency (across several connections, as replicas would race), leases,
 * blobs, and durability across a SIGKILL. */
#include "testutil.h"
#include "core/alloc.h"
#include "store/store.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char dir[128];        /* blobs, and the SQLite database */
static char url[512];        /* what store_open_url opens */
static char pgdir[256];

static int
setup_sqlite(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/igstore-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(url, sizeof url, "%s", dir);
    return 0;
}

static int
setup_pg(void **state)
{
    if (setup_sqlite(state) != 0)
        return -1;
    snprintf(pgdir, sizeof pgdir, "%s-pg", dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/servers.sh' pg-start '%s'",
             getenv("IG_SOURCE_DIR") ? getenv("IG_SOURCE_DIR") : ".", pgdir);
    FILE *p = popen(cmd, "r");
    if (!p || !fgets(url, sizeof url, p)) {
        print_error("cannot start PostgreSQL\n");
        return -1;
    }
    url[strcspn(url, "\n")] = '\0';
    return pclose(p) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[700];
    if (pgdir[0]) {
        snprintf(cmd, sizeof cmd, "bash '%s/tests/servers.sh' pg-stop '%s'",
                 getenv("IG_SOURCE_DIR") ? getenv("IG_SOURCE_DIR") : ".", pgdir);
        if (system(cmd) != 0)
            return -1;
        pgdir[0] = '\0';
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct store *
open_store(void)
{
    struct ig_error err = {0};
    char blobs[300];
    snprintf(blobs, sizeof blobs, "%s/blobs", dir);
    struct store *s = store_open_url(url, blobs, &err);
    if (!s)
        fail_msg("store_open_url(%s): %s", url, err.message);
    return s;
}

static void
new_job(struct store_job *j, const char *tenant)
{
    memset(j, 0, sizeof *j);
    snprintf(j->tenant, sizeof j->tenant, "%s", tenant);
    snprintf(j->cls, sizeof j->cls, "generate");
    j->request = "{\"prompt\":\"a red fox\"}";
}

static void
test_job_lifecycle(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    struct store_job j;
    new_job(&j, "acme");
    assert_int_equal(store_job_create(s, &j, NULL, NULL, &err), 0);
    assert_int_equal(strncmp(j.id, "job_", 4), 0);
    assert_int_equal(store_attempt_add(s, j.id, 1, "openai", "upstream_error", "{}", &err), 0);
    assert_int_equal(store_attempt_add(s, j.id, 2, "gemini", "ok", "{}", &err), 0);
    assert_int_equal(store_job_update(s, j.id, STORE_RUNNING, NULL, NULL, &err), 0);
    assert_int_equal(store_job_update(s, j.id, STORE_SUCCEEDED, "{\"ok\":1}", NULL, &err), 0);
    /* Terminal stays terminal. */
    assert_int_equal(store_job_update(s, j.id, STORE_FAILED, NULL, "{}", &err), 1);
    struct store_job got;
    assert_int_equal(store_job_get(s, j.id, "acme", &got, &err), 0);
    assert_int_equal(got.state, STORE_SUCCEEDED);
    assert_string_equal(got.result, "{\"ok\":1}");
    assert_string_equal(got.request, "{\"prompt\":\"a red fox\"}");
    assert_null(got.error);
    assert_int_equal(got.attempts, 2);
    store_job_clear(&got);
    /* Another tenant cannot see it, and cannot tell it exists. */
    assert_int_equal(store_job_get(s, j.id, "evil", &got, &err), -1);
    assert_string_equal(err.code, "not_found");
    assert_int_equal(store_job_get(s, "job_nope", NULL, &got, &err), -1);
    assert_string_equal(err.code, "not_found");
    store_close(s);
}

/* The relay's records: a batch lands whole (jobs, attempts, the ledger
 * for what cost something), or not at all. */
static void
test_jobs_record(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    char a[40], b[40];
    store_new_id(a, "job");
    store_new_id(b, "job");
    struct store_record rows[2] = {
        {.id = a, .tenant = "rec", .cls = "generate", .state = STORE_SUCCEEDED,
         .request = "{}", .result = "{\"relay\":true}", .backend = "oai", .outcome = "ok",
         .usd = 0.25, .started_ms = 1},
        {.id = b, .tenant = "rec", .cls = "generate", .state = STORE_FAILED, .request = "{}",
         .error = "{\"code\":\"moderated\"}", .backend = "oai", .outcome = "failed",
         .detail = "blocked", .usd = 0, .started_ms = 1},
    };
    assert_int_equal(store_jobs_record(s, rows, 2, &err), 0);
    struct store_job got;
    assert_int_equal(store_job_get(s, a, "rec", &got, &err), 0);
    assert_int_equal(got.state, STORE_SUCCEEDED);
    assert_string_equal(got.result, "{\"relay\":true}");
    assert_int_equal(got.attempts, 1);
    store_job_clear(&got);
    assert_int_equal(store_job_get(s, b, "rec", &got, &err), 0);
    assert_int_equal(got.state, STORE_FAILED);
    store_job_clear(&got);
    double spent = 0;
    assert_int_equal(store_budget_spent(s, "rec", 0, &spent, &err), 0);
    assert_true(spent > 0.2499 && spent < 0.2501);
    /* A record whose id is taken. Written straight to the database (what
     * PostgreSQL does, and SQLite when another process holds the journal --
     * a second store open on the same directory, here) the batch is
     * refused whole; through SQLite's journal it is refused alone when
     * imported, and the rest of the batch lands. */
    int journal = strncmp(url, "postgres", 8) != 0;
    struct store *direct = journal ? open_store() : s;
    char c[40], d[40];
    store_new_id(c, "job");
    store_new_id(d, "job");
    struct store_record again[2] = {rows[0], rows[0]};
    again[0].id = c;
    assert_int_equal(store_jobs_record(direct, again, 2, &err), -1);
    assert_int_equal(store_job_get(direct, c, "rec", &got, &err), -1);
    assert_string_equal(err.code, "not_found");
    assert_int_equal(store_budget_spent(s, "rec", 0, &spent, &err), 0);
    assert_true(spent > 0.2499 && spent < 0.2501);
    /* The next batch after a refused one lands (the prepared statements
     * the store keeps are reset, not left mid-step). */
    assert_int_equal(store_jobs_record(direct, again, 1, &err), 0);
    assert_int_equal(store_job_get(direct, c, "rec", &got, &err), 0);
    store_job_clear(&got);
    assert_int_equal(store_budget_spent(direct, "rec", 0, &spent, &err), 0);
    assert_true(spent > 0.4999 && spent < 0.5001);
    if (journal) {
        store_close(direct);
        struct store_record dup[2] = {rows[0], rows[0]};
        dup[1].id = d;
        assert_int_equal(store_jobs_record(s, dup, 2, &err), 0);
        assert_int_equal(store_job_get(s, d, "rec", &got, &err), 0);
        store_job_clear(&got);
        assert_int_equal(store_budget_spent(s, "rec", 0, &spent, &err), 0);
        assert_true(spent > 0.7499 && spent < 0.7501);
    }
    store_close(s);
}

/* A finished relay's record with only what the store requires. */
static struct store_record
bare_record(const char *id, const char *tenant)
{
    return (struct store_record){.id = id, .tenant = tenant, .cls = "generate",
                                 .state = STORE_SUCCEEDED, .request = "{}", .backend = "oai",
                                 .outcome = "ok", .started_ms = 1};
}

/* SQLite's record journal: n records of 0.01 each appended by a child that
 * is then killed; returns their ids. */
static int
journal_child(char ids[][40], int n, const char *tenant)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct store *s = open_store();
        struct ig_error err = {0};
        for (int i = 0; i < n; i++) {
            char id[40];
            store_new_id(id, "job");
            struct store_record r = bare_record(id, tenant);
            r.result = "{\"outputs\":[]}";
            r.usd = 0.01;
            if (store_jobs_record(s, &r, 1, &err) != 0)
                _exit(4);
            char line[64];
            int len = snprintf(line, sizeof line, "%s\n", id);
            if (write(fds[1], line, (size_t)len) != len)
                _exit(5);
        }
        raise(SIGKILL);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    int got = 0;
    while (got < n && fgets(ids[got], 40, in)) {
        ids[got][strcspn(ids[got], "\n")] = '\0';
        got++;
    }
    fclose(in);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    return got;
}

static int
jobs_present(struct store *s, char ids[][40], int n, const char *tenant)
{
    int present = 0;
    for (int i = 0; i < n; i++) {
        struct store_job got;
        struct ig_error err = {0};
        if (store_job_get(s, ids[i], tenant, &got, &err) == 0) {
            present++;
            store_job_clear(&got);
        }
    }
    return present;
}

/* Killed with records still in the journal: the next open imports each
 * exactly once -- every job, and its ledger entry, once; and opening again
 * imports nothing twice. */
static void
test_journal_across_sigkill(void **state)
{
    if (strncmp(url, "postgres", 8) == 0)
        return;
    enum { N = 300 };
    static char ids[N][40];
    assert_int_equal(journal_child(ids, N, "jkill"), N);
    for (int round = 0; round < 2; round++) {
        struct store *s = open_store();
        struct ig_error err = {0};
        assert_int_equal(jobs_present(s, ids, N, "jkill"), N);
        double spent = 0;
        assert_int_equal(store_budget_spent(s, "jkill", 0, &spent, &err), 0);
        if (spent < N * 0.01 - 1e-6 || spent > N * 0.01 + 1e-6)
            fail_msg("round %d: %g spent, want %g", round, spent, N * 0.01);
        store_close(s);
    }
}

/* A journal that is not what the store wrote. A record torn by the kill
 * (its bytes changed here) ends the import there: the records before it
 * land, it and nothing after it does. A file with a foreign header is
 * kept aside, never overwritten, and the store opens with a new one. */
static void
test_journal_torn_and_foreign(void **state)
{
    if (strncmp(url, "postgres", 8) == 0)
        return;
    enum { N = 20 };
    static char ids[N][40];
    char path[300];
    snprintf(path, sizeof path, "%s/relay.journal", dir);
    /* The child's records are imported in the background within 100 ms:
     * kill it before, and tear its last record. */
    assert_int_equal(journal_child(ids, N, "jtorn"), N);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    /* Records are of the file's generation; past them lie older ones. */
    unsigned long long gen = 0;
    assert_int_equal(fseek(f, 8, SEEK_SET), 0);
    assert_int_equal(fread(&gen, 8, 1, f), 1);
    long off = 64, last = -1;
    for (;;) {
        unsigned char head[24];
        if (fseek(f, off, SEEK_SET) != 0 || fread(head, 1, 24, f) != 24)
            break;
        unsigned magic, len;
        unsigned long long g;
        memcpy(&magic, head, 4);
        memcpy(&len, head + 4, 4);
        memcpy(&g, head + 8, 8);
        if (magic != 0x4a524543u || g != gen)
            break;
        last = off;
        off += (long)((24 + len + 7) & ~7u);
    }
    int in_journal = last >= 0;
    if (in_journal) {
        unsigned char b;
        assert_int_equal(fseek(f, last + 40, SEEK_SET), 0);
        assert_int_equal(fread(&b, 1, 1, f), 1);
        b ^= 0x5a;
        assert_int_equal(fseek(f, last + 40, SEEK_SET), 0);
        assert_int_equal(fwrite(&b, 1, 1, f), 1);
    }
    fclose(f);
    struct store *s = open_store();
    int present = jobs_present(s, ids, N, "jtorn");
    /* The last record is lost only if it was still in the journal. */
    assert_int_equal(present, in_journal ? N - 1 : N);
    struct store_job got;
    struct ig_error err = {0};
    assert_int_equal(store_job_get(s, ids[N - 1], "jtorn", &got, &err), in_journal ? -1 : 0);
    if (!in_journal)
        store_job_clear(&got);
    store_close(s);

    f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite("NOTOURS!", 1, 8, f), 8);
    fclose(f);
    s = open_store();
    char id[40];
    store_new_id(id, "job");
    struct store_record r = bare_record(id, "jtorn");
    assert_int_equal(store_jobs_record(s, &r, 1, &err), 0);
    assert_int_equal(store_job_get(s, id, "jtorn", &got, &err), 0);
    store_job_clear(&got);
    store_close(s);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    int aside = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        aside += strncmp(e->d_name, "relay.journal.bad-", 18) == 0;
    closedir(dp);
    assert_int_equal(aside, 1);
}

/* A directory of the test's own for a SQLite store, under dir/name, and
 * the path of its blobs. */
static void
own_store_dir(const char *name, char *sub, size_t n_sub, char *blobs, size_t n_blobs)
{
    snprintf(sub, n_sub, "%s/%s", dir, name);
    snprintf(blobs, n_blobs, "%s/blobs", sub);
    assert_int_equal(mkdir(sub, 0700), 0);
}

/* No room for the journal (a file-size limit stands in for a full disk;
 * its blocks are reserved at open, since a write to a mapped page the disk
 * has no room for is a SIGBUS): the store opens anyway and writes records
 * straight to the database. */
static void
test_journal_without_room(void **state)
{
    if (strncmp(url, "postgres", 8) == 0)
        return;
    char sub[300], blobs[320], id[40];
    own_store_dir("noroom", sub, sizeof sub, blobs, sizeof blobs);
    store_new_id(id, "job");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {16 << 20, 16 << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        struct ig_error err = {0};
        struct store *s = store_open_url(sub, blobs, &err);
        if (!s)
            _exit(3);
        struct store_record r = bare_record(id, "room");
        if (store_jobs_record(s, &r, 1, &err) != 0)
            _exit(4);
        store_close(s);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the store without room for its journal: status %d", status);
    struct ig_error err = {0};
    struct store *s = store_open_url(sub, blobs, &err);
    assert_non_null(s);
    struct store_job got;
    assert_int_equal(store_job_get(s, id, "room", &got, &err), 0);
    store_job_clear(&got);
    store_close(s);
}

/* One record in the journal's format (src/store/journal.c), its strings
 * given as (length with NUL, bytes): a length may lie. */
static size_t
forge_record(unsigned char *out, unsigned long long gen, const unsigned *lens,
             const char *const *strs)
{
    unsigned char *p = out + 24;
    long long at = 5, started = 1;
    double usd = 0;
    int state = STORE_SUCCEEDED;
    memcpy(p, &at, 8), p += 8;
    memcpy(p, &started, 8), p += 8;
    memcpy(p, &usd, 8), p += 8;
    memcpy(p, &state, 4), p += 4;
    for (int i = 0; i < 9; i++) {
        memcpy(p, &lens[i], 4), p += 4;
        if (strs[i]) {
            memcpy(p, strs[i], strlen(strs[i]) + 1);
            p += strlen(strs[i]) + 1;
        }
    }
    unsigned len = (unsigned)(p - out - 24);
    unsigned magic = 0x4a524543u, zero = 0;
    unsigned crc = (unsigned)crc32_z(crc32_z(0L, out + 24, len), (const unsigned char *)&gen, 8);
    memcpy(out, &magic, 4);
    memcpy(out + 4, &len, 4);
    memcpy(out + 8, &gen, 8);
    memcpy(out + 16, &crc, 4);
    memcpy(out + 20, &zero, 4);
    size_t whole = (24 + len + 7) & ~(size_t)7;
    memset(p, 0, whole - 24 - len);
    return whole;
}

/* The true lengths of a forged record's strings. */
static void
true_lens(const char *const *strs, unsigned *lens)
{
    for (int i = 0; i < 9; i++)
        lens[i] = strs[i] ? (unsigned)strlen(strs[i]) + 1 : 0xffffffffu;
}

/* Records whose CRC is right but whose fields lie -- a string running past
 * the record, one without its NUL, a required one missing -- end the
 * import where they stand, without a read out of bounds; what came before
 * lands, and records appended after the open land too (the journal goes on
 * from before the lie instead of stalling on it). */
static void
test_journal_hostile_records(void **state)
{
    if (strncmp(url, "postgres", 8) == 0)
        return;
    static const char *bad[][9] = {
        {"job_hostile_ok", "jh", "generate", "{}", NULL, NULL, "oai", "ok", NULL},
        {"job_hostile_1", "jh", "generate", "{}", NULL, NULL, "oai", "ok", NULL},
    };
    struct { int field; unsigned len; } lies[] = {
        {0, 0xffff0000u},   /* runs past the record */
        {1, 2},             /* "jh" without its NUL */
        {6, 0xffffffffu},   /* the backend missing */
        {0, 0},             /* an empty length */
    };
    char path[300];
    snprintf(path, sizeof path, "%s/relay.journal", dir);
    for (size_t k = 0; k < sizeof lies / sizeof lies[0]; k++) {
        static unsigned char buf[4096];
        memset(buf, 0, sizeof buf);
        unsigned long long gen = (1ull << 40) + 1000 * k;   /* past any the store used */
        memcpy(buf, "IGJRNL01", 8);
        memcpy(buf + 8, &gen, 8);
        char ok_id[40];
        snprintf(ok_id, sizeof ok_id, "job_hostile_ok_%zu", k);
        const char *good[9];
        unsigned lens[9];
        for (int i = 0; i < 9; i++)
            good[i] = i == 0 ? ok_id : bad[0][i];
        true_lens(good, lens);
        size_t off = 64 + forge_record(buf + 64, gen, lens, good);
        true_lens(bad[1], lens);
        lens[lies[k].field] = lies[k].len;
        off += forge_record(buf + off, gen, lens, bad[1]);
        /* A sound record after the lying one: the walk never reaches it. */
        char after_id[40];
        snprintf(after_id, sizeof after_id, "job_hostile_after_%zu", k);
        good[0] = after_id;
        true_lens(good, lens);
        forge_record(buf + off, gen, lens, good);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, sizeof buf, f), sizeof buf);
        fclose(f);
        struct store *s = open_store();
        struct store_job got;
        struct ig_error err = {0};
        if (store_job_get(s, ok_id, "jh", &got, &err) != 0)
            fail_msg("lie %zu: the record before it was lost: %s", k, err.message);
        store_job_clear(&got);
        assert_int_equal(store_job_get(s, "job_hostile_1", "jh", &got, &err), -1);
        assert_int_equal(store_job_get(s, after_id, "jh", &got, &err), -1);
        /* And the journal is not stuck on it: a new record lands. */
        char next[40];
        store_new_id(next, "job");
        struct store_record r = bare_record(next, "jh");
        assert_int_equal(store_jobs_record(s, &r, 1, &err), 0);
        if (store_job_get(s, next, "jh", &got, &err) != 0)
            fail_msg("lie %zu: a record appended after it was not imported", k);
        store_job_clear(&got);
        store_close(s);
    }
}

/* Ids: prefix, '_', 26 base32 characters; unique; and an id made a few
 * milliseconds after another sorts after it (what keeps index inserts at
 * the right edge of the B-tree). */
static void
test_ids_sort_by_time(void **state)
{
    (void)state;
    enum { N = 4000 };
    static char ids[N][40];
    for (int i = 0; i < N; i++) {
        assert_int_equal(store_new_id(ids[i], "job"), 0);
        assert_int_equal(strlen(ids[i]), 4 + 26);
        assert_int_equal(strncmp(ids[i], "job_", 4), 0);
        assert_int_equal(strspn(ids[i] + 4, "0123456789abcdefghjkmnpqrstvwxyz"), 26);
        if (i % 1000 == 999) {
            struct timespec ts = {0, 3 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 1000; i < N; i += 1000)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    qsort(ids, N, sizeof ids[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    char longp[40];
    assert_int_equal(store_new_id(longp, "a-prefix-too-long"), -1);
}

/* SQLite: the WAL is folded into the database by the store's own
 * checkpointer thread, within a second, without a commit paying for it. */
static void
test_wal_checkpointed_in_background(void **state)
{
    if (strncmp(url, "postgres", 8) == 0)
        return;
    struct store *s = open_store();
    char db[300];
    snprintf(db, sizeof db, "%s/imagegate.db", dir);
    struct stat before, after;
    assert_int_equal(stat(db, &before), 0);
    struct ig_error err = {0};
    for (int i = 0; i < 200; i++) {
        char id[40];
        store_new_id(id, "job");
        struct store_record r = {.id = id, .tenant = "wal", .cls = "generate",
                                 .state = STORE_SUCCEEDED, .request = "{}",
                                 .result = "{\"padding\":\"................................\"}",
                                 .backend = "b", .outcome = "ok", .started_ms = 1};
        assert_int_equal(store_jobs_record(s, &r, 1, &err), 0);
    }
    int grew = 0;
    for (int i = 0; i < 40 && !grew; i++) {
        usleep(50000);
        assert_int_equal(stat(db, &after), 0);
        grew = after.st_size > before.st_size;
    }
    assert_true(grew);
    store_close(s);
}

static void
test_idempotency(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    struct store_job a, b, c, d;
    new_job(&a, "acme");
    new_job(&b, "acme");
    new_job(&c, "acme");
    new_job(&d, "other");
    assert_int_equal(store_job_create(s, &a, "key-1", "h1", &err), 0);
    assert_int_equal(store_job_create(s, &b, "key-1", "h1", &err), 1);
    assert_string_equal(a.id, b.id);
    assert_int_equal(store_job_create(s, &c, "key-1", "h2", &err), -1);
    assert_string_equal(err.code, "idempotency_conflict");
    /* Keys are per tenant. */
    assert_int_equal(store_job_create(s, &d, "key-1", "h1", &err), 0);
    assert_string_not_equal(a.id, d.id);
    store_close(s);
}

struct spender {
    struct store *s;
    int ok, refused, broken;   /* cmocka cannot assert off the main thread */
};

static void *
spend(void *arg)
{
    struct spender *sp = arg;
    for (int i = 0; i < 8; i++) {
        struct ig_error err = {0};
        long long r;
        if (store_budget_reserve(sp->s, "tight", "job", i, 0.04, 1.00, 0, 1700000000000L, &r,
                                 &err) == 0) {
            sp->ok++;
            /* Half the attempts cost less than reserved, half nothing. */
            if (store_budget_commit(sp->s, r, i % 2 ? 0.03 : 0.04, &err) != 0)
                sp->broken++;
        } else if (strcmp(err.code, "budget_exceeded") == 0) {
            sp->refused++;
        } else {
            sp->broken++;
        }
    }
    return NULL;
}

/* 32 threads on 4 connections (as 4 replicas) race to spend 8 x $0.04 each
 * against a $1.00 daily ceiling. */
static void
test_budget_ceiling_under_concurrency(void **state)
{
    struct store *conns[4];
    for (int i = 0; i < 4; i++)
        conns[i] = open_store();
    struct store *s = conns[0];
    enum { N = 32 };
    pthread_t th[N];
    struct spender sp[N];
    for (int i = 0; i < N; i++) {
        sp[i] = (struct spender){.s = conns[i % 4]};
        assert_int_equal(pthread_create(&th[i], NULL, spend, &sp[i]), 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += sp[i].ok;
        refused += sp[i].refused;
        assert_int_equal(sp[i].broken, 0);
    }
    double spent = 0;
    struct ig_error err = {0};
    assert_int_equal(store_budget_spent(s, "tight", 0, &spent, &err), 0);
    assert_true(spent <= 1.00 + 1e-9);
    assert_int_equal(ok + refused, N * 8);
    assert_true(refused > 0);
    assert_true(ok >= 25);   /* $1.00 / $0.04 reservations; commits below it free room */
    for (int i = 0; i < 4; i++)
        store_close(conns[i]);
}

static void
test_budget_release_and_double_settle(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    long long r;
    assert_int_equal(store_budget_reserve(s, "rel", "j", 1, 5.0, 5.0, 0, 1700000000000L, &r, &err), 0);
    long long r2;
    assert_int_equal(store_budget_reserve(s, "rel", "j", 2, 0.01, 5.0, 0, 1700000000000L, &r2, &err), -1);
    assert_int_equal(store_budget_release(s, r, &err), 0);
    assert_int_equal(store_budget_release(s, r, &err), -1);
    assert_string_equal(err.code, "reservation_settled");
    assert_int_equal(store_budget_reserve(s, "rel", "j", 2, 5.0, 5.0, 0, 1700000000000L, &r2, &err), 0);
    /* Monthly ceilings hold across days. */
    long long r3;
    assert_int_equal(store_budget_reserve(s, "mon", "j", 1, 3, 0, 5, 1700000000000L, &r3, &err), 0);
    assert_int_equal(store_budget_reserve(s, "mon", "j", 1, 3, 0, 5, 1700000000000L + 86400000L * 2,
                                          &r3, &err), -1);
    assert_non_null(strstr(err.message, "monthly"));
    store_close(s);
}

/* After a crash, a job's open reservations are committed (the vendor may
 * have run them), except the one an async job resumes with. */
static void
test_budget_close_job(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    long long r1, r2;
    assert_int_equal(store_budget_reserve(s, "crash", "job-x", 1, 0.5, 0, 0, 1700000000000L, &r1,
                                          &err), 0);
    assert_int_equal(store_budget_reserve(s, "crash", "job-x", 2, 0.25, 0, 0, 1700000000000L, &r2,
                                          &err), 0);
    assert_int_equal(store_budget_close_job(s, "job-x", r2, &err), 0);
    assert_int_equal(store_budget_release(s, r1, &err), -1);   /* already committed */
    assert_string_equal(err.code, "reservation_settled");
    assert_int_equal(store_budget_commit(s, r2, 0.2, &err), 0);   /* kept open */
    double spent = 0;
    assert_int_equal(store_budget_spent(s, "crash", 0, &spent, &err), 0);
    assert_true(spent > 0.69 && spent < 0.71);
    store_close(s);
}

static void
test_blobs(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    char hex[65], hex2[65];
    assert_int_equal(store_blob_put(s, "abc", 3, hex, &err), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(store_blob_put(s, "abc", 3, hex2, &err), 0);
    assert_string_equal(hex, hex2);
    struct ig_buf b = {0};
    assert_int_equal(store_blob_get(s, hex, &b, &err), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    ig_buf_reset(&b);
    assert_int_equal(store_blob_get(s, "../../etc/passwd", &b, &err), -1);
    assert_string_equal(err.code, "not_found");
    assert_int_equal(store_blob_get(s, "00000000000000000000000000000000000000000000000000000000000000ff",
                                    &b, &err), -1);
    ig_buf_free(&b);
    store_close(s);
}

/* A child acknowledges each job on a pipe after store_job_create returns,
 * and is killed with SIGKILL mid-stream. Every acknowledged job must be in
 * the store when it is opened again. */
static void
test_durable_across_sigkill(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct ig_error err = {0};
        char blobs[300];
        snprintf(blobs, sizeof blobs, "%s/blobs", dir);
        struct store *s = store_open_url(url, blobs, &err);
        if (!s)
            _exit(3);
        for (int i = 0;; i++) {
            struct store_job j;
            new_job(&j, "crash");
            if (store_job_create(s, &j, NULL, NULL, &err) != 0)
                _exit(4);
            char line[64];
            int n = snprintf(line, sizeof line, "%s\n", j.id);
            if (write(fds[1], line, (size_t)n) != n)
                _exit(5);
        }
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char ids[200][40];
    int n = 0;
    while (n < 200 && fgets(ids[n], sizeof ids[n], in)) {
        ids[n][strcspn(ids[n], "\n")] = '\0';
        n++;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    fclose(in);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(n, 200);
    struct store *s = open_store();
    struct ig_error err = {0};
    for (int i = 0; i < n; i++) {
        struct store_job got;
        if (store_job_get(s, ids[i], "crash", &got, &err) != 0)
            fail_msg("acknowledged job %s lost: %s", ids[i], err.message);
        assert_int_equal(got.state, STORE_QUEUED);
        store_job_clear(&got);
    }
    store_close(s);
}

static int unfinished;

static void
count_unfinished(const struct store_job *j, void *ud)
{
    (void)ud;
    assert_true(j->state == STORE_QUEUED || j->state == STORE_RUNNING);
    unfinished++;
}

static void
test_unfinished_listing(void **state)
{
    struct store *s = open_store();
    struct ig_error err = {0};
    unfinished = 0;
    assert_int_equal(store_jobs_unfinished(s, count_unfinished, NULL, &err), 0);
    int before = unfinished;
    struct store_job j;
    new_job(&j, "u");
    assert_int_equal(store_job_create(s, &j, NULL, NULL, &err), 0);
    assert_int_equal(store_job_set_vendor(s, j.id, "{\"vendor_id\":\"abc\"}", &err), 0);
    unfinished = 0;
    store_jobs_unfinished(s, count_unfinished, NULL, &err);
    assert_int_equal(unfinished, before + 1);
    store_job_update(s, j.id, STORE_CANCELLED, NULL, NULL, &err);
    unfinished = 0;
    store_jobs_unfinished(s, count_unfinished, NULL, &err);
    assert_int_equal(unfinished, before);
    store_close(s);
}

static int claimed;

static void
count_claimed(const struct store_job *j, void *ud)
{
    claimed++;
}

/* A job belongs to the replica that created it until its lease runs out;
 * then exactly one other replica claims it. */
static void
test_leases(void **state)
{
    struct store *a = open_store(), *b = open_store();
    struct ig_error err = {0};
    struct store_job j;
    new_job(&j, "lease");
    snprintf(j.owner, sizeof j.owner, "replica-a");
    j.lease_ms = 300;
    assert_int_equal(store_job_create(a, &j, NULL, NULL, &err), 0);
    claimed = 0;
    assert_int_equal(store_jobs_claim(b, "replica-b", 10000, 0, count_claimed, NULL, &err), 0);
    int before = claimed;
    /* Renewed: still not claimable. */
    assert_int_equal(store_lease_renew(a, "replica-a", 300, &err), 0);
    usleep(100000);
    claimed = 0;
    assert_int_equal(store_jobs_claim(b, "replica-b", 10000, 0, count_claimed, NULL, &err), 0);
    if (strcmp(store_kind(b), "postgres") == 0) {
        assert_int_equal(claimed, 0);
        usleep(400000);   /* replica-a stops renewing: its lease runs out */
        claimed = 0;
        assert_int_equal(store_jobs_claim(b, "replica-b", 10000, 0, count_claimed, NULL, &err), 0);
        assert_true(claimed >= 1);
        /* ... once: a third replica finds nothing left to claim. */
        struct store *c = open_store();
        claimed = 0;
        assert_int_equal(store_jobs_claim(c, "replica-c", 10000, 0, count_claimed, NULL, &err), 0);
        assert_int_equal(claimed, 0);
        store_close(c);
    } else {
        (void)before;
        /* One process owns a SQLite store: a forced claim takes everything. */
        claimed = 0;
        assert_int_equal(store_jobs_claim(b, "replica-b", 10000, 1, count_claimed, NULL, &err), 0);
        assert_true(claimed >= 1);
    }
    store_close(a);
    store_close(b);
}

/* A store made by an older imagegate (schema 3: attempts in a rowid
 * table) is migrated on open, its attempts kept. */
static void
test_migration_keeps_attempts(void **state)
{
    if (strncmp(url, "postgres", 8) == 0)
        return;
    char sub[300], blobs[320], path[340];
    own_store_dir("v3", sub, sizeof sub, blobs, sizeof blobs);
    snprintf(path, sizeof path, "%s/imagegate.db", sub);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *v3 =
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, class TEXT NOT NULL,"
        "  state INTEGER NOT NULL, request TEXT, result TEXT, error TEXT, vendor TEXT,"
        "  attempts INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL, owner TEXT, lease_ms INTEGER);"
        "CREATE INDEX jobs_unfinished ON jobs(state) WHERE state < 2;"
        "CREATE TABLE attempts (job_id TEXT NOT NULL, n INTEGER NOT NULL, backend TEXT NOT NULL,"
        "  outcome TEXT NOT NULL, detail TEXT, at_ms INTEGER NOT NULL, PRIMARY KEY (job_id, n));"
        "CREATE TABLE idempotency (tenant TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT,"
        "  job_id TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (tenant, key));"
        "CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL,"
        "  job_id TEXT, attempt INTEGER, state TEXT NOT NULL, usd REAL NOT NULL,"
        "  at_ms INTEGER NOT NULL);"
        "CREATE INDEX ledger_tenant ON ledger(tenant, at_ms);"
        "CREATE TABLE journal_marker (id INTEGER PRIMARY KEY CHECK (id = 1),"
        "  gen INTEGER NOT NULL, off INTEGER NOT NULL);"
        "INSERT INTO journal_marker VALUES (1, 0, 0);"
        "INSERT INTO jobs VALUES ('job_old', 'acme', 'generate', 2, '{}', '{}', NULL, NULL, 2,"
        "  1, 2, NULL, NULL);"
        "INSERT INTO attempts VALUES ('job_old', 1, 'gen-a', 'server_error', '{\"s\":500}', 1);"
        "INSERT INTO attempts VALUES ('job_old', 2, 'gen-b', 'ok', NULL, 2);"
        "PRAGMA user_version = 3;";
    assert_int_equal(sqlite3_exec(db, v3, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct ig_error err = {0};
    struct store *s = store_open_url(sub, blobs, &err);
    if (!s)
        fail_msg("opening a schema-3 store: %s", err.message);
    assert_int_equal(store_attempt_add(s, "job_old", 3, "gen-c", "ok", NULL, &err), 0);
    store_close(s);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(n || ':' || backend || ':' || "
                                            "outcome || ':' || COALESCE(detail, '-'), ' ') FROM "
                                            "(SELECT * FROM attempts ORDER BY n)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0),
                        "1:gen-a:server_error:{\"s\":500} 2:gen-b:ok:- 3:gen-c:ok:-");
    sqlite3_finalize(st);
    /* The table has no rowid now. */
    assert_int_not_equal(sqlite3_prepare_v2(db, "SELECT rowid FROM attempts", -1, &st, NULL),
                         SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 4);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void
test_bad_directory(void **state)
{
    struct ig_error err = {0};
    assert_null(store_open("/proc/imagegate-cannot-be-here", &err));
    assert_string_equal(err.code, "store_path");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leases),
        cmocka_unit_test(test_job_lifecycle),
        cmocka_unit_test(test_jobs_record),
        cmocka_unit_test(test_wal_checkpointed_in_background),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_budget_ceiling_under_concurrency),
        cmocka_unit_test(test_budget_release_and_double_settle),
        cmocka_unit_test(test_budget_close_job),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_durable_across_sigkill),
        cmocka_unit_test(test_journal_across_sigkill),
        cmocka_unit_test(test_journal_torn_and_foreign),
        cmocka_unit_test(test_journal_hostile_records),
        cmocka_unit_test(test_journal_without_room),
        cmocka_unit_test(test_unfinished_listing),
        cmocka_unit_test(test_migration_keeps_attempts),
        cmocka_unit_test(test_bad_directory),
        cmocka_unit_test(test_ids_sort_by_time),
    };
    int failed = _cmocka_run_group_tests("store_sqlite", tests, sizeof tests / sizeof tests[0],
                                         setup_sqlite, teardown);
    failed += _cmocka_run_group_tests("store_postgres", tests, sizeof tests / sizeof tests[0],
                                      setup_pg, teardown);
    return failed;
}
