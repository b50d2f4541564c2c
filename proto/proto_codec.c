/*
 * proto_codec.c: table-driven msgpack packing and strict unpacking of
 * message bodies.
 *
 * Packing goes through msgpack-c's packer into a struct buf.  Unpacking
 * first walks the raw bytes (proto_scan) so that nothing malformed,
 * truncated, too deep or too large reaches msgpack-c: its unpacker
 * allocates an array's or map's element storage from the declared count
 * before reading any element, so an unchecked 5-byte header could ask for
 * gigabytes.  After the walk every count is backed by input bytes and the
 * object total is capped, which bounds the zone.  msgpack-c then decodes
 * into a zone on our stack, strings and bins pointing into the input, and
 * the field table copies each value into the C struct; no msgpack object
 * outlives proto_body_read().
 */
#include "err.h"
#include "proto_int.h"

/* Bytes left to read; every length below is checked against it. */
#define PROTO_LEFT(len, off) ((len) - (off))

static uint64_t
proto_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t   i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Reads the header of the object at data[off]: *hdr gets the header size,
 * *payload the bytes that follow it, *elems the child objects (2n for a
 * map).  Returns 0 or -ERR_PROTO when the header itself is cut or invalid.
 */
static int
proto_scan_head(const uint8_t *data, size_t len, size_t off, size_t *hdr,
    uint64_t *payload, uint64_t *elems)
{
	static const uint8_t fixed[] = {[0xca - 0xc0] = 4,
	    [0xcb - 0xc0] = 8,
	    [0xcc - 0xc0] = 1,
	    [0xcd - 0xc0] = 2,
	    [0xce - 0xc0] = 4,
	    [0xcf - 0xc0] = 8,
	    [0xd0 - 0xc0] = 1,
	    [0xd1 - 0xc0] = 2,
	    [0xd2 - 0xc0] = 4,
	    [0xd3 - 0xc0] = 8,
	    [0xd4 - 0xc0] = 2,
	    [0xd5 - 0xc0] = 3,
	    [0xd6 - 0xc0] = 5,
	    [0xd7 - 0xc0] = 9,
	    [0xd8 - 0xc0] = 17};
	uint8_t              b = data[off];
	size_t               lw = 0; /* width of a length field */

	*hdr = 1;
	*payload = 0;
	*elems = 0;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
		return 0;
	if (b <= 0x8f) {
		*elems = 2u * (b & 0x0f);
		return 0;
	}
	if (b <= 0x9f) {
		*elems = b & 0x0f;
		return 0;
	}
	if (b <= 0xbf) {
		*payload = b & 0x1f;
		return 0;
	}
	if (b == 0xc1)
		return -ERR_PROTO;
	if (b >= 0xca && b <= 0xd8) {
		*payload = fixed[b - 0xc0];
		return 0;
	}
	switch (b) {
	case 0xc4:
	case 0xc7:
	case 0xd9:
		lw = 1;
		break;
	case 0xc5:
	case 0xc8:
	case 0xda:
	case 0xdc:
	case 0xde:
		lw = 2;
		break;
	default:
		lw = 4;
		break; /* c6 c9 db dd df */
	}
	if (PROTO_LEFT(len, off) < 1 + lw)
		return -ERR_PROTO;
	*hdr = 1 + lw;
	if (b == 0xdc || b == 0xdd)
		*elems = proto_be(data + off + 1, lw);
	else if (b == 0xde || b == 0xdf)
		*elems = 2 * proto_be(data + off + 1, lw);
	else
		*payload = proto_be(data + off + 1, lw);
	if (b >= 0xc7 && b <= 0xc9)
		*payload += 1; /* the ext type byte */
	return 0;
}

int
proto_scan(const uint8_t *data, size_t len, size_t *used)
{
	uint64_t left[PROTO_MAX_DEPTH + 1];
	size_t   off = 0, objs = 0, hdr;
	uint64_t payload, elems;
	int      depth = 0, rv;

	left[0] = 1;
	for (;;) {
		while (depth > 0 && left[depth] == 0)
			depth--;
		if (left[depth] == 0)
			break;
		left[depth]--;
		if (off >= len)
			return -ERR_PROTO; /* truncated */
		if (++objs > PROTO_MAX_OBJS)
			return -ERR_TOOBIG;
		rv = proto_scan_head(data, len, off, &hdr, &payload, &elems);
		if (rv != 0)
			return rv;
		if (payload > PROTO_LEFT(len, off) - hdr)
			return -ERR_PROTO;
		off += hdr + (size_t)payload;
		if (elems == 0)
			continue;
		/* Every element takes at least one byte. */
		if (elems > PROTO_LEFT(len, off))
			return -ERR_PROTO;
		if (depth == PROTO_MAX_DEPTH)
			return -ERR_TOOBIG;
		left[++depth] = elems;
	}
	*used = off;
	return 0;
}

