/*
 * gw_spool.c: the usage spool (see gw_spool.h for the format and rules).
 *
 * In memory the spool keeps an index of its pending records, oldest first
 * (seq, segment, offset, length, when last handed out), and the list of
 * its segments, oldest first, the last one taking appends.  Bodies stay
 * on disk and are read back only to be resent.  One mutex covers all of
 * it; the only slow calls made under it are the writes themselves, an
 * fdatasync() in the ALWAYS policy, and the rare segment roll.
 */
#include "gw_spool.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "svc.h"

#define GW_SPOOL_ID_MAX     64
#define GW_SPOOL_PATH_MAX   4096
#define GW_SPOOL_NEVER_SENT (INT64_MIN / 2)
#define GW_SPOOL_SEGS_MAX   100000 /* segment files scanned on open */

struct gw_spool_seg {
	struct gw_spool_seg *next;
	uint64_t             first_seq; /* the file name */
	int                  fd;
	uint64_t             size;    /* bytes of valid records */
	uint64_t             pending; /* of its records in the index */
};

struct gw_spool_rec {
	struct gw_spool_seg *seg;
	uint64_t             seq;
	uint64_t             off; /* of the body in the segment */
	int64_t              sent_ms;
	uint32_t             len;
};

struct gw_spool {
	pthread_mutex_t       mu;
	pthread_mutex_t       trim_mu;                /* one trim at a time */
	char                  dir[GW_SPOOL_PATH_MAX]; /* the instance's */
	char                  instance[GW_SPOOL_ID_MAX + 1];
	int                   lock_fd;
	bool                  adopted;
	enum gw_spool_fsync   fsync;
	int64_t               max_bytes;
	int64_t               segment_bytes;
	struct gw_spool_seg  *segs;   /* oldest first */
	struct gw_spool_seg  *active; /* the last segment, or NULL */
	struct gw_spool_rec  *recs;   /* pending: recs[head..n) */
	size_t                head, n, cap;
	uint64_t              last_seq;
	bool                  dirty; /* appended since the last sync */
	uint8_t              *scratch;
	struct gw_spool_range lost[GW_SPOOL_LOST_MAX]; /* ascending */
	size_t                n_lost;
	struct gw_spool_stats st;
};

/* ---- crc32c ---------------------------------------------------------- */

static uint32_t       gw_spool_crc_tab[256];
static pthread_once_t gw_spool_crc_once = PTHREAD_ONCE_INIT;

static void
gw_spool_crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		gw_spool_crc_tab[i] = c;
	}
}

uint32_t
gw_spool_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	(void)pthread_once(&gw_spool_crc_once, gw_spool_crc_init);
	crc = ~crc;
	while (len-- > 0)
		crc = gw_spool_crc_tab[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void
gw_spool_put32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
gw_spool_put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
gw_spool_get(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int      i;

	for (i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t
gw_spool_rec_crc(uint64_t seq, const void *body, size_t len)
{
	uint8_t s[8];

	gw_spool_put64(s, seq);
	return gw_spool_crc32c(gw_spool_crc32c(0, s, 8), body, len);
}

/* ---- files ------------------------------------------------------------ */

static int
gw_spool_path(const struct gw_spool *sp, const char *name, char *out)
{
	int n = snprintf(out, GW_SPOOL_PATH_MAX, "%s/%s", sp->dir, name);

	return n > 0 && n < GW_SPOOL_PATH_MAX ? 0 : -ERR_TOOBIG;
}

static void
gw_spool_seg_name(uint64_t first_seq, char *out, size_t cap)
{
	snprintf(out, cap, "%020" PRIu64 ".seg", first_seq);
}

static void
gw_spool_fsync_dir(const struct gw_spool *sp)
{
	int fd;

	if (sp->fsync == GW_SPOOL_FSYNC_NEVER)
		return;
	fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)fsync(fd);
	close(fd);
}

static bool
gw_spool_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > GW_SPOOL_ID_MAX || s[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		        c == '.'))
			return false;
	}
	return true;
}

