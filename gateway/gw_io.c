/*
 * gw_io.c: the I/O thread's loop (see gw_io.h).
 *
 * Each turn: take the posted messages, run the per-request clocks (first
 * byte, idle gap; every GW_IO_TICK_MS at most), renew leases and send the
 * held releases and usage events when due, then wait in epoll_wait() on
 * the set of gw_io.h and hand what happened to libcurl
 * (curl_multi_socket_action()) or, for a watched client that hung up,
 * cancel its transfer at once.
 */
#include "gw_io.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <errno.h>
#include <microhttpd.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "gw.h"
#include "gw_relay.h"
#include "log.h"

#define GW_IO_POLL_MS 100 /* upper bound of one wait */
#define GW_IO_TICK_MS 10  /* per-request clocks at most this often */
#define GW_IO_EVENTS  256 /* epoll events taken per turn */

/* What an epoll entry is: the kind in the high half of data.u64. */
enum gw_io_kind {
	GW_IO_K_WAKE = 1,
	GW_IO_K_CURL = 2,
	GW_IO_K_CLIENT = 3,
};

static uint64_t
gw_io_tag(enum gw_io_kind kind, int fd)
{
	return ((uint64_t)kind << 32) | (uint32_t)fd;
}

static void
gw_io_wake(struct gw_io *io)
{
	uint64_t one = 1;

	/* Fails only when the counter is about to overflow: awake anyway. */
	if (write(io->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn(
		    "gw.io_wake_failed", LOG_STR("errno", strerror(errno)));
}

bool
gw_io_post(struct gw *gw, enum gw_msg_kind kind, struct gw_req *r, int rv,
    const void *data, size_t len)
{
	struct gw_io  *io = &gw->io;
	struct gw_msg *m = xmalloc(sizeof(*m) + len);

	m->next = NULL;
	m->kind = kind;
	m->req = r;
	m->rv = rv;
	m->len = len;
	if (len != 0)
		memcpy(m->data, data, len);
	pthread_mutex_lock(&io->mu);
	if (io->closed) {
		pthread_mutex_unlock(&io->mu);
		free(m);
		return false;
	}
	if (io->tail != NULL)
		io->tail->next = m;
	else
		io->head = m;
	io->tail = m;
	pthread_mutex_unlock(&io->mu);
	gw_io_wake(io);
	return true;
}

void
gw_io_watch_locked(struct gw_req *r)
{
	struct epoll_event ev = {.events = EPOLLRDHUP};

	/* io_active: the epoll set outlives every request the io side
	 * holds (gw_io_free() closes it after finishing them all). */
	if (r->watched || r->fd < 0 || r->client_gone || !r->io_active)
		return;
	ev.data.u64 = gw_io_tag(GW_IO_K_CLIENT, r->fd);
	if (epoll_ctl(r->gw->io.epfd, EPOLL_CTL_ADD, r->fd, &ev) == 0 ||
	    errno == EEXIST)
		r->watched = true;
}

static void
gw_io_unwatch_locked(struct gw_req *r)
{
	if (!r->watched)
		return;
	(void)epoll_ctl(r->gw->io.epfd, EPOLL_CTL_DEL, r->fd, NULL);
	r->watched = false;
}

void
gw_io_resume(struct gw_req *r)
{
	pthread_mutex_lock(&r->mu);
	gw_io_unwatch_locked(r);
	if (r->suspended) {
		r->suspended = false;
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&r->mu);
}

void
gw_io_resume_soon(struct gw *gw, struct gw_req *r)
{
	struct gw_io *io = &gw->io;

	if (gw->cfg->stream_linger == 0) {
		gw_io_resume(r);
		return;
	}
	if (r->resume_held)
		return;
	if (io->n_held == io->cap_held) {
		io->cap_held = io->cap_held ? io->cap_held * 2 : 64;
		io->held = xrealloc(io->held, io->cap_held * sizeof(*io->held));
	}
	io->held[io->n_held++] = r;
	r->resume_held = true;
	if (io->held_due_ms < 0)
		io->held_due_ms = now_mono_ms() + gw->cfg->stream_linger;
}

/*
 * Resumes the held connections when their time has come (or now, with
 * force); returns the ms until it is due, -1 when none is held.
 */
static int64_t
gw_io_resume_held(struct gw_io *io, int64_t now, bool force)
{
	size_t i;

	if (io->n_held == 0)
		return -1;
	if (!force && now < io->held_due_ms)
		return io->held_due_ms - now;
	for (i = 0; i < io->n_held; i++) {
		io->held[i]->resume_held = false;
		gw_io_resume(io->held[i]);
	}
	io->n_held = 0;
	io->held_due_ms = -1;
	return -1;
}

/* r is finishing: out of the held resumes (its own resume comes next). */
static void
gw_io_unhold(struct gw_io *io, struct gw_req *r)
{
	size_t i;

	if (!r->resume_held)
		return;
	r->resume_held = false;
	for (i = 0; i < io->n_held; i++) {
		if (io->held[i] == r) {
			io->held[i] = io->held[--io->n_held];
			break;
		}
	}
	if (io->n_held == 0)
		io->held_due_ms = -1;
}

static void
gw_io_track(struct gw_io *io, struct gw_req *r)
{
	if (io->n_live == io->cap_live) {
		io->cap_live = io->cap_live ? io->cap_live * 2 : 64;
		io->live = xrealloc(io->live, io->cap_live * sizeof(*io->live));
	}
	io->live[io->n_live++] = r;
}

void
gw_io_finish(struct gw *gw, struct gw_req *r)
{
	struct gw_io *io = &gw->io;
	size_t        i;

	gw_relay_unqueue(gw, r);
	gw_io_unhold(io, r);
	for (i = 0; i < io->n_live; i++) {
		if (io->live[i] == r) {
			io->live[i] = io->live[--io->n_live];
			break;
		}
	}
	pthread_mutex_lock(&r->mu);
	gw_io_unwatch_locked(r);
	r->io_active = false;
	pthread_mutex_unlock(&r->mu);
	atomic_fetch_sub(&gw->inflight, 1);
	gw_req_unref(r);
}

static bool
gw_io_tracked(struct gw_io *io, struct gw_req *r)
{
	size_t i;

	for (i = 0; i < io->n_live; i++) {
		if (io->live[i] == r)
			return true;
	}
	return false;
}

static void
gw_io_dispatch(struct gw *gw, struct gw_msg *m)
{
	struct gw_req *r = m->req;

	switch (m->kind) {
	case GW_M_START:
		gw_io_track(&gw->io, r);
		atomic_fetch_add(&gw->inflight, 1);
		gw_relay_start(gw, r);
		break;
	case GW_M_ACQUIRED:
		if (gw_io_tracked(&gw->io, r))
			gw_relay_acquired(gw, r, m->rv, m->data, m->len);
		break;
	case GW_M_CANCEL:
		/* The message holds its own reference (gw_http_completed). */
		if (gw_io_tracked(&gw->io, r))
			gw_relay_cancel(gw, r, "client_closed");
		gw_req_unref(r);
		break;
	case GW_M_UNPAUSE:
		if (gw_io_tracked(&gw->io, r) && r->easy != NULL)
			curl_easy_pause(r->easy, CURLPAUSE_CONT);
		gw_req_unref(r);
		break;
	}
}

static bool
gw_io_drain(struct gw *gw)
{
	struct gw_io  *io = &gw->io;
	struct gw_msg *m, *next;
	bool           stop;

	pthread_mutex_lock(&io->mu);
	m = io->head;
	io->head = io->tail = NULL;
	stop = io->stop;
	pthread_mutex_unlock(&io->mu);
	for (; m != NULL; m = next) {
		next = m->next;
		gw_io_dispatch(gw, m);
		free(m);
	}
	return stop;
}

/* A suspended connection's socket that reads as EOF or error is gone. */
static bool
gw_io_client_gone(int fd)
{
	char    c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n == 0)
		return true;
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR;
}

/* A watched client socket hung up (or failed): cancel its request. */
static void
gw_io_client_event(struct gw *gw, int fd)
{
	struct gw_io  *io = &gw->io;
	struct gw_req *r = NULL;
	size_t         k;
	bool           gone;

	for (k = 0; k < io->n_live && r == NULL; k++) {
		pthread_mutex_lock(&io->live[k]->mu);
		if (io->live[k]->watched && io->live[k]->fd == fd)
			r = io->live[k];
		pthread_mutex_unlock(&io->live[k]->mu);
	}
	if (r == NULL) {
		(void)epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL); /* stale */
		return;
	}
	/* Once only: a half-closed socket would keep the event up. */
	gone = gw_io_client_gone(fd);
	pthread_mutex_lock(&r->mu);
	gw_io_unwatch_locked(r);
	if (gone)
		r->client_gone = true;
	pthread_mutex_unlock(&r->mu);
	if (gone)
		gw_relay_cancel(gw, r, "client_closed");
}

