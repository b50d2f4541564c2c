/*
 * proto.c: the message registry and the versioned envelope.
 *
 * The registry tables come from proto.def.  The envelope is read with a
 * small cursor over the raw bytes rather than through msgpack-c, because
 * the one thing a receiver needs from it besides a few scalars is where
 * the body map starts and ends, so that the body can be handed on
 * undecoded (to a dispatcher, a spool, a replay reply).  The whole input
 * is walked by proto_scan() first, so the cursor only meets well-formed,
 * bounded msgpack.
 */
#include "proto.h"

#include "err.h"
#include "proto_int.h"

/* Envelope maps are small; unknown keys are skipped, up to this many. */
#define PROTO_ENV_MAX_KEYS 16

struct proto_reg {
	int                      type;
	const char              *name;
	const struct proto_desc *desc;
};

static const struct proto_reg proto_regs[] = {
#define MSG(name, id, sname) {id, #name, &proto_desc_##sname},
#include "proto.def"
#undef MSG
};

static const struct proto_reg *
proto_reg_of(int type)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(proto_regs); i++) {
		if (proto_regs[i].type == type)
			return &proto_regs[i];
	}
	return NULL;
}

const char *
proto_msg_name(int type)
{
	const struct proto_reg *r = proto_reg_of(type);

	return r != NULL ? r->name : "UNKNOWN";
}

bool
proto_msg_known(int type)
{
	return proto_reg_of(type) != NULL;
}

size_t
proto_msg_size(int type)
{
	const struct proto_reg *r = proto_reg_of(type);

	return r != NULL ? r->desc->size : 0;
}

const struct proto_desc *
proto_desc_of(int type)
{
	const struct proto_reg *r = proto_reg_of(type);

	return r != NULL ? r->desc : NULL;
}

/* ---- packing ------------------------------------------------------- */

static void
proto_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str(pk, strlen(k));
	msgpack_pack_str_body(pk, k, strlen(k));
}

/* Settles a pack started at out->len == start; see proto_pack(). */
static int
proto_pack_end(struct buf *out, size_t start, const struct proto_wr *w, int rv)
{
	if (w->err != 0)
		return w->err; /* buf_add released out */
	if (rv == 0 && out->len - start > PROTO_MAX_MSG)
		rv = -ERR_TOOBIG;
	if (rv != 0)
		buf_truncate(out, start);
	return rv;
}

int
proto_pack(struct buf *out, int type, const char *req_id, int64_t deadline_ms,
    const void *msg)
{
	const struct proto_desc *d = proto_desc_of(type);
	struct proto_wr          w = {out, 0};
	msgpack_packer           pk;
	size_t                   start = out->len;
	int                      rv;

	if (req_id == NULL)
		req_id = "";
	if (d == NULL || strnlen(req_id, PROTO_ID_MAX + 1) > PROTO_ID_MAX ||
	    deadline_ms < 0)
		return -ERR_INVAL;
	msgpack_packer_init(&pk, &w, proto_wr_cb);
	msgpack_pack_map(&pk, 5);
	proto_key(&pk, "v");
	msgpack_pack_uint32(&pk, PROTO_VERSION);
	proto_key(&pk, "t");
	msgpack_pack_uint32(&pk, (uint32_t)type);
	proto_key(&pk, "id");
	proto_key(&pk, req_id);
	proto_key(&pk, "dl");
	msgpack_pack_int64(&pk, deadline_ms);
	proto_key(&pk, "b");
	rv = proto_body_write(&pk, d, msg);
	return proto_pack_end(out, start, &w, rv);
}

int
proto_body_pack(struct buf *out, int type, const void *msg)
{
	const struct proto_desc *d = proto_desc_of(type);
	struct proto_wr          w = {out, 0};
	msgpack_packer           pk;
	size_t                   start = out->len;
	int                      rv;

	if (d == NULL)
		return -ERR_INVAL;
	msgpack_packer_init(&pk, &w, proto_wr_cb);
	rv = proto_body_write(&pk, d, msg);
	return proto_pack_end(out, start, &w, rv);
}

