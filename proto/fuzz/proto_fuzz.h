/*
 * proto_fuzz.h: the body of every proto fuzz target.
 *
 * A target file is two lines: include this header and name its message
 * with PROTO_FUZZ_TARGET(MSG_X), or PROTO_FUZZ_TARGET(0) for the bare
 * envelope.  Each input is tried three ways: as an envelope, as a raw
 * body of the target's type, and as a body wrapped in a fresh envelope.
 * Whatever decodes must survive a round trip: packing the decoded struct
 * must succeed (a decoder never accepts what the encoder refuses) and
 * decoding that again must give the same struct.  A violation aborts, so
 * libFuzzer and the replay binaries report it as a crash.
 */
#ifndef PROTO_FUZZ_H
#define PROTO_FUZZ_H

#include <stdio.h>

#include "err.h"
#include "proto.h"
#include "proto_sample.h"

union proto_fuzz_any {
#define MSG(name, id, sname) struct proto_##sname sname;
#include "proto.def"
#undef MSG
};

static union proto_fuzz_any proto_fuzz_a, proto_fuzz_b;

static void
proto_fuzz_die(const char *what, int type, int rv)
{
	fprintf(stderr, "proto fuzz: %s (%s): %s\n", what, proto_msg_name(type),
	    err_name(rv));
	abort();
}

/* a and b decoded equal; borrowed blobs are compared by content. */
static bool
proto_fuzz_same(int type)
{
	return proto_sample_same(type, &proto_fuzz_a, &proto_fuzz_b);
}

/* proto_fuzz_a holds a decoded message: pack it, decode, compare. */
static void
proto_fuzz_roundtrip(int type, const struct proto_env *env)
{
	struct proto_env e2;
	struct buf       b;
	int              rv;

	buf_init(&b, 4 * PROTO_MAX_MSG);
	rv = proto_pack(&b, type, env ? env->id : "x",
	    env ? env->deadline_ms : 0, &proto_fuzz_a);
	if (rv == -ERR_TOOBIG) { /* floats and ints may grow */
		buf_release(&b);
		return;
	}
	if (rv != 0)
		proto_fuzz_die("repack", type, rv);
	rv = proto_env_unpack(b.data, b.len, &e2);
	if (rv != 0)
		proto_fuzz_die("env of repack", type, rv);
	rv = proto_unpack(&e2, type, &proto_fuzz_b);
	if (rv != 0)
		proto_fuzz_die("decode of repack", type, rv);
	if (env != NULL &&
	    (strcmp(env->id, e2.id) != 0 || env->deadline_ms != e2.deadline_ms))
		proto_fuzz_die("envelope changed", type, 0);
	if (!proto_fuzz_same(type))
		proto_fuzz_die("round trip changed the message", type, 0);
	buf_release(&b);
}

/* {"v":1,"t":type,"id":"f","dl":0,"b":<data>}, by hand. */
static void
proto_fuzz_wrapped(int type, const uint8_t *data, size_t size)
{
	struct proto_env env;
	uint8_t         *w;
	size_t           n = 0;

	w = xmalloc(size + 32);
	memcpy(w, "\x85\xa1v\x01\xa1t\xcd", 7);
	n = 7;
	w[n++] = (uint8_t)(type >> 8);
	w[n++] = (uint8_t)type;
	memcpy(w + n, "\xa2id\xa1\x66\xa2\x64l\x00\xa1\x62", 11);
	n += 11;
	memcpy(w + n, data, size);
	if (proto_env_unpack(w, n + size, &env) == 0 &&
	    proto_unpack(&env, type, &proto_fuzz_a) == 0)
		proto_fuzz_roundtrip(type, &env);
	free(w);
}

static int
proto_fuzz_one(int type, const uint8_t *data, size_t size)
{
	struct proto_env env;

	if (proto_env_unpack(data, size, &env) == 0) {
		int t = type != 0 ? type : env.type;

		if (env.type == t && proto_msg_known(t) &&
		    proto_unpack(&env, t, &proto_fuzz_a) == 0)
			proto_fuzz_roundtrip(t, &env);
	}
	if (type == 0)
		return 0;
	if (proto_body_unpack(type, data, size, &proto_fuzz_a) == 0)
		proto_fuzz_roundtrip(type, NULL);
	proto_fuzz_wrapped(type, data, size);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PROTO_FUZZ_TARGET(type)                                      \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) \
	{                                                            \
		return proto_fuzz_one((type), data, size);           \
	}

#endif /* PROTO_FUZZ_H */
