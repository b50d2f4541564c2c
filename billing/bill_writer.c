/*
 * bill_writer.c: the bounded queue between the subscriber and the
 * database, and the one thread that drains it (see bill_ledger.h).
 *
 * The SUB callback (nng's thread) only decodes and pushes; it never waits
 * for PostgreSQL.  Each writer thread (cfg.writers of them, each with its
 * own PostgreSQL connection while it applies) takes up to batch_max
 * events, waiting at most batch_wait_ms for a partial batch to fill, and
 * applies them in one transaction; batches of different writers run
 * concurrently (bill_ledger.h says how they stay exact).  A failed batch is
 * retried with back-off (retry_min_ms doubling to retry_max_ms) until it
 * commits: the path is idempotent, so a retry after a commit whose
 * acknowledgement was lost is harmless. While the database is away the queue
 * fills; beyond queue_max the subscriber drops (counted), and the replay step
 * brings those back.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "bill_ledger.h"
#include "err.h"
#include "log.h"

/* A range of seqs a gateway declared lost, waiting for the writer. */
struct bill_lost {
	char     inst[BILL_CURSOR_ID_MAX + 1];
	uint64_t from, to;
};

struct bill_writer {
	struct bill_writer_cfg cfg;
	struct bill_ledger    *l;
	pthread_mutex_t        mu;
	pthread_cond_t         cv;
	pthread_t             *th; /* cfg.writers */
	struct bill_ev       **q;  /* ring of cfg.queue_max */
	size_t                 head, count;
	bool                   stop;
	int64_t                stop_deadline; /* now_mono_ms() */
	uint64_t               applied;
	int                    last_rv; /* of the last attempt */
	struct bill_lost       lost[BILL_WRITER_LOST_MAX];
	size_t                 n_lost;
};

/* Waits on cv until the monotonic time ms (or a signal). */
static void
bill_writer_wait_until(struct bill_writer *w, int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	(void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

/* Takes up to batch_max events into v; called with the lock held. */
static size_t
bill_writer_take(struct bill_writer *w, struct bill_ev **v)
{
	size_t n = 0;

	while (w->count > 0 && n < w->cfg.batch_max) {
		v[n++] = w->q[w->head];
		w->q[w->head] = NULL;
		w->head = (w->head + 1) % w->cfg.queue_max;
		w->count--;
	}
	if (w->cfg.depth != NULL)
		met_gauge_set(w->cfg.depth, (double)w->count);
	/* Leftovers: another writer may take them while this one works. */
	if (w->count > 0)
		pthread_cond_signal(&w->cv);
	return n;
}

/* Applies v[0..n) until it commits, or the stop deadline passes. */
static void
bill_writer_apply(struct bill_writer *w, struct bill_ev **v, size_t n)
{
	int64_t backoff = w->cfg.retry_min_ms;
	int     rv;

	for (;;) {
		rv = bill_ledger_apply(w->l, v, n, NULL);
		pthread_mutex_lock(&w->mu);
		w->last_rv = rv;
		if (rv == 0) {
			w->applied += n;
			pthread_mutex_unlock(&w->mu);
			return;
		}
		if (w->stop && now_mono_ms() >= w->stop_deadline) {
			pthread_mutex_unlock(&w->mu);
			log_error("bill.batch_dropped", LOG_U64("events", n),
			    LOG_ERR(rv));
			return;
		}
		log_warn("bill.batch_retry", LOG_U64("events", n),
		    LOG_I64("backoff_ms", backoff), LOG_ERR(rv));
		bill_writer_wait_until(w, now_mono_ms() + backoff);
		pthread_mutex_unlock(&w->mu);
		backoff = backoff * 2 > w->cfg.retry_max_ms
		    ? w->cfg.retry_max_ms
		    : backoff * 2;
	}
}

/*
 * Applies the lost ranges pending; called and returns with the lock
 * held.  A failure is only logged: the gateway declares the range again
 * with its next sync until the cursor passes it.
 */
static void
bill_writer_skip(struct bill_writer *w)
{
	struct bill_lost v[BILL_WRITER_LOST_MAX];
	size_t           n = w->n_lost, i;
	int              rv;

	memcpy(v, w->lost, n * sizeof(v[0]));
	w->n_lost = 0;
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < n; i++) {
		rv = bill_ledger_skip(w->l, v[i].inst, v[i].from, v[i].to);
		if (rv != 0)
			log_warn("bill.skip_failed", LOG_STR("inst", v[i].inst),
			    LOG_U64("from", v[i].from), LOG_U64("to", v[i].to),
			    LOG_ERR(rv));
	}
	pthread_mutex_lock(&w->mu);
}

static void *
bill_writer_main(void *arg)
{
	struct bill_writer *w = arg;
	struct bill_ev    **v = xcalloc(w->cfg.batch_max, sizeof(*v));
	int64_t             until;
	size_t              n, i;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->count == 0 && w->n_lost == 0 && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->n_lost > 0) {
			bill_writer_skip(w);
			continue;
		}
		if (w->count == 0)
			break; /* stopping and drained */
		if (w->stop && now_mono_ms() >= w->stop_deadline) {
			/* Out of drain budget: bill_writer_stop() frees them.
			 */
			log_warn("bill.queue_dropped_at_stop",
			    LOG_U64("events", w->count));
			break;
		}
		until = now_mono_ms() + w->cfg.batch_wait_ms;
		while (w->count < w->cfg.batch_max && !w->stop &&
		    now_mono_ms() < until)
			bill_writer_wait_until(w, until);
		n = bill_writer_take(w, v);
		if (n == 0)
			continue; /* another writer took them while we waited */
		pthread_mutex_unlock(&w->mu);
		bill_writer_apply(w, v, n);
		for (i = 0; i < n; i++)
			bill_ev_free(v[i]);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	free(v);
	return NULL;
}