/* ---- the envelope cursor ------------------------------------------- */

struct proto_rd {
	const uint8_t *p;
	size_t         len;
	size_t         off;
};

static uint64_t
proto_rd_be(struct proto_rd *r, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | r->p[r->off++];
	return v;
}

/* A map header; the input has been scanned, so lengths are present. */
static int
proto_rd_map(struct proto_rd *r, uint32_t *n)
{
	uint8_t b = r->p[r->off];

	if (b >= 0x80 && b <= 0x8f) {
		r->off++;
		*n = b & 0x0f;
	} else if (b == 0xde || b == 0xdf) {
		r->off++;
		*n = (uint32_t)proto_rd_be(r, b == 0xde ? 2 : 4);
	} else {
		return -ERR_TYPE;
	}
	return 0;
}

static int
proto_rd_str(struct proto_rd *r, const char **s, size_t *n)
{
	uint8_t b = r->p[r->off];

	if (b >= 0xa0 && b <= 0xbf) {
		r->off++;
		*n = b & 0x1f;
	} else if (b >= 0xd9 && b <= 0xdb) {
		r->off++;
		*n = (size_t)proto_rd_be(r, (size_t)1 << (b - 0xd9));
	} else {
		return -ERR_TYPE;
	}
	*s = (const char *)r->p + r->off;
	r->off += *n;
	return 0;
}

/* An integer in [min, max]; out of range is -ERR_TOOBIG. */
static int
proto_rd_int(struct proto_rd *r, int64_t min, int64_t max, int64_t *v)
{
	uint8_t  b = r->p[r->off];
	uint64_t u;
	int64_t  i;

	if (b <= 0x7f) {
		r->off++;
		i = b;
	} else if (b >= 0xe0) {
		r->off++;
		i = (int8_t)b;
	} else if (b >= 0xcc && b <= 0xcf) {
		r->off++;
		u = proto_rd_be(r, (size_t)1 << (b - 0xcc));
		if (u > (uint64_t)INT64_MAX)
			return -ERR_TOOBIG;
		i = (int64_t)u;
	} else if (b >= 0xd0 && b <= 0xd3) {
		size_t w = (size_t)1 << (b - 0xd0);

		r->off++;
		u = proto_rd_be(r, w);
		if (w < 8 && (u >> (8 * w - 1)) != 0)
			u |= ~UINT64_C(0) << (8 * w); /* sign-extend */
		i = (int64_t)u;
	} else {
		return -ERR_TYPE;
	}
	if (i < min || i > max)
		return -ERR_TOOBIG;
	*v = i;
	return 0;
}

static int
proto_rd_skip(struct proto_rd *r)
{
	size_t used;
	int    rv;

	rv = proto_scan(r->p + r->off, r->len - r->off, &used);
	if (rv == 0)
		r->off += used;
	return rv;
}