int
proto_wr_cb(void *data, const char *p, size_t len)
{
	struct proto_wr *w = data;
	int              rv;

	if (w->err != 0)
		return -1;
	rv = buf_add(w->out, p, len);
	if (rv != 0) {
		w->err = rv;
		return -1;
	}
	return 0;
}

/* ---- packing ------------------------------------------------------- */

#define PROTO_AT(msg, off, T)  ((T *)((char *)(msg) + (off)))
#define PROTO_CAT(msg, off, T) ((const T *)((const char *)(msg) + (off)))

static int
proto_write_str(msgpack_packer *pk, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		return -ERR_INVAL; /* unterminated */
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
	return 0;
}

static int
proto_write_arr(
    msgpack_packer *pk, const struct proto_field *f, const void *msg)
{
	uint32_t n = *PROTO_CAT(msg, f->cnt_off, uint32_t);
	uint32_t i;
	int      rv = 0;

	if (n > f->max)
		return -ERR_INVAL;
	if (f->kind == PROTO_K_HEADERS)
		msgpack_pack_map(pk, n);
	else
		msgpack_pack_array(pk, n);
	for (i = 0; i < n && rv == 0; i++) {
		const void *e =
		    (const char *)msg + f->off + (size_t)i * f->size;
		const struct proto_header *h = e;
		const struct proto_sample *s = e;
		const struct proto_blob   *bl = e;

		switch (f->kind) {
		case PROTO_K_I64_ARR:
			msgpack_pack_int64(pk, *(const int64_t *)e);
			break;
		case PROTO_K_STR_ARR:
			rv = proto_write_str(pk, e, f->size);
			break;
		case PROTO_K_HEADERS:
			rv = proto_write_str(pk, h->name, sizeof(h->name));
			if (rv == 0)
				rv = proto_write_str(
				    pk, h->value, sizeof(h->value));
			break;
		case PROTO_K_SAMPLES:
			msgpack_pack_array(pk, 3);
			rv = proto_write_str(pk, s->name, sizeof(s->name));
			if (rv == 0)
				rv = proto_write_str(
				    pk, s->labels, sizeof(s->labels));
			msgpack_pack_double(pk, s->value);
			break;
		case PROTO_K_BLOBS:
			if (bl->len > PROTO_MAX_MSG ||
			    (bl->ptr == NULL && bl->len != 0))
				return -ERR_INVAL;
			msgpack_pack_bin(pk, bl->len);
			msgpack_pack_bin_body(pk, bl->ptr, bl->len);
			break;
		default:
			BUG("proto_write_arr: kind %d", f->kind);
		}
	}
	return rv;
}

int
proto_body_write(
    msgpack_packer *pk, const struct proto_desc *d, const void *msg)
{
	size_t i, n;
	int    rv = 0;

	if (d->check != NULL && d->check(msg) != 0)
		return -ERR_INVAL;
	msgpack_pack_map(pk, d->n_fields);
	for (i = 0; i < d->n_fields && rv == 0; i++) {
		const struct proto_field *f = &d->fields[i];

		msgpack_pack_str(pk, strlen(f->key));
		msgpack_pack_str_body(pk, f->key, strlen(f->key));
		switch (f->kind) {
		case PROTO_K_STR:
			rv = proto_write_str(
			    pk, PROTO_CAT(msg, f->off, char), f->size);
			break;
		case PROTO_K_BIN:
			n = *PROTO_CAT(msg, f->cnt_off, size_t);
			if (n > f->size)
				return -ERR_INVAL;
			msgpack_pack_bin(pk, n);
			msgpack_pack_bin_body(
			    pk, PROTO_CAT(msg, f->off, uint8_t), n);
			break;
		case PROTO_K_BOOL:
			if (*PROTO_CAT(msg, f->off, bool))
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			break;
		case PROTO_K_I32:
			msgpack_pack_int64(
			    pk, *PROTO_CAT(msg, f->off, int32_t));
			break;
		case PROTO_K_U32:
			msgpack_pack_uint64(
			    pk, *PROTO_CAT(msg, f->off, uint32_t));
			break;
		case PROTO_K_I64:
			msgpack_pack_int64(
			    pk, *PROTO_CAT(msg, f->off, int64_t));
			break;
		case PROTO_K_U64:
			msgpack_pack_uint64(
			    pk, *PROTO_CAT(msg, f->off, uint64_t));
			break;
		case PROTO_K_F64:
			msgpack_pack_double(
			    pk, *PROTO_CAT(msg, f->off, double));
			break;
		default:
			rv = proto_write_arr(pk, f, msg);
			break;
		}
	}
	return rv;
}

