/*
 * gw_spool.h: the gateway's crash-safe local spool of usage events.
 *
 * Every usage event is appended here (its packed USAGE_EVT body) before it
 * is published, and stays until billing confirms it (DESIGN section 4):
 * the sync client (gw_sync.c) resends what billing has not committed and
 * trims what it has.  A gateway killed with SIGKILL therefore loses no
 * event it had answered for.
 *
 * On disk, under the spool root, one directory per gateway instance:
 *
 *   <root>/<instance>/lock           flock()ed by the live owner
 *   <root>/<instance>/committed      billing's confirmed seq (decimal)
 *   <root>/<instance>/lost           seq ranges never spooled ("from to")
 *   <root>/<instance>/<seq>.seg      segments, named by their first seq
 *
 * A segment is a sequence of records, each
 *
 *   u32 len | u32 crc32c(seq, body) | u64 seq | body[len]   (little endian)
 *
 * appended and never rewritten.  On open every segment is scanned; a
 * record that is short, oversized or fails its CRC ends the segment (the
 * file is cut there: a torn tail after a crash), and records at or below
 * the committed seq are dropped.  A segment whose records are all
 * confirmed is deleted; appends go to a new segment once the current one
 * passes segment_bytes.
 *
 * Instance continuity: gw_spool_open() adopts an instance directory whose
 * lock nobody holds (a gateway that died), so the restarted gateway keeps
 * its instance id and numbers on from gw_spool_last_seq(); billing's
 * per-instance cursor then stays contiguous.  Otherwise it creates the
 * directory of the instance id it was given.  Two live gateways sharing
 * a root never share a directory: the flock proves ownership.
 *
 * Durability (enum gw_spool_fsync): ALWAYS fdatasync()s after each append
 * (on the caller's thread); INTERVAL leaves it to gw_spool_flush(), which
 * a background tick calls every few ms and which syncs outside the lock,
 * so appends do not wait for the disk; NEVER leaves it to the kernel.
 *
 * Bounds: the segments of an instance hold at most max_bytes; an append
 * beyond that is refused (-ERR_TOOBIG) and counted, never blocked.
 *
 * Threading: every function is thread-safe (one mutex); appends must come
 * in increasing seq order (the gateway numbers and appends on its I/O
 * thread).
 */
#ifndef GW_SPOOL_H
#define GW_SPOOL_H

#include "buf.h"
#include "compat.h"

#define GW_SPOOL_REC_MAX   (64 * 1024) /* largest body of one record */
#define GW_SPOOL_BATCH_MAX 512         /* records per gw_spool_take() */
#define GW_SPOOL_HDR       16          /* record header bytes */
#define GW_SPOOL_LOST_MAX  32          /* lost seq ranges remembered */

enum gw_spool_fsync {
	GW_SPOOL_FSYNC_ALWAYS,
	GW_SPOOL_FSYNC_INTERVAL,
	GW_SPOOL_FSYNC_NEVER,
};

struct gw_spool_opts {
	const char         *dir;      /* the root; made when missing */
	const char         *instance; /* id of a new instance directory */
	enum gw_spool_fsync fsync;
	int64_t             max_bytes;     /* of this instance's segments */
	int64_t             segment_bytes; /* roll a segment past this */
};

/* Counters (cumulative) and gauges of one spool. */
struct gw_spool_stats {
	uint64_t spooled;         /* appends that reached the file */
	uint64_t unspooled_full;  /* refused: max_bytes reached */
	uint64_t unspooled_error; /* refused: write failure */
	uint64_t trimmed;         /* records confirmed and dropped */
	uint64_t recovered;       /* pending records found on open */
	uint64_t cut;             /* segments cut at a bad record on open */
	uint64_t fsyncs;          /* fdatasync() calls */
	uint64_t pending_records; /* spooled, not yet confirmed */
	uint64_t pending_bytes;   /* bytes of the segments on disk */
	uint64_t committed;       /* highest seq billing confirmed */
	uint64_t lost;            /* seqs recorded lost (gw_spool_lost_add) */
	uint64_t lost_untracked;  /* lost seqs not recorded: no range left */
};

/* Seqs from..to (inclusive). */
struct gw_spool_range {
	uint64_t from, to;
};

