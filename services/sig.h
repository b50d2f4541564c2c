/*
 * sig.h: signal handling and graceful drain for service binaries.
 *
 * Signals are taken synchronously by the main thread, never by handlers:
 * sig_init() blocks SIGTERM, SIGINT and SIGHUP in the calling thread, and
 * every thread created afterwards (nng's, libcurl's, MHD's) inherits that
 * mask, so the signals stay pending until sig_wait() collects them with
 * sigwait().  Call sig_init() first thing in main(), before any library
 * starts a thread (nng starts its threads on first use).  SIGPIPE is
 * ignored process-wide: a peer closing a socket shows up as EPIPE.
 *
 * Stop sequence of a service:
 *
 *   sig_init();
 *   ... start everything ...
 *   sig_wait(&signo);                         SIGTERM or SIGINT
 *   sig_drain(steps, n, budget_ms);           close in order, bounded
 */
#ifndef SIG_H
#define SIG_H

#include "compat.h"

/*
 * Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in the
 * threads it creates later) and ignores SIGPIPE.  Idempotent.
 */
void sig_init(void);

/*
 * Waits in the calling thread (the main thread) until SIGTERM or SIGINT
 * arrives, and stores it in *signo.  SIGHUP is collected and logged
 * (sig.hup_ignored) without returning: no service reloads on it yet.
 * Returns 0, or -ERR_INTERNAL when sigwait() fails.
 */
int sig_wait(int *signo) WARN_UNUSED;

/*
 * Asks the process to stop, from any thread (a fatal error in a worker,
 * a test): sends SIGTERM to the process, which sig_wait() then returns.
 * Async-signal-safe.
 */
void sig_request_stop(void);

/*
 * One step of a drain.  fn gets the absolute deadline (now_mono_ms()
 * clock) by which the whole drain must end, and returns 0 or -ERR_x.
 */
struct sig_drain_step {
	const char *name; /* for the log */
	int (*fn)(void *arg, int64_t deadline_ms);
	void *arg;
};

/*
 * Runs the steps in order within budget_ms.  Every step runs even when
 * the budget is spent (each then sees a past deadline and should only
 * close, not wait), so resources are always released.  Logs each failed
 * step (sig.drain_step_failed).  Returns 0, the first step's error, or
 * -ERR_TIMEDOUT when the drain overran its budget.  steps is borrowed.
 */
int sig_drain(const struct sig_drain_step *steps, size_t n,
    int64_t budget_ms) WARN_UNUSED;

#endif /* SIG_H */
