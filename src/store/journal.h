/* SPDX-License-Identifier: MIT */
/* journal.h -- the SQLite store's record journal (not for use outside src/store).
 *
 * Finished jobs written whole (store_jobs_record, the relay's records) go to
 * an append-only file mapped into memory, and a background thread moves them
 * into the database in large transactions. What the file is and why is in
 * journal.c. */
#ifndef IG_STORE_JOURNAL_H
#define IG_STORE_JOURNAL_H

#include "core/error.h"
#include "store/store.h"

#include <stddef.h>

struct jr;

/* A record as read back from the journal: strings point into the mapping
 * and stay valid until the next jr_consumed. */
struct jr_record {
    struct store_record r;
    long at_ms;   /* when it was appended: its rows' update and ledger time */
};

/* Opens dir/relay.journal, creating it, and locks it for this process.
 * *busy is set (and NULL returned, with no error) when another process
 * holds it. (marker_gen, marker_off) is where the database says its last
 * import stopped: records past it in that generation are still to import;
 * a file of another generation holds nothing the database lacks past its
 * first record of that generation. */
struct jr *jr_open(const char *dir, long long marker_gen, long long marker_off, int *busy,
                   struct ig_error *err);
void jr_close(struct jr *j);

/* Appends n records, stamped at_ms. 1: the journal is full (nothing was
 * written: import and call again); 0: written; -1: err. */
int jr_append(struct jr *j, const struct store_record *r, size_t n, long at_ms,
              struct ig_error *err);

/* Whether records wait to be imported. */
int jr_pending(struct jr *j);

/* Calls fn for each record appended and not yet imported, in order (at
 * most max of them), and
 * gives the marker (*gen, *end) to store with them. Only one thread walks
 * at a time (the caller serialises). A torn record, or one of another
 * generation, cannot be below the appended end and is reported (-1).
 * fn returning non-zero stops the walk, and returns that. */
int jr_walk(struct jr *j, size_t max, int (*fn)(const struct jr_record *, void *), void *ud,
            long long *gen, long long *end);

/* The walk up to end of generation gen is in the database: the journal
 * moves past it, and starts over under the next generation when nothing
 * was appended since. */
void jr_consumed(struct jr *j, long long gen, long long end);

#endif
