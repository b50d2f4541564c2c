/*
 * gw_spool_test.c: the usage spool: records come back as written, a torn
 * or corrupt tail is cut at the last good record, segments roll and go
 * once confirmed, an orphan instance is adopted (a held one is not), the
 * size cap refuses and counts, and each fsync policy syncs when it says.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "err.h"
#include "gw_spool.h"
#include "t.h"

static char t_root[256];

static void
t_rmtree(const char *path)
{
	DIR           *d = opendir(path);
	struct dirent *de;
	char           sub[1024];
	struct stat    st;

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			t_rmtree(sub);
		else
			(void)unlink(sub);
	}
	closedir(d);
	(void)rmdir(path);
}

/* A fresh spool root for one case. */
static void
t_fresh(void)
{
	if (t_root[0] != '\0')
		t_rmtree(t_root);
	snprintf(t_root, sizeof(t_root), "/tmp/gw_spool_test.XXXXXX");
	T_ASSERT(mkdtemp(t_root) != NULL);
}

static struct gw_spool_opts
t_opts(const char *inst, enum gw_spool_fsync policy)
{
	struct gw_spool_opts o;

	memset(&o, 0, sizeof(o));
	o.dir = t_root;
	o.instance = inst;
	o.fsync = policy;
	o.max_bytes = 1 << 20;
	o.segment_bytes = 1 << 16;
	return o;
}

/* Body of record seq: 50 bytes, recognisable. */
static void
t_body(uint64_t seq, char *b)
{
	memset(b, 'a' + (int)(seq % 26), 50);
	snprintf(b, 50, "event-%llu", (unsigned long long)seq);
}

static void
t_append(struct gw_spool *sp, uint64_t from, uint64_t to)
{
	char     b[50];
	uint64_t s;

	for (s = from; s <= to; s++) {
		t_body(s, b);
		T_OK(gw_spool_append(sp, s, b, sizeof(b)));
	}
}

/* Takes everything old enough and checks it is from..to in order. */
static void
t_expect(struct gw_spool *sp, uint64_t from, uint64_t to)
{
	struct gw_spool_batch *b = xcalloc(1, sizeof(*b));
	char                   want[50];
	uint32_t               i;

	buf_init(&b->data, 1 << 20);
	T_OK(gw_spool_take(
	    sp, now_mono_ms() + 3600000, 0, GW_SPOOL_BATCH_MAX, 1 << 20, b));
	T_EQ_INT(b->n, to >= from ? to - from + 1 : 0);
	for (i = 0; i < b->n; i++) {
		T_EQ_INT(b->seq[i], from + i);
		T_EQ_INT(b->len[i], 50);
		t_body(from + i, want);
		T_ASSERT(memcmp(b->data.data + 50 * i, want, 50) == 0);
	}
	buf_release(&b->data);
	free(b);
}

