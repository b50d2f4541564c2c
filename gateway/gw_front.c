/*
 * gw_front.c: the client-facing listener, first cut.
 *
 * It answers the liveness probes clients and load balancers use (HEAD /
 * and GET /health) and gives every other path an Anthropic-shaped 404.
 * The relay routes (POST /v1/messages and the rest) replace this file's
 * dispatcher in the relay issue, where the listener moves to epoll with
 * suspend/resume so that a long stream holds no thread.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>

#include "err.h"
#include "gw.h"
#include "log.h"

static enum MHD_Result
gw_front_reply(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result      rv;

	r = MHD_create_response_from_buffer(
	    strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	rv = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rv;
}

static enum MHD_Result
gw_front_cb(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	static int marker;

	(void)cls;
	(void)version;
	(void)upload_data;
	/* Ignore request bodies here: first call sets up, later ones drain. */
	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/") == 0 &&
	    (strcmp(method, "HEAD") == 0 || strcmp(method, "GET") == 0))
		return gw_front_reply(c, MHD_HTTP_OK, "{\"status\":\"ok\"}");
	if (strcmp(url, "/health") == 0 && strcmp(method, "GET") == 0)
		return gw_front_reply(c, MHD_HTTP_OK, "{\"status\":\"ok\"}");
	return gw_front_reply(c, MHD_HTTP_NOT_FOUND,
	    "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
	    "\"message\":\"Not found\"}}");
}

static int
gw_front_parse(const char *addr, struct sockaddr_in *sa)
{
	char        host[64];
	const char *colon = strrchr(addr, ':');
	long        port;
	char       *end;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
		return -ERR_INVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return -ERR_INVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -ERR_INVAL;
	return 0;
}

int
gw_front_start(struct gw *gw)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;

	if (gw_front_parse(gw->cfg->listen_addr, &sa) != 0)
		fatalx("gw.listen_addr_invalid",
		    LOG_STR("addr", gw->cfg->listen_addr),
		    LOG_MSG("an IPv4 host:port is required"));
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0,
	    NULL, NULL, gw_front_cb, gw, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
	if (d == NULL)
		fatalx(
		    "gw.listen_failed", LOG_STR("addr", gw->cfg->listen_addr));
	gw->front_daemon = d;
	return 0;
}

void
gw_front_quiesce(struct gw *gw)
{
	if (gw->front_daemon != NULL)
		MHD_quiesce_daemon(gw->front_daemon);
}

void
gw_front_stop(struct gw *gw)
{
	if (gw->front_daemon != NULL)
		MHD_stop_daemon(gw->front_daemon);
	gw->front_daemon = NULL;
}
