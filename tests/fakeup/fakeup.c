/*
 * fakeup.c: sub2api-fakeup's entry point: command line, daemon, signals.
 *
 *   sub2api-fakeup [--listen HOST:PORT] [--log-level LEVEL] [--conn-limit N]
 *
 * PORT 0 (the default, on 127.0.0.1) picks a free port.  Once the socket
 * is listening the process prints exactly one line on stdout,
 *
 *   listening 127.0.0.1:<port>
 *
 * which tests wait for.  --conn-limit raises the number of connections
 * served at once (default FAKE_CONN_LIMIT) for the stream-capacity bench,
 * which holds thousands of streams through one gateway.  SIGTERM or SIGINT
 * stops it: every wait in flight gives up, MHD closes the connections, and the
 * process exits 0.
 *
 * MHD runs one thread per connection, so a stream that drips or stalls
 * simply blocks its own thread (fakeup_anth.c); header sizes are bounded
 * by the per-connection memory limit and bodies by FAKE_BODY_MAX.
 */
#include "fakeup.h"

#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "sig.h"

#define FAKE_CONN_LIMIT   4096
#define FAKE_CONN_MAX     65536       /* --conn-limit's upper bound */
#define FAKE_CONN_TIMEOUT 120         /* seconds an idle connection lives */
#define FAKE_CONN_MEMORY  (256 << 10) /* per connection, headers included */
#define FAKE_HOST_MAX     256

static atomic_bool fake_stop_flag;

bool
fake_stopping(void)
{
	return atomic_load(&fake_stop_flag);
}

static void fake_mhd_log_cb(void *cls, const char *fmt, va_list ap)
    PRINTF_LIKE(2, 0);

static void
fake_mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
	char   msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("fakeup.mhd", LOG_MSG(msg));
}

static NORETURN void
fake_usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: sub2api-fakeup [--listen HOST:PORT] [--log-level "
	    "error|warn|info|debug] [--conn-limit N]\n");
	exit(status);
}

/* Splits "HOST:PORT" (HOST may be "[v6]") into host and port. */
static int
fake_split_addr(const char *s, char *host, size_t cap, const char **port)
{
	const char *colon = strrchr(s, ':');
	size_t      hlen;

	if (colon == NULL || colon[1] == '\0')
		return -ERR_INVAL;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= cap)
		return -ERR_INVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	*port = colon + 1;
	return 0;
}

static struct MHD_Daemon *
fake_start(const char *addr, unsigned conn_limit, unsigned *port_out)
{
	struct addrinfo             hints = {.ai_socktype = SOCK_STREAM,
	                .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo            *ai = NULL;
	struct MHD_Daemon          *d;
	const union MHD_DaemonInfo *info;
	char                        host[FAKE_HOST_MAX];
	const char                 *port;
	unsigned                    flags;

	if (fake_split_addr(addr, host, sizeof(host), &port) != 0)
		fatalx("fakeup.bad_listen", LOG_STR("listen", addr));
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		fatalx("fakeup.resolve_failed", LOG_STR("listen", addr));
	flags = MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, 0, NULL, NULL, fake_http_access_cb, NULL,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
	    conn_limit, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)FAKE_CONN_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)FAKE_CONN_MEMORY, MHD_OPTION_LISTEN_BACKLOG_SIZE,
	    (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, fake_http_completed_cb,
	    NULL, MHD_OPTION_EXTERNAL_LOGGER, fake_mhd_log_cb, NULL,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (d == NULL)
		fatalx("fakeup.bind_failed", LOG_STR("listen", addr));
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = info != NULL ? info->port : 0;
	return d;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"log-level", required_argument, NULL, 'v'},
	    {"conn-limit", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char        *listen = "127.0.0.1:0";
	enum log_level     lvl = LOG_INFO;
	struct MHD_Daemon *d;
	char               host[FAKE_HOST_MAX];
	const char        *port;
	unsigned           bound, conn_limit = FAKE_CONN_LIMIT;
	int                c, signo;
	char              *end;
	unsigned long      ul;

	sig_init();
	log_init("fakeup", LOG_INFO);
	while ((c = getopt_long(argc, argv, "l:v:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'v':
			if (log_level_parse(optarg, &lvl) != 0)
				fake_usage(2);
			break;
		case 'c':
			errno = 0;
			ul = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    ul < 1 || ul > FAKE_CONN_MAX)
				fake_usage(2);
			conn_limit = (unsigned)ul;
			break;
		case 'h':
			fake_usage(0);
		default:
			fake_usage(2);
		}
	}
	if (optind != argc)
		fake_usage(2);
	log_set_level(lvl);
	fake_log_init();

	d = fake_start(listen, conn_limit, &bound);
	if (fake_split_addr(listen, host, sizeof(host), &port) != 0)
		BUG("fakeup: address checked at start");
	printf("listening %s:%u\n", host, bound);
	fflush(stdout);
	log_info(
	    "fakeup.listening", LOG_STR("host", host), LOG_I64("port", bound));

	if (sig_wait(&signo) != 0)
		signo = 0;
	log_info("fakeup.stopping", LOG_I64("signal", signo));
	atomic_store(&fake_stop_flag, true);
	MHD_stop_daemon(d);
	fake_log_release();
	log_info("fakeup.stopped");
	return 0;
}
