/*
 * seqtrack_test.c: baseline, next, gap, repeat and eviction behaviour.
 */
#include <stdio.h>

#include "seqtrack.h"
#include "t.h"

static void
test_seqtrack_sequence(void)
{
	struct seqtrack t;
	uint64_t        gap, rec, miss, rep;

	seqtrack_init(&t);
	T_EQ_INT(seqtrack_see(&t, "gw-a", 5, &gap), SEQTRACK_FIRST);
	T_EQ_INT(seqtrack_see(&t, "gw-a", 6, &gap), SEQTRACK_NEXT);
	T_EQ_INT(gap, 0);
	T_EQ_INT(seqtrack_see(&t, "gw-a", 10, &gap), SEQTRACK_GAP);
	T_EQ_INT(gap, 3);
	T_EQ_INT(seqtrack_see(&t, "gw-a", 9, &gap), SEQTRACK_REPEAT);
	T_EQ_INT(seqtrack_see(&t, "gw-b", 1, &gap), SEQTRACK_FIRST);
	T_EQ_INT(seqtrack_see(&t, "gw-b", 0, &gap), SEQTRACK_REPEAT);
	seqtrack_totals(&t, &rec, &miss, &rep);
	T_EQ_INT(rec, 6);
	T_EQ_INT(miss, 3);
	T_EQ_INT(rep, 2);
	seqtrack_release(&t);
}

static void
test_seqtrack_bounded(void)
{
	struct seqtrack *t = xmalloc(sizeof(*t));
	char             id[32];
	int              i;

	seqtrack_init(t);
	for (i = 0; i < SEQTRACK_MAX + 10; i++) {
		snprintf(id, sizeof(id), "gw-%d", i);
		T_EQ_INT(seqtrack_see(t, id, 1, NULL), SEQTRACK_FIRST);
	}
	T_EQ_INT(t->n, SEQTRACK_MAX);
	seqtrack_release(t);
	free(t);
}

static void
test_seqtrack_instance_id(void)
{
	char a[128], b[128];

	seqtrack_instance_id("gateway", a, sizeof(a));
	seqtrack_instance_id("gateway", b, sizeof(b));
	T_ASSERT(strncmp(a, "gateway-", 8) == 0);
	T_ASSERT(strcmp(a, b) != 0);
}

T_MAIN(T_CASE(test_seqtrack_sequence), T_CASE(test_seqtrack_bounded),
    T_CASE(test_seqtrack_instance_id))
