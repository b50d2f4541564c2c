/*
 * proto_misc.c: field tables of the generic messages (ping, error reply)
 * and of the usage replay and sync exchanges, plus proto_reply_error().
 *
 * A replay reply (and a sync request) carries usage event bodies as opaque bin
 * blobs: the gateway spools them already packed and sends them as they are, and
 * billing decodes each with proto_body_unpack(MSG_USAGE_EVT, ...), so one
 * bad spool entry fails one event, not the whole reply.
 */
#include <limits.h>

#include "err.h"
#include "proto_int.h"

#define T struct proto_ping_req
static const struct proto_field proto_ping_req_fields[] = {
    PROTO_F_STR(T, "svc", service, PROTO_OPT),
    PROTO_F_SCALAR(T, "ts", PROTO_K_I64, sent_at_ms, PROTO_OPT),
};
#undef T
PROTO_DESC(ping_req, proto_ping_req_fields, NULL);

#define T struct proto_ping_rep
static const struct proto_field proto_ping_rep_fields[] = {
    PROTO_F_STR(T, "svc", service, 0),
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "ts", PROTO_K_I64, sent_at_ms, PROTO_OPT),
    PROTO_F_SCALAR(T, "now", PROTO_K_I64, now_ms, PROTO_OPT),
};
#undef T
PROTO_DESC(ping_rep, proto_ping_rep_fields, NULL);

/* An error reply always names an error: code is a positive ERR_x. */
static int
proto_misc_check_error_rep(const void *msg)
{
	const struct proto_error_rep *m = msg;

	return m->code > 0 ? 0 : -ERR_PROTO;
}

#define T struct proto_error_rep
static const struct proto_field proto_error_rep_fields[] = {
    PROTO_F_SCALAR(T, "code", PROTO_K_I32, code, 0),
    PROTO_F_STR(T, "msg", message, PROTO_OPT),
};
#undef T
PROTO_DESC(error_rep, proto_error_rep_fields, proto_misc_check_error_rep);

static int
proto_misc_check_replay_req(const void *msg)
{
	const struct proto_replay_req *m = msg;

	if (m->to_seq < m->from_seq || m->max_count > PROTO_BLOBS_MAX)
		return -ERR_PROTO;
	return 0;
}

#define T struct proto_replay_req
static const struct proto_field proto_replay_req_fields[] = {
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "from", PROTO_K_U64, from_seq, 0),
    PROTO_F_SCALAR(T, "to", PROTO_K_U64, to_seq, 0),
    PROTO_F_SCALAR(T, "max", PROTO_K_U32, max_count, 0),
};
#undef T
PROTO_DESC(replay_req, proto_replay_req_fields, proto_misc_check_replay_req);

#define T struct proto_replay_rep
static const struct proto_field proto_replay_rep_fields[] = {
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_ARR(T, "evts", PROTO_K_BLOBS, blobs, n_blobs, 0),
    PROTO_F_SCALAR(T, "high", PROTO_K_U64, high_seq, 0),
    PROTO_F_SCALAR(T, "done", PROTO_K_BOOL, complete, 0),
};
#undef T
PROTO_DESC(replay_rep, proto_replay_rep_fields, NULL);

static int
proto_misc_check_usage_sync_req(const void *msg)
{
	const struct proto_usage_sync_req *m = msg;
	uint32_t                           i;

	if (m->n_lost % 2 != 0)
		return -ERR_PROTO;
	for (i = 0; i < m->n_lost; i += 2) {
		if (m->lost[i] < 1 || m->lost[i + 1] < m->lost[i])
			return -ERR_PROTO;
	}
	return 0;
}

#define T struct proto_usage_sync_req
static const struct proto_field proto_usage_sync_req_fields[] = {
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_ARR(T, "evts", PROTO_K_BLOBS, blobs, n_blobs, 0),
    PROTO_F_ARR(T, "lost", PROTO_K_I64_ARR, lost, n_lost, PROTO_OPT),
};
#undef T
PROTO_DESC(usage_sync_req, proto_usage_sync_req_fields,
    proto_misc_check_usage_sync_req);

#define T struct proto_usage_sync_rep
static const struct proto_field proto_usage_sync_rep_fields[] = {
    PROTO_F_STR(T, "inst", instance, 0),
    PROTO_F_SCALAR(T, "seq", PROTO_K_U64, committed_seq, 0),
};
#undef T
PROTO_DESC(usage_sync_rep, proto_usage_sync_rep_fields, NULL);

int
proto_reply_error(
    struct buf *out, const char *req_id, int code, const char *message)
{
	struct proto_error_rep m;
	size_t                 n;

	memset(&m, 0, sizeof(m));
	if (code == 0 || code == INT_MIN)
		m.code = ERR_INTERNAL;
	else
		m.code = code < 0 ? -code : code;
	if (message == NULL)
		message = err_str(m.code);
	n = strnlen(message, PROTO_TEXT_MAX + 1);
	if (n > PROTO_TEXT_MAX) {
		n = PROTO_TEXT_MAX;
		/* Do not cut a UTF-8 sequence: back off continuation bytes. */
		while (n > 0 && ((unsigned char)message[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(m.message, message, n);
	return proto_error_rep_pack(out, req_id, 0, &m);
}
