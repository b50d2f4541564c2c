/*
 * sched_sticky.c: the helpers of sticky sessions.
 *
 * The binding itself is read, taken, renewed, dropped and written inside
 * the acquire script (sched_slots.c), so that two first requests of one
 * session, arriving together, land on one account: Redis runs scripts one
 * at a time, and the second sees the binding the first wrote.  What is
 * left here is naming the binding (the candidates' priorities, which the
 * script's load-aware choice groups by, come with the candidate query).
 *
 * The binding lives sticky_ttl (config, 1 h by default, 0 turns sticky
 * sessions off).  The reference lets an admin set the TTL in the webui
 * settings; that value will override the config key once settings reach
 * the scheduler.
 */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "sched.h"

int
sched_sticky_key(struct sched *s, const char *platform, int64_t gid,
    const char *hash, char *out, size_t cap)
{
	static const char ok[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-";
	size_t            len = strlen(hash);
	int               n;

	if (len == 0 || strspn(hash, ok) != len)
		return -ERR_INVAL;
	n = snprintf(out, cap, "%ssticky:%s:%lld:%s", s->cfg->redis_prefix,
	    platform, (long long)gid, hash);
	if (n < 0 || (size_t)n >= cap)
		return -ERR_TOOBIG;
	return 0;
}