struct bill_writer *
bill_writer_start(struct bill_ledger *l, const struct bill_writer_cfg *cfg)
{
	struct bill_writer *w = xcalloc(1, sizeof(*w));
	pthread_condattr_t  ca;
	size_t              i;

	w->cfg = *cfg;
	if (w->cfg.queue_max == 0)
		w->cfg.queue_max = 1;
	if (w->cfg.batch_max == 0)
		w->cfg.batch_max = 1;
	if (w->cfg.retry_min_ms <= 0)
		w->cfg.retry_min_ms = 1;
	if (w->cfg.retry_max_ms < w->cfg.retry_min_ms)
		w->cfg.retry_max_ms = w->cfg.retry_min_ms;
	if (w->cfg.writers == 0)
		w->cfg.writers = 1;
	w->l = l;
	w->q = xcalloc(w->cfg.queue_max, sizeof(*w->q));
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->th = xcalloc(w->cfg.writers, sizeof(*w->th));
	for (i = 0; i < w->cfg.writers; i++) {
		if (pthread_create(&w->th[i], NULL, bill_writer_main, w) != 0)
			BUG("bill_writer_start: pthread_create failed");
	}
	return w;
}

int
bill_writer_push(struct bill_writer *w, struct bill_ev *e)
{
	pthread_mutex_lock(&w->mu);
	if (w->stop || w->count == w->cfg.queue_max) {
		pthread_mutex_unlock(&w->mu);
		if (w->cfg.dropped != NULL)
			met_counter_inc(w->cfg.dropped);
		return -ERR_BUSY;
	}
	w->q[(w->head + w->count) % w->cfg.queue_max] = e;
	w->count++;
	if (w->cfg.depth != NULL)
		met_gauge_set(w->cfg.depth, (double)w->count);
	/* Wake the writer only when it has something to decide. */
	if (w->count == 1 || w->count >= w->cfg.batch_max)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

int
bill_writer_lost(
    struct bill_writer *w, const char *instance, uint64_t from, uint64_t to)
{
	struct bill_lost *x;
	size_t            i;

	if (from == 0 || to < from || instance[0] == '\0' ||
	    strlen(instance) > BILL_CURSOR_ID_MAX)
		return -ERR_INVAL;
	pthread_mutex_lock(&w->mu);
	for (i = 0; i < w->n_lost; i++) {
		x = &w->lost[i];
		if (strcmp(x->inst, instance) == 0 && x->from == from &&
		    x->to == to) {
			pthread_mutex_unlock(&w->mu);
			return 0; /* already pending */
		}
	}
	if (w->stop || w->n_lost == BILL_WRITER_LOST_MAX) {
		pthread_mutex_unlock(&w->mu);
		return -ERR_BUSY;
	}
	x = &w->lost[w->n_lost++];
	str_copy(x->inst, sizeof(x->inst), instance);
	x->from = from;
	x->to = to;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void
bill_writer_stop(struct bill_writer *w, int64_t deadline_ms)
{
	size_t i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	w->stop_deadline = deadline_ms;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->cfg.writers; i++)
		pthread_join(w->th[i], NULL);
	for (i = 0; i < w->count; i++)
		bill_ev_free(w->q[(w->head + i) % w->cfg.queue_max]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->th);
	free(w->q);
	free(w);
}

uint64_t
bill_writer_applied(struct bill_writer *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->mu);
	n = w->applied;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int
bill_writer_last(struct bill_writer *w)
{
	int rv;

	pthread_mutex_lock(&w->mu);
	rv = w->last_rv;
	pthread_mutex_unlock(&w->mu);
	return rv;
}
