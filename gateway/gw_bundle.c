/*
 * gw_bundle.c: pending lease releases and the bundles that carry them
 * (see gw_bundle.h).
 */
#include "gw_bundle.h"

#include "err.h"
#include "gw.h"
#include "log.h"

void
gw_bundle_init(struct gw_bundle *b)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->data, GW_BUNDLE_BYTES + 1);
}

void
gw_bundle_free(struct gw_bundle *b)
{
	buf_release(&b->data);
	b->n = 0;
}

static void
gw_bundle_done_cb(void *arg, int rv, const void *rep, size_t len)
{
	struct gw *gw = arg;

	(void)rep;
	(void)len;
	if (rv != 0)
		met_counter_inc(gw->m_release_failed);
}

/*
 * Packs the pending releases, then call when there is one, as one
 * SCHED_BUNDLE_REQ into out; empties the list.
 */
static int
gw_bundle_pack(struct gw_bundle *b, const void *call, size_t len,
    const char *id, int64_t deadline_ms, struct buf *out)
{
	struct proto_sched_bundle_req q;
	size_t                        start = 0;
	uint32_t                      i;

	memset(&q, 0, sizeof(q));
	for (i = 0; i < b->n; i++) {
		q.msgs[q.n_msgs].ptr = (const uint8_t *)b->data.data + start;
		q.msgs[q.n_msgs++].len = b->ends[i] - start;
		start = b->ends[i];
	}
	if (call != NULL) {
		q.msgs[q.n_msgs].ptr = call;
		q.msgs[q.n_msgs++].len = len;
	}
	return proto_sched_bundle_req_pack(out, id, deadline_ms, &q);
}

static void
gw_bundle_clear(struct gw_bundle *b)
{
	buf_reset(&b->data);
	b->n = 0;
	b->due_ms = 0;
}

/* Sends what is pending, alone; a failure counts every release lost. */
static void
gw_bundle_send(struct gw *gw)
{
	struct gw_bundle *b = &gw->io.bundle;
	struct buf        out;
	int               rv;

	if (b->n == 0)
		return;
	if (b->n == 1) {
		rv = nngx_req_call_async(gw->sched, b->data.data, b->data.len,
		    (int)gw->cfg->sched_timeout, gw_bundle_done_cb, gw);
	} else {
		buf_init(&out, PROTO_MAX_MSG);
		rv = gw_bundle_pack(b, NULL, 0, NULL,
		    now_wall_ms() + gw->cfg->sched_timeout, &out);
		if (rv == 0)
			rv = nngx_req_call_async(gw->sched, out.data, out.len,
			    (int)gw->cfg->sched_timeout, gw_bundle_done_cb, gw);
		buf_release(&out);
	}
	if (rv != 0) {
		log_warn("gw.release_send_failed", LOG_I64("releases", b->n),
		    LOG_ERR(rv));
		met_counter_add(gw->m_release_failed, b->n);
	}
	gw_bundle_clear(b);
}

void
gw_bundle_add(struct gw *gw, const void *env, size_t len)
{
	struct gw_bundle *b = &gw->io.bundle;

	if (gw->cfg->release_linger == 0 || len > GW_BUNDLE_BYTES) {
		if (nngx_req_call_async(gw->sched, env, len,
		        (int)gw->cfg->sched_timeout, gw_bundle_done_cb,
		        gw) != 0)
			met_counter_inc(gw->m_release_failed);
		return;
	}
	if (b->n == ARRAY_SIZE(b->ends) || b->data.len + len > GW_BUNDLE_BYTES)
		gw_bundle_send(gw);
	if (buf_add(&b->data, env, len) != 0) {
		met_counter_inc(gw->m_release_failed);
		return;
	}
	if (b->n == 0)
		b->due_ms = now_mono_ms() + gw->cfg->release_linger;
	b->ends[b->n++] = b->data.len;
}

int
gw_bundle_call(struct gw *gw, const void *call, size_t len, const char *id,
    int64_t deadline_ms, nngx_req_fn cb, void *arg)
{
	struct gw_bundle *b = &gw->io.bundle;
	struct buf        out;
	int               rv;

	if (b->n == 0)
		return nngx_req_call_async(
		    gw->sched, call, len, (int)gw->cfg->sched_timeout, cb, arg);
	buf_init(&out, PROTO_MAX_MSG);
	rv = gw_bundle_pack(b, call, len, id, deadline_ms, &out);
	if (rv == 0)
		rv = nngx_req_call_async(gw->sched, out.data, out.len,
		    (int)gw->cfg->sched_timeout, cb, arg);
	buf_release(&out);
	if (rv == 0) {
		gw_bundle_clear(b);
		return 0;
	}
	/* The releases still go; the acquire's failure is the caller's. */
	gw_bundle_send(gw);
	return nngx_req_call_async(
	    gw->sched, call, len, (int)gw->cfg->sched_timeout, cb, arg);
}

int64_t
gw_bundle_flush(struct gw *gw, int64_t now_ms, bool force)
{
	struct gw_bundle *b = &gw->io.bundle;

	if (b->n == 0)
		return -1;
	if (force || now_ms >= b->due_ms) {
		gw_bundle_send(gw);
		return -1;
	}
	return b->due_ms - now_ms;
}
