/*
 * sched_sweep.h: the slot sweeper, a periodic job that removes expired
 * leases from the slot sets.
 *
 * A lease whose gateway died (SIGKILL, a lost host) is never released
 * and never renewed: its member stays in "<prefix>slots:user:<uid>" and
 * "<prefix>slots:acct:<aid>" (and "<prefix>slots:key:<kid>") with a score
 * (expiry, ms of the Redis clock) in the past.  Acquires ignore it already
 * (they trim the sets they look at), but an account or user nobody asks for
 * keeps showing it to operators until its whole set expires.  Every
 * slot_sweep_interval the sweeper walks the slot sets with SCAN and, per set,
 * runs one small script that drops the members whose expiry has passed and
 * deletes the set when it is left empty.
 *
 * The wait sets ("<prefix>slots:wait:user:<uid>", "...:wait:acct:<aid>",
 * members request ids scored by expiry, sched_slots.c) live under slots:
 * too and are trimmed the same way, so a waiter whose gateway died stops
 * counting after wait_ttl even if nobody acquires for that user again.
 * A complete pass also sets the gauge sub2api_sched_waiting_requests to
 * the members left in the users' wait sets.
 *
 * Replicas: every scheduler sweeps, without a lock.  The script is
 * idempotent (a member removed by one replica is simply absent for the
 * next; "now" is the Redis clock, the same for all) and atomic, so two
 * sweepers, or a sweeper and an acquire, never remove a live lease or
 * count one twice.  The cost is a few redundant SCANs.
 */
#ifndef SCHED_SWEEP_H
#define SCHED_SWEEP_H

#include "sched.h"

/* SCAN COUNT hint: keys Redis examines per call. */
#define SCHED_SWEEP_SCAN_COUNT 100
/* Slot sets visited per run at most; the next run resumes the cursor. */
#define SCHED_SWEEP_KEYS_MAX 10000
/* SCAN calls per run at most (a sparse keyspace returns empty pages). */
#define SCHED_SWEEP_CALLS_MAX 1000

/*
 * The script: KEYS = one slot or wait set; returns {members removed,
 * members left}.
 */
extern const char sched_lua_sweep[];

struct sched_sweep;

/* What one run did. */
struct sched_sweep_stats {
	uint64_t keys;    /* slot sets visited */
	uint64_t removed; /* expired members removed */
	uint64_t calls;   /* SCAN calls */
	bool     done;    /* the SCAN came back to cursor 0 */
	uint64_t waiting; /* when done: users' waiters seen over the pass */
};

/*
 * Makes the sweeper of s (borrowed; s->cfg and s->rds must outlive it),
 * registers sub2api_sched_slots_swept_total and starts the job (first
 * run at once, then every slot_sweep_interval).  *out is owned by the
 * caller (sched_sweep_free).  0, or -ERR_NOMEM when the job cannot start.
 */
int sched_sweep_new(struct sched *s, struct sched_sweep **out) WARN_UNUSED;

/*
 * Stops the job (waiting for a run in progress) and frees w.  Call it
 * before the Redis pool goes.  NULL is fine.
 */
void sched_sweep_free(struct sched_sweep *w);

/*
 * One run, as the job does it; runs are serialised, so a test may call
 * it while the job is live.  Fills *st (borrowed) and returns 0, or the
 * Redis error that ended the run early (*st then counts what was done
 * before it, and the next run starts the SCAN over).
 */
int sched_sweep_run(
    struct sched_sweep *w, struct sched_sweep_stats *st) WARN_UNUSED;

#endif /* SCHED_SWEEP_H */
