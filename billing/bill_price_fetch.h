/*
 * bill_price_fetch.h: the price table downloaded from a URL, re-checked
 * against a remote sha256 and swapped into a struct bill_prices.
 *
 * The table in use is, in order of preference: the downloaded copy (when
 * price_url is set and a valid copy exists), else price_file, else the
 * bundled file.  bill_prices_reload() handles the last two; this module
 * handles the first, on top of it.
 *
 * The copy lives in dir/BILL_PF_FILE.  At start, bill_pfetch_load_local()
 * swaps it in when it exists and loads, so a restart without network
 * keeps the last good remote table.  Then a tick thread runs
 * bill_pfetch_check() every check_ms:
 *
 *   - with a sha256 URL: fetch it (at most BILL_PF_SHA_MAX bytes) and
 *     parse "<64 hex>[ whitespace name]"; when it equals the sha256 of
 *     the copy in use and the copy is younger than update_ms, stop here.
 *     Otherwise download the JSON (at most file_max bytes) and refuse it
 *     unless its sha256 is the announced one;
 *   - without (sha_url ""): download the JSON on every check and compare
 *     its sha256 with the copy's.
 *
 * A body equal to the copy in use only refreshes the copy's mtime.  A new
 * body is validated by loading it into a new table (a file that does not
 * parse or prices no model is refused), written atomically into dir (temp
 * file, fsync, rename, fsync of dir) and only then swapped in, so the
 * table in memory is always the one on disk.  Any refusal or transfer
 * error is counted (failed), logged, and leaves the current table alone;
 * the next check tries again.  Lookups keep using the old table until the
 * swap (bill_prices_swap()), so the ledger writer is never blocked.
 *
 * Transfers: libcurl, http and https only, TLS verification on, the
 * proxy from the environment (http_proxy, https_proxy, no_proxy), at most
 * 3 redirects, timeout_ms for each transfer; only status 200 is accepted.
 * Logs name the file ("sha256" or "table"), never a URL: a private
 * mirror's URL may carry a token.
 */
#ifndef BILL_PRICE_FETCH_H
#define BILL_PRICE_FETCH_H

#include "bill_price.h"
#include "compat.h"
#include "crypto.h"
#include "metrics.h"

#define BILL_PF_FILE    "prices.json" /* the copy's name in dir */
#define BILL_PF_SHA_MAX 4096          /* bytes of a sha256 file */
#define BILL_PF_HEX_LEN 64

struct bill_pfetch_cfg {
	const char *url;     /* the JSON; http:// or https:// */
	const char *sha_url; /* its sha256 file; "" or NULL: none */
	const char *dir;     /* the copy's directory; created when missing */
	size_t      file_max;
	int64_t     check_ms;   /* period of bill_pfetch_check(), >= 1 */
	int64_t     update_ms;  /* re-download a copy older than this */
	int64_t     timeout_ms; /* per transfer */
	/* Borrowed, may be NULL; they must outlive the fetcher. */
	struct met_counter *ok;     /* tables swapped in */
	struct met_counter *failed; /* checks that failed or were refused */
	struct met_gauge   *models; /* models in the table swapped in */
};

struct bill_pfetch;

/*
 * Parses a sha256 file of len bytes (borrowed): optional leading
 * whitespace, exactly 64 hex digits (either case), then end of text or
 * whitespace (a file name may follow).  Writes 64 lowercase hex digits
 * and a NUL into out.  -ERR_TOOBIG above BILL_PF_SHA_MAX bytes,
 * -ERR_PROTO for anything else.
 */
int bill_pfetch_sha_parse(
    const char *text, size_t len, char out[BILL_PF_HEX_LEN + 1]) WARN_UNUSED;

/*
 * A fetcher for p (borrowed; it must outlive the fetcher).  The strings
 * of cfg are copied.  Nothing runs until bill_pfetch_start().  Free with
 * bill_pfetch_free().
 */
struct bill_pfetch *bill_pfetch_new(
    struct bill_prices *p, const struct bill_pfetch_cfg *cfg);

/*
 * Swaps in the copy in dir when it loads.  0 on swap (st, may be NULL,
 * gets its counts), -ERR_NOTFOUND when there is no copy, or the load's
 * error (the copy is then ignored and the next check replaces it).
 * Call before bill_pfetch_start().
 */
int bill_pfetch_load_local(
    struct bill_pfetch *f, struct bill_price_stats *st) WARN_UNUSED;

/*
 * One check as described above, blocking (up to two transfers).
 * 1 when a new table was swapped in, 0 when nothing changed, or an
 * error: -ERR_CURL/-ERR_TIMEDOUT (transfer), -ERR_UNAVAIL (HTTP status
 * other than 200), -ERR_TOOBIG, -ERR_PROTO (bad sha256 file, or a table
 * that does not parse), -ERR_NOTFOUND (no model priced), -ERR_CRYPTO
 * (body differs from the announced sha256), -ERR_IO (storing the copy),
 * -ERR_CANCELED (stopping).  Not concurrently with the tick thread.
 */
int bill_pfetch_check(struct bill_pfetch *f) WARN_UNUSED;

/*
 * Starts the tick thread: a check at once, then every check_ms.
 * 0 or the error of tick_start().
 */
int bill_pfetch_start(struct bill_pfetch *f) WARN_UNUSED;

/*
 * The sha256 (lowercase hex) of the copy in use, "" when none.  Writes
 * into out; the tick thread may change it at any time.
 */
void bill_pfetch_sha(struct bill_pfetch *f, char out[BILL_PF_HEX_LEN + 1]);

/*
 * Stops the thread (aborting a transfer in flight) and frees.  NULL is
 * fine.  The table swapped in stays in p.
 */
void bill_pfetch_free(struct bill_pfetch *f);

#endif /* BILL_PRICE_FETCH_H */