/* Opens and locks <root>/<id>/lock; 0, -ERR_BUSY (held) or -ERR_IO. */
static int
gw_spool_lock(const char *root, const char *id, int *fdp)
{
	char path[GW_SPOOL_PATH_MAX];
	int  fd, n;

	n = snprintf(path, sizeof(path), "%s/%s/lock", root, id);
	if (n <= 0 || n >= (int)sizeof(path))
		return -ERR_TOOBIG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -ERR_IO;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(fd);
		return e == EWOULDBLOCK ? -ERR_BUSY : -ERR_IO;
	}
	*fdp = fd;
	return 0;
}

/* Adopts the first instance directory nobody holds; -ERR_NOTFOUND if none. */
static int
gw_spool_adopt(struct gw_spool *sp, const char *root)
{
	DIR           *d = opendir(root);
	struct dirent *de;
	struct stat    stb;
	char           path[GW_SPOOL_PATH_MAX];
	int            rv = -ERR_NOTFOUND, fd;

	if (d == NULL)
		return -ERR_IO;
	while ((de = readdir(d)) != NULL) {
		if (!gw_spool_id_ok(de->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", root, de->d_name) >=
		        (int)sizeof(path) ||
		    stat(path, &stb) != 0 || !S_ISDIR(stb.st_mode))
			continue;
		if (gw_spool_lock(root, de->d_name, &fd) != 0)
			continue;
		sp->lock_fd = fd;
		(void)str_copy(sp->instance, sizeof(sp->instance), de->d_name);
		sp->adopted = true;
		rv = 0;
		break;
	}
	closedir(d);
	return rv;
}

static uint64_t
gw_spool_read_committed(const struct gw_spool *sp)
{
	char     path[GW_SPOOL_PATH_MAX], txt[32];
	FILE    *f;
	uint64_t v = 0;
	size_t   n;

	if (gw_spool_path(sp, "committed", path) != 0)
		return 0;
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	n = fread(txt, 1, sizeof(txt) - 1, f);
	fclose(f);
	txt[n] = '\0';
	if (sscanf(txt, "%" SCNu64, &v) != 1)
		v = 0;
	return v;
}

/* Replaces the file name with txt[0..n) (tmp + rename); 0 or -ERR_x. */
static int
gw_spool_write_file(const struct gw_spool *sp, const char *name,
    const char *txt, size_t n, bool sync)
{
	char    path[GW_SPOOL_PATH_MAX], tmp[GW_SPOOL_PATH_MAX], tname[64];
	int     fd, rv = 0;
	ssize_t w;

	snprintf(tname, sizeof(tname), "%s.tmp", name);
	if (gw_spool_path(sp, name, path) != 0 ||
	    gw_spool_path(sp, tname, tmp) != 0)
		return -ERR_TOOBIG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -ERR_IO;
	w = write(fd, txt, n);
	if (w < 0 || (size_t)w != n)
		rv = -ERR_IO;
	if (rv == 0 && sync && fdatasync(fd) != 0)
		rv = -ERR_IO;
	close(fd);
	if (rv == 0 && rename(tmp, path) != 0)
		rv = -ERR_IO;
	return rv;
}

static int
gw_spool_write_committed(const struct gw_spool *sp, uint64_t committed)
{
	char txt[32];
	int  n;

	n = snprintf(txt, sizeof(txt), "%" PRIu64 "\n", committed);
	return gw_spool_write_file(
	    sp, "committed", txt, (size_t)n, sp->fsync != GW_SPOOL_FSYNC_NEVER);
}

/*
 * The lost ranges, one "from to" line each, rewritten whenever they
 * change; called locked.  Synced only with spool_fsync=always: it is
 * written on the request path while the spool refuses appends.
 */
static int
gw_spool_write_lost(const struct gw_spool *sp)
{
	char   txt[GW_SPOOL_LOST_MAX * 44 + 1];
	size_t i, n = 0;

	for (i = 0; i < sp->n_lost; i++)
		n += (size_t)snprintf(txt + n, sizeof(txt) - n,
		    "%" PRIu64 " %" PRIu64 "\n", sp->lost[i].from,
		    sp->lost[i].to);
	return gw_spool_write_file(
	    sp, "lost", txt, n, sp->fsync == GW_SPOOL_FSYNC_ALWAYS);
}

/* Loads the lost ranges above the committed seq (at open). */
static void
gw_spool_read_lost(struct gw_spool *sp)
{
	char     path[GW_SPOOL_PATH_MAX];
	FILE    *f;
	uint64_t from, to;

	if (gw_spool_path(sp, "lost", path) != 0)
		return;
	f = fopen(path, "re");
	if (f == NULL)
		return;
	while (sp->n_lost < GW_SPOOL_LOST_MAX &&
	    fscanf(f, "%" SCNu64 " %" SCNu64, &from, &to) == 2) {
		if (from == 0 || to < from || to <= sp->st.committed)
			continue;
		if (from <= sp->st.committed)
			from = sp->st.committed + 1;
		sp->lost[sp->n_lost].from = from;
		sp->lost[sp->n_lost].to = to;
		sp->n_lost++;
		if (sp->last_seq < to)
			sp->last_seq = to;
	}
	fclose(f);
}

/* Drops the lost ranges at or below committed; called locked. */
static void
gw_spool_prune_lost(struct gw_spool *sp, uint64_t committed)
{
	size_t i, k = 0;
	bool   changed = false;

	for (i = 0; i < sp->n_lost; i++) {
		struct gw_spool_range r = sp->lost[i];

		if (r.to <= committed) {
			changed = true;
			continue;
		}
		if (r.from <= committed) {
			r.from = committed + 1;
			changed = true;
		}
		sp->lost[k++] = r;
	}
	sp->n_lost = k;
	if (changed && gw_spool_write_lost(sp) != 0)
		log_warn("gw.spool_lost_write_failed");
}

/* ---- index ------------------------------------------------------------ */

static void
gw_spool_push(struct gw_spool *sp, struct gw_spool_seg *seg, uint64_t seq,
    uint64_t off, uint32_t len, int64_t sent_ms)
{
	struct gw_spool_rec *r;

	if (sp->n == sp->cap) {
		if (sp->head > 0) {
			memmove(sp->recs, sp->recs + sp->head,
			    (sp->n - sp->head) * sizeof(*sp->recs));
			sp->n -= sp->head;
			sp->head = 0;
		}
		if (sp->n == sp->cap) {
			sp->cap = sp->cap ? sp->cap * 2 : 1024;
			sp->recs =
			    xrealloc(sp->recs, sp->cap * sizeof(*sp->recs));
		}
	}
	r = &sp->recs[sp->n++];
	r->seg = seg;
	r->seq = seq;
	r->off = off;
	r->len = len;
	r->sent_ms = sent_ms;
	seg->pending++;
	sp->st.pending_records++;
}

static struct gw_spool_seg *
gw_spool_seg_add(struct gw_spool *sp, uint64_t first_seq, int fd)
{
	struct gw_spool_seg *s = xcalloc(1, sizeof(*s)), **pp = &sp->segs;

	s->first_seq = first_seq;
	s->fd = fd;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = s;
	return s;
}

/* Deletes the segments without a pending record. */
static void
gw_spool_reap(struct gw_spool *sp)
{
	struct gw_spool_seg **pp = &sp->segs, *s;
	char                  name[32], path[GW_SPOOL_PATH_MAX];

	while ((s = *pp) != NULL) {
		if (s->pending > 0) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		if (s == sp->active) {
			sp->active = NULL;
			sp->dirty = false;
		}
		gw_spool_seg_name(s->first_seq, name, sizeof(name));
		if (gw_spool_path(sp, name, path) == 0 && unlink(path) != 0)
			log_warn("gw.spool_unlink_failed",
			    LOG_STR("file", name), LOG_I64("errno", errno));
		close(s->fd);
		sp->st.pending_bytes -= s->size;
		free(s);
	}
}

/* ---- recovery --------------------------------------------------------- */

/*
 * Reads the records of one segment into the index, cutting the file at
 * the first bad one.
 */
static void
gw_spool_scan(struct gw_spool *sp, struct gw_spool_seg *seg, const char *name)
{
	uint8_t     h[GW_SPOOL_HDR];
	uint64_t    off = 0, seq;
	uint32_t    len, crc;
	struct stat stb;
	ssize_t     n;

	for (;;) {
		n = pread(seg->fd, h, sizeof(h), (off_t)off);
		if (n == 0)
			break;
		if (n != (ssize_t)sizeof(h))
			goto bad;
		len = (uint32_t)gw_spool_get(h, 4);
		crc = (uint32_t)gw_spool_get(h + 4, 4);
		seq = gw_spool_get(h + 8, 8);
		if (len == 0 || len > GW_SPOOL_REC_MAX || seq <= sp->last_seq)
			goto bad;
		n = pread(seg->fd, sp->scratch, len, (off_t)(off + sizeof(h)));
		if (n != (ssize_t)len ||
		    gw_spool_rec_crc(seq, sp->scratch, len) != crc)
			goto bad;
		sp->last_seq = seq;
		if (seq > sp->st.committed) {
			gw_spool_push(sp, seg, seq, off + sizeof(h), len,
			    GW_SPOOL_NEVER_SENT);
			sp->st.recovered++;
		}
		off += sizeof(h) + len;
	}
	seg->size = off;
	sp->st.pending_bytes += off;
	return;
bad:
	seg->size = off;
	sp->st.pending_bytes += off;
	if (fstat(seg->fd, &stb) == 0 && (uint64_t)stb.st_size > off) {
		log_warn("gw.spool_segment_cut", LOG_STR("file", name),
		    LOG_U64("at", off),
		    LOG_U64("dropped_bytes", (uint64_t)stb.st_size - off));
		sp->st.cut++;
		if (ftruncate(seg->fd, (off_t)off) != 0)
			log_warn("gw.spool_truncate_failed",
			    LOG_STR("file", name), LOG_I64("errno", errno));
	}
}

static int
gw_spool_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool
gw_spool_seg_parse(const char *name, uint64_t *first)
{
	size_t i;

	if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0)
		return false;
	for (i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
	}
	return sscanf(name, "%20" SCNu64, first) == 1;
}

