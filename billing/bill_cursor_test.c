/*
 * bill_cursor_test.c: the per-instance cursor tracker alone (no
 * database): contiguous prefixes, holes, the window, staged commits and
 * lost ranges.  The ledger's use of it is in bill_ledger_test.c.
 */
#include "bill_cursor.h"
#include "t.h"

/* The tracker alone: 1,2,4,3 in one stage; window; commit. */
static void
test_cursor_pure(void)
{
	struct bill_cursor       c;
	struct bill_cursor_stage st;
	uint64_t                 from = 0, to = 0;

	bill_cursor_init(&c);
	bill_cursor_stage_init(&st, 4);
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 1));
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 2));
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 4));
	T_EQ_INT(bill_cursor_get(&c, "a"), 0); /* not committed yet */
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 9));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 2);
	/* 3 is missing, then 5..8: the replay asks for the first hole */
	T_ASSERT(bill_cursor_first_gap(&c, "a", &from, &to));
	T_EQ_INT(from, 3);
	T_EQ_INT(to, 3);
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 3));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 4);
	T_ASSERT(bill_cursor_first_gap(&c, "a", &from, &to));
	T_EQ_INT(from, 5);
	T_EQ_INT(to, 8);
	T_ASSERT(!bill_cursor_first_gap(&c, "zz", &from, &to));
	T_ASSERT(!bill_cursor_mark(&c, &st, "a", 0));
	T_ASSERT(!bill_cursor_mark(&c, &st, "a", 5 + BILL_CURSOR_WINDOW));
	T_ASSERT(bill_cursor_mark(&c, &st, "b", 2));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 4);
	T_EQ_INT(bill_cursor_get(&c, "b"), 0);
	T_ASSERT(bill_cursor_first_gap(&c, "a", &from, &to));
	T_EQ_INT(from * 100 + to, 508);
	/* 1, 2, 4, 3 within one stage */
	T_ASSERT(bill_cursor_mark(&c, &st, "c", 1));
	T_ASSERT(bill_cursor_mark(&c, &st, "c", 2));
	T_ASSERT(bill_cursor_mark(&c, &st, "c", 4));
	T_ASSERT(bill_cursor_mark(&c, &st, "c", 3));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "c"), 4);
	T_ASSERT(!bill_cursor_first_gap(&c, "c", &from, &to));
	/* A discarded stage changes nothing. */
	T_ASSERT(bill_cursor_mark(&c, &st, "b", 1));
	st.n = 0;
	T_EQ_INT(bill_cursor_get(&c, "b"), 0);
	T_ASSERT(bill_cursor_mark(&c, &st, "b", 1));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "b"), 2);
	bill_cursor_stage_release(&st);
	bill_cursor_release(&c);
}

/* Lost ranges: the cursor passes them, or remembers them in the window. */
static void
test_cursor_skip(void)
{
	struct bill_cursor       c;
	struct bill_cursor_stage st;
	uint64_t                 from = 0, to = 0;

	bill_cursor_init(&c);
	bill_cursor_stage_init(&st, 2);
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 1));
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 9));
	/* 2..4 lost right above committed: committed jumps to 4. */
	T_ASSERT(bill_cursor_skip(&c, &st, "a", 2, 4));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 4);
	/* 6..7 lost above a hole at 5: remembered, 5 then closes it. */
	T_ASSERT(bill_cursor_skip(&c, &st, "a", 6, 7));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 4);
	T_ASSERT(bill_cursor_first_gap(&c, "a", &from, &to));
	T_EQ_INT(from * 10 + to, 55);
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 5));
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 8));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 9);
	/* Already committed: a no-op; a bad range is refused. */
	T_ASSERT(bill_cursor_skip(&c, &st, "a", 1, 9));
	T_ASSERT(!bill_cursor_skip(&c, &st, "a", 0, 3));
	T_ASSERT(!bill_cursor_skip(&c, &st, "a", 12, 11));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 9);
	/* A range overlapping committed, far past the window: jumps. */
	T_ASSERT(bill_cursor_mark(&c, &st, "a", 11));
	T_ASSERT(bill_cursor_skip(&c, &st, "a", 5, 3 * BILL_CURSOR_WINDOW));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "a"), 3 * BILL_CURSOR_WINDOW);
	T_ASSERT(!bill_cursor_first_gap(&c, "a", &from, &to));
	/* Above a hole and past the window: only the window is kept. */
	T_ASSERT(!bill_cursor_skip(&c, &st, "b", 3, 2 * BILL_CURSOR_WINDOW));
	T_ASSERT(bill_cursor_mark(&c, &st, "b", 1));
	T_ASSERT(bill_cursor_mark(&c, &st, "b", 2));
	bill_cursor_commit(&c, &st);
	T_EQ_INT(bill_cursor_get(&c, "b"), BILL_CURSOR_WINDOW);
	bill_cursor_stage_release(&st);
	bill_cursor_release(&c);
}

T_MAIN(T_CASE(test_cursor_pure), T_CASE(test_cursor_skip))