static int
t_count_segs(const char *inst)
{
	char           path[512];
	DIR           *d;
	struct dirent *de;
	int            n = 0;

	snprintf(path, sizeof(path), "%s/%s", t_root, inst);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

/* The path of the only (or last) segment of inst. */
static void
t_last_seg(const char *inst, char *out, size_t cap)
{
	char           path[512], best[256] = "";
	DIR           *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", t_root, inst);
	d = opendir(path);
	T_ASSERT(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, ".seg") != NULL &&
		    strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	T_ASSERT(best[0] != '\0');
	snprintf(out, cap, "%s/%s", path, best);
}

static void
test_crc32c_vector(void)
{
	/* The standard check value of CRC-32C. */
	T_EQ_INT(gw_spool_crc32c(0, "123456789", 9), 0xe3069283u);
	T_EQ_INT(gw_spool_crc32c(gw_spool_crc32c(0, "1234", 4), "56789", 5),
	    0xe3069283u);
}

static void
test_append_read_back_and_reopen(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_stats st;

	t_fresh();
	o = t_opts("gw-one", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_STR(gw_spool_instance(sp), "gw-one");
	T_ASSERT(!gw_spool_adopted(sp));
	T_EQ_INT(gw_spool_last_seq(sp), 0);
	t_append(sp, 1, 10);
	/* Out of order or empty appends are refused. */
	T_EQ_INT(gw_spool_append(sp, 10, "x", 1), -ERR_INVAL);
	T_EQ_INT(gw_spool_append(sp, 11, "x", 0), -ERR_INVAL);
	t_expect(sp, 1, 10);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.spooled, 10);
	T_EQ_INT(st.pending_records, 10);
	T_EQ_INT(st.pending_bytes, 10 * (GW_SPOOL_HDR + 50));
	gw_spool_free(sp);

	/* Reopened under another id: the orphan is adopted, seq goes on. */
	o = t_opts("gw-two", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_STR(gw_spool_instance(sp), "gw-one");
	T_ASSERT(gw_spool_adopted(sp));
	T_EQ_INT(gw_spool_last_seq(sp), 10);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.recovered, 10);
	T_EQ_INT(st.cut, 0);
	t_expect(sp, 1, 10);
	t_append(sp, 11, 12);
	t_expect(sp, 1, 12);
	gw_spool_free(sp);
}

static void
test_take_waits_resend_after(void)
{
	struct gw_spool_opts   o;
	struct gw_spool       *sp;
	struct gw_spool_batch *b = xcalloc(1, sizeof(*b));
	int64_t                now = now_mono_ms();

	t_fresh();
	o = t_opts("gw-age", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 5);
	buf_init(&b->data, 1 << 20);
	/* Just appended: not old enough for a 10 s resend age. */
	T_OK(gw_spool_take(sp, now, 10000, 100, 1 << 20, b));
	T_EQ_INT(b->n, 0);
	/* Later they are, at most max_n, oldest first. */
	T_OK(gw_spool_take(sp, now + 20000, 10000, 3, 1 << 20, b));
	T_EQ_INT(b->n, 3);
	T_EQ_INT(b->seq[0], 1);
	T_EQ_INT(b->seq[2], 3);
	/* Those three were just sent; the other two still are old. */
	T_OK(gw_spool_take(sp, now + 20000, 10000, 100, 1 << 20, b));
	T_EQ_INT(b->n, 2);
	T_EQ_INT(b->seq[0], 4);
	/* The byte budget stops a batch before it is passed. */
	T_OK(gw_spool_take(sp, now + 40000, 10000, 100, 120, b));
	T_EQ_INT(b->n, 2);
	T_EQ_INT(b->data.len, 100);
	buf_release(&b->data);
	free(b);
	gw_spool_free(sp);
}

static void
test_torn_tail_cut(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_stats st;
	char                  seg[600];
	struct stat           stb;

	t_fresh();
	o = t_opts("gw-torn", GW_SPOOL_FSYNC_ALWAYS);
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 5);
	gw_spool_free(sp);
	/* A crash in the middle of the fifth record's body. */
	t_last_seg("gw-torn", seg, sizeof(seg));
	T_OK(truncate(seg, 4 * (GW_SPOOL_HDR + 50) + GW_SPOOL_HDR + 20));
	T_OK(gw_spool_open(&o, &sp));
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.cut, 1);
	T_EQ_INT(st.recovered, 4);
	T_EQ_INT(gw_spool_last_seq(sp), 4);
	t_expect(sp, 1, 4);
	T_OK(stat(seg, &stb));
	T_EQ_INT(stb.st_size, 4 * (GW_SPOOL_HDR + 50));
	/* The spool goes on after the cut, in a new segment. */
	t_append(sp, 5, 6);
	t_expect(sp, 1, 6);
	gw_spool_free(sp);

	/* A header cut short is a torn tail too. */
	t_last_seg("gw-torn", seg, sizeof(seg));
	T_OK(truncate(seg, GW_SPOOL_HDR + 50 + 7));
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_INT(gw_spool_last_seq(sp), 5);
	t_expect(sp, 1, 5);
	gw_spool_free(sp);
}