static int
gw_spool_recover(struct gw_spool *sp)
{
	DIR           *d = opendir(sp->dir);
	struct dirent *de;
	uint64_t      *firsts = NULL, first;
	size_t         n = 0, cap = 0, i;
	char           name[32], path[GW_SPOOL_PATH_MAX];
	int            fd, rv = 0;

	if (d == NULL)
		return -ERR_IO;
	while ((de = readdir(d)) != NULL && n < GW_SPOOL_SEGS_MAX) {
		if (!gw_spool_seg_parse(de->d_name, &first))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			firsts = xrealloc(firsts, cap * sizeof(*firsts));
		}
		firsts[n++] = first;
	}
	closedir(d);
	if (n > 0)
		qsort(firsts, n, sizeof(*firsts), gw_spool_cmp_u64);
	for (i = 0; i < n; i++) {
		gw_spool_seg_name(firsts[i], name, sizeof(name));
		if (gw_spool_path(sp, name, path) != 0) {
			rv = -ERR_TOOBIG;
			break;
		}
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			rv = -ERR_IO;
			break;
		}
		gw_spool_scan(sp, gw_spool_seg_add(sp, firsts[i], fd), name);
	}
	free(firsts);
	return rv;
}

/* ---- life cycle ------------------------------------------------------- */

