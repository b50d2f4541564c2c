/*
 * gw.h: the gateway service (private to gateway/).
 *
 * The gateway is stateless and scales out.  It owns the client HTTP API,
 * asks the scheduler for an account per request (REQ), streams the
 * upstream answer, and publishes usage, error and heartbeat events (PUB)
 * to the collectors.  It never talks to PostgreSQL.
 *
 * In this first cut it proves the wiring: a readiness ping to the
 * scheduler every sched_ping_interval, numbered heartbeats every
 * heartbeat_interval, and a minimal front listener (HEAD /, GET /health).
 */
#ifndef GW_H
#define GW_H

#include <stdatomic.h>

struct MHD_Daemon;

#include "cfg.h"
#include "metrics.h"
#include "nngx.h"
#include "svc.h"
#include "tick.h"
#include "topics.h"

#define GW_CFG(X)                                                           \
	SVC_CFG_BASE(X, "127.0.0.1:9101")                                   \
	X(listen_addr, CFG_ADDR, "0.0.0.0:8080", 0, 0, NULL, 0,             \
	    "Client API listener host:port.")                               \
	X(sched_addr, CFG_NNG, ADDR_SCHED, 0, 0, NULL, 0,                   \
	    "Scheduler REP address to dial.")                               \
	X(sched_timeout, CFG_DUR, "2s", 10, 60000, NULL, 0,                 \
	    "Deadline of one scheduler request.")                           \
	X(sched_ping_interval, CFG_DUR, "1s", 10, 60000, NULL, 0,           \
	    "Readiness ping to the scheduler, every this often.")           \
	X(billing_events_addr, CFG_NNG, ADDR_BILLING_EVENTS, 0, 0, NULL, 0, \
	    "Billing's event listener, dialled by the PUB socket.")         \
	X(opsmon_events_addr, CFG_NNG, ADDR_OPSMON_EVENTS, 0, 0, NULL, 0,   \
	    "Opsmon's event listener, dialled by the PUB socket.")          \
	X(pub_queue, CFG_INT, "4096", 16, 1048576, NULL, 0,                 \
	    "Messages queued per collector before publishing drops.")       \
	X(heartbeat_interval, CFG_DUR, "1s", 1, 60000, NULL, 0,             \
	    "Status heartbeat to the collectors, every this often.")

CFG_DECLARE(gw_cfg, GW_CFG)

struct gw {
	struct svc           svc;
	const struct gw_cfg *cfg;
	struct nngx_req     *sched;
	struct nngx_pub     *pub;
	struct MHD_Daemon   *front_daemon;
	struct tick          ping_tick;
	struct tick          hb_tick;
	atomic_llong ping_ok_ms; /* monotonic time of the last good ping */
	uint64_t     hb_seq;     /* only the hb tick thread touches it */
	atomic_int   state;      /* enum gw_state */

	struct met_counter   *ping_ok;
	struct met_counter   *ping_fail;
	struct met_histogram *ping_seconds;
	struct met_counter   *hb_sent;
	struct met_counter   *hb_dropped;
	struct met_gauge     *pub_peers;
};

enum gw_state {
	GW_ST_STARTING,
	GW_ST_SERVING,
	GW_ST_DRAINING,
};

/* gw_wiring.c: scheduler ping and heartbeats. */
int  gw_wiring_start(struct gw *gw) WARN_UNUSED;
void gw_wiring_stop(struct gw *gw);

/* gw_front.c: the client listener. */
int  gw_front_start(struct gw *gw) WARN_UNUSED;
void gw_front_quiesce(struct gw *gw); /* stop accepting */
void gw_front_stop(struct gw *gw);

#endif /* GW_H */