static void
test_bad_crc_cut(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_stats st;
	char                  seg[600], c;
	int                   fd;
	off_t                 at = 2 * (GW_SPOOL_HDR + 50) + GW_SPOOL_HDR + 30;

	t_fresh();
	o = t_opts("gw-crc", GW_SPOOL_FSYNC_INTERVAL);
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 5);
	T_OK(gw_spool_flush(sp));
	gw_spool_free(sp);
	/* Flip one bit in the third record's body. */
	t_last_seg("gw-crc", seg, sizeof(seg));
	fd = open(seg, O_RDWR);
	T_ASSERT(fd >= 0);
	T_EQ_INT(pread(fd, &c, 1, at), 1);
	c ^= 0x10;
	T_EQ_INT(pwrite(fd, &c, 1, at), 1);
	close(fd);
	T_OK(gw_spool_open(&o, &sp));
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.cut, 1);
	T_EQ_INT(st.recovered, 2);
	T_EQ_INT(gw_spool_last_seq(sp), 2);
	t_expect(sp, 1, 2);
	gw_spool_free(sp);
}

static void
test_segments_roll_and_trim(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_stats st;

	t_fresh();
	o = t_opts("gw-roll", GW_SPOOL_FSYNC_INTERVAL);
	o.segment_bytes = 3 * (GW_SPOOL_HDR + 50); /* three records each */
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 10);
	T_EQ_INT(t_count_segs("gw-roll"), 4);
	/* Billing confirms 1..7: the first two segments go, not the third. */
	T_OK(gw_spool_trim(sp, 7));
	T_EQ_INT(t_count_segs("gw-roll"), 2);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.trimmed, 7);
	T_EQ_INT(st.pending_records, 3);
	T_EQ_INT(st.pending_bytes, 4 * (GW_SPOOL_HDR + 50));
	T_EQ_INT(st.committed, 7);
	t_expect(sp, 8, 10);
	/* An older confirmation changes nothing. */
	T_OK(gw_spool_trim(sp, 5));
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.committed, 7);
	gw_spool_free(sp);

	/* Reopened: records at or below committed are not pending. */
	T_OK(gw_spool_open(&o, &sp));
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.recovered, 3);
	t_expect(sp, 8, 10);
	/* All confirmed: no segment left, the last seq is remembered. */
	T_OK(gw_spool_trim(sp, 10));
	T_EQ_INT(t_count_segs("gw-roll"), 0);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.pending_records, 0);
	T_EQ_INT(st.pending_bytes, 0);
	gw_spool_free(sp);
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_INT(gw_spool_last_seq(sp), 10);
	t_expect(sp, 1, 0);
	t_append(sp, 11, 11);
	t_expect(sp, 11, 11);
	gw_spool_free(sp);
}

static void
test_locked_instance_not_adopted(void)
{
	struct gw_spool_opts o;
	struct gw_spool     *a, *b, *c, *d;

	t_fresh();
	o = t_opts("gw-a", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &a));
	t_append(a, 1, 3);
	/* A second live gateway on the same root gets its own directory. */
	o = t_opts("gw-b", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &b));
	T_EQ_STR(gw_spool_instance(b), "gw-b");
	T_ASSERT(!gw_spool_adopted(b));
	T_EQ_INT(gw_spool_last_seq(b), 0);
	/* gw-a dies: the next gateway adopts it (gw-b is still held). */
	gw_spool_free(a);
	o = t_opts("gw-c", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &c));
	T_EQ_STR(gw_spool_instance(c), "gw-a");
	T_ASSERT(gw_spool_adopted(c));
	T_EQ_INT(gw_spool_last_seq(c), 3);
	t_expect(c, 1, 3);
	/* Every directory held: a new one. */
	o = t_opts("gw-d", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &d));
	T_EQ_STR(gw_spool_instance(d), "gw-d");
	T_ASSERT(!gw_spool_adopted(d));
	gw_spool_free(b);
	gw_spool_free(c);
	gw_spool_free(d);
	/* Bad options are refused. */
	o = t_opts("../evil", GW_SPOOL_FSYNC_NEVER);
	T_EQ_INT(gw_spool_open(&o, &a), -ERR_INVAL);
}

static void
test_size_cap_counts_unspooled(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_stats st;
	char                  b[50];

	t_fresh();
	o = t_opts("gw-cap", GW_SPOOL_FSYNC_NEVER);
	o.max_bytes = 4 * (GW_SPOOL_HDR + 50) + 10;
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 4);
	t_body(5, b);
	T_EQ_INT(gw_spool_append(sp, 5, b, sizeof(b)), -ERR_TOOBIG);
	T_EQ_INT(gw_spool_append(sp, 6, b, sizeof(b)), -ERR_TOOBIG);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.unspooled_full, 2);
	T_EQ_INT(st.spooled, 4);
	/* Room again once billing confirmed some. */
	T_OK(gw_spool_trim(sp, 4));
	t_append(sp, 7, 8);
	t_expect(sp, 7, 8);
	gw_spool_free(sp);
}