int
gw_spool_open(const struct gw_spool_opts *o, struct gw_spool **out)
{
	struct gw_spool *sp;
	int              rv, n;

	if (o->dir == NULL || o->dir[0] == '\0' || o->instance == NULL ||
	    !gw_spool_id_ok(o->instance) || o->max_bytes <= 0 ||
	    o->segment_bytes <= 0)
		return -ERR_INVAL;
	rv = svc_mkdirs(o->dir);
	if (rv != 0)
		return rv;
	sp = xcalloc(1, sizeof(*sp));
	pthread_mutex_init(&sp->mu, NULL);
	pthread_mutex_init(&sp->trim_mu, NULL);
	sp->lock_fd = -1;
	sp->fsync = o->fsync;
	sp->max_bytes = o->max_bytes;
	sp->segment_bytes = o->segment_bytes;
	sp->scratch = xmalloc(GW_SPOOL_REC_MAX);
	rv = gw_spool_adopt(sp, o->dir);
	if (rv == -ERR_NOTFOUND) {
		(void)str_copy(sp->instance, sizeof(sp->instance), o->instance);
		n = snprintf(
		    sp->dir, sizeof(sp->dir), "%s/%s", o->dir, sp->instance);
		rv = n > 0 && n < (int)sizeof(sp->dir) ? svc_mkdirs(sp->dir)
		                                       : -ERR_TOOBIG;
		if (rv == 0)
			rv = gw_spool_lock(o->dir, sp->instance, &sp->lock_fd);
	} else if (rv == 0) {
		n = snprintf(
		    sp->dir, sizeof(sp->dir), "%s/%s", o->dir, sp->instance);
		if (n <= 0 || n >= (int)sizeof(sp->dir))
			rv = -ERR_TOOBIG;
	}
	if (rv != 0)
		goto fail;
	sp->st.committed = gw_spool_read_committed(sp);
	sp->last_seq = 0;
	rv = gw_spool_recover(sp);
	if (rv != 0)
		goto fail;
	if (sp->last_seq < sp->st.committed)
		sp->last_seq = sp->st.committed;
	gw_spool_read_lost(sp);
	gw_spool_reap(sp);
	log_info("gw.spool_opened", LOG_STR("instance", sp->instance),
	    LOG_BOOL("adopted", sp->adopted), LOG_U64("last_seq", sp->last_seq),
	    LOG_U64("committed", sp->st.committed),
	    LOG_U64("pending", sp->st.pending_records),
	    LOG_U64("bytes", sp->st.pending_bytes));
	*out = sp;
	return 0;
fail:
	gw_spool_free(sp);
	return rv;
}

