/*
 * nngx_guard.h: listeners, their guard and the bounded close (private to
 * services/nngx*.c).
 *
 * Every nngx listener goes through nngx_listen(), which records what the
 * guard needs: nng 1.5.2 can leave an ipc listener stuck for good (see
 * nngx_guard_check()), and nngx_rep_guard()/nngx_sub_guard() (nngx.h)
 * let a service check and reopen its listeners.
 */
#ifndef NNGX_GUARD_H
#define NNGX_GUARD_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>

#include "compat.h"

#define NNGX_PROTO_PUB0 0x20 /* SP protocol ids of the dialing peers */
#define NNGX_PROTO_REQ0 0x30

/*
 * A listener and what its guard needs (see nngx_guard_check()).  mu
 * serialises the guard against itself; nng's calls are thread-safe.
 */
struct nngx_guard {
	pthread_mutex_t       mu;
	nng_socket            sock;
	nng_listener          lis;
	char                 *url;  /* owned */
	uint16_t              peer; /* SP protocol id of the dialing side */
	bool                  on;
	atomic_uint_least64_t adds; /* pipes the socket took (ADD_POST) */
};

/*
 * Listens on url (borrowed) with sock, peer being the SP protocol id of
 * the dialing side; g (the caller's) is set up for nngx_guard_check()
 * and must be released with nngx_guard_release() after the socket is
 * closed, whether or not the listen succeeded.  0 or -ERR_x (logged).
 */
int nngx_listen(struct nngx_guard *g, nng_socket sock, const char *url,
    uint16_t peer) WARN_UNUSED;

/* Frees what nngx_listen() kept; safe on a zeroed or released guard. */
void nngx_guard_release(struct nngx_guard *g);

/*
 * Checks that the listener still hands connections to its socket, and
 * closes and reopens it when not (see nngx_guard.c).  0 healthy (or not
 * ipc), 1 reopened, -ERR_x when reopening failed.
 */
int nngx_guard_check(struct nngx_guard *g, int timeout_ms);

/*
 * A bounded nng_close().  nng_close() waits for every listener and pipe of
 * the socket; a listener nng 1.5.2 wedged (see nngx_guard_check()) may
 * never finish, nor may a pipe: nng 1.5.2 reaps every pipe of the process
 * on one thread, and a pipe whose receive never completes (seen when a
 * peer hangs up while we close) stops that thread for good, so the close
 * of any other socket with a pipe then waits too.  A plain close would
 * hang the service's shutdown for good.  The close runs on a helper thread and
 * is waited for NNGX_CLOSE_WAIT_MS at most; past that it is abandoned (logged
 * as "nngx.close_stuck" with what, the thread stays blocked inside nng) and
 * false is returned: the caller must then keep whatever nng may still
 * call back into (pipe notifications) instead of freeing it.
 */
#define NNGX_CLOSE_WAIT_MS 1000 /* a healthy close takes milliseconds */

bool nngx_close_bounded(nng_socket sock, const char *what);

#endif /* NNGX_GUARD_H */
