/*
 * bill_notify_test.c: billing's announcements to the scheduler over a
 * real PUB/SUB pair (inproc): one made before the scheduler listens is
 * held and arrives once it does; with the scheduler there, one goes at
 * once; a repeat of a held one is held once; a dialer nng gave up on is
 * replaced (ipc).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bill_notify.h"
#include "err.h"
#include "nngx.h"
#include "proto.h"
#include "t.h"
#include "topics.h"

#define T_ADDR "inproc://bill_notify_test"

/* What the fake scheduler received. */
struct t_sched {
	pthread_mutex_t mu;
	int             n;
	char            kind[8][PROTO_NAME_MAX + 1];
	int64_t         id[8];
};

static void
t_sched_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	struct t_sched                 *s = arg;
	struct proto_env                env;
	struct proto_config_changed_evt e;

	(void)topic;
	if (proto_env_unpack(payload, len, &env) != 0 ||
	    proto_config_changed_evt_unpack(&env, &e) != 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->n < 8) {
		snprintf(s->kind[s->n], sizeof(s->kind[0]), "%s", e.kind);
		s->id[s->n] = e.entity_id;
	}
	s->n++;
	pthread_mutex_unlock(&s->mu);
}

/* Waits up to ms for the fake scheduler to have n messages. */
static int
t_sched_wait(struct t_sched *s, int n, int ms)
{
	int64_t end = now_mono_ms() + ms;
	int     got;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		got = s->n;
		pthread_mutex_unlock(&s->mu);
		if (got >= n || now_mono_ms() >= end)
			return got;
		nng_msleep(10);
	}
}

static void
test_bill_notify_held_then_sent(void)
{
	const char *const      topics[] = {TOPIC_CONFIG};
	struct met_registry   *reg = NULL;
	struct bill_notify_cfg cfg = {.addr = T_ADDR};
	struct bill_notify    *n = NULL;
	struct nngx_sub       *sub = NULL;
	struct t_sched         s;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	reg = met_registry_new(0);
	T_ASSERT(reg != NULL);
	cfg.sent = met_counter_new(reg, "t_sent_total", "sent");
	cfg.failed = met_counter_new(reg, "t_failed_total", "failed");
	cfg.held = met_gauge_new(reg, "t_held", "held");
	T_OK(bill_notify_new(&cfg, &n));

	/* No scheduler yet: held, once per entity. */
	bill_notify_send(n, "user", 7);
	bill_notify_send(n, "user", 7);
	bill_notify_send(n, "api_key", 9);
	T_EQ_INT((int)bill_notify_held(n), 2);
	T_EQ_INT((int)met_counter_value(cfg.sent), 0);

	/* The scheduler comes: both arrive, nothing is held any more. */
	T_OK(nngx_sub_new(T_ADDR, topics, 1, 0, t_sched_cb, &s, &sub));
	T_EQ_INT(t_sched_wait(&s, 2, 5000), 2);
	T_EQ_STR(s.kind[0], "user");
	T_ASSERT(s.id[0] == 7);
	T_EQ_STR(s.kind[1], "api_key");
	T_ASSERT(s.id[1] == 9);
	T_EQ_INT((int)bill_notify_held(n), 0);
	T_EQ_INT((int)met_counter_value(cfg.sent), 2);

	/* Connected: sent at once. */
	bill_notify_send(n, "subscription", 3);
	T_EQ_INT(t_sched_wait(&s, 3, 5000), 3);
	T_EQ_STR(s.kind[2], "subscription");
	T_EQ_INT((int)met_counter_value(cfg.failed), 0);

	bill_notify_free(n);
	nngx_sub_free(sub);
	met_registry_free(reg);
	pthread_mutex_destroy(&s.mu);
}

/*
 * A listener that hangs up before reading billing's SP header stops nng
 * 1.5.2's dialer for good; the socket is replaced after redial_ms, so an
 * announcement held meanwhile still reaches the scheduler that follows.
 */
static void
test_bill_notify_redial(void)
{
	const char *const      topics[] = {TOPIC_CONFIG};
	char                   dir[] = "/tmp/bill_notify_t.XXXXXX", url[128];
	struct bill_notify_cfg cfg = {.redial_ms = 300};
	struct bill_notify    *n = NULL;
	struct nngx_sub       *sub = NULL;
	struct sockaddr_un     sa;
	struct pollfd          pf;
	struct t_sched         s;
	int                    lfd, fd;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	T_ASSERT(mkdtemp(dir) != NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sched.ipc", dir);
	snprintf(url, sizeof(url), "ipc://%s", sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	T_ASSERT(lfd >= 0);
	T_OK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	T_OK(listen(lfd, 8));
	cfg.addr = url;
	T_OK(bill_notify_new(&cfg, &n));
	pf.fd = lfd;
	pf.events = POLLIN;
	T_EQ_INT(poll(&pf, 1, 5000), 1);
	fd = accept(lfd, NULL, NULL);
	T_ASSERT(fd >= 0);
	close(fd); /* before reading: the dialer gives up */
	close(lfd);
	T_OK(unlink(sa.sun_path));

	bill_notify_send(n, "user", 5);
	T_OK(nngx_sub_new(url, topics, 1, 0, t_sched_cb, &s, &sub));
	T_EQ_INT(t_sched_wait(&s, 1, 10000), 1);
	T_EQ_STR(s.kind[0], "user");
	T_ASSERT(s.id[0] == 5);

	bill_notify_free(n);
	nngx_sub_free(sub);
	(void)unlink(sa.sun_path);
	(void)rmdir(dir);
	pthread_mutex_destroy(&s.mu);
}

/* Past BILL_NOTIFY_HELD_MAX the oldest is dropped and counted. */
static void
test_bill_notify_held_bound(void)
{
	struct met_registry   *reg = NULL;
	struct bill_notify_cfg cfg = {.addr = "inproc://bill_notify_nobody"};
	struct bill_notify    *n = NULL;
	int64_t                i;

	reg = met_registry_new(0);
	T_ASSERT(reg != NULL);
	cfg.failed = met_counter_new(reg, "t_failed_total", "failed");
	T_OK(bill_notify_new(&cfg, &n));
	for (i = 0; i < BILL_NOTIFY_HELD_MAX + 3; i++)
		bill_notify_send(n, "user", i + 1);
	T_EQ_INT((int)bill_notify_held(n), BILL_NOTIFY_HELD_MAX);
	T_EQ_INT((int)met_counter_value(cfg.failed), 3);
	bill_notify_free(n);
	met_registry_free(reg);
}

T_MAIN(T_CASE(test_bill_notify_held_then_sent), T_CASE(test_bill_notify_redial),
    T_CASE(test_bill_notify_held_bound))