void
gw_spool_free(struct gw_spool *sp)
{
	struct gw_spool_seg *s;

	if (sp == NULL)
		return;
	if (sp->dirty && sp->active != NULL &&
	    sp->fsync != GW_SPOOL_FSYNC_NEVER)
		(void)fdatasync(sp->active->fd);
	while ((s = sp->segs) != NULL) {
		sp->segs = s->next;
		close(s->fd);
		free(s);
	}
	if (sp->lock_fd >= 0)
		close(sp->lock_fd); /* releases the flock */
	free(sp->recs);
	free(sp->scratch);
	pthread_mutex_destroy(&sp->trim_mu);
	pthread_mutex_destroy(&sp->mu);
	free(sp);
}

const char *
gw_spool_instance(const struct gw_spool *sp)
{
	return sp->instance;
}

bool
gw_spool_adopted(const struct gw_spool *sp)
{
	return sp->adopted;
}

uint64_t
gw_spool_last_seq(const struct gw_spool *sp)
{
	return sp->last_seq;
}

/* ---- append ----------------------------------------------------------- */

/* Opens a new segment for seq; called locked.  0 or -ERR_IO. */
static int
gw_spool_roll(struct gw_spool *sp, uint64_t seq)
{
	char name[32], path[GW_SPOOL_PATH_MAX];
	int  fd;

	if (sp->active != NULL && sp->dirty &&
	    sp->fsync != GW_SPOOL_FSYNC_NEVER) {
		if (fdatasync(sp->active->fd) == 0)
			sp->st.fsyncs++;
	}
	sp->active = NULL;
	sp->dirty = false;
	gw_spool_seg_name(seq, name, sizeof(name));
	if (gw_spool_path(sp, name, path) != 0)
		return -ERR_TOOBIG;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_warn("gw.spool_segment_failed", LOG_STR("file", name),
		    LOG_I64("errno", errno));
		return -ERR_IO;
	}
	sp->active = gw_spool_seg_add(sp, seq, fd);
	gw_spool_fsync_dir(sp);
	return 0;
}

