/*
 * main.c: the gateway process: configuration, wiring, front listener,
 * then wait for SIGTERM/SIGINT and drain (see svc.h for the sequence).
 */
#include "gw.h"
#include "log.h"
#include "sig.h"

CFG_DEFINE(gw_cfg, "gateway", "GATEWAY", GW_CFG)

int
main(int argc, char **argv)
{
	struct gw gw;
	int       rv;

	sig_init();
	memset(&gw, 0, sizeof(gw));
	gw.cfg = cfg_main(&gw_cfg_schema, argc, argv);
	svc_init(&gw.svc, "gateway", &SVC_OPTS(gw.cfg));
	atomic_store(&gw.state, GW_ST_STARTING);
	rv = gw_wiring_start(&gw);
	if (rv != 0)
		fatalx("gw.wiring_failed", LOG_ERR(rv));
	rv = gw_front_start(&gw);
	if (rv != 0)
		fatalx("gw.front_failed", LOG_ERR(rv));
	atomic_store(&gw.state, GW_ST_SERVING);

	svc_serve(&gw.svc);

	/* Stop taking requests, let in-flight ones finish, then unwind. */
	atomic_store(&gw.state, GW_ST_DRAINING);
	gw_front_quiesce(&gw);
	gw_front_stop(&gw);
	gw_wiring_stop(&gw);
	svc_release(&gw.svc);
	gw_cfg_free((struct gw_cfg *)gw.cfg);
	return 0;
}