/* ---- unpacking ----------------------------------------------------- */

static int
proto_read_str(const msgpack_object *o, char *dst, size_t cap)
{
	size_t n;

	if (o->type != MSGPACK_OBJECT_STR)
		return -ERR_TYPE;
	n = o->via.str.size;
	if (n >= cap)
		return -ERR_TOOBIG;
	if (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL)
		return -ERR_PROTO;
	if (n > 0)
		memcpy(dst, o->via.str.ptr, n);
	dst[n] = '\0';
	return 0;
}

/* A signed integer in [min, max]. */
static int
proto_read_int(const msgpack_object *o, int64_t min, int64_t max, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)max)
			return -ERR_TOOBIG;
		*v = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		if (o->via.i64 < min)
			return -ERR_TOOBIG;
		*v = o->via.i64;
		return 0;
	}
	return -ERR_TYPE;
}

/* An unsigned integer <= max; negative values are a type error. */
static int
proto_read_uint(const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -ERR_TYPE;
	if (o->via.u64 > max)
		return -ERR_TOOBIG;
	*v = o->via.u64;
	return 0;
}

static int
proto_read_f64(const msgpack_object *o, double *v)
{
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*v = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*v = (double)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*v = (double)o->via.i64;
		return 0;
	default:
		return -ERR_TYPE;
	}
}

static int
proto_read_elem(const struct proto_field *f, const msgpack_object *o, void *e)
{
	struct proto_sample *s = e;
	struct proto_blob   *bl = e;
	int                  rv;

	switch (f->kind) {
	case PROTO_K_I64_ARR:
		return proto_read_int(o, INT64_MIN, INT64_MAX, (int64_t *)e);
	case PROTO_K_STR_ARR:
		return proto_read_str(o, e, f->size);
	case PROTO_K_SAMPLES:
		if (o->type != MSGPACK_OBJECT_ARRAY)
			return -ERR_TYPE;
		if (o->via.array.size != 3)
			return -ERR_PROTO;
		rv = proto_read_str(
		    &o->via.array.ptr[0], s->name, sizeof(s->name));
		if (rv == 0)
			rv = proto_read_str(
			    &o->via.array.ptr[1], s->labels, sizeof(s->labels));
		if (rv == 0)
			rv = proto_read_f64(&o->via.array.ptr[2], &s->value);
		return rv;
	case PROTO_K_BLOBS:
		if (o->type != MSGPACK_OBJECT_BIN)
			return -ERR_TYPE;
		bl->ptr = (const uint8_t *)o->via.bin.ptr;
		bl->len = o->via.bin.size;
		return 0;
	default:
		BUG("proto_read_elem: kind %d", f->kind);
	}
}

static int
proto_read_arr(const struct proto_field *f, const msgpack_object *o, void *msg)
{
	uint32_t *cnt = PROTO_AT(msg, f->cnt_off, uint32_t);
	uint32_t  i, n;
	int       rv;

	if (f->kind == PROTO_K_HEADERS) {
		if (o->type != MSGPACK_OBJECT_MAP)
			return -ERR_TYPE;
		n = o->via.map.size;
	} else {
		if (o->type != MSGPACK_OBJECT_ARRAY)
			return -ERR_TYPE;
		n = o->via.array.size;
	}
	if (n > f->max)
		return -ERR_TOOBIG;
	for (i = 0; i < n; i++) {
		void *e = (char *)msg + f->off + (size_t)i * f->size;
		struct proto_header *h = e;

		if (f->kind != PROTO_K_HEADERS) {
			rv = proto_read_elem(f, &o->via.array.ptr[i], e);
		} else {
			rv = proto_read_str(
			    &o->via.map.ptr[i].key, h->name, sizeof(h->name));
			if (rv == 0)
				rv = proto_read_str(&o->via.map.ptr[i].val,
				    h->value, sizeof(h->value));
		}
		if (rv != 0)
			return rv;
	}
	*cnt = n;
	return 0;
}

