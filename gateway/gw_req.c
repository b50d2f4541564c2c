/*
 * gw_req.c: the life of a request object (see gw_req.h).
 */
#include "gw_req.h"

#include <openssl/rand.h>
#include <stdio.h>

#include "gw.h"

struct gw_req *
gw_req_new(struct gw *gw, struct MHD_Connection *conn)
{
	struct gw_req *r = xcalloc(1, sizeof(*r));
	unsigned char  rnd[12];
	size_t         i;

	pthread_mutex_init(&r->mu, NULL);
	r->refs = 1;
	r->gw = gw;
	r->conn = conn;
	r->fd = -1;
	r->t0_us = now_mono_us();
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	memcpy(r->id, "gw_", 3);
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(r->id + 3 + 2 * i, 3, "%02x", rnd[i]);
	buf_init(&r->body, (size_t)gw->cfg->body_max + 1);
	buf_init(&r->out,
	    2 * (size_t)gw->cfg->stream_buffer + (size_t)gw->cfg->sse_line_max +
	        1024);
	buf_init(&r->err_body, 64 * 1024 + 1);
	buf_init(&r->up_acc, (size_t)gw->cfg->body_max);
	buf_init(&r->up_body, (size_t)gw->cfg->body_max + 65536);
	gw_sse_init(&r->sse, (size_t)gw->cfg->sse_line_max);
	return r;
}

void
gw_req_unref(struct gw_req *r)
{
	int left;

	pthread_mutex_lock(&r->mu);
	left = --r->refs;
	pthread_mutex_unlock(&r->mu);
	if (left > 0)
		return;
	ASSERT(r->easy == NULL);
	gw_anth_req_release(&r->areq);
	gw_anth_hdrs_release(&r->client_hdrs);
	gw_sse_release(&r->sse);
	buf_release(&r->body);
	buf_release(&r->out);
	buf_release(&r->err_body);
	buf_release(&r->up_acc);
	buf_release(&r->up_body);
	free(r->dec);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