static int
gw_spool_write(
    struct gw_spool *sp, uint64_t seq, const void *body, uint32_t len)
{
	struct gw_spool_seg *seg = sp->active;
	uint8_t              h[GW_SPOOL_HDR];
	struct iovec         iov[2];
	ssize_t              n;

	gw_spool_put32(h, len);
	gw_spool_put32(h + 4, gw_spool_rec_crc(seq, body, len));
	gw_spool_put64(h + 8, seq);
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)(uintptr_t)body;
	iov[1].iov_len = len;
	n = pwritev(seg->fd, iov, 2, (off_t)seg->size);
	if (n == (ssize_t)(sizeof(h) + len))
		return 0;
	log_warn("gw.spool_write_failed", LOG_U64("seq", seq),
	    LOG_I64("errno", n < 0 ? errno : 0));
	/* Cut the partial record; if even that fails, leave the segment. */
	if (ftruncate(seg->fd, (off_t)seg->size) != 0) {
		sp->active = NULL;
		sp->dirty = false;
	}
	return -ERR_IO;
}

int
gw_spool_append(struct gw_spool *sp, uint64_t seq, const void *body, size_t len)
{
	uint64_t reclen = GW_SPOOL_HDR + len;
	int      rv = 0;

	if (len == 0 || len > GW_SPOOL_REC_MAX)
		return -ERR_INVAL;
	pthread_mutex_lock(&sp->mu);
	if (seq <= sp->last_seq) {
		rv = -ERR_INVAL;
		goto out;
	}
	if (sp->st.pending_bytes + reclen > (uint64_t)sp->max_bytes) {
		sp->st.unspooled_full++;
		rv = -ERR_TOOBIG;
		goto out;
	}
	if (sp->active == NULL ||
	    (sp->active->size > 0 &&
	        sp->active->size + reclen > (uint64_t)sp->segment_bytes))
		rv = gw_spool_roll(sp, seq);
	if (rv == 0)
		rv = gw_spool_write(sp, seq, body, (uint32_t)len);
	if (rv != 0) {
		sp->st.unspooled_error++;
		goto out;
	}
	gw_spool_push(sp, sp->active, seq, sp->active->size + GW_SPOOL_HDR,
	    (uint32_t)len, now_mono_ms());
	sp->active->size += reclen;
	sp->st.pending_bytes += reclen;
	sp->st.spooled++;
	sp->last_seq = seq;
	if (sp->fsync == GW_SPOOL_FSYNC_ALWAYS) {
		if (fdatasync(sp->active->fd) == 0)
			sp->st.fsyncs++;
		else
			log_warn(
			    "gw.spool_fsync_failed", LOG_I64("errno", errno));
	} else if (sp->fsync == GW_SPOOL_FSYNC_INTERVAL) {
		sp->dirty = true;
	}
out:
	pthread_mutex_unlock(&sp->mu);
	return rv;
}

int
gw_spool_flush(struct gw_spool *sp)
{
	int fd = -1, rv = 0;

	pthread_mutex_lock(&sp->mu);
	if (sp->dirty && sp->active != NULL) {
		fd = dup(sp->active->fd);
		if (fd < 0)
			rv = -ERR_IO;
		else
			sp->dirty = false;
	}
	pthread_mutex_unlock(&sp->mu);
	if (fd < 0)
		return rv;
	if (fdatasync(fd) != 0)
		rv = -ERR_IO;
	close(fd);
	pthread_mutex_lock(&sp->mu);
	if (rv == 0)
		sp->st.fsyncs++;
	else
		sp->dirty = true;
	pthread_mutex_unlock(&sp->mu);
	return rv;
}

/* ---- resend and trim -------------------------------------------------- */

