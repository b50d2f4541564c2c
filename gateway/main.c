/*
 * main.c: the gateway process: configuration, wiring, the I/O thread and
 * the client listener, then wait for SIGTERM/SIGINT and drain: stop
 * accepting, let running requests finish within drain_timeout, cancel the
 * rest (their leases are returned), then unwind.
 */
#include <time.h>

#include "gw.h"
#include "log.h"
#include "sig.h"

CFG_DEFINE(gw_cfg, "gateway", "GATEWAY", GW_CFG)

static void
gw_drain(struct gw *gw)
{
	int64_t         end = now_mono_ms() + gw->cfg->drain_timeout;
	struct timespec ts = {0, 10 * 1000 * 1000};

	while (atomic_load(&gw->inflight) > 0 && now_mono_ms() < end)
		nanosleep(&ts, NULL);
	if (atomic_load(&gw->inflight) > 0)
		log_warn("gw.drain_cut",
		    LOG_I64("inflight", atomic_load(&gw->inflight)));
}

int
main(int argc, char **argv)
{
	struct gw       gw;
	struct svc_opts opts;
	int             rv;

	sig_init();
	memset(&gw, 0, sizeof(gw));
	gw.cfg = cfg_main(&gw_cfg_schema, argc, argv);
	/*
	 * After the drain budget the gateway still waits for the acquires in
	 * flight (sched_timeout) and for MHD to resume its connections: the
	 * watchdog's margin covers both.
	 */
	opts = SVC_OPTS(gw.cfg);
	opts.stuck_ms = gw.cfg->sched_timeout + 500 + GW_HTTP_UNPARK_WAIT_MS +
	    SVC_STUCK_MARGIN_MS;
	svc_init(&gw.svc, "gateway", &opts);
	atomic_store(&gw.state, GW_ST_STARTING);
	gw_metrics_init(&gw);
	gw_spool_start(&gw); /* may adopt an instance id: before any use */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rv = gw_wiring_start(&gw);
	if (rv != 0)
		fatalx("gw.wiring_failed", LOG_ERR(rv));
	rv = gw_sync_start(&gw);
	if (rv != 0)
		fatalx("gw.sync_failed", LOG_ERR(rv));
	rv = gw_io_start(&gw);
	if (rv != 0)
		fatalx("gw.io_failed", LOG_ERR(rv));
	rv = gw_http_start(&gw);
	if (rv != 0)
		fatalx("gw.front_failed", LOG_ERR(rv));
	atomic_store(&gw.state, GW_ST_SERVING);

	svc_serve(&gw.svc);

	atomic_store(&gw.state, GW_ST_DRAINING);
	gw_http_quiesce(&gw);
	gw_drain(&gw);
	gw_io_stop(&gw);
	gw_wiring_stop(&gw); /* closes the REQ socket: callbacks end */
	gw_io_free(&gw);
	gw_sync_stop(&gw); /* no event comes any more: close the spool */
	gw_http_stop(&gw);
	svc_release(&gw.svc);
	curl_global_cleanup();
	gw_cfg_free((struct gw_cfg *)gw.cfg);
	return 0;
}
