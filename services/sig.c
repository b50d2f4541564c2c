/*
 * sig.c: blocked signals collected by sigwait(), and a bounded drain.
 *
 * No signal handler runs in this design, so nothing here has to be
 * async-signal-safe except sig_request_stop(), which only calls kill().
 */
#include "sig.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

static void
sig_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void
sig_init(void)
{
	struct sigaction sa;
	sigset_t         set;
	int              rv;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) != 0)
		BUG("sig_init: sigaction(SIGPIPE): errno %d", errno);
	sig_set(&set);
	rv = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rv != 0)
		BUG("sig_init: pthread_sigmask: %d", rv);
}

int
sig_wait(int *signo)
{
	sigset_t set;
	int      got, rv;

	sig_set(&set);
	for (;;) {
		rv = sigwait(&set, &got);
		if (rv != 0) {
			log_error("sig.wait_failed", LOG_I64("errno", rv));
			return -ERR_INTERNAL;
		}
		if (got == SIGTERM || got == SIGINT)
			break;
		log_info("sig.hup_ignored", LOG_I64("signal", got));
	}
	*signo = got;
	return 0;
}

void
sig_request_stop(void)
{
	(void)kill(getpid(), SIGTERM);
}

int
sig_drain(const struct sig_drain_step *steps, size_t n, int64_t budget_ms)
{
	int64_t deadline = now_mono_ms() + budget_ms;
	size_t  i;
	int     rv, first = 0;

	for (i = 0; i < n; i++) {
		rv = steps[i].fn(steps[i].arg, deadline);
		if (rv != 0) {
			log_warn("sig.drain_step_failed",
			    LOG_STR("step", steps[i].name), LOG_ERR(rv));
			if (first == 0)
				first = rv;
		}
	}
	if (first == 0 && now_mono_ms() > deadline) {
		log_warn("sig.drain_overrun", LOG_I64("budget_ms", budget_ms));
		first = -ERR_TIMEDOUT;
	}
	return first;
}
