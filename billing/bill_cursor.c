/*
 * bill_cursor.c: the in-memory contiguous-prefix tracker (see
 * bill_cursor.h).
 */
#include "bill_cursor.h"

#include <string.h>

void
bill_cursor_init(struct bill_cursor *c)
{
	memset(c, 0, sizeof(*c));
	c->e = xcalloc(BILL_CURSOR_MAX, sizeof(*c->e));
}

void
bill_cursor_release(struct bill_cursor *c)
{
	free(c->e);
	memset(c, 0, sizeof(*c));
}

static struct bill_cursor_ent *
bill_cursor_find(struct bill_cursor_ent *e, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(e[i].id, id) == 0)
			return &e[i];
	}
	return NULL;
}

/* The entry of id in c, made (evicting the stalest) when absent. */
static struct bill_cursor_ent *
bill_cursor_slot(struct bill_cursor *c, const char *id)
{
	struct bill_cursor_ent *e = bill_cursor_find(c->e, c->n, id);
	size_t                  i, old = 0;

	if (e == NULL) {
		if (c->n < BILL_CURSOR_MAX) {
			e = &c->e[c->n++];
		} else {
			for (i = 1; i < c->n; i++) {
				if (c->e[i].seen < c->e[old].seen)
					old = i;
			}
			e = &c->e[old];
		}
		memset(e, 0, sizeof(*e));
		str_copy(e->id, sizeof(e->id), id);
	}
	e->seen = ++c->tick;
	return e;
}

void
bill_cursor_load(struct bill_cursor *c, const char *id, uint64_t seq)
{
	struct bill_cursor_ent *e;

	if (id[0] == '\0' || strlen(id) > BILL_CURSOR_ID_MAX)
		return;
	e = bill_cursor_slot(c, id);
	e->committed = seq;
	memset(e->done, 0, sizeof(e->done));
}

bool
bill_cursor_known(const struct bill_cursor *c, const char *id)
{
	return bill_cursor_find(c->e, c->n, id) != NULL;
}

uint64_t
bill_cursor_get(const struct bill_cursor *c, const char *id)
{
	const struct bill_cursor_ent *e;

	e = bill_cursor_find(c->e, c->n, id);
	return e != NULL ? e->committed : 0;
}

bool
bill_cursor_first_gap(
    const struct bill_cursor *c, const char *id, uint64_t *from, uint64_t *to)
{
	const struct bill_cursor_ent *e;
	uint64_t                      s;

	e = bill_cursor_find(c->e, c->n, id);
	if (e == NULL)
		return false;
	for (s = e->committed + 2; s <= e->committed + BILL_CURSOR_WINDOW;
	     s++) {
		uint64_t b = s % BILL_CURSOR_WINDOW;

		if ((e->done[b / 64] >> (b % 64)) & 1) {
			*from = e->committed + 1;
			*to = s - 1;
			return true;
		}
	}
	return false;
}

void
bill_cursor_stage_init(struct bill_cursor_stage *st, size_t cap)
{
	st->e = xcalloc(cap > 0 ? cap : 1, sizeof(*st->e));
	st->n = 0;
	st->cap = cap;
}

void
bill_cursor_stage_release(struct bill_cursor_stage *st)
{
	free(st->e);
	memset(st, 0, sizeof(*st));
}

static bool
bill_cursor_bit(const struct bill_cursor_ent *e, uint64_t seq)
{
	uint64_t b = seq % BILL_CURSOR_WINDOW;

	return (e->done[b / 64] >> (b % 64)) & 1;
}

static void
bill_cursor_setbit(struct bill_cursor_ent *e, uint64_t seq, bool on)
{
	uint64_t b = seq % BILL_CURSOR_WINDOW;

	if (on)
		e->done[b / 64] |= (uint64_t)1 << (b % 64);
	else
		e->done[b / 64] &= ~((uint64_t)1 << (b % 64));
}

/* id's entry in st, copied from c on first use; NULL when st is full. */
static struct bill_cursor_ent *
bill_cursor_staged(
    const struct bill_cursor *c, struct bill_cursor_stage *st, const char *id)
{
	struct bill_cursor_ent       *e;
	const struct bill_cursor_ent *src;

	e = bill_cursor_find(st->e, st->n, id);
	if (e != NULL)
		return e;
	if (st->n == st->cap)
		return NULL;
	e = &st->e[st->n++];
	src = bill_cursor_find(c->e, c->n, id);
	if (src != NULL) {
		*e = *src;
	} else {
		memset(e, 0, sizeof(*e));
		str_copy(e->id, sizeof(e->id), id);
	}
	return e;
}

/* Moves committed on over the seqs already done above it. */
static void
bill_cursor_advance(struct bill_cursor_ent *e)
{
	while (bill_cursor_bit(e, e->committed + 1)) {
		bill_cursor_setbit(e, e->committed + 1, false);
		e->committed++;
	}
}

bool
bill_cursor_mark(const struct bill_cursor *c, struct bill_cursor_stage *st,
    const char *id, uint64_t seq)
{
	struct bill_cursor_ent *e;

	if (seq == 0 || id[0] == '\0' || strlen(id) > BILL_CURSOR_ID_MAX)
		return false;
	e = bill_cursor_staged(c, st, id);
	if (e == NULL)
		return false;
	if (seq <= e->committed)
		return true;
	if (seq - e->committed > BILL_CURSOR_WINDOW)
		return false;
	bill_cursor_setbit(e, seq, true);
	bill_cursor_advance(e);
	return true;
}

bool
bill_cursor_skip(const struct bill_cursor *c, struct bill_cursor_stage *st,
    const char *id, uint64_t from, uint64_t to)
{
	struct bill_cursor_ent *e;
	uint64_t                s, top;

	if (from == 0 || to < from || id[0] == '\0' ||
	    strlen(id) > BILL_CURSOR_ID_MAX)
		return false;
	e = bill_cursor_staged(c, st, id);
	if (e == NULL)
		return false;
	if (to <= e->committed)
		return true;
	if (from <= e->committed)
		from = e->committed + 1;
	/* Bits stand for the seqs of (committed, committed + WINDOW]. */
	top = e->committed + BILL_CURSOR_WINDOW;
	if (from == e->committed + 1) {
		for (s = from; s <= to && s <= top; s++)
			bill_cursor_setbit(e, s, false);
		e->committed = to;
		bill_cursor_advance(e);
		return true;
	}
	for (s = from; s <= to && s <= top; s++)
		bill_cursor_setbit(e, s, true);
	return to <= top;
}

void
bill_cursor_commit(struct bill_cursor *c, struct bill_cursor_stage *st)
{
	struct bill_cursor_ent *e;
	size_t                  i;

	for (i = 0; i < st->n; i++) {
		e = bill_cursor_slot(c, st->e[i].id);
		memcpy(e->done, st->e[i].done, sizeof(e->done));
		e->committed = st->e[i].committed;
	}
	st->n = 0;
}