static int
proto_read_field(
    const struct proto_field *f, const msgpack_object *o, void *msg)
{
	int64_t  i;
	uint64_t u;
	int      rv;

	switch (f->kind) {
	case PROTO_K_STR:
		return proto_read_str(o, PROTO_AT(msg, f->off, char), f->size);
	case PROTO_K_BIN:
		if (o->type != MSGPACK_OBJECT_BIN)
			return -ERR_TYPE;
		if (o->via.bin.size > f->size)
			return -ERR_TOOBIG;
		if (o->via.bin.size > 0)
			memcpy(PROTO_AT(msg, f->off, uint8_t), o->via.bin.ptr,
			    o->via.bin.size);
		*PROTO_AT(msg, f->cnt_off, size_t) = o->via.bin.size;
		return 0;
	case PROTO_K_BOOL:
		if (o->type != MSGPACK_OBJECT_BOOLEAN)
			return -ERR_TYPE;
		*PROTO_AT(msg, f->off, bool) = o->via.boolean;
		return 0;
	case PROTO_K_I32:
		rv = proto_read_int(o, INT32_MIN, INT32_MAX, &i);
		if (rv == 0)
			*PROTO_AT(msg, f->off, int32_t) = (int32_t)i;
		return rv;
	case PROTO_K_I64:
		return proto_read_int(
		    o, INT64_MIN, INT64_MAX, PROTO_AT(msg, f->off, int64_t));
	case PROTO_K_U32:
		rv = proto_read_uint(o, UINT32_MAX, &u);
		if (rv == 0)
			*PROTO_AT(msg, f->off, uint32_t) = (uint32_t)u;
		return rv;
	case PROTO_K_U64:
		return proto_read_uint(
		    o, UINT64_MAX, PROTO_AT(msg, f->off, uint64_t));
	case PROTO_K_F64:
		return proto_read_f64(o, PROTO_AT(msg, f->off, double));
	default:
		return proto_read_arr(f, o, msg);
	}
}

static int
proto_read_map(const struct proto_desc *d, const msgpack_object *o, void *msg)
{
	uint64_t seen = 0;
	uint32_t i;
	size_t   j;
	int      rv;

	ASSERT(d->n_fields <= 64);
	if (o->type != MSGPACK_OBJECT_MAP)
		return -ERR_TYPE;
	if (o->via.map.size > PROTO_MAX_KEYS)
		return -ERR_TOOBIG;
	for (i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR)
			return -ERR_PROTO;
		for (j = 0; j < d->n_fields; j++) {
			const char *k = d->fields[j].key;

			if (strlen(k) == kv->key.via.str.size &&
			    memcmp(k, kv->key.via.str.ptr, strlen(k)) == 0)
				break;
		}
		if (j == d->n_fields)
			continue; /* unknown: ignored */
		if (seen & (UINT64_C(1) << j))
			return -ERR_PROTO; /* duplicate key */
		seen |= UINT64_C(1) << j;
		rv = proto_read_field(&d->fields[j], &kv->val, msg);
		if (rv != 0)
			return rv;
	}
	for (j = 0; j < d->n_fields; j++) {
		if (!(d->fields[j].flags & PROTO_OPT) &&
		    !(seen & (UINT64_C(1) << j)))
			return -ERR_MISSING;
	}
	return 0;
}

int
proto_body_read(
    const struct proto_desc *d, const uint8_t *data, size_t len, void *out)
{
	msgpack_zone   zone;
	msgpack_object obj;
	size_t         used, off = 0;
	int            rv, ur;

	memset(out, 0, d->size);
	if (len > PROTO_MAX_MSG)
		return -ERR_TOOBIG;
	rv = proto_scan(data, len, &used);
	if (rv != 0)
		return rv;
	if (used != len)
		return -ERR_PROTO; /* trailing bytes */
	if (!msgpack_zone_init(&zone, 4096))
		return -ERR_NOMEM;
	ur = msgpack_unpack((const char *)data, len, &off, &zone, &obj);
	if (ur == MSGPACK_UNPACK_SUCCESS)
		rv = proto_read_map(d, &obj, out);
	else
		rv = ur == MSGPACK_UNPACK_NOMEM_ERROR ? -ERR_NOMEM : -ERR_PROTO;
	msgpack_zone_destroy(&zone);
	if (rv == 0 && d->check != NULL)
		rv = d->check(out);
	if (rv != 0)
		memset(out, 0, d->size);
	return rv;
}
