/*
 * sig_test.c: signals reach sig_wait() in a forked child (SIGTERM from
 * outside, SIGHUP ignored, sig_request_stop() from a thread), SIGPIPE is
 * ignored, and sig_drain() runs every step within its budget.
 */
#include <sys/wait.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sig.h"
#include "t.h"

enum sig_t_mode {
	SIG_T_EXTERNAL,
	SIG_T_REQUEST,
};

static void *
sig_t_stopper_fn(void *arg)
{
	(void)arg;
	usleep(20000);
	sig_request_stop();
	return NULL;
}

/*
 * The child: sig_init, report ready on fd, wait.  Exit 0 only when
 * sig_wait returned SIGTERM; 2 when a write to a closed pipe killed
 * nothing but also did not fail with EPIPE.
 */
NORETURN static void
sig_t_child(int fd, enum sig_t_mode mode)
{
	pthread_t th;
	int       p[2], signo = 0;

	sig_init();
	if (pipe(p) != 0)
		_exit(3);
	close(p[0]);
	if (write(p[1], "x", 1) != -1 || errno != EPIPE)
		_exit(2); /* SIGPIPE would have killed us before this */
	close(p[1]);
	if (mode == SIG_T_REQUEST &&
	    pthread_create(&th, NULL, sig_t_stopper_fn, NULL) != 0)
		_exit(3);
	if (write(fd, "r", 1) != 1)
		_exit(3);
	if (sig_wait(&signo) != 0)
		_exit(4);
	_exit(signo == SIGTERM ? 0 : 5);
}

/* Waits for the child's exit up to ms; returns its status or -1. */
static int
sig_t_reap(pid_t pid, int ms)
{
	int64_t end = now_mono_ms() + ms;
	int     st;

	while (now_mono_ms() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static pid_t
sig_t_spawn(enum sig_t_mode mode)
{
	int   p[2];
	char  c;
	pid_t pid;

	if (pipe(p) != 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(p[0]);
		sig_t_child(p[1], mode);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		c = 0;
	close(p[0]);
	if (c != 'r') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void
test_sig_term_graceful(void)
{
	pid_t pid = sig_t_spawn(SIG_T_EXTERNAL);
	int   st;

	T_ASSERT(pid > 0);
	kill(pid, SIGHUP); /* collected and ignored */
	usleep(20000);
	kill(pid, SIGTERM);
	st = sig_t_reap(pid, 2000);
	T_ASSERT(st != -1);
	T_ASSERT(WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 0);
}

static void
test_sig_int_stops_too(void)
{
	pid_t pid = sig_t_spawn(SIG_T_EXTERNAL);
	int   st;

	T_ASSERT(pid > 0);
	kill(pid, SIGINT);
	st = sig_t_reap(pid, 2000);
	T_ASSERT(st != -1 && WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 5); /* sig_wait returned SIGINT */
}

static void
test_sig_request_stop(void)
{
	pid_t pid = sig_t_spawn(SIG_T_REQUEST);
	int   st;

	T_ASSERT(pid > 0);
	st = sig_t_reap(pid, 2000);
	T_ASSERT(st != -1 && WIFEXITED(st));
	T_EQ_INT(WEXITSTATUS(st), 0);
}

struct sig_t_drain {
	int     order[4];
	int     n;
	int64_t deadline;
};

static int
sig_t_step_ok(void *arg, int64_t deadline_ms)
{
	struct sig_t_drain *d = arg;

	d->order[d->n++] = 1;
	d->deadline = deadline_ms;
	return 0;
}

static int
sig_t_step_slow(void *arg, int64_t deadline_ms)
{
	struct sig_t_drain *d = arg;

	d->order[d->n++] = 2;
	while (now_mono_ms() <= deadline_ms)
		usleep(2000);
	return 0;
}

static int
sig_t_step_fail(void *arg, int64_t deadline_ms)
{
	struct sig_t_drain *d = arg;

	(void)deadline_ms;
	d->order[d->n++] = 3;
	return -ERR_IO;
}

static void
test_sig_drain(void)
{
	struct sig_t_drain          d;
	const struct sig_drain_step ok[] = {
	    {"a", sig_t_step_ok, &d}, {"b", sig_t_step_ok, &d}};
	const struct sig_drain_step slow[] = {
	    {"slow", sig_t_step_slow, &d}, {"after", sig_t_step_ok, &d}};
	const struct sig_drain_step fail[] = {
	    {"fail", sig_t_step_fail, &d}, {"after", sig_t_step_ok, &d}};
	int64_t t0 = now_mono_ms();

	memset(&d, 0, sizeof(d));
	T_OK(sig_drain(ok, ARRAY_SIZE(ok), 1000));
	T_EQ_INT(d.n, 2);
	T_ASSERT(d.deadline >= t0 + 1000 && d.deadline <= now_mono_ms() + 1000);

	memset(&d, 0, sizeof(d));
	T_EQ_INT(sig_drain(slow, ARRAY_SIZE(slow), 30), -ERR_TIMEDOUT);
	T_EQ_INT(d.n, 2); /* the step after an overrun still ran */

	memset(&d, 0, sizeof(d));
	T_EQ_INT(sig_drain(fail, ARRAY_SIZE(fail), 1000), -ERR_IO);
	T_EQ_INT(d.n, 2);
	T_EQ_INT(d.order[0], 3);
	T_EQ_INT(d.order[1], 1);
}

T_MAIN(T_CASE(test_sig_term_graceful), T_CASE(test_sig_int_stops_too),
    T_CASE(test_sig_request_stop), T_CASE(test_sig_drain))
