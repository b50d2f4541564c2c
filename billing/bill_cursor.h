/*
 * bill_cursor.h: per gateway instance, the highest contiguous seq whose
 * event is committed, tracked in memory (pure, no I/O).
 *
 * Gateways number their usage events per instance from 1.  Events may
 * arrive out of order, twice, or not at all (pub/sub drops); billing may
 * only claim, in billing_cursors, the prefix 1..N that is entirely
 * committed, so that the replay step (asking the gateway's spool for the
 * missing ranges, a later step) knows where the holes are: every seq
 * above `committed` not marked done is missing.
 *
 * An entry keeps `committed` and a ring bitmap of the BILL_CURSOR_WINDOW
 * seqs above it that are already done.  A seq beyond the window is not
 * remembered (bill_cursor_mark() says so): its row is committed anyway
 * and the replay will bring it again, a no-op thanks to the unique
 * request id.  At most BILL_CURSOR_MAX instances are kept; beyond that
 * the one seen least recently is forgotten (its row in billing_cursors
 * stays, and the ledger loads it back when that instance shows up again:
 * bill_cursor_known()).
 *
 * Marks are staged: a batch marks into a struct bill_cursor_stage (copies
 * of the touched entries), whose values go into the batch's transaction;
 * bill_cursor_commit() copies them back once that transaction committed,
 * so a rolled-back batch leaves the tracker as it was.
 *
 * Not thread-safe: one owner (billing's writer thread).
 */
#ifndef BILL_CURSOR_H
#define BILL_CURSOR_H

#include "compat.h"

#define BILL_CURSOR_WINDOW 8192 /* seqs tracked above committed */
#define BILL_CURSOR_MAX    1024 /* instances */
#define BILL_CURSOR_ID_MAX 64

struct bill_cursor_ent {
	char     id[BILL_CURSOR_ID_MAX + 1];
	uint64_t committed;
	uint64_t seen; /* tick of the last use, for eviction */
	uint64_t done[BILL_CURSOR_WINDOW / 64];
};

struct bill_cursor {
	struct bill_cursor_ent *e; /* BILL_CURSOR_MAX */
	size_t                  n;
	uint64_t                tick;
};

struct bill_cursor_stage {
	struct bill_cursor_ent *e; /* cap entries */
	size_t                  n, cap;
};

void bill_cursor_init(struct bill_cursor *c);
void bill_cursor_release(struct bill_cursor *c);

/* Sets instance id (borrowed) to committed, as loaded from the database. */
void bill_cursor_load(struct bill_cursor *c, const char *id, uint64_t seq);

/* Whether id has an entry (loaded or marked, not evicted). */
bool bill_cursor_known(const struct bill_cursor *c, const char *id);

/* The committed seq of id; 0 when unknown. */
uint64_t bill_cursor_get(const struct bill_cursor *c, const char *id);

/*
 * The first hole of id for the replay step: when a seq above the
 * committed one is already done, [*from, *to] receives the missing range
 * below the lowest such seq and true is returned; false when nothing
 * above committed is known (a loss at the tail shows only once a later
 * seq arrives).
 */
bool bill_cursor_first_gap(
    const struct bill_cursor *c, const char *id, uint64_t *from, uint64_t *to);

/* A stage for at most cap instances; release with ..._release(). */
void bill_cursor_stage_init(struct bill_cursor_stage *st, size_t cap);
void bill_cursor_stage_release(struct bill_cursor_stage *st);

/*
 * Marks seq of id done in st (copying id's entry from c on first use).
 * Returns true when it is remembered (at or below committed, or within
 * the window); false for seq 0, an empty or over-long id, a window
 * overflow or a full stage.
 */
bool bill_cursor_mark(const struct bill_cursor *c, struct bill_cursor_stage *st,
    const char *id, uint64_t seq);

/*
 * The gateway declares seqs from..to of id lost (never spooled, so never
 * resent): they count as done in st.  At or below committed nothing
 * changes; a range starting right above it moves committed to its end
 * (and on over any seq already done); otherwise each seq within the
 * window is marked.  Returns true when the whole range is remembered;
 * false for a bad range or id, a full stage, or a range passing the
 * window (the gateway declares it again until committed covers it).
 */
bool bill_cursor_skip(const struct bill_cursor *c, struct bill_cursor_stage *st,
    const char *id, uint64_t from, uint64_t to);

/* Copies the staged entries back into c (the batch committed). */
void bill_cursor_commit(struct bill_cursor *c, struct bill_cursor_stage *st);

#endif /* BILL_CURSOR_H */
