/*
 * gw_bundle.c: the pending list, and the releases that ride on acquires
 * (see gw_bundle.h).
 */
#include "gw_bundle.h"

#include "err.h"
#include "gw.h"
#include "log.h"

/* ---- the pending list --------------------------------------------- */

void
gw_pend_init(struct gw_pend *p, uint32_t max)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->data, GW_PEND_BYTES + 1);
	p->max = max < PROTO_BATCH_MAX ? max : PROTO_BATCH_MAX;
}

void
gw_pend_free(struct gw_pend *p)
{
	buf_release(&p->data);
	p->n = 0;
}

bool
gw_pend_fits(const struct gw_pend *p, size_t len)
{
	return p->n < p->max && p->data.len + len <= GW_PEND_BYTES;
}

void
gw_pend_add(struct gw_pend *p, const void *env, size_t len, int64_t linger_ms)
{
	ASSERT(gw_pend_fits(p, len));
	if (buf_add(&p->data, env, len) != 0)
		abort(); /* within GW_PEND_BYTES: only out of memory */
	if (p->n == 0)
		p->due_ms = now_mono_ms() + linger_ms;
	p->ends[p->n++] = p->data.len;
}

void
gw_pend_blobs(const struct gw_pend *p, struct proto_blob *out)
{
	size_t   start = 0;
	uint32_t i;

	for (i = 0; i < p->n; i++) {
		out[i].ptr = (const uint8_t *)p->data.data + start;
		out[i].len = p->ends[i] - start;
		start = p->ends[i];
	}
}

int64_t
gw_pend_due(const struct gw_pend *p, int64_t now_ms)
{
	if (p->n == 0)
		return -1;
	return p->due_ms > now_ms ? p->due_ms - now_ms : 0;
}

void
gw_pend_clear(struct gw_pend *p)
{
	buf_reset(&p->data);
	p->n = 0;
	p->due_ms = 0;
}

/* ---- releases ------------------------------------------------------ */

static void
gw_bundle_done_cb(void *arg, int rv, const void *rep, size_t len)
{
	struct gw *gw = arg;

	(void)rep;
	(void)len;
	if (rv != 0)
		met_counter_inc(gw->m_release_failed);
}

/* The pending releases, then call when there is one, as one bundle. */
static int
gw_bundle_pack(const struct gw_pend *p, const void *call, size_t len,
    const char *id, int64_t deadline_ms, struct buf *out)
{
	struct proto_sched_bundle_req q;

	memset(&q, 0, sizeof(q));
	gw_pend_blobs(p, q.msgs);
	q.n_msgs = p->n;
	if (call != NULL) {
		q.msgs[q.n_msgs].ptr = call;
		q.msgs[q.n_msgs++].len = len;
	}
	return proto_sched_bundle_req_pack(out, id, deadline_ms, &q);
}

/* Sends what is pending, alone; a failure counts every release lost. */
static void
gw_bundle_send(struct gw *gw)
{
	struct gw_pend *p = &gw->io.releases;
	struct buf      out;
	int             rv;

	if (p->n == 0)
		return;
	if (p->n == 1) {
		rv = nngx_req_call_async(gw->sched, p->data.data, p->data.len,
		    (int)gw->cfg->sched_timeout, gw_bundle_done_cb, gw);
	} else {
		buf_init(&out, PROTO_MAX_MSG);
		rv = gw_bundle_pack(p, NULL, 0, NULL,
		    now_wall_ms() + gw->cfg->sched_timeout, &out);
		if (rv == 0)
			rv = nngx_req_call_async(gw->sched, out.data, out.len,
			    (int)gw->cfg->sched_timeout, gw_bundle_done_cb, gw);
		buf_release(&out);
		if (rv == 0)
			met_counter_inc(gw->m_bundles);
	}
	if (rv != 0) {
		log_warn("gw.release_send_failed", LOG_I64("releases", p->n),
		    LOG_ERR(rv));
		met_counter_add(gw->m_release_failed, p->n);
	}
	gw_pend_clear(p);
}

void
gw_bundle_add(struct gw *gw, const void *env, size_t len)
{
	struct gw_pend *p = &gw->io.releases;

	if (gw->cfg->release_linger == 0 || len > GW_PEND_BYTES) {
		if (nngx_req_call_async(gw->sched, env, len,
		        (int)gw->cfg->sched_timeout, gw_bundle_done_cb,
		        gw) != 0)
			met_counter_inc(gw->m_release_failed);
		return;
	}
	if (!gw_pend_fits(p, len))
		gw_bundle_send(gw);
	gw_pend_add(p, env, len, gw->cfg->release_linger);
}

int
gw_bundle_call(struct gw *gw, const void *call, size_t len, const char *id,
    int64_t deadline_ms, nngx_req_fn cb, void *arg)
{
	struct gw_pend *p = &gw->io.releases;
	struct buf      out;
	int             rv;

	if (p->n == 0)
		return nngx_req_call_async(
		    gw->sched, call, len, (int)gw->cfg->sched_timeout, cb, arg);
	buf_init(&out, PROTO_MAX_MSG);
	rv = gw_bundle_pack(p, call, len, id, deadline_ms, &out);
	if (rv == 0)
		rv = nngx_req_call_async(gw->sched, out.data, out.len,
		    (int)gw->cfg->sched_timeout, cb, arg);
	buf_release(&out);
	if (rv == 0) {
		met_counter_inc(gw->m_bundles);
		gw_pend_clear(p);
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
	struct gw_pend *p = &gw->io.releases;
	int64_t         due = gw_pend_due(p, now_ms);

	if (due < 0 || (due > 0 && !force))
		return due;
	gw_bundle_send(gw);
	return -1;
}
