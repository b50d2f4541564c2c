/*
 * bill_notify.c: billing's announcements to the scheduler, held while
 * no subscriber is connected (see bill_notify.h).
 */
#include "bill_notify.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "nngx.h"
#include "proto.h"
#include "tick.h"
#include "topics.h"

struct bill_notice {
	char    kind[PROTO_NAME_MAX + 1];
	int64_t id;
};

struct bill_notify {
	struct bill_notify_cfg cfg;
	char                  *addr; /* owned */
	atomic_uint_fast64_t   ver;
	pthread_mutex_t        mu; /* guards pub (replaced), held, nheld */
	struct nngx_pub       *pub;
	struct bill_notice     held[BILL_NOTIFY_HELD_MAX];
	size_t                 nheld;
	/* The tick's own: what it sends, the last peers, time alone. */
	struct bill_notice out[BILL_NOTIFY_HELD_MAX];
	int                peers_before;
	int64_t            alone_since_ms;
	struct tick        tick;
};

/*
 * Publishes one announcement; 0 or -ERR_x (counted either way).  Called
 * with mu held (n->pub may be replaced otherwise).
 */
static int
bill_notify_publish(struct bill_notify *n, const char *kind, int64_t id)
{
	struct proto_config_changed_evt e;
	struct buf                      out;
	int                             rv;

	memset(&e, 0, sizeof(e));
	(void)str_copy(e.kind, sizeof(e.kind), kind);
	e.entity_id = id;
	e.version = atomic_fetch_add(&n->ver, 1) + 1;
	buf_init(&out, 1024);
	rv = proto_config_changed_evt_pack(&out, "", 0, &e);
	if (rv == 0)
		rv = nngx_pub_send(n->pub, TOPIC_CONFIG, out.data, out.len);
	buf_release(&out);
	if (rv != 0 && n->cfg.failed != NULL)
		met_counter_inc(n->cfg.failed);
	else if (rv == 0 && n->cfg.sent != NULL)
		met_counter_inc(n->cfg.sent);
	log_debug("bill.notify", LOG_STR("kind", kind), LOG_I64("id", id),
	    LOG_ERR(rv));
	return rv;
}

/* Keeps (kind, id) for later, once; called with mu held. */
static void
bill_notify_hold(struct bill_notify *n, const char *kind, int64_t id)
{
	struct bill_notice *h;
	size_t              i;

	for (i = 0; i < n->nheld; i++)
		if (n->held[i].id == id && strcmp(n->held[i].kind, kind) == 0)
			return;
	if (n->nheld == BILL_NOTIFY_HELD_MAX) {
		log_warn("bill.notify_dropped",
		    LOG_STR("kind", n->held[0].kind),
		    LOG_I64("id", n->held[0].id));
		memmove(&n->held[0], &n->held[1],
		    (BILL_NOTIFY_HELD_MAX - 1) * sizeof(n->held[0]));
		n->nheld--;
		if (n->cfg.failed != NULL)
			met_counter_inc(n->cfg.failed);
	}
	h = &n->held[n->nheld++];
	(void)str_copy(h->kind, sizeof(h->kind), kind);
	h->id = id;
	if (n->cfg.held != NULL)
		met_gauge_set(n->cfg.held, (double)n->nheld);
}

void
bill_notify_send(void *arg, const char *kind, int64_t id)
{
	struct bill_notify *n = arg;
	bool                held = false;

	pthread_mutex_lock(&n->mu);
	if (nngx_pub_npipes(n->pub) > 0) {
		(void)bill_notify_publish(n, kind, id);
	} else {
		bill_notify_hold(n, kind, id);
		held = true;
	}
	pthread_mutex_unlock(&n->mu);
	if (held)
		log_debug("bill.notify_held", LOG_STR("kind", kind),
		    LOG_I64("id", id), LOG_MSG("no scheduler connected"));
}

/*
 * A new socket in place of one alone for redial_ms (see bill_notify.h);
 * called by the tick, the only one that replaces n->pub.
 */
static void
bill_notify_redial(struct bill_notify *n)
{
	struct nngx_pub *p = NULL, *old;
	const char      *addr[1] = {n->addr};
	int              rv;

	n->alone_since_ms = now_mono_ms();
	rv = nngx_pub_new(addr, 1, &p);
	if (rv != 0) {
		log_warn("bill.notify_redial_failed", LOG_ERR(rv));
		return;
	}
	pthread_mutex_lock(&n->mu);
	old = n->pub;
	n->pub = p;
	pthread_mutex_unlock(&n->mu);
	nngx_pub_free(old); /* bounded */
	log_debug("bill.notify_redialed", LOG_STR("addr", n->addr));
}

/*
 * The tick: sends what is held once a subscriber has been connected for
 * two checks in a row.  nng counts a pipe (ADD_PRE) a moment before PUB
 * starts sending on it; the second look leaves that moment behind.
 */
static void
bill_notify_tick_cb(void *arg)
{
	struct bill_notify *n = arg;
	int                 peers = nngx_pub_npipes(n->pub);
	int64_t             now = now_mono_ms();
	size_t              i, k;

	if (n->cfg.peers != NULL)
		met_gauge_set(n->cfg.peers, (double)peers);
	if (peers > 0 || n->alone_since_ms == 0)
		n->alone_since_ms = now;
	if (peers == 0 && now - n->alone_since_ms >= n->cfg.redial_ms)
		bill_notify_redial(n);
	if (peers == 0 || n->peers_before == 0) {
		n->peers_before = peers;
		return;
	}
	pthread_mutex_lock(&n->mu);
	k = n->nheld;
	memcpy(n->out, n->held, k * sizeof(n->held[0]));
	n->nheld = 0;
	if (n->cfg.held != NULL && k > 0)
		met_gauge_set(n->cfg.held, 0);
	for (i = 0; i < k; i++)
		(void)bill_notify_publish(n, n->out[i].kind, n->out[i].id);
	pthread_mutex_unlock(&n->mu);
	if (k > 0)
		log_info("bill.notify_flushed", LOG_U64("announcements", k));
}

size_t
bill_notify_held(struct bill_notify *n)
{
	size_t k;

	pthread_mutex_lock(&n->mu);
	k = n->nheld;
	pthread_mutex_unlock(&n->mu);
	return k;
}

int
bill_notify_new(const struct bill_notify_cfg *cfg, struct bill_notify **out)
{
	struct bill_notify *n = xcalloc(1, sizeof(*n));
	int                 rv;

	n->cfg = *cfg;
	n->cfg.addr = NULL; /* borrowed for this call only: copied */
	if (n->cfg.redial_ms <= 0)
		n->cfg.redial_ms = BILL_NOTIFY_REDIAL_MS;
	n->addr = xstrdup(cfg->addr);
	atomic_init(&n->ver, 0);
	pthread_mutex_init(&n->mu, NULL);
	rv = nngx_pub_new(&cfg->addr, 1, &n->pub);
	if (rv == 0)
		rv = tick_start(&n->tick, "sched_notify", BILL_NOTIFY_FLUSH_MS,
		    bill_notify_tick_cb, n);
	if (rv != 0) {
		bill_notify_free(n);
		return rv;
	}
	*out = n;
	return 0;
}

void
bill_notify_free(struct bill_notify *n)
{
	if (n == NULL)
		return;
	tick_stop(&n->tick);
	nngx_pub_free(n->pub);
	if (n->nheld > 0)
		log_warn(
		    "bill.notify_lost", LOG_U64("announcements", n->nheld));
	pthread_mutex_destroy(&n->mu);
	free(n->addr);
	free(n);
}
