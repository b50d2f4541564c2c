/*
 * proto_int.h: internals shared by the proto codec files; not for
 * services (include proto.h).
 *
 * Every message is described by a field table: one struct proto_field per
 * body key, giving the key, the kind of value, where it lives in the C
 * struct and its bound.  proto_codec.c packs and unpacks any message from
 * its table, so a message file holds only tables and semantic checks.
 * Tests use the tables too, to drop or retype each key in turn.
 */
#ifndef PROTO_INT_H
#define PROTO_INT_H

#include <msgpack.h>

#include "proto.h"

enum proto_kind {
	PROTO_K_STR,     /* char[size]: msgpack str, < size bytes, no NUL */
	PROTO_K_BIN,     /* uint8_t[size] + size_t at cnt_off: msgpack bin */
	PROTO_K_BOOL,    /* bool */
	PROTO_K_I32,     /* int32_t */
	PROTO_K_U32,     /* uint32_t */
	PROTO_K_I64,     /* int64_t */
	PROTO_K_U64,     /* uint64_t */
	PROTO_K_F64,     /* double: msgpack float, or an integer */
	PROTO_K_I64_ARR, /* int64_t[max] + uint32_t count at cnt_off */
	PROTO_K_STR_ARR, /* char[max][size] + uint32_t count at cnt_off */
	PROTO_K_HEADERS, /* struct proto_header[max] + count: str->str map */
	PROTO_K_SAMPLES, /* struct proto_sample[max] + count: [s, s, f64] */
	PROTO_K_BLOBS    /* struct proto_blob[max] + count: bin, borrowed */
};

enum proto_field_flags {
	PROTO_OPT = 1 << 0 /* may be absent on input */
};

struct proto_field {
	const char *key;
	uint8_t     kind;
	uint8_t     flags;
	uint32_t    off;     /* offset of the member */
	uint32_t    size;    /* string capacity incl. NUL, or bin capacity */
	uint32_t    cnt_off; /* offset of the count / length member */
	uint32_t    max;     /* array bound */
};

/*
 * A message type: its table, the size of its struct, and an optional
 * semantic check run after decoding and before packing (returns 0 or
 * -ERR_PROTO).
 */
struct proto_desc {
	const struct proto_field *fields;
	size_t                    n_fields;
	size_t                    size;
	int (*check)(const void *msg);
};

#define PROTO_MEMBER_SIZE(T, m) ((uint32_t)sizeof(((T *)0)->m))

#define PROTO_F_SCALAR(T, key, kind, m, fl)                      \
	{                                                        \
		key, kind, fl, (uint32_t)offsetof(T, m), 0, 0, 0 \
	}
#define PROTO_F_STR(T, key, m, fl)                              \
	{                                                       \
		key, PROTO_K_STR, fl, (uint32_t)offsetof(T, m), \
		    PROTO_MEMBER_SIZE(T, m), 0, 0               \
	}
#define PROTO_F_BIN(T, key, m, lenm, fl)                                    \
	{                                                                   \
		key, PROTO_K_BIN, fl, (uint32_t)offsetof(T, m),             \
		    PROTO_MEMBER_SIZE(T, m), (uint32_t)offsetof(T, lenm), 0 \
	}
/*
 * An array member m[max] (for strings char m[max][size]) and its uint32_t
 * count cntm.
 */
#define PROTO_F_ARR(T, key, kind, m, cntm, fl)                               \
	{                                                                    \
		key, kind, fl, (uint32_t)offsetof(T, m),                     \
		    PROTO_MEMBER_SIZE(T, m[0]), (uint32_t)offsetof(T, cntm), \
		    (uint32_t)ARRAY_SIZE(((T *)0)->m)                        \
	}
#define PROTO_DESC(sname, table, checkfn)              \
	const struct proto_desc proto_desc_##sname = { \
	    table, ARRAY_SIZE(table), sizeof(struct proto_##sname), checkfn}

#define MSG(name, id, sname) extern const struct proto_desc proto_desc_##sname;
#include "proto.def"
#undef MSG

/* The descriptor of a known type, NULL otherwise. */
const struct proto_desc *proto_desc_of(int type);

/*
 * Structural walk of the msgpack object starting at data: checks every
 * length against the bytes left, nesting against PROTO_MAX_DEPTH and the
 * object count against PROTO_MAX_OBJS.  On success *used is the size of
 * that object.  Returns 0, -ERR_PROTO (malformed, truncated) or
 * -ERR_TOOBIG.
 */
int proto_scan(const uint8_t *data, size_t len, size_t *used) WARN_UNUSED;

/*
 * Packs msg's body map from its table with pk (whose write callback is a
 * struct proto_wr).  Returns 0 or -ERR_INVAL for a message the decoder
 * would refuse; write errors are reported by the proto_wr.
 */
int proto_body_write(msgpack_packer *pk, const struct proto_desc *d,
    const void *msg) WARN_UNUSED;

/* A msgpack write callback target appending to a buf, error sticky. */
struct proto_wr {
	struct buf *out;
	int         err;
};

int proto_wr_cb(void *data, const char *p, size_t len);

/* Decodes a body map with table d; see proto_body_unpack(). */
int proto_body_read(const struct proto_desc *d, const uint8_t *data, size_t len,
    void *out) WARN_UNUSED;

#endif /* PROTO_INT_H */
