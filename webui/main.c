/*
 * main.c: the webui process: configuration, the PostgreSQL pool, the
 * config-changed publisher, the web listener, then wait and drain.
 */
#include "err.h"
#include "log.h"
#include "sig.h"
#include "svc_deps.h"
#include "web.h"

CFG_DEFINE(web_cfg, "webui", "WEBUI", WEB_CFG)

static const char web_index_html[] =
    "<!doctype html><html><head><meta charset=\"utf-8\">"
    "<title>Sub2API</title></head><body><h1>Sub2API</h1>"
    "<p>The admin web app is served here once it is built.</p>"
    "</body></html>\n";

static int
web_index_cb(void *arg, const struct http_req *req, struct http_resp *resp)
{
	(void)arg;
	(void)req;
	resp->ctype = "text/html; charset=utf-8";
	return buf_add(&resp->body, web_index_html, sizeof(web_index_html) - 1);
}

static void
web_start(struct web *w)
{
	const char *sched[1] = {w->cfg->sched_cfg_addr};
	int         rv;

	svc_deps_open(&w->svc, w->cfg->database_url, (int)w->cfg->db_pool,
	    &w->pg, NULL, 0, NULL, (int)w->cfg->dep_timeout);
	rv = nngx_pub_new(sched, 1, &w->cfg_pub);
	if (rv != 0)
		fatalx("web.pub_dial_failed", LOG_ERR(rv));
	rv = http_srv_new("webui", w->cfg->listen_addr, NULL, &w->front);
	if (rv == 0)
		rv = http_add_route(w->front, "GET", "/", web_index_cb, w);
	if (rv == 0)
		rv = http_srv_start(w->front);
	if (rv != 0)
		fatalx("web.listen_failed",
		    LOG_STR("addr", w->cfg->listen_addr), LOG_ERR(rv));
}

int
main(int argc, char **argv)
{
	struct web w;

	sig_init();
	memset(&w, 0, sizeof(w));
	w.cfg = cfg_main(&web_cfg_schema, argc, argv);
	svc_init(&w.svc, "webui", &SVC_OPTS(w.cfg));
	web_start(&w);

	svc_serve(&w.svc);

	http_srv_free(w.front);
	/* The health listener's checks use the pool: stop it first. */
	svc_release(&w.svc);
	nngx_pub_close(w.cfg_pub);
	nngx_pub_free(w.cfg_pub);
	svc_deps_close(w.pg, NULL);
	web_cfg_free((struct web_cfg *)w.cfg);
	return 0;
}