/* Records handed out by gw_spool_take(), oldest first. */
struct gw_spool_batch {
	struct buf data; /* the bodies back to back */
	uint32_t   n;
	uint32_t   len[GW_SPOOL_BATCH_MAX];
	uint64_t   seq[GW_SPOOL_BATCH_MAX];
};

struct gw_spool;

/*
 * Opens (adopting an orphan instance directory when there is one) or
 * creates the spool described by o (borrowed for the call), recovering
 * every segment.  On success *out is owned, freed by gw_spool_free().
 * -ERR_INVAL for bad options, -ERR_IO when the directory, the lock or a
 * segment cannot be opened.
 */
int gw_spool_open(
    const struct gw_spool_opts *o, struct gw_spool **out) WARN_UNUSED;

/* Syncs what is pending, releases the lock and frees.  NULL is fine. */
void gw_spool_free(struct gw_spool *sp);

/* The instance id (adopted or new), borrowed for the spool's life. */
const char *gw_spool_instance(const struct gw_spool *sp);

/* Whether gw_spool_open() adopted an orphan directory. */
bool gw_spool_adopted(const struct gw_spool *sp);

/*
 * The highest seq this instance ever used that the spool knows of
 * (spooled or confirmed); the next event takes this plus one.
 */
uint64_t gw_spool_last_seq(const struct gw_spool *sp);

/*
 * Appends the packed body (borrowed, 1..GW_SPOOL_REC_MAX bytes) of the
 * event numbered seq, which must be above every seq appended before.
 * 0; -ERR_TOOBIG when the spool is full (counted unspooled_full);
 * -ERR_IO on a write failure (counted unspooled_error; the segment is
 * cut back, so no torn record stays behind); -ERR_INVAL for a bad seq
 * or length.
 */
int gw_spool_append(struct gw_spool *sp, uint64_t seq, const void *body,
    size_t len) WARN_UNUSED;

/*
 * Makes the appends so far durable (fdatasync of the current segment),
 * if any is pending.  The disk wait happens outside the lock.  0 or
 * -ERR_IO.
 */
int gw_spool_flush(struct gw_spool *sp) WARN_UNUSED;

/*
 * Fills b (whose data buffer the caller initialised with a cap) with up
 * to max_n (<= GW_SPOOL_BATCH_MAX) unconfirmed records, oldest first,
 * last handed out (or appended) at least min_age_ms before now_ms
 * (monotonic ms), stopping before b->data would pass max_bytes.  Records
 * found on open count as old.  The records taken are stamped now_ms, so
 * they come back only after min_age_ms again.  b is reset first.
 * 0 or -ERR_IO (a segment read failed).
 */
int gw_spool_take(struct gw_spool *sp, int64_t now_ms, int64_t min_age_ms,
    uint32_t max_n, size_t max_bytes, struct gw_spool_batch *b) WARN_UNUSED;

/*
 * Billing committed every seq up to committed: drops those records,
 * deletes the segments left without a pending record, and remembers
 * committed on disk.  A value at or below the known one changes nothing.
 * 0 or -ERR_IO (the remembered value could not be written; records are
 * dropped anyway).
 */
int gw_spool_trim(struct gw_spool *sp, uint64_t committed) WARN_UNUSED;

/*
 * The event numbered seq could not be appended (the spool full or
 * failing) and was only published: nothing will resend it, so billing
 * must not wait for it.  The seq joins the lost ranges (kept in
 * increasing order, contiguous seqs merged, in the file "lost" of the
 * instance directory so a restart keeps them; last_seq covers them), which
 * the sync declares to billing (gw_spool_lost()) until billing's committed
 * seq passes them (gw_spool_trim() drops them).  0; -ERR_TOOBIG when
 * GW_SPOOL_LOST_MAX ranges are held (counted lost_untracked: billing's
 * cursor then stops at that seq until the replay step); -ERR_INVAL for
 * seq 0.
 */
int gw_spool_lost_add(struct gw_spool *sp, uint64_t seq) WARN_UNUSED;

/* Copies up to max lost ranges, lowest first, into out; their count. */
size_t gw_spool_lost(
    struct gw_spool *sp, struct gw_spool_range *out, size_t max);

/* A consistent copy of the counters. */
void gw_spool_stats(struct gw_spool *sp, struct gw_spool_stats *st);

/* crc32c (Castagnoli) of data, continuing from crc (0 to start). */
uint32_t gw_spool_crc32c(uint32_t crc, const void *data, size_t len);

#endif /* GW_SPOOL_H */