int
gw_spool_take(struct gw_spool *sp, int64_t now_ms, int64_t min_age_ms,
    uint32_t max_n, size_t max_bytes, struct gw_spool_batch *b)
{
	size_t i;
	int    rv = 0;

	buf_reset(&b->data);
	b->n = 0;
	if (max_n > GW_SPOOL_BATCH_MAX)
		max_n = GW_SPOOL_BATCH_MAX;
	pthread_mutex_lock(&sp->mu);
	for (i = sp->head; i < sp->n && b->n < max_n; i++) {
		struct gw_spool_rec *r = &sp->recs[i];

		if (r->sent_ms > now_ms - min_age_ms)
			continue;
		if (b->data.len + r->len > max_bytes)
			break;
		if (pread(r->seg->fd, sp->scratch, r->len, (off_t)r->off) !=
		    (ssize_t)r->len) {
			rv = -ERR_IO;
			break;
		}
		if (buf_add(&b->data, sp->scratch, r->len) != 0)
			break;
		b->len[b->n] = r->len;
		b->seq[b->n] = r->seq;
		b->n++;
		r->sent_ms = now_ms;
	}
	pthread_mutex_unlock(&sp->mu);
	return rv;
}

int
gw_spool_trim(struct gw_spool *sp, uint64_t committed)
{
	uint64_t known;
	int      rv = 0;

	pthread_mutex_lock(&sp->trim_mu);
	pthread_mutex_lock(&sp->mu);
	known = sp->st.committed;
	pthread_mutex_unlock(&sp->mu);
	if (committed <= known)
		goto out;
	/*
	 * Remember it before deleting anything: it keeps the last seq once
	 * no segment is left.  The disk write happens outside the main lock,
	 * so appends do not wait for it.
	 */
	rv = gw_spool_write_committed(sp, committed);
	if (rv != 0)
		log_warn("gw.spool_committed_write_failed", LOG_ERR(rv));
	pthread_mutex_lock(&sp->mu);
	sp->st.committed = committed;
	while (sp->head < sp->n && sp->recs[sp->head].seq <= committed) {
		sp->recs[sp->head].seg->pending--;
		sp->head++;
		sp->st.trimmed++;
		sp->st.pending_records--;
	}
	if (sp->head == sp->n)
		sp->head = sp->n = 0;
	gw_spool_prune_lost(sp, committed);
	gw_spool_reap(sp);
	pthread_mutex_unlock(&sp->mu);
out:
	pthread_mutex_unlock(&sp->trim_mu);
	return rv;
}

int
gw_spool_lost_add(struct gw_spool *sp, uint64_t seq)
{
	struct gw_spool_range *last;
	int                    rv = 0;

	if (seq == 0)
		return -ERR_INVAL;
	pthread_mutex_lock(&sp->mu);
	if (seq <= sp->st.committed)
		goto out; /* billing has it already */
	if (sp->last_seq < seq)
		sp->last_seq = seq;
	last = sp->n_lost > 0 ? &sp->lost[sp->n_lost - 1] : NULL;
	if (last != NULL && seq >= last->from && seq <= last->to)
		goto out;
	if (last != NULL && seq == last->to + 1) {
		last->to = seq;
	} else if (sp->n_lost < GW_SPOOL_LOST_MAX &&
	    (last == NULL || seq > last->to)) {
		sp->lost[sp->n_lost].from = seq;
		sp->lost[sp->n_lost].to = seq;
		sp->n_lost++;
	} else {
		sp->st.lost_untracked++;
		rv = -ERR_TOOBIG;
		goto out;
	}
	sp->st.lost++;
	if (gw_spool_write_lost(sp) != 0)
		log_warn("gw.spool_lost_write_failed");
out:
	pthread_mutex_unlock(&sp->mu);
	return rv;
}

size_t
gw_spool_lost(struct gw_spool *sp, struct gw_spool_range *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&sp->mu);
	n = sp->n_lost < max ? sp->n_lost : max;
	memcpy(out, sp->lost, n * sizeof(*out));
	pthread_mutex_unlock(&sp->mu);
	return n;
}

void
gw_spool_stats(struct gw_spool *sp, struct gw_spool_stats *st)
{
	pthread_mutex_lock(&sp->mu);
	*st = sp->st;
	pthread_mutex_unlock(&sp->mu);
}