/* libcurl: watch socket s for what (CURLMOPT_SOCKETFUNCTION). */
static int
gw_io_curl_sock(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct gw_io      *io = arg;
	struct epoll_event ev = {0};

	(void)e;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		(void)epoll_ctl(io->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	ev.data.u64 = gw_io_tag(GW_IO_K_CURL, s);
	if (epoll_ctl(io->epfd, EPOLL_CTL_MOD, s, &ev) != 0 &&
	    (errno != ENOENT ||
	        epoll_ctl(io->epfd, EPOLL_CTL_ADD, s, &ev) != 0)) {
		log_warn(
		    "gw.io_watch_failed", LOG_STR("errno", strerror(errno)));
		return -1;
	}
	return 0;
}

/* libcurl: call back in timeout_ms (-1: no timer; CURLMOPT_TIMERFUNCTION). */
static int
gw_io_curl_timer(CURLM *m, long timeout_ms, void *arg)
{
	struct gw_io *io = arg;

	(void)m;
	io->curl_due_ms = timeout_ms < 0 ? -1 : now_mono_ms() + timeout_ms;
	return 0;
}

/* Finished transfers, to the relay. */
static void
gw_io_reap(struct gw *gw)
{
	CURLMsg *msg;
	int      left;

	while ((msg = curl_multi_info_read(gw->io.multi, &left)) != NULL) {
		struct gw_req *r = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
		gw_relay_done(gw, r, msg->data.result);
	}
}

/*
 * One wait of at most wait_ms (shortened to libcurl's timer), then what
 * happened: posted messages are left to gw_io_drain().
 */
static void
gw_io_step(struct gw *gw, int wait_ms)
{
	struct gw_io      *io = &gw->io;
	struct epoll_event evs[GW_IO_EVENTS];
	int64_t            now = now_mono_ms();
	uint64_t           v;
	int                i, n, running;

	if (io->curl_due_ms >= 0)
		wait_ms = io->curl_due_ms <= now ? 0
		    : io->curl_due_ms - now < wait_ms
		    ? (int)(io->curl_due_ms - now)
		    : wait_ms;
	n = epoll_wait(io->epfd, evs, GW_IO_EVENTS, wait_ms);
	for (i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		int flags = 0;

		switch ((enum gw_io_kind)(evs[i].data.u64 >> 32)) {
		case GW_IO_K_WAKE:
			if (read(io->wakefd, &v, sizeof(v)) < 0 &&
			    errno != EAGAIN)
				log_warn("gw.io_wake_failed",
				    LOG_STR("errno", strerror(errno)));
			break;
		case GW_IO_K_CURL:
			if (evs[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(
			    io->multi, fd, flags, &running);
			break;
		case GW_IO_K_CLIENT:
			gw_io_client_event(gw, fd);
			break;
		}
	}
	if (io->curl_due_ms >= 0 && now_mono_ms() >= io->curl_due_ms) {
		io->curl_due_ms = -1;
		curl_multi_socket_action(
		    io->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	gw_io_reap(gw);
}

/* Returns how long the next wait may last, in ms. */
static int
gw_io_clocks(struct gw *gw)
{
	struct gw_io *io = &gw->io;
	int64_t       now = now_mono_ms();
	int64_t       due, wait;
	size_t        k;

	/* gw_relay_tick() may finish a request: walk a snapshot.  Its
	 * clocks count in seconds: every few ms is plenty. */
	if (now >= io->next_tick_ms) {
		io->next_tick_ms = now + GW_IO_TICK_MS;
		for (k = io->n_live; k > 0; k--) {
			if (k - 1 < io->n_live)
				gw_relay_tick(gw, io->live[k - 1], now);
		}
	}
	if (now >= io->next_renew_ms) {
		gw_relay_renew(gw);
		io->next_renew_ms = now + gw->cfg->lease_renew_interval;
	}
	wait = io->next_tick_ms - now;
	if (wait > GW_IO_POLL_MS)
		wait = GW_IO_POLL_MS;
	due = gw_bundle_flush(gw, now, false);
	if (due >= 0 && due < wait)
		wait = due;
	due = gw_events_flush(gw, now, false);
	if (due >= 0 && due < wait)
		wait = due;
	due = gw_io_resume_held(io, now, false);
	if (due >= 0 && due < wait)
		wait = due;
	return (int)wait;
}

/*
 * Shutdown: cancel what is left so every lease is returned and every
 * suspended connection is resumed (MHD must not stop with one suspended).
 * A request whose acquire is still in flight stays until its reply comes,
 * at most the scheduler timeout.
 */
static void
gw_io_shutdown(struct gw *gw)
{
	struct gw_io *io = &gw->io;
	int64_t       end = now_mono_ms() + gw->cfg->sched_timeout + 500;
	size_t        k;

	while (io->n_live > 0 && now_mono_ms() < end) {
		for (k = io->n_live; k > 0; k--) {
			if (k - 1 < io->n_live)
				gw_relay_cancel(
				    gw, io->live[k - 1], "shutdown");
		}
		(void)gw_io_drain(gw);
		(void)gw_bundle_flush(gw, now_mono_ms(), true);
		(void)gw_events_flush(gw, now_mono_ms(), true);
		if (io->n_live > 0)
			gw_io_step(gw, 50);
	}
	(void)gw_io_resume_held(io, now_mono_ms(), true);
	for (k = 0; k < io->n_live; k++)
		gw_io_resume(io->live[k]);
	(void)gw_bundle_flush(gw, now_mono_ms(), true);
	(void)gw_events_flush(gw, now_mono_ms(), true);
}

static void *
gw_io_main(void *arg)
{
	struct gw *gw = arg;

	while (!gw_io_drain(gw))
		gw_io_step(gw, gw_io_clocks(gw));
	gw_io_shutdown(gw);
	return NULL;
}

int
gw_io_start(struct gw *gw)
{
	struct gw_io      *io = &gw->io;
	struct epoll_event ev = {.events = EPOLLIN};

	pthread_mutex_init(&io->mu, NULL);
	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	io->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev.data.u64 = gw_io_tag(GW_IO_K_WAKE, io->wakefd);
	if (io->epfd < 0 || io->wakefd < 0 ||
	    epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->wakefd, &ev) != 0) {
		log_error(
		    "gw.io_epoll_failed", LOG_STR("errno", strerror(errno)));
		goto fail;
	}
	io->multi = curl_multi_init();
	if (io->multi == NULL)
		goto fail;
	curl_multi_setopt(io->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(io->multi, CURLMOPT_MAXCONNECTS,
	    (long)gw->cfg->upstream_idle_conns);
	curl_multi_setopt(io->multi, CURLMOPT_SOCKETFUNCTION, gw_io_curl_sock);
	curl_multi_setopt(io->multi, CURLMOPT_SOCKETDATA, io);
	curl_multi_setopt(io->multi, CURLMOPT_TIMERFUNCTION, gw_io_curl_timer);
	curl_multi_setopt(io->multi, CURLMOPT_TIMERDATA, io);
	io->curl_due_ms = -1;
	io->held_due_ms = -1;
	io->next_renew_ms = now_mono_ms() + gw->cfg->lease_renew_interval;
	gw_pend_init(&io->releases, PROTO_BUNDLE_MAX - 1);
	gw_pend_init(&io->usage, PROTO_BATCH_MAX);
	if (pthread_create(&io->thr, NULL, gw_io_main, gw) != 0) {
		gw_pend_free(&io->releases);
		gw_pend_free(&io->usage);
		goto fail;
	}
	io->running = true;
	return 0;
fail:
	if (io->multi != NULL)
		curl_multi_cleanup(io->multi);
	io->multi = NULL;
	if (io->wakefd >= 0)
		close(io->wakefd);
	if (io->epfd >= 0)
		close(io->epfd);
	io->wakefd = io->epfd = -1;
	pthread_mutex_destroy(&io->mu);
	return -ERR_NOMEM;
}

void
gw_io_stop(struct gw *gw)
{
	struct gw_io *io = &gw->io;

	if (!io->running)
		return;
	pthread_mutex_lock(&io->mu);
	io->stop = true;
	pthread_mutex_unlock(&io->mu);
	gw_io_wake(io);
	pthread_join(io->thr, NULL);
	io->running = false;
	pthread_mutex_lock(&io->mu);
	io->closed = true; /* later posts are refused */
	pthread_mutex_unlock(&io->mu);
}

void
gw_io_free(struct gw *gw)
{
	struct gw_io  *io = &gw->io;
	struct gw_msg *m, *next;

	if (io->multi == NULL)
		return;
	/* Messages that hold a reference of their own give it back. */
	for (m = io->head; m != NULL; m = next) {
		next = m->next;
		if (m->kind == GW_M_CANCEL || m->kind == GW_M_UNPAUSE)
			gw_req_unref(m->req);
		free(m);
	}
	/* Requests still waiting for the (now closed) scheduler socket. */
	while (io->n_live > 0)
		gw_io_finish(gw, io->live[io->n_live - 1]);
	io->head = io->tail = NULL;
	curl_multi_cleanup(io->multi);
	io->multi = NULL;
	gw_pend_free(&io->releases);
	gw_pend_free(&io->usage);
	free(io->live);
	free(io->held);
	io->live = NULL;
	/* No request is io_active any more: nobody watches through these. */
	close(io->wakefd);
	close(io->epfd);
	io->wakefd = io->epfd = -1;
	pthread_mutex_destroy(&io->mu);
}
