/*
 * sched_keys_test.c: the pieces of sched_keys.c that need no database:
 * exact numeric parsing of the rate multiplier and the bounded key cache
 * (hits, TTL, negative entries, eviction, invalidation by id and kind).
 */
#include <stdio.h>

#include "err.h"
#include "sched.h"
#include "t.h"

static void
test_rate_micro(void)
{
	int64_t v;

	T_OK(sched_rate_micro("1", &v));
	T_EQ_INT(v, 1000000);
	T_OK(sched_rate_micro("1.0000", &v));
	T_EQ_INT(v, 1000000);
	T_OK(sched_rate_micro("0.1", &v));
	T_EQ_INT(v, 100000);
	T_OK(sched_rate_micro("1.2345", &v));
	T_EQ_INT(v, 1234500);
	T_OK(sched_rate_micro("0.0001", &v));
	T_EQ_INT(v, 100);
	T_OK(sched_rate_micro("0.12345678", &v));
	T_EQ_INT(v, 123456);
	T_OK(sched_rate_micro("999999.9999", &v));
	T_EQ_INT(v, 999999999900);
	T_OK(sched_rate_micro("0", &v));
	T_EQ_INT(v, 0);
	T_EQ_INT(sched_rate_micro("", &v), -ERR_INVAL);
	T_EQ_INT(sched_rate_micro(".", &v), -ERR_INVAL);
	T_EQ_INT(sched_rate_micro("-1", &v), -ERR_INVAL);
	T_EQ_INT(sched_rate_micro("1.2.3", &v), -ERR_INVAL);
	T_EQ_INT(sched_rate_micro("1e3", &v), -ERR_INVAL);
	T_EQ_INT(sched_rate_micro("99999999999999999999", &v), -ERR_TOOBIG);
}

static void
t_hash(int i, char *out)
{
	snprintf(out, PROTO_HASH_MAX + 1, "%064x", i);
}

static void
test_cache_basic(void)
{
	struct sched_keycache *kc = sched_keys_new(64);
	struct sched_key       k, got;
	char                   h[PROTO_HASH_MAX + 1];

	memset(&k, 0, sizeof(k));
	k.found = true;
	k.key_id = 7;
	k.user_id = 70;
	k.group_id = 700;
	t_hash(1, h);
	T_ASSERT(!sched_keys_get(kc, h, 1000, &got));
	sched_keys_put(kc, h, 1000, 500, &k);
	T_ASSERT(sched_keys_get(kc, h, 1499, &got));
	T_EQ_INT(got.key_id, 7);
	T_ASSERT(!sched_keys_get(kc, h, 1500, &got)); /* expired */
	/* ttl 0 keeps nothing. */
	sched_keys_put(kc, h, 1000, 0, &k);
	T_ASSERT(!sched_keys_get(kc, h, 1000, &got));

	/* Invalidation by key, user, group id; account changes keep all. */
	sched_keys_put(kc, h, 1000, 500, &k);
	T_EQ_INT(sched_keys_invalidate(kc, "account", 0), 0);
	T_EQ_INT(sched_keys_invalidate(kc, "user", 71), 0);
	T_EQ_INT(sched_keys_invalidate(kc, "user", 70), 1);
	T_ASSERT(!sched_keys_get(kc, h, 1000, &got));
	sched_keys_put(kc, h, 1000, 500, &k);
	T_EQ_INT(sched_keys_invalidate(kc, "group", 700), 1);
	sched_keys_put(kc, h, 1000, 500, &k);
	T_EQ_INT(sched_keys_invalidate(kc, "api_key", 7), 1);
	sched_keys_put(kc, h, 1000, 500, &k);
	T_EQ_INT(sched_keys_invalidate(kc, "group", 0), 1); /* all */

	/* A negative entry goes with any api_key change. */
	memset(&k, 0, sizeof(k));
	sched_keys_put(kc, h, 1000, 500, &k);
	T_ASSERT(sched_keys_get(kc, h, 1000, &got));
	T_ASSERT(!got.found);
	T_EQ_INT(sched_keys_invalidate(kc, "api_key", 12345), 1);
	T_ASSERT(!sched_keys_get(kc, h, 1000, &got));
	sched_keys_free(kc);
	sched_keys_free(NULL);
}

static void
test_cache_bounded(void)
{
	struct sched_keycache *kc = sched_keys_new(8);
	struct sched_key       k, got;
	char                   h[PROTO_HASH_MAX + 1];
	int                    i, hits = 0;

	memset(&k, 0, sizeof(k));
	k.found = true;
	for (i = 0; i < 1000; i++) {
		k.key_id = i;
		t_hash(i, h);
		sched_keys_put(kc, h, 1000, 1000 + i, &k);
	}
	for (i = 0; i < 1000; i++) {
		t_hash(i, h);
		if (sched_keys_get(kc, h, 1000, &got)) {
			T_EQ_INT(got.key_id, i);
			hits++;
		}
	}
	/* At most 8 entries live; the latest put is always one of them. */
	T_ASSERT(hits > 0 && hits <= 8);
	t_hash(999, h);
	T_ASSERT(sched_keys_get(kc, h, 1000, &got));
	/* The same hash is updated in place, not duplicated. */
	k.key_id = 5000;
	sched_keys_put(kc, h, 1000, 10, &k);
	T_ASSERT(sched_keys_get(kc, h, 1000, &got));
	T_EQ_INT(got.key_id, 5000);
	T_EQ_INT(sched_keys_invalidate(kc, "api_key", 5000), 1);
	T_ASSERT(!sched_keys_get(kc, h, 1000, &got));
	sched_keys_free(kc);
}

T_MAIN(T_CASE(test_rate_micro), T_CASE(test_cache_basic),
    T_CASE(test_cache_bounded))
