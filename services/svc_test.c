/*
 * svc_test.c: the shared life cycle: directories, metrics helpers, and a
 * whole init/serve/release cycle ended by a signal.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "sig.h"
#include "svc.h"
#include "t.h"

static void
test_svc_mkdirs(void)
{
	char        dir[256];
	struct stat st;

	snprintf(dir, sizeof(dir), "/tmp/svc_test.%ld/a/b/c", (long)getpid());
	T_OK(svc_mkdirs(dir));
	T_OK(svc_mkdirs(dir)); /* idempotent */
	T_OK(stat(dir, &st));
	T_ASSERT(S_ISDIR(st.st_mode));
	T_EQ_INT(svc_mkdirs(""), -ERR_INVAL);
	T_EQ_INT(svc_mkdirs("/proc/no/such/place"), -ERR_IO);
}

static void
test_svc_metrics(void)
{
	struct met_counter *c = svc_counter("svc_test_things_total", "Things.");
	struct met_counter *again =
	    svc_counter("svc_test_things_total", "Things.");

	met_counter_inc(c);
	T_ASSERT(c == again);
	T_EQ_INT(met_counter_value(again), 1);
}

/*
 * A child runs the whole cycle and exits 0 after SIGTERM.  It reports over
 * a pipe once its signals are blocked, so the signal cannot arrive early.
 */
static void
test_svc_cycle(void)
{
	struct svc_opts opts = {.log_level = "warn",
	    .health_addr = "127.0.0.1:0",
	    .state_dir = "/tmp",
	    .drain_ms = 100};
	int             fds[2], status = 0;
	char            c;
	pid_t           pid;

	T_OK(pipe(fds));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct svc s;

		sig_init();
		svc_init(&s, "unit", &opts);
		if (write(fds[1], "x", 1) != 1)
			_exit(4);
		if (svc_serve(&s) != SIGTERM)
			_exit(3);
		svc_release(&s);
		_exit(0);
	}
	close(fds[1]);
	T_EQ_INT(read(fds[0], &c, 1), 1);
	close(fds[0]);
	T_OK(kill(pid, SIGTERM));
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
}

/*
 * A child whose shutdown never ends (it waits for a signal it blocked) is
 * ended by the watchdog with SVC_EXIT_STUCK once the drain budget and the
 * margin have passed.
 */
static void
test_svc_stuck(void)
{
	struct svc_opts opts = {.log_level = "error",
	    .health_addr = "127.0.0.1:0",
	    .state_dir = "/tmp",
	    .drain_ms = 50,
	    .stuck_ms = 50};
	int             fds[2], status = 0;
	char            c;
	pid_t           pid;
	int64_t         t0;

	T_OK(pipe(fds));
	pid = fork();
	T_ASSERT(pid >= 0);
	if (pid == 0) {
		struct svc s;

		sig_init();
		svc_init(&s, "unit", &opts);
		if (write(fds[1], "x", 1) != 1)
			_exit(4);
		(void)svc_serve(&s);
		for (;;)
			pause(); /* every signal is blocked: a wedged close */
	}
	close(fds[1]);
	T_EQ_INT(read(fds[0], &c, 1), 1);
	close(fds[0]);
	t0 = now_mono_ms();
	T_OK(kill(pid, SIGTERM));
	T_EQ_INT(waitpid(pid, &status, 0), pid);
	T_ASSERT(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), SVC_EXIT_STUCK);
	T_ASSERT(now_mono_ms() - t0 >= 100); /* not before budget + margin */
}

T_MAIN(T_CASE(test_svc_mkdirs), T_CASE(test_svc_metrics),
    T_CASE(test_svc_cycle), T_CASE(test_svc_stuck))