/*
 * Seqs the full spool refused are recorded lost: contiguous ones merged,
 * kept across a restart (the adopted spool numbers on after them), and
 * dropped once billing's committed seq passes them.
 */
static void
test_lost_ranges(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_range r[GW_SPOOL_LOST_MAX + 1];
	struct gw_spool_stats st;
	char                  b[50];
	uint64_t              s;

	t_fresh();
	o = t_opts("gw-lost", GW_SPOOL_FSYNC_NEVER);
	o.max_bytes = 4 * (GW_SPOOL_HDR + 50) + 10;
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 0);
	t_append(sp, 1, 4);
	t_body(5, b);
	for (s = 5; s <= 7; s++) {
		T_EQ_INT(gw_spool_append(sp, s, b, sizeof(b)), -ERR_TOOBIG);
		T_OK(gw_spool_lost_add(sp, s));
	}
	T_OK(gw_spool_lost_add(sp, 9)); /* 8 went elsewhere: a new range */
	T_EQ_INT(gw_spool_lost_add(sp, 0), -ERR_INVAL);
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 2);
	T_EQ_INT(r[0].from * 10 + r[0].to, 57);
	T_EQ_INT(r[1].from * 10 + r[1].to, 99);
	T_EQ_INT(gw_spool_last_seq(sp), 9);
	gw_spool_free(sp);

	/* A restart keeps them; the next seq is above them. */
	o = t_opts("gw-lost-2", GW_SPOOL_FSYNC_NEVER);
	o.max_bytes = 4 * (GW_SPOOL_HDR + 50) + 10;
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_STR(gw_spool_instance(sp), "gw-lost");
	T_EQ_INT(gw_spool_last_seq(sp), 9);
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 2);
	T_EQ_INT(r[1].from * 10 + r[1].to, 99);
	/* Billing passed 6: the first range is clipped, then gone. */
	T_OK(gw_spool_trim(sp, 6));
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 2);
	T_EQ_INT(r[0].from * 10 + r[0].to, 77);
	T_OK(gw_spool_trim(sp, 8));
	T_EQ_INT(gw_spool_lost(sp, r, 1), 1);
	T_EQ_INT(r[0].from * 10 + r[0].to, 99);
	T_OK(gw_spool_lost_add(sp, 3)); /* at or below committed: nothing */
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 1);
	/* Beyond GW_SPOOL_LOST_MAX ranges a seq is counted, not recorded. */
	for (s = 0; s < GW_SPOOL_LOST_MAX - 1; s++)
		T_OK(gw_spool_lost_add(sp, 11 + 2 * s));
	T_EQ_INT(gw_spool_lost_add(sp, 200), -ERR_TOOBIG);
	T_EQ_INT(
	    gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX + 1), GW_SPOOL_LOST_MAX);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.lost, GW_SPOOL_LOST_MAX - 1); /* this process */
	T_EQ_INT(st.lost_untracked, 1);
	T_OK(gw_spool_trim(sp, 300));
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 0);
	gw_spool_free(sp);
	/* And the file says so after a restart. */
	o = t_opts("gw-lost-3", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &sp));
	T_EQ_STR(gw_spool_instance(sp), "gw-lost");
	T_EQ_INT(gw_spool_lost(sp, r, GW_SPOOL_LOST_MAX), 0);
	T_EQ_INT(gw_spool_last_seq(sp), 300);
	gw_spool_free(sp);
}

