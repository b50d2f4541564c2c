/*
 * bill_notify.h: billing's announcements to the scheduler.
 *
 * When a commit turns an entity's money verdict (bill_ledger_cfg.notify:
 * a balance at zero, a spent subscription window or key quota), billing
 * publishes a CONFIG_CHANGED_EVT on the scheduler's config SUB, so the
 * scheduler drops what it cached and refuses the next request.
 *
 * The PUB socket that carries them loses a message sent while no
 * subscriber is connected (billing started before the scheduler, or the
 * scheduler restarting; nngx_pub_nopeer()), and the scheduler would then
 * keep serving on its cache until balance_cache_ttl.  So an announcement
 * made with no subscriber is held instead (at most BILL_NOTIFY_HELD_MAX
 * distinct ones; past that the oldest is dropped and counted as failed)
 * and sent once one connects: a tick checks every BILL_NOTIFY_FLUSH_MS.
 * Sending one twice is harmless: the scheduler only drops a cache entry.
 *
 * nng 1.5.2's dialer stops for good when the listener closes a
 * connection before reading its SP header (a scheduler stopping while
 * billing dials it), so the tick also replaces the socket after
 * redial_ms without a subscriber.
 *
 * Thread-safe: bill_notify_send() runs on the writer threads.
 */
#ifndef BILL_NOTIFY_H
#define BILL_NOTIFY_H

#include "compat.h"
#include "metrics.h"

#define BILL_NOTIFY_HELD_MAX  256
#define BILL_NOTIFY_FLUSH_MS  100
#define BILL_NOTIFY_REDIAL_MS 10000 /* default of redial_ms */

struct bill_notify_cfg {
	const char         *addr;   /* the scheduler's SUB; borrowed */
	struct met_counter *sent;   /* published to a subscriber; or NULL */
	struct met_counter *failed; /* not published, or dropped held */
	struct met_gauge   *held;   /* waiting for a subscriber; or NULL */
	struct met_gauge   *peers;  /* subscribers connected; or NULL */
	int64_t redial_ms; /* new socket after this alone; 0: the default */
};

struct bill_notify;

/*
 * Dials cfg->addr (non-blocking: the scheduler may come later) and starts
 * the tick; cfg is copied.  On success *out is owned, freed by
 * bill_notify_free().  -ERR_x when the socket or the thread fails.
 */
int bill_notify_new(
    const struct bill_notify_cfg *cfg, struct bill_notify **out) WARN_UNUSED;

/*
 * Announces (kind, id) (kind borrowed, up to PROTO_NAME_MAX bytes): sent
 * at once when a subscriber is connected, held otherwise.  Never blocks.
 * The shape of bill_ledger_cfg.notify: arg is the struct bill_notify.
 */
void bill_notify_send(void *arg, const char *kind, int64_t id);

/* Announcements held now, waiting for a subscriber. */
size_t bill_notify_held(struct bill_notify *n);

/* Stops the tick and closes the socket (held ones are lost).  NULL ok. */
void bill_notify_free(struct bill_notify *n);

#endif /* BILL_NOTIFY_H */
