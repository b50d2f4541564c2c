/*
 * nngx_fixture.h: the nngx tests' helpers (included by nngx_test.c and
 * nngx_guard_test.c only): ipc:// urls under a temporary directory removed
 * at exit, counters to wait on with a deadline, pipe-count polls and an
 * echo handler.  Helpers a binary does not use are marked UNUSED so that
 * -Wunused-function stays quiet.
 */
#ifndef NNGX_FIXTURE_H
#define NNGX_FIXTURE_H

#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "err.h"
#include "nngx.h"
#include "t.h"

/* ---- fixtures -------------------------------------------------------- */

static char nngx_t_dir[64];

static UNUSED int
nngx_t_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static UNUSED void
nngx_t_cleanup(void)
{
	if (nngx_t_dir[0] != '\0')
		nftw(nngx_t_dir, nngx_t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* An ipc:// url under the test's temporary directory. */
static UNUSED void
nngx_t_ipc(char *out, size_t cap, const char *name)
{
	if (nngx_t_dir[0] == '\0') {
		snprintf(nngx_t_dir, sizeof(nngx_t_dir), "/tmp/nngx_t.XXXXXX");
		if (mkdtemp(nngx_t_dir) == NULL)
			abort();
		atexit(nngx_t_cleanup);
	}
	snprintf(out, cap, "ipc://%s/%s", nngx_t_dir, name);
}

/* A counter to wait on, with a deadline. */
struct nngx_t_cnt {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             n;
};

static UNUSED void
nngx_t_cnt_init(struct nngx_t_cnt *c)
{
	pthread_mutex_init(&c->mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->n = 0;
}

static UNUSED void
nngx_t_cnt_add(struct nngx_t_cnt *c)
{
	pthread_mutex_lock(&c->mtx);
	c->n++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
}

static UNUSED int
nngx_t_cnt_get(struct nngx_t_cnt *c)
{
	int n;

	pthread_mutex_lock(&c->mtx);
	n = c->n;
	pthread_mutex_unlock(&c->mtx);
	return n;
}

/* Waits until the counter reaches want; returns its final value. */
static UNUSED int
nngx_t_cnt_wait(struct nngx_t_cnt *c, int want, int ms)
{
	struct timespec ts;
	int             n;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mtx);
	while (c->n < want)
		if (pthread_cond_timedwait(&c->cv, &c->mtx, &ts) == ETIMEDOUT)
			break;
	n = c->n;
	pthread_mutex_unlock(&c->mtx);
	return n;
}

static UNUSED void
nngx_t_cnt_release(struct nngx_t_cnt *c)
{
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
}

/* Polls a pipe count (connections are not events we can wait on). */
static UNUSED bool
nngx_t_poll(int (*get)(const void *), const void *obj, int want, int ms)
{
	int64_t end = now_mono_ms() + ms;

	while (now_mono_ms() < end) {
		if (get(obj) >= want)
			return true;
		nng_msleep(5);
	}
	return get(obj) >= want;
}

/* The same, until the count has fallen to at most want. */
static UNUSED bool
nngx_t_poll_down(int (*get)(const void *), const void *obj, int want, int ms)
{
	int64_t end = now_mono_ms() + ms;

	while (now_mono_ms() < end) {
		if (get(obj) <= want)
			return true;
		nng_msleep(5);
	}
	return get(obj) <= want;
}

static UNUSED int
nngx_t_pub_pipes(const void *p)
{
	return nngx_pub_npipes(p);
}

static UNUSED int
nngx_t_sub_pipes(const void *s)
{
	return nngx_sub_npipes(s);
}

static UNUSED int
nngx_t_req_pipes(const void *c)
{
	return nngx_req_npipes((struct nngx_req *)(uintptr_t)c);
}

/* Echo handler: replies "re:" + request; "slow" sleeps first. */
static atomic_int        nngx_t_slow_ms;
static struct nngx_t_cnt nngx_t_slow_started = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static UNUSED int
nngx_t_echo_cb(void *arg, const void *req, size_t len, struct buf *reply)
{
	int rv;

	(void)arg;
	if (len == 4 && memcmp(req, "slow", 4) == 0) {
		nngx_t_cnt_add(&nngx_t_slow_started);
		nng_msleep((nng_duration)atomic_load(&nngx_t_slow_ms));
	}
	if (len == 4 && memcmp(req, "fail", 4) == 0)
		return -ERR_INTERNAL; /* empty reply: nothing is sent */
	rv = buf_add(reply, "re:", 3);
	if (rv == 0)
		rv = buf_add(reply, req, len);
	return rv;
}

#endif
