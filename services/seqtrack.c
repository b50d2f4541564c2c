/*
 * seqtrack.c: sequence tracking per producer instance (see seqtrack.h).
 *
 * A linear scan over at most SEQTRACK_MAX entries is cheaper than a hash
 * for the handful of gateways a collector hears from.
 */
#include "seqtrack.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <unistd.h>

void
seqtrack_init(struct seqtrack *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
}

void
seqtrack_release(struct seqtrack *t)
{
	pthread_mutex_destroy(&t->mu);
}

static struct seqtrack_entry *
seqtrack_slot(struct seqtrack *t, const char *id, bool *fresh)
{
	size_t i, oldest = 0;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->e[i].id, id) == 0) {
			*fresh = false;
			return &t->e[i];
		}
		if (t->e[i].seen_ms < t->e[oldest].seen_ms)
			oldest = i;
	}
	*fresh = true;
	if (t->n < SEQTRACK_MAX)
		oldest = t->n++;
	memset(&t->e[oldest], 0, sizeof(t->e[oldest]));
	snprintf(t->e[oldest].id, sizeof(t->e[oldest].id), "%s", id);
	return &t->e[oldest];
}

enum seqtrack_result
seqtrack_see(struct seqtrack *t, const char *id, uint64_t seq, uint64_t *gap)
{
	struct seqtrack_entry *e;
	enum seqtrack_result   r;
	uint64_t               g = 0;
	bool                   fresh;

	pthread_mutex_lock(&t->mu);
	t->received++;
	e = seqtrack_slot(t, id, &fresh);
	e->seen_ms = now_mono_ms();
	if (seq == 0) {
		r = SEQTRACK_REPEAT;
		t->repeats++;
	} else if (fresh) {
		r = SEQTRACK_FIRST;
		e->last = seq;
	} else if (seq == e->last + 1) {
		r = SEQTRACK_NEXT;
		e->last = seq;
	} else if (seq > e->last) {
		r = SEQTRACK_GAP;
		g = seq - e->last - 1;
		t->missed += g;
		e->last = seq;
	} else {
		r = SEQTRACK_REPEAT;
		t->repeats++;
	}
	pthread_mutex_unlock(&t->mu);
	if (gap != NULL)
		*gap = g;
	return r;
}

void
seqtrack_totals(
    struct seqtrack *t, uint64_t *received, uint64_t *missed, uint64_t *repeats)
{
	pthread_mutex_lock(&t->mu);
	if (received != NULL)
		*received = t->received;
	if (missed != NULL)
		*missed = t->missed;
	if (repeats != NULL)
		*repeats = t->repeats;
	pthread_mutex_unlock(&t->mu);
}

void
seqtrack_instance_id(const char *svc, char *out, size_t cap)
{
	char          host[64] = "host";
	unsigned char r[4] = {0};

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0, sizeof(r));
	/* At most 12 + 1 + 24 + 1 + 10 + 1 + 8 bytes: fits 64. */
	snprintf(out, cap, "%.12s-%.24s-%ld-%02x%02x%02x%02x", svc, host,
	    (long)getpid(), r[0], r[1], r[2], r[3]);
}
