/*
 * proto_env_test.c: the envelope (version, type, request id, deadline,
 * body) packed by hand, key by key, and the error reply; the messages
 * themselves are in proto_test.c.
 */
#include <msgpack.h>

#include "err.h"
#include "proto.h"
#include "proto_int.h"
#include "t.h"

/* Packs an envelope by hand: entries given as (key, packer fn) pairs. */
static void
t_env(struct buf *b, int v, int t, const char *id, int64_t dl, int drop,
    int extra)
{
	struct proto_wr w = {b, 0};
	msgpack_packer  pk;
	int             n = 5 - (drop >= 0) + (extra > 0);

	buf_reset(b);
	msgpack_packer_init(&pk, &w, proto_wr_cb);
	msgpack_pack_map(&pk, n);
	if (extra > 0) {
		msgpack_pack_str_with_body(&pk, "later", 5);
		msgpack_pack_array(&pk, 1);
		msgpack_pack_int(&pk, extra);
	}
	if (drop != 0) {
		msgpack_pack_str_with_body(&pk, "v", 1);
		msgpack_pack_int(&pk, v);
	}
	if (drop != 1) {
		msgpack_pack_str_with_body(&pk, "t", 1);
		msgpack_pack_int(&pk, t);
	}
	if (drop != 2) {
		msgpack_pack_str_with_body(&pk, "id", 2);
		msgpack_pack_str_with_body(&pk, id, strlen(id));
	}
	if (drop != 3) {
		msgpack_pack_str_with_body(&pk, "dl", 2);
		msgpack_pack_int64(&pk, dl);
	}
	if (drop != 4) {
		msgpack_pack_str_with_body(&pk, "b", 1);
		msgpack_pack_map(&pk, 0);
	}
	T_OK(w.err);
}

static void
test_envelope(void)
{
	struct buf            b;
	struct proto_env      env;
	struct proto_ping_req ping;
	int                   k;

	buf_init(&b, PROTO_MAX_MSG + 1);
	t_env(&b, 1, MSG_PING_REQ, "abc", 7, -1, 3);
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_EQ_INT(env.type, MSG_PING_REQ);
	T_EQ_INT(env.body_len, 1);
	T_OK(proto_ping_req_unpack(&env, &ping)); /* all keys optional */
	for (k = 0; k < 5; k++) {
		t_env(&b, 1, MSG_PING_REQ, "abc", 7, k, 0);
		T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_MISSING);
	}
	t_env(&b, 2, MSG_PING_REQ, "abc", 7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_VERSION);
	t_env(&b, 0, MSG_PING_REQ, "abc", 7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_VERSION);
	t_env(&b, -1, MSG_PING_REQ, "abc", 7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_VERSION);
	/* An unknown type passes the envelope, not the body decoder. */
	t_env(&b, 1, 999, "abc", 7, -1, 0);
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_EQ_INT(proto_unpack(&env, 999, &ping), -ERR_PROTO);
	T_EQ_INT(
	    proto_body_unpack(999, env.body, env.body_len, &ping), -ERR_PROTO);
	t_env(&b, 1, 0, "abc", 7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_TOOBIG);
	t_env(&b, 1, 70000, "abc", 7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_TOOBIG);
	t_env(&b, 1, 1, "abc", -7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_TOOBIG);
	t_env(&b, 1, 1,
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "4",
	    7, -1, 0);
	T_EQ_INT(proto_env_unpack(b.data, b.len, &env), -ERR_TOOBIG);
	/* Type errors: "v" as a string, a body that is not a map. */
	T_EQ_INT(proto_env_unpack("\x81\xa1v\xa1\x31", 5, &env), -ERR_TYPE);
	T_EQ_INT(proto_env_unpack("\x92\x01\x02", 3, &env), -ERR_TYPE);
	T_EQ_INT(
	    proto_env_unpack(
	        "\x85\xa1v\x01\xa1t\x01\xa2id\xa0\xa2\x64l\x00\xa1\x62\x90", 18,
	        &env),
	    -ERR_TYPE);
	T_EQ_INT(
	    proto_env_unpack(
	        "\x85\xa1v\x01\xa1t\x01\xa2id\xa0\xa2\x64l\x00\xa1\x62\x80", 18,
	        &env),
	    0);
	/* Duplicate key, trailing byte, empty input. */
	T_EQ_INT(proto_env_unpack(
	             "\x86\xa1v\x01\xa1t\x01\xa2id\xa0\xa2\x64l\x00\xa1\x62\x80"
	             "\xa1t\x02",
	             21, &env),
	    -ERR_PROTO);
	T_EQ_INT(proto_env_unpack(
	             "\x85\xa1v\x01\xa1t\x01\xa2id\xa0\xa2\x64l\x00\xa1\x62\x80"
	             "\xc0",
	             19, &env),
	    -ERR_PROTO);
	T_EQ_INT(proto_env_unpack("", 0, &env), -ERR_PROTO);
	buf_release(&b);
}

static void
test_reply_error(void)
{
	struct buf             b;
	struct proto_env       env;
	struct proto_error_rep e;
	char                  *msg = xcalloc(1, 2 * PROTO_TEXT_MAX);
	size_t                 i;

	buf_init(&b, PROTO_MAX_MSG + 1);
	T_OK(proto_reply_error(&b, "r-9", -ERR_BUSY, NULL));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_EQ_INT(env.type, MSG_ERROR_REP);
	T_EQ_STR(env.id, "r-9");
	T_OK(proto_error_rep_unpack(&env, &e));
	T_EQ_INT(e.code, ERR_BUSY);
	T_EQ_STR(e.message, err_str(ERR_BUSY));
	/* 2-byte characters straddling the cap are not cut in half. */
	for (i = 0; i + 1 < 2 * PROTO_TEXT_MAX - 1; i += 2)
		memcpy(msg + i, "\xc3\xa9", 2);
	memmove(msg + 1, msg, 2 * PROTO_TEXT_MAX - 2);
	msg[0] = 'x';
	buf_reset(&b);
	T_OK(proto_reply_error(&b, NULL, ERR_PROTO, msg));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_OK(proto_error_rep_unpack(&env, &e));
	T_EQ_INT(e.code, ERR_PROTO);
	T_EQ_INT(strlen(e.message), PROTO_TEXT_MAX - 1);
	buf_reset(&b);
	T_OK(proto_reply_error(&b, NULL, 0, "zero"));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_OK(proto_error_rep_unpack(&env, &e));
	T_EQ_INT(e.code, ERR_INTERNAL);
	buf_release(&b);
	free(msg);
}

T_MAIN(T_CASE(test_envelope), T_CASE(test_reply_error))