static void
test_fsync_policies(void)
{
	struct gw_spool_opts  o;
	struct gw_spool      *sp;
	struct gw_spool_stats st;

	t_fresh();
	o = t_opts("gw-always", GW_SPOOL_FSYNC_ALWAYS);
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 3);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.fsyncs, 3);
	gw_spool_free(sp);

	t_fresh();
	o = t_opts("gw-interval", GW_SPOOL_FSYNC_INTERVAL);
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 3);
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.fsyncs, 0);
	T_OK(gw_spool_flush(sp));
	T_OK(gw_spool_flush(sp)); /* nothing new: no second sync */
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.fsyncs, 1);
	t_append(sp, 4, 4);
	T_OK(gw_spool_flush(sp));
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.fsyncs, 2);
	gw_spool_free(sp);

	t_fresh();
	o = t_opts("gw-never", GW_SPOOL_FSYNC_NEVER);
	T_OK(gw_spool_open(&o, &sp));
	t_append(sp, 1, 3);
	T_OK(gw_spool_flush(sp));
	gw_spool_stats(sp, &st);
	T_EQ_INT(st.fsyncs, 0);
	t_expect(sp, 1, 3);
	gw_spool_free(sp);
	t_rmtree(t_root);
}

/* The sync side runs while the I/O side appends: nothing is lost. */
#define T_RACE_N 3000

struct t_race {
	struct gw_spool *sp;
	atomic_int       done;
	uint64_t         seen_max; /* highest seq the syncer took */
	int              bad;
};

static void *
t_race_syncer(void *arg)
{
	struct t_race         *r = arg;
	struct gw_spool_batch *b = xcalloc(1, sizeof(*b));
	uint64_t               next = 1;
	uint32_t               i;

	buf_init(&b->data, 1 << 20);
	while (next <= T_RACE_N) {
		if (gw_spool_take(
		        r->sp, now_mono_ms() + 3600000, 0, 64, 1 << 20, b) != 0)
			r->bad++;
		/* Everything pending comes back in order from the oldest. */
		for (i = 0; i < b->n; i++) {
			if (b->seq[i] != next + i || b->len[i] != 50)
				r->bad++;
		}
		if (b->n > 0) {
			next = b->seq[b->n - 1] + 1;
			r->seen_max = next - 1;
			/* Confirm half of what was taken, as billing lags. */
			if (gw_spool_trim(r->sp, b->seq[b->n / 2]) != 0)
				r->bad++;
			next = b->seq[b->n / 2] + 1;
		}
		if (gw_spool_flush(r->sp) != 0)
			r->bad++;
		if (atomic_load(&r->done) && b->n == 0)
			break;
	}
	buf_release(&b->data);
	free(b);
	return NULL;
}

static void
test_appends_race_with_sync(void)
{
	struct gw_spool_opts  o;
	struct gw_spool_stats st;
	struct t_race         r;
	pthread_t             th;
	char                  b[50];
	uint64_t              s;

	t_fresh();
	o = t_opts("gw-race", GW_SPOOL_FSYNC_INTERVAL);
	o.segment_bytes = 20 * (GW_SPOOL_HDR + 50);
	memset(&r, 0, sizeof(r));
	T_OK(gw_spool_open(&o, &r.sp));
	T_OK(pthread_create(&th, NULL, t_race_syncer, &r));
	for (s = 1; s <= T_RACE_N; s++) {
		t_body(s, b);
		T_OK(gw_spool_append(r.sp, s, b, sizeof(b)));
	}
	atomic_store(&r.done, 1);
	T_OK(pthread_join(th, NULL));
	T_EQ_INT(r.bad, 0);
	T_OK(gw_spool_trim(r.sp, T_RACE_N));
	gw_spool_stats(r.sp, &st);
	T_EQ_INT(st.spooled, T_RACE_N);
	T_EQ_INT(st.trimmed, T_RACE_N);
	T_EQ_INT(st.pending_records, 0);
	T_EQ_INT(st.pending_bytes, 0);
	T_EQ_INT(t_count_segs("gw-race"), 0);
	gw_spool_free(r.sp);
}

T_MAIN(T_CASE(test_crc32c_vector), T_CASE(test_append_read_back_and_reopen),
    T_CASE(test_take_waits_resend_after), T_CASE(test_torn_tail_cut),
    T_CASE(test_bad_crc_cut), T_CASE(test_segments_roll_and_trim),
    T_CASE(test_locked_instance_not_adopted),
    T_CASE(test_size_cap_counts_unspooled), T_CASE(test_lost_ranges),
    T_CASE(test_appends_race_with_sync), T_CASE(test_fsync_policies))
