/*
 * sched_refresh.h: OAuth token refresh of Claude (anthropic, type oauth)
 * accounts.
 *
 * A periodic job (tick.h, every token_refresh_interval) lists the active
 * anthropic oauth accounts (setup-token accounts never: their token lives
 * a year and has no refresh token), opens their credentials and refreshes
 * those whose expires_at falls within token_refresh_before.  One refresh:
 *
 *   1. take the Redis lock <redis_prefix>refresh_lock:<id> (SET NX PX with
 *      a unique value), so that one replica refreshes an account at a
 *      time; a lock held elsewhere means "skip, someone is on it";
 *   2. re-read the row inside the lock: another replica may have just
 *      refreshed it, and then there is nothing to do;
 *   3. POST {grant_type, refresh_token, client_id} to anthropic_token_url,
 *      through the account's proxy when it has one (the gateway's rules:
 *      the same URL with the decrypted password, never the environment's
 *      proxy; an account whose proxy is disabled, deleted or unusable is
 *      not refreshed at all rather than connected directly, and not
 *      marked either: its proxy, not its token, is what is wrong),
 *      retrying transport errors, 429 and 5xx with exponential backoff
 *      (token_refresh_backoff, doubled each time) up to
 *      token_refresh_retries attempts; a 4xx (invalid_grant) is final;
 *   4. merge access_token, refresh_token and expires_at/expires_in into
 *      the credentials JSON (every other key is kept), seal it and write
 *      it with one UPDATE guarded by the ciphertext read in step 2
 *      (compare-and-swap): a row changed meanwhile is never overwritten,
 *      and the new refresh token is stored before the lock is dropped, so
 *      nobody can reuse the old, rotated one;
 *   5. release the lock with a compare-and-delete script.
 *
 * A final failure sets status 'error' and error_message "Token refresh
 * failed: <reason>" (guarded by the same ciphertext); a later success
 * clears exactly that kind of error.  Tokens are never logged.
 */
#ifndef SCHED_REFRESH_H
#define SCHED_REFRESH_H

#include <jansson.h>

#include "sched.h"

/* The refresh job: owned by main.c between start and stop. */
struct sched_refresh;

/*
 * Starts the job on its own thread (the first scan runs at once).  s is
 * borrowed and must outlive the job; its pools must be open.  *out is
 * owned by the caller (sched_refresh_stop()).  0 or -ERR_NOMEM/-ERR_INVAL.
 */
int sched_refresh_start(
    struct sched *s, struct sched_refresh **out) WARN_UNUSED;

/*
 * Interrupts a refresh in progress (backoff sleeps and transfers give
 * up), joins the thread and frees the job.  NULL is fine.
 */
void sched_refresh_stop(struct sched_refresh *r);

/*
 * One scan, as the job runs it: refreshes every due account and returns
 * how many were refreshed, or the database error of the listing.
 */
int sched_refresh_scan(struct sched *s) WARN_UNUSED;

/*
 * Refreshes account account_id now when it is due (force: whatever its
 * expiry; a force refresh also accepts an account in 'error').  0 when
 * refreshed and stored, or:
 *   -ERR_CANCELED  not due (or another replica has just refreshed it)
 *   -ERR_NOTFOUND  no such live account, or not an anthropic oauth
 *                  account in a refreshable status
 *   -ERR_BUSY      another replica holds the lock
 *   -ERR_FORBIDDEN its proxy is disabled, deleted or unusable: nothing
 *                  sent, the account left as it is
 *   -ERR_CONFLICT  the row changed between read and write: nothing
 *                  written (logged as an error: the rotated token is lost)
 *   -ERR_AUTH      the token endpoint refused (4xx, e.g. invalid_grant)
 *   -ERR_CURL, -ERR_UNAVAIL  transport error or 5xx after every retry
 *   -ERR_INVAL     no refresh token, or a malformed token reply
 *   -ERR_CRYPTO, -ERR_CONFIG  credentials do not open / no secret key
 * or the database/Redis error.  The -ERR_AUTH, -ERR_CURL, -ERR_UNAVAIL
 * and -ERR_INVAL cases (once the lock is held) also put the account in
 * 'error' with the reason.
 */
int sched_refresh_account(
    struct sched *s, int64_t account_id, bool force) WARN_UNUSED;

/*
 * The expiry of credentials j (borrowed) in unix seconds: expires_at as
 * an integer, a real, a decimal string (values past 1e11 are taken as
 * milliseconds) or an RFC 3339 string.  -ERR_NOTFOUND when absent,
 * -ERR_INVAL when malformed.
 */
int sched_refresh_expiry(const json_t *j, int64_t *out) WARN_UNUSED;

/*
 * Test hook, NULL in production: called after the token reply and right
 * before the guarded write, so a test can change the row in between.
 */
extern void (*sched_refresh_store_hook)(int64_t account_id);

#endif /* SCHED_REFRESH_H */
