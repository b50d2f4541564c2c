/*
 * seqtrack.h: per-producer sequence tracking for subscribers.
 *
 * Producers number what they publish per instance (instance id, seq
 * starting at 1).  A subscriber feeds every (instance, seq) it receives to
 * a tracker, which tells whether the message is the next one, a repeat, or
 * follows a gap, and keeps totals for /metrics.  Billing will use the same
 * numbers to ask for replays; heartbeats use it to prove that nothing was
 * dropped on the way.
 *
 * The first message seen from an instance (after the subscriber starts, or
 * from a restarted producer, which draws a new instance id:
 * seqtrack_instance_id()) sets the baseline and counts as no gap: pub/sub
 * cannot deliver what was sent before the subscriber connected.  A seq at
 * or below the last one from the same id is a repeat, never a restart.  The
 * tracker is thread-safe and bounded: at most SEQTRACK_MAX instances; beyond
 * that, the stalest entry is replaced.
 */
#ifndef SEQTRACK_H
#define SEQTRACK_H

#include <pthread.h>

#include "compat.h"

#define SEQTRACK_MAX    256
#define SEQTRACK_ID_MAX 64

enum seqtrack_result {
	SEQTRACK_FIRST,  /* baseline for a new or restarted instance */
	SEQTRACK_NEXT,   /* exactly last + 1 */
	SEQTRACK_GAP,    /* ahead of last + 1: some were missed */
	SEQTRACK_REPEAT, /* <= last from the same run: duplicate */
};

struct seqtrack_entry {
	char     id[SEQTRACK_ID_MAX + 1];
	uint64_t last;
	int64_t  seen_ms;
};

struct seqtrack {
	pthread_mutex_t       mu;
	struct seqtrack_entry e[SEQTRACK_MAX];
	size_t                n;
	uint64_t              received; /* every call */
	uint64_t              missed;   /* sum of gap sizes */
	uint64_t              repeats;
};

void seqtrack_init(struct seqtrack *t);
void seqtrack_release(struct seqtrack *t);

/*
 * Records seq from instance id (borrowed; cut at SEQTRACK_ID_MAX bytes).
 * *gap, when not NULL, receives the number of messages missed before this
 * one (0 unless SEQTRACK_GAP).  A seq of 0 is invalid and counts as a
 * repeat.
 */
enum seqtrack_result seqtrack_see(
    struct seqtrack *t, const char *id, uint64_t seq, uint64_t *gap);

/* Totals, read under the lock. */
void seqtrack_totals(struct seqtrack *t, uint64_t *received, uint64_t *missed,
    uint64_t *repeats);

/* Builds a process-unique instance id "<host>-<pid>-<random hex>". */
void seqtrack_instance_id(const char *svc, char *out, size_t cap);

#endif /* SEQTRACK_H */