static bool
proto_rd_is(const char *k, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* Finds "v" alone, so another version is told apart from bad input. */
static int
proto_env_version(struct proto_rd r)
{
	uint32_t    i, n;
	const char *k;
	size_t      kn;
	int64_t     v = -1;
	int         rv;

	rv = proto_rd_map(&r, &n);
	if (rv != 0)
		return rv;
	if (n > PROTO_ENV_MAX_KEYS)
		return -ERR_TOOBIG;
	for (i = 0; i < n; i++) {
		if (proto_rd_str(&r, &k, &kn) != 0)
			return -ERR_PROTO;
		if (v < 0 && proto_rd_is(k, kn, "v")) {
			rv = proto_rd_int(&r, 0, UINT32_MAX, &v);
			if (rv != 0)
				return rv == -ERR_TOOBIG ? -ERR_VERSION : rv;
		} else if (proto_rd_skip(&r) != 0) {
			return -ERR_PROTO;
		}
	}
	if (v < 0)
		return -ERR_MISSING;
	return v == PROTO_VERSION ? 0 : -ERR_VERSION;
}

/* Records where the body map lies and steps over it. */
static int
proto_env_body(struct proto_rd *r, struct proto_env *e)
{
	struct proto_rd peek = *r;
	uint32_t        n;
	size_t          start = r->off;

	if (proto_rd_map(&peek, &n) != 0)
		return -ERR_TYPE;
	if (proto_rd_skip(r) != 0)
		return -ERR_PROTO;
	e->body = r->p + start;
	e->body_len = r->off - start;
	return 0;
}

int
proto_env_unpack(const void *data, size_t len, struct proto_env *env)
{
	static const char *const keys[] = {"v", "t", "id", "dl", "b"};
	struct proto_rd          r = {data, len, 0};
	struct proto_env         e;
	unsigned                 seen = 0, j;
	uint32_t                 i, n;
	const char              *k, *s;
	size_t                   kn, sn, used;
	int64_t                  v;
	int                      rv;

	if (len > PROTO_MAX_MSG)
		return -ERR_TOOBIG;
	rv = proto_scan(data, len, &used);
	if (rv != 0)
		return rv;
	if (used != len)
		return -ERR_PROTO;
	rv = proto_env_version(r);
	if (rv != 0)
		return rv;
	memset(&e, 0, sizeof(e));
	e.version = PROTO_VERSION;
	(void)proto_rd_map(&r, &n);
	for (i = 0; i < n; i++) {
		(void)proto_rd_str(&r, &k, &kn);
		for (j = 0; j < ARRAY_SIZE(keys); j++) {
			if (proto_rd_is(k, kn, keys[j]))
				break;
		}
		if (j < ARRAY_SIZE(keys) && (seen & (1u << j)))
			return -ERR_PROTO; /* duplicate key */
		seen |= 1u << j;
		switch (j) {
		case 1:
			rv = proto_rd_int(&r, 1, UINT16_MAX, &v);
			e.type = (uint16_t)v;
			break;
		case 2:
			rv = proto_rd_str(&r, &s, &sn);
			if (rv == 0 && sn > PROTO_ID_MAX)
				rv = -ERR_TOOBIG;
			else if (rv == 0 && memchr(s, '\0', sn) != NULL)
				rv = -ERR_PROTO;
			else if (rv == 0)
				memcpy(e.id, s, sn);
			break;
		case 3:
			rv = proto_rd_int(&r, 0, INT64_MAX, &e.deadline_ms);
			break;
		case 4:
			rv = proto_env_body(&r, &e);
			break;
		default: /* "v", checked above, and unknown keys */
			rv = proto_rd_skip(&r);
			break;
		}
		if (rv != 0)
			return rv;
	}
	if ((seen & 0x1f) != 0x1f)
		return -ERR_MISSING;
	*env = e;
	return 0;
}

/* ---- decoding and typed wrappers ----------------------------------- */

int
proto_body_unpack(int type, const void *data, size_t len, void *out)
{
	const struct proto_desc *d = proto_desc_of(type);

	if (d == NULL)
		return -ERR_PROTO;
	return proto_body_read(d, data, len, out);
}

int
proto_unpack(const struct proto_env *env, int type, void *out)
{
	const struct proto_desc *d = proto_desc_of(type);

	if (d == NULL || env->type != type)
		return -ERR_PROTO;
	return proto_body_read(d, env->body, env->body_len, out);
}

#define MSG(name, id, sname)                                          \
	int proto_##sname##_pack(struct buf *out, const char *req_id, \
	    int64_t deadline_ms, const struct proto_##sname *msg)     \
	{                                                             \
		return proto_pack(out, id, req_id, deadline_ms, msg); \
	}                                                             \
	int proto_##sname##_unpack(                                   \
	    const struct proto_env *env, struct proto_##sname *out)   \
	{                                                             \
		return proto_unpack(env, id, out);                    \
	}
#include "proto.def"
#undef MSG
