/*
 * nngx_guard_test.c: the ipc listener guard against nng 1.5.2's stuck
 * listener (nanomsg/nng#1518): peers that hang up before their header is
 * read wedge the listener; the guard finds it stuck and reopens it.
 *
 * Also the bounded close: with nng's pipe reaper stopped, closing a PUB
 * or a REQ socket returns after the bound instead of waiting for ever.
 *
 * Its own binary because of one known leak: nng 1.5.2 never frees the
 * wedged listener's pending accept when the listener is closed (a few
 * hundred bytes per reopen, allocated inside libnng).  LeakSanitizer is
 * told to ignore allocations made inside libnng in this binary only;
 * every other test keeps the full leak check.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <unistd.h>

#include "nngx_fixture.h"
#include "nngx_guard.h"

/* Read by LeakSanitizer in sanitizer builds; unused otherwise. */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libnng.so\n";
}

static void
test_nngx_guard(void)
{
	struct sockaddr_un sa;
	char               url[128];
	const char        *path;
	struct nngx_rep   *s = NULL;
	struct nngx_req   *c = NULL;
	struct buf         b;
	int                fd, i, rv, before;

	nngx_t_ipc(url, sizeof(url), "guard.ipc");
	path = url + 6;
	T_OK(nngx_rep_new(url, 2, nngx_t_echo_cb, NULL, 0, &s));
	T_EQ_INT(nngx_rep_guard(s, 1000), 0);
	T_EQ_INT(nngx_rep_guard(s, 1000), 0);
	/* Peers that hang up before their header is read. */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (i = 0; i < 3; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		T_ASSERT(fd >= 0);
		T_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
		close(fd);
	}
	T_OK(nngx_req_new((const char *const *)&(const char *){url}, 1, &c));
	buf_init(&b, 1024);
	/* nng 1.5.2: the listener is stuck, this call times out. */
	before = nngx_req_call(c, "a", 1, 1000, &b);
	rv = nngx_rep_guard(s, 1000);
	T_ASSERT(rv == 0 || rv == 1);
	/*
	 * A call that timed out proves the listener stuck: the guard must
	 * reopen it.  A call that went through may still have connected
	 * before the hang-ups wedged the listener, so the guard may find it
	 * stuck then too.
	 */
	if (before != 0)
		T_EQ_INT(rv, 1);
	/*
	 * The client's pipe to the stuck listener is dropped by the reopen:
	 * a call in flight on it fails; the client redials within a second.
	 */
	for (i = 0, rv = -1; i < 20 && rv != 0; i++) {
		buf_reset(&b);
		rv = nngx_req_call(c, "b", 1, 1000, &b);
	}
	T_OK(rv);
	T_EQ_STR(buf_str(&b), "re:b");
	T_EQ_INT(nngx_rep_guard(s, 1000), 0);
	buf_release(&b);
	nngx_req_free(c);
	nngx_rep_free(s);
	/* Not ipc: nothing to guard. */
	T_OK(nngx_rep_new(
	    "inproc://nngx_t_guard", 1, nngx_t_echo_cb, NULL, 0, &s));
	T_EQ_INT(nngx_rep_guard(s, 1000), 0);
	nngx_rep_free(s);
}

/*
 * nng 1.5.2 reaps every pipe of the process on one thread; a pipe
 * notification that blocks stops it as the lost completion seen in
 * services' shutdowns did (opsmon: the reaper waiting in a SUB pipe's
 * stop, its PUB's nng_close() waiting for the reaper).
 */
static struct nngx_t_cnt nngx_t_reaper_in = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
static struct nngx_t_cnt nngx_t_reaper_go = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
/* Objects whose close was abandoned: kept, so reachable for LSan. */
static struct nngx_pub *nngx_t_kept_pub;
static struct nngx_req *nngx_t_kept_req;

static void
nngx_t_reaper_block_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	(void)pipe;
	(void)ev;
	(void)arg;
	nngx_t_cnt_add(&nngx_t_reaper_in);
	(void)nngx_t_cnt_wait(&nngx_t_reaper_go, 1, 30000);
}

static void
nngx_t_drop_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	(void)arg;
	(void)topic;
	(void)payload;
	(void)len;
}

static void *
nngx_t_close_main(void *arg)
{
	nng_close(*(nng_socket *)arg);
	return NULL;
}

static void
test_nngx_close_bounded(void)
{
	const char      *topics[] = {""};
	char             sub_url[128], rep_url[128];
	const char      *p_url = sub_url, *c_url = rep_url;
	struct nngx_sub *s = NULL;
	struct nngx_pub *p = NULL;
	struct nngx_rep *r = NULL;
	struct nngx_req *c = NULL;
	struct buf       b;
	nng_socket       a, z;
	pthread_t        t;
	int64_t          t0;

	nngx_t_ipc(sub_url, sizeof(sub_url), "bounded-sub.ipc");
	nngx_t_ipc(rep_url, sizeof(rep_url), "bounded-rep.ipc");
	T_OK(nngx_sub_new(sub_url, topics, 1, 0, nngx_t_drop_cb, NULL, &s));
	T_OK(nngx_pub_new(&p_url, 1, &p));
	T_OK(nngx_rep_new(rep_url, 1, nngx_t_echo_cb, NULL, 0, &r));
	T_OK(nngx_req_new(&c_url, 1, &c));
	T_ASSERT(nngx_t_poll(nngx_t_pub_pipes, p, 1, 5000));
	buf_init(&b, 1024);
	T_OK(nngx_req_call(c, "a", 1, 5000, &b));
	buf_release(&b);

	/* A pair whose pipe notification holds the reaper. */
	T_OK(nng_pair0_open(&a));
	T_OK(nng_pair0_open(&z));
	T_OK(nng_pipe_notify(
	    a, NNG_PIPE_EV_REM_POST, nngx_t_reaper_block_cb, NULL));
	T_OK(nng_listen(a, "inproc://nngx_t_reaper", NULL, 0));
	T_OK(nng_dial(z, "inproc://nngx_t_reaper", NULL, 0));
	T_OK(pthread_create(&t, NULL, nngx_t_close_main, &z));
	T_EQ_INT(nngx_t_cnt_wait(&nngx_t_reaper_in, 1, 5000), 1);

	/* Each close gives up after its bound; the object is kept. */
	t0 = now_mono_ms();
	nngx_pub_free(p);
	nngx_t_kept_pub = p;
	T_ASSERT(now_mono_ms() - t0 < NNGX_CLOSE_WAIT_MS + 1000);
	t0 = now_mono_ms();
	nngx_req_free(c);
	nngx_t_kept_req = c;
	T_ASSERT(now_mono_ms() - t0 < NNGX_CLOSE_WAIT_MS + 1000);

	/* The reaper goes on: every close completes. */
	nngx_t_cnt_add(&nngx_t_reaper_go);
	T_OK(pthread_join(t, NULL));
	nng_close(a);
	nngx_rep_free(r);
	nngx_sub_free(s);
}

T_MAIN(T_CASE(test_nngx_guard), T_CASE(test_nngx_close_bounded))
