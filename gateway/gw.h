/*
 * gw.h: the gateway service (private to gateway/).
 *
 * The gateway is stateless and scales out.  It owns the client HTTP API,
 * asks the scheduler for an account per request (REQ), streams the
 * upstream answer, and publishes usage, error and heartbeat events (PUB)
 * to the collectors.  It never talks to PostgreSQL.
 *
 * Threads: MHD's epoll thread (gw_http.c) owns the client connections;
 * the I/O thread (gw_io.c, gw_relay.c, gw_up.c) owns the upstream
 * transfers and the scheduler conversation; tick threads ping the
 * scheduler (readiness) and publish heartbeats (gw_wiring.c).
 */
#ifndef GW_H
#define GW_H

#include <stdatomic.h>

struct MHD_Daemon;
struct gw_spool;

#include "cfg.h"
#include "gw_io.h"
#include "metrics.h"
#include "nngx.h"
#include "svc.h"
#include "tick.h"
#include "topics.h"

#define GW_HTTP_UNPARK_WAIT_MS 2000 /* MHD resuming connections at exit */

#define GW_CFG(X)                                                              \
	SVC_CFG_BASE(X, "127.0.0.1:9101")                                      \
	X(listen_addr, CFG_ADDR, "0.0.0.0:8080", 0, 0, NULL, 0,                \
	    "Client API listener host:port.")                                  \
	X(sched_addr, CFG_NNG, ADDR_SCHED, 0, 0, NULL, 0,                      \
	    "Scheduler REP address to dial.")                                  \
	X(sched_timeout, CFG_DUR, "2s", 10, 60000, NULL, 0,                    \
	    "Deadline of one scheduler request.")                              \
	X(sched_ping_interval, CFG_DUR, "1s", 10, 60000, NULL, 0,              \
	    "Readiness ping to the scheduler, every this often.")              \
	X(billing_events_addr, CFG_NNG, ADDR_BILLING_EVENTS, 0, 0, NULL, 0,    \
	    "Billing's event listener, dialled by the PUB socket.")            \
	X(opsmon_events_addr, CFG_NNG, ADDR_OPSMON_EVENTS, 0, 0, NULL, 0,      \
	    "Opsmon's event listener, dialled by the PUB socket.")             \
	X(pub_queue, CFG_INT, "4096", 16, 8192, NULL, 0,                       \
	    "Messages queued per collector before publishing drops.")          \
	X(heartbeat_interval, CFG_DUR, "1s", 1, 60000, NULL, 0,                \
	    "Status heartbeat to the collectors, every this often.")           \
	X(body_max, CFG_SIZE, "100M", 1024, 1073741824, NULL, 0,               \
	    "Largest request body accepted (413 beyond).")                     \
	X(header_max, CFG_SIZE, "32k", 16384, 16777216, NULL, 0,               \
	    "Memory for one connection's request line and headers (431).")     \
	X(conn_limit, CFG_INT, "10000", 1, 1000000, NULL, 0,                   \
	    "Client connections at most.")                                     \
	X(client_timeout, CFG_INT, "300", 1, 86400, NULL, 0,                   \
	    "Seconds a client connection may sit idle (not while waiting).")   \
	X(connect_timeout, CFG_DUR, "10s", 100, 600000, NULL, 0,               \
	    "Upstream TCP/TLS connect timeout.")                               \
	X(first_byte_timeout, CFG_DUR, "300s", 100, 3600000, NULL, 0,          \
	    "Upstream response headers must arrive within this.")              \
	X(idle_timeout, CFG_DUR, "300s", 100, 3600000, NULL, 0,                \
	    "Longest gap between upstream bytes; streams have no total cap.")  \
	X(max_switches, CFG_INT, "10", 0, 32, NULL, 0,                         \
	    "Accounts tried after the first fails, before output started.")    \
	X(stream_buffer, CFG_SIZE, "1M", 4096, 67108864, NULL, 0,              \
	    "Bytes held per slow client before the upstream is paused.")       \
	X(sse_line_max, CFG_SIZE, "1M", 1024, 67108864, NULL, 0,               \
	    "Longest upstream SSE line.")                                      \
	X(lease_renew_interval, CFG_DUR, "20s", 100, 600000, NULL, 0,          \
	    "Renew the slot leases of running requests this often.")           \
	X(release_linger, CFG_DUR, "2ms", 0, 1000, NULL, 0,                    \
	    "Hold a release this long for the next acquire to carry it.")      \
	X(usage_linger, CFG_DUR, "2ms", 0, 1000, NULL, 0,                      \
	    "Hold a usage event this long to publish it with others.")         \
	X(stream_linger, CFG_DUR, "2ms", 0, 1000, NULL, 0,                     \
	    "Hold a stream's next events this long so that one pass of the "   \
	    "HTTP server sends many streams' (0: each at once).")              \
	X(upstream_idle_conns, CFG_INT, "1024", 1, 100000, NULL, 0,            \
	    "Idle upstream connections kept for reuse.")                       \
	X(wait_timeout, CFG_DUR, "30s", 0, 600000, NULL, 0,                    \
	    "How long a request waits for a free slot (0: refuse at once).")   \
	X(wait_ping_interval, CFG_DUR, "15s", 100, 600000, NULL, 0,            \
	    "SSE ping to a waiting stream request, every this often.")         \
	X(spool_dir, CFG_STR, "${state_dir}/spool", 0, 0, NULL, 0,             \
	    "Usage spool root; one directory per gateway instance.")           \
	X(spool_fsync, CFG_ENUM, "interval", 0, 0, "always|interval|never", 0, \
	    "Spool durability: fsync each event, every interval, never.")      \
	X(spool_fsync_interval, CFG_DUR, "50ms", 1, 10000, NULL, 0,            \
	    "With spool_fsync=interval: fsync the spool this often.")          \
	X(spool_max, CFG_SIZE, "1G", 65536, 1099511627776, NULL, 0,            \
	    "Spool bytes at most; beyond, events go unspooled (counted).")     \
	X(spool_segment, CFG_SIZE, "16M", 4096, 1073741824, NULL, 0,           \
	    "Spool segment file size before a new one is started.")            \
	X(billing_sync_addr, CFG_NNG, ADDR_BILLING_SYNC, 0, 0, NULL, 0,        \
	    "Billing's usage sync REP address, dialled by the gateway.")       \
	X(spool_sync_interval, CFG_DUR, "1s", 10, 600000, NULL, 0,             \
	    "Sync with billing (resend, learn what to trim) this often.")      \
	X(spool_sync_timeout, CFG_DUR, "3s", 10, 600000, NULL, 0,              \
	    "Deadline of one sync request to billing.")                        \
	X(spool_resend_after, CFG_DUR, "2s", 0, 86400000, NULL, 0,             \
	    "Resend a spooled event billing has not confirmed after this.")    \
	X(spool_sync_batch, CFG_INT, "256", 1, 512, NULL, 0,                   \
	    "Events resent per sync request at most.")

CFG_DECLARE(gw_cfg, GW_CFG)

struct gw {
	struct svc           svc;
	const struct gw_cfg *cfg;
	struct nngx_req     *sched;
	struct nngx_pub     *pub;
	struct MHD_Daemon   *front;
	struct gw_io         io;
	atomic_uint_fast64_t usage_seq;
	atomic_uint_fast64_t error_seq;
	atomic_int           inflight; /* requests the io side holds */
	/*
	 * Connections MHD keeps on its suspended list: counted from
	 * MHD_suspend_connection() until MHD calls back into the connection
	 * after its resume (MHD_stop_daemon() aborts while one is left).
	 */
	atomic_int   parked;
	struct tick  ping_tick;
	struct tick  hb_tick;
	atomic_llong ping_ok_ms; /* monotonic time of the last good ping */
	uint64_t     hb_seq;     /* only the hb tick thread touches it */
	atomic_int   state;      /* enum gw_state */

	struct met_counter   *ping_ok;
	struct met_counter   *ping_fail;
	struct met_histogram *ping_seconds;
	struct met_counter   *hb_sent;
	struct met_counter   *hb_dropped;
	struct met_gauge     *pub_peers;

	struct met_counter *m_requests;
	struct met_family  *m_errors; /* {code} */
	struct met_counter *m_failovers;
	struct met_counter *m_waits;
	struct met_counter *m_cancelled;
	struct met_counter *m_stream_errors;
	struct met_counter *m_release_failed;
	struct met_counter *m_usage_sent;
	struct met_counter *m_usage_dropped;
	struct met_counter *m_usage_batches;
	struct met_counter *m_bundles;

	/* gw_sync.c: the usage spool and the sync with billing. */
	struct gw_spool *spool;
	/*
	 * svc.instance names the usage stream and may be an adopted one; the
	 * heartbeat and error streams restart their seq at 1 with each
	 * process, so they keep this process's own id (or the collectors
	 * would count the new heartbeats as repeats of the old ones).
	 */
	char                run_instance[SVC_INSTANCE_MAX];
	struct nngx_req    *bsync; /* replaced by the sync tick (reset) */
	struct tick         sync_tick;
	struct tick         flush_tick;
	uint64_t            trimmed_seen;     /* sync tick only */
	int                 sync_unanswered;  /* sync tick only */
	int64_t             sync_reset_at_ms; /* sync tick only */
	struct met_counter *m_spooled;
	struct met_family  *m_unspooled; /* {reason} */
	struct met_counter *m_resent;
	struct met_counter *m_trimmed;
	struct met_counter *m_sync_ok;
	struct met_counter *m_sync_failed;
	struct met_counter *m_sync_resets;
	struct met_gauge   *m_spool_records;
	struct met_gauge   *m_spool_bytes;
	struct met_gauge   *m_spool_committed;
};

enum gw_state {
	GW_ST_STARTING,
	GW_ST_SERVING,
	GW_ST_DRAINING,
};

/* gw_wiring.c: scheduler ping and heartbeats. */
int  gw_wiring_start(struct gw *gw) WARN_UNUSED;
void gw_wiring_stop(struct gw *gw);

/* gw_http.c: the client listener. */
int  gw_http_start(struct gw *gw) WARN_UNUSED;
void gw_http_quiesce(struct gw *gw); /* stop accepting */
void gw_http_stop(struct gw *gw);

/*
 * gw_sync.c: opens the spool (adopting an orphan instance, whose id then
 * becomes gw->svc.instance, and whose last seq numbers on), before any
 * event; fatalx() when it cannot.  gw_sync_start() dials billing and
 * starts the sync and fsync ticks; gw_sync_stop() stops them, closes the
 * socket and closes the spool (after the I/O thread has stopped).
 */
void gw_spool_start(struct gw *gw);
int  gw_sync_start(struct gw *gw) WARN_UNUSED;
void gw_sync_stop(struct gw *gw);

/* gw_wiring.c: request metrics. */
void gw_metrics_init(struct gw *gw);

#endif /* GW_H */
