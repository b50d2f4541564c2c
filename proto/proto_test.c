/*
 * proto_test.c: the wire contract: every message round-trips, and the
 * decoders refuse what they must (missing keys, wrong types, oversize
 * values, other versions, truncated or random bytes) without crashing.
 *
 * Most cases walk every message type through its field table, so a new
 * message is covered as soon as proto_sample.c can fill it.
 */
#include <msgpack.h>

#include "err.h"
#include "proto.h"
#include "proto_int.h"
#include "proto_sample.h"
#include "t.h"

static const int t_types[] = {
#define MSG(name, id, sname) MSG_##name,
#include "proto.def"
#undef MSG
};

/* Two decoded messages are equal (both were zeroed); 0 when they are. */
static int
t_cmp(int type, const void *a, const void *b)
{
	return proto_sample_same(type, a, b) ? 0 : 1;
}

static void
test_registry(void)
{
	size_t i, j, k;

	T_EQ_INT(MSG_PING_REQ, 1);
	T_EQ_INT(MSG_ERROR_REP, 3);
	T_EQ_INT(MSG_SCHED_ACQUIRE_REQ, 10);
	T_EQ_INT(MSG_SCHED_RELEASE_REP, 15);
	T_EQ_INT(MSG_SCHED_KEYINFO_REQ, 16);
	T_EQ_INT(MSG_SCHED_KEYINFO_REP, 17);
	T_EQ_INT(MSG_SCHED_BUNDLE_REQ, 18);
	T_EQ_INT(MSG_USAGE_EVT, 20);
	T_EQ_INT(MSG_STATUS_HEARTBEAT_EVT, 24);
	T_EQ_INT(MSG_USAGE_BATCH_EVT, 25);
	T_EQ_INT(MSG_REPLAY_REP, 31);
	T_EQ_INT(MSG_USAGE_SYNC_REQ, 32);
	T_EQ_INT(MSG_USAGE_SYNC_REP, 33);
	T_EQ_INT(ARRAY_SIZE(t_types), 22);
	T_EQ_STR(proto_msg_name(MSG_USAGE_SYNC_REQ), "USAGE_SYNC_REQ");
	T_EQ_STR(proto_msg_name(MSG_SCHED_ACQUIRE_REQ), "SCHED_ACQUIRE_REQ");
	T_EQ_STR(proto_msg_name(999), "UNKNOWN");
	T_ASSERT(!proto_msg_known(0));
	T_EQ_INT(proto_msg_size(MSG_USAGE_EVT), sizeof(struct proto_usage_evt));
	for (i = 0; i < ARRAY_SIZE(t_types); i++) {
		const struct proto_desc *d = proto_desc_of(t_types[i]);

		T_ASSERT(d != NULL && d->n_fields <= 64);
		for (j = 0; j < d->n_fields; j++) {
			for (k = j + 1; k < d->n_fields; k++)
				T_ASSERT(strcmp(d->fields[j].key,
				             d->fields[k].key) != 0);
		}
	}
}

static void
test_roundtrip_every_type(void)
{
	size_t           i;
	unsigned         seed;
	struct buf       b;
	struct proto_env env;
	void            *in, *out;

	buf_init(&b, PROTO_MAX_MSG + 1);
	for (i = 0; i < ARRAY_SIZE(t_types); i++) {
		int    type = t_types[i];
		size_t n = proto_msg_size(type);

		in = xcalloc(1, n);
		out = xcalloc(1, n);
		for (seed = 0; seed < 5; seed++) {
			buf_reset(&b);
			T_ASSERT(proto_sample_fill(type, in, seed));
			T_OK(proto_pack(&b, type, "req-\xc3\xa9",
			    1764160000000 + seed, in));
			T_OK(proto_env_unpack(b.data, b.len, &env));
			T_EQ_INT(env.version, PROTO_VERSION);
			T_EQ_INT(env.type, type);
			T_EQ_STR(env.id, "req-\xc3\xa9");
			T_EQ_INT(env.deadline_ms, 1764160000000 + seed);
			T_ASSERT(env.body > (const uint8_t *)b.data &&
			    env.body + env.body_len <=
			        (uint8_t *)b.data + b.len);
			memset(out, 0xa5, n);
			T_OK(proto_unpack(&env, type, out));
			T_EQ_INT(t_cmp(type, in, out), 0);
			/* The typed door refuses another type's envelope. */
			T_EQ_INT(proto_unpack(&env,
			             type == MSG_PING_REQ ? MSG_PING_REP
			                                  : MSG_PING_REQ,
			             out),
			    -ERR_PROTO);

			buf_reset(&b);
			T_OK(proto_body_pack(&b, type, in));
			T_OK(proto_body_unpack(type, b.data, b.len, out));
			T_EQ_INT(t_cmp(type, in, out), 0);
		}
		free(in);
		free(out);
	}
	buf_release(&b);
}

static void
test_typed_wrappers(void)
{
	struct proto_usage_evt  u, u2;
	struct proto_replay_rep r, r2;
	struct proto_env        env;
	struct buf              b, blob;
	uint32_t                i;

	buf_init(&b, PROTO_MAX_MSG + 1);
	buf_init(&blob, PROTO_MAX_MSG + 1);
	T_ASSERT(proto_sample_fill(MSG_USAGE_EVT, &u, 3));
	T_OK(proto_usage_evt_pack(&b, NULL, 0, &u));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_EQ_STR(env.id, "");
	T_EQ_INT(env.deadline_ms, 0);
	T_OK(proto_usage_evt_unpack(&env, &u2));
	T_EQ_STR(u2.instance, "gw-a-3");
	T_EQ_INT(u2.seq, UINT64_MAX - 3);
	T_EQ_INT(u2.cache_creation_1h_tokens, 400);
	T_EQ_STR(u2.user_agent, "caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97-3");
	T_EQ_INT(memcmp(&u, &u2, sizeof(u)), 0);

	/* A replay reply carries packed usage bodies, borrowed on unpack. */
	T_OK(proto_body_pack(&blob, MSG_USAGE_EVT, &u));
	memset(&r, 0, sizeof(r));
	snprintf(r.instance, sizeof(r.instance), "gw-a");
	r.n_blobs = PROTO_BLOBS_MAX;
	for (i = 0; i < r.n_blobs; i++) {
		r.blobs[i].ptr = (const uint8_t *)blob.data;
		r.blobs[i].len = blob.len;
	}
	r.high_seq = 12;
	r.complete = true;
	buf_reset(&b);
	T_OK(proto_replay_rep_pack(&b, "r1", 5, &r));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_OK(proto_replay_rep_unpack(&env, &r2));
	T_EQ_INT(r2.n_blobs, PROTO_BLOBS_MAX);
	T_ASSERT(r2.complete && r2.high_seq == 12);
	for (i = 0; i < r2.n_blobs; i++) {
		T_ASSERT(r2.blobs[i].ptr > (const uint8_t *)b.data &&
		    r2.blobs[i].ptr + r2.blobs[i].len <=
		        (const uint8_t *)b.data + b.len);
		T_OK(proto_body_unpack(
		    MSG_USAGE_EVT, r2.blobs[i].ptr, r2.blobs[i].len, &u2));
		T_EQ_INT(memcmp(&u, &u2, sizeof(u)), 0);
	}
	buf_release(&b);
	buf_release(&blob);
}

/* proto_usage_each(): what it hands on, for a single event and a batch. */
struct t_each {
	int    calls;
	size_t lens[PROTO_BATCH_MAX];
	bool   usage_ok;
};

static void
t_each_cb(void *arg, const void *env, size_t len)
{
	struct t_each         *t = arg;
	struct proto_env       e;
	struct proto_usage_evt u;

	t->lens[t->calls++] = len;
	t->usage_ok = proto_env_unpack(env, len, &e) == 0 &&
	    proto_usage_evt_unpack(&e, &u) == 0 && u.seq == (uint64_t)t->calls;
}

static void
test_usage_each(void)
{
	struct proto_usage_batch_evt *bq = xcalloc(1, sizeof(*bq));
	struct proto_usage_evt        u;
	struct buf                    one[3], b;
	struct t_each                 t;
	uint32_t                      i;

	memset(&u, 0, sizeof(u));
	snprintf(u.instance, sizeof(u.instance), "gw-a");
	snprintf(u.request_id, sizeof(u.request_id), "r");
	for (i = 0; i < 3; i++) {
		u.seq = i + 1;
		buf_init(&one[i], PROTO_MAX_MSG);
		T_OK(proto_usage_evt_pack(&one[i], "r", 0, &u));
		bq->evts[i].ptr = (const uint8_t *)one[i].data;
		bq->evts[i].len = one[i].len;
	}
	/* A single event goes through as it is. */
	memset(&t, 0, sizeof(t));
	T_EQ_INT(proto_usage_each(one[0].data, one[0].len, t_each_cb, &t), 1);
	T_EQ_INT(t.calls, 1);
	T_ASSERT(t.usage_ok);
	/* A batch: each entry, in order, as if it had come alone. */
	bq->n_evts = 3;
	buf_init(&b, PROTO_MAX_MSG);
	T_OK(proto_usage_batch_evt_pack(&b, NULL, 0, bq));
	memset(&t, 0, sizeof(t));
	T_EQ_INT(proto_usage_each(b.data, b.len, t_each_cb, &t), 3);
	T_EQ_INT(t.calls, 3);
	T_ASSERT(t.usage_ok);
	T_EQ_INT(t.lens[2], one[2].len);
	/* Bytes that are no envelope are handed on as they are, for the
	 * subscriber to count as malformed. */
	memset(&t, 0, sizeof(t));
	T_EQ_INT(proto_usage_each(b.data, b.len - 3, t_each_cb, &t), 1);
	T_EQ_INT(t.calls, 1);
	T_ASSERT(!t.usage_ok);
	buf_release(&b);
	for (i = 0; i < 3; i++)
		buf_release(&one[i]);
	free(bq);
}

/* A sync request carries whole packed usage bodies; the reply a seq. */
static void
test_usage_sync(void)
{
	struct proto_usage_evt       u, u2;
	struct proto_usage_sync_req *q = xcalloc(1, sizeof(*q));
	struct proto_usage_sync_req *q2 = xcalloc(1, sizeof(*q2));
	struct proto_usage_sync_rep  p, p2;
	struct proto_env             env;
	struct buf                   b, blob;
	uint32_t                     i;

	buf_init(&b, PROTO_MAX_MSG + 1);
	buf_init(&blob, PROTO_MAX_MSG + 1);
	T_ASSERT(proto_sample_fill(MSG_USAGE_EVT, &u, 1));
	T_OK(proto_body_pack(&blob, MSG_USAGE_EVT, &u));
	snprintf(q->instance, sizeof(q->instance), "gw-1");
	q->n_blobs = 200;
	for (i = 0; i < q->n_blobs; i++) {
		q->blobs[i].ptr = (const uint8_t *)blob.data;
		q->blobs[i].len = blob.len;
	}
	T_OK(proto_usage_sync_req_pack(&b, "s1", 0, q));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_EQ_INT(env.type, MSG_USAGE_SYNC_REQ);
	T_OK(proto_usage_sync_req_unpack(&env, q2));
	T_EQ_STR(q2->instance, "gw-1");
	T_EQ_INT(q2->n_blobs, 200);
	T_OK(proto_body_unpack(
	    MSG_USAGE_EVT, q2->blobs[199].ptr, q2->blobs[199].len, &u2));
	T_EQ_INT(memcmp(&u, &u2, sizeof(u)), 0);
	/* A plain poll carries no events, but the key is still required. */
	q->n_blobs = 0;
	buf_reset(&b);
	T_OK(proto_usage_sync_req_pack(&b, NULL, 0, q));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_OK(proto_usage_sync_req_unpack(&env, q2));
	T_EQ_INT(q2->n_blobs, 0);
	/*
	 * Lost ranges ("lost" is optional: the missing-key test checks that
	 * an older gateway's request without it decodes) go through; a bad
	 * one (odd count, from 0, to < from) is refused.
	 */
	q->n_lost = 4;
	q->lost[0] = 7;
	q->lost[1] = 9;
	q->lost[2] = 20;
	q->lost[3] = 20;
	buf_reset(&b);
	T_OK(proto_usage_sync_req_pack(&b, NULL, 0, q));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_OK(proto_usage_sync_req_unpack(&env, q2));
	T_EQ_INT(q2->n_lost, 4);
	T_EQ_INT(q2->lost[1] * 100 + q2->lost[3], 920);
	q->n_lost = 3;
	buf_reset(&b);
	T_EQ_INT(proto_usage_sync_req_pack(&b, NULL, 0, q), -ERR_INVAL);
	q->n_lost = 2;
	q->lost[0] = 0;
	buf_reset(&b);
	T_EQ_INT(proto_usage_sync_req_pack(&b, NULL, 0, q), -ERR_INVAL);
	q->lost[0] = 10;
	buf_reset(&b);
	T_EQ_INT(proto_usage_sync_req_pack(&b, NULL, 0, q), -ERR_INVAL);
	q->n_lost = 0;
	/* One blob past the bound is refused by the packer. */
	q->n_blobs = PROTO_BLOBS_MAX + 1;
	buf_reset(&b);
	T_EQ_INT(proto_usage_sync_req_pack(&b, NULL, 0, q), -ERR_INVAL);

	memset(&p, 0, sizeof(p));
	snprintf(p.instance, sizeof(p.instance), "gw-1");
	p.committed_seq = (uint64_t)1 << 40;
	buf_reset(&b);
	T_OK(proto_usage_sync_rep_pack(&b, "s1", 0, &p));
	T_OK(proto_env_unpack(b.data, b.len, &env));
	T_OK(proto_usage_sync_rep_unpack(&env, &p2));
	T_EQ_INT(p2.committed_seq, (uint64_t)1 << 40);
	T_EQ_STR(p2.instance, "gw-1");
	free(q);
	free(q2);
	buf_release(&b);
	buf_release(&blob);
}

/* ---- body surgery: rebuild a sample body with one key changed ------ */

/*
 * Packs the sample body of type, then copies it into dst with key
 * dropped (raw == NULL) or its value replaced by the packed bytes raw;
 * a key the body lacks is appended.  extra appends more entries as-is.
 */
static void
t_edit(int type, const char *key, const void *raw, size_t rawlen,
    const void *extra, size_t extralen, uint32_t nextra, struct buf *dst)
{
	void           *msg = xcalloc(1, proto_msg_size(type));
	struct buf      src;
	struct proto_wr w = {dst, 0};
	msgpack_packer  pk;
	msgpack_zone    z;
	msgpack_object  o;
	size_t          off = 0, klen = key ? strlen(key) : 0;
	uint32_t        i, n;
	bool            found = false;

	buf_init(&src, PROTO_MAX_MSG + 1);
	T_ASSERT(proto_sample_fill(type, msg, 1));
	T_OK(proto_body_pack(&src, type, msg));
	T_ASSERT(msgpack_zone_init(&z, 4096));
	T_EQ_INT(msgpack_unpack(src.data, src.len, &off, &z, &o),
	    MSGPACK_UNPACK_SUCCESS);
	n = o.via.map.size;
	for (i = 0; key != NULL && i < o.via.map.size; i++) {
		const msgpack_object *k = &o.via.map.ptr[i].key;

		if (k->via.str.size == klen &&
		    memcmp(k->via.str.ptr, key, klen) == 0)
			found = true;
	}
	if (key != NULL && found && raw == NULL)
		n--;
	if (key != NULL && !found)
		n++;
	buf_reset(dst);
	msgpack_packer_init(&pk, &w, proto_wr_cb);
	msgpack_pack_map(&pk, n + nextra);
	for (i = 0; i < o.via.map.size; i++) {
		const msgpack_object_kv *kv = &o.via.map.ptr[i];

		if (key != NULL && kv->key.via.str.size == klen &&
		    memcmp(kv->key.via.str.ptr, key, klen) == 0) {
			if (raw == NULL)
				continue;
			msgpack_pack_object(&pk, kv->key);
			T_OK(buf_add(dst, raw, rawlen));
			continue;
		}
		msgpack_pack_object(&pk, kv->key);
		msgpack_pack_object(&pk, kv->val);
	}
	if (key != NULL && !found) {
		msgpack_pack_str_with_body(&pk, key, klen);
		T_OK(buf_add(dst, raw, rawlen));
	}
	if (extralen > 0)
		T_OK(buf_add(dst, extra, extralen));
	T_OK(w.err);
	msgpack_zone_destroy(&z);
	buf_release(&src);
	free(msg);
}

/* Packs one value with f into a small static buffer for t_edit. */
struct t_raw {
	struct buf      b;
	struct proto_wr w;
	msgpack_packer  pk;
};

static msgpack_packer *
t_raw_begin(struct t_raw *r)
{
	buf_init(&r->b, PROTO_MAX_MSG * 2);
	r->w.out = &r->b;
	r->w.err = 0;
	msgpack_packer_init(&r->pk, &r->w, proto_wr_cb);
	return &r->pk;
}

/* Decodes body with a fresh struct; the result code. */
static int
t_decode(int type, const struct buf *body)
{
	void *out = xcalloc(1, proto_msg_size(type));
	int   rv;

	rv = proto_body_unpack(type, body->data, body->len, out);
	free(out);
	return rv;
}

static void
test_each_required_key_missing(void)
{
	struct buf b;
	size_t     i, j;
	int        n = 0;

	buf_init(&b, PROTO_MAX_MSG + 1);
	for (i = 0; i < ARRAY_SIZE(t_types); i++) {
		const struct proto_desc *d = proto_desc_of(t_types[i]);

		for (j = 0; j < d->n_fields; j++) {
			t_edit(t_types[i], d->fields[j].key, NULL, 0, NULL, 0,
			    0, &b);
			if (d->fields[j].flags & PROTO_OPT) {
				T_OK(t_decode(t_types[i], &b));
			} else {
				T_EQ_INT(
				    t_decode(t_types[i], &b), -ERR_MISSING);
				n++;
			}
		}
	}
	T_EQ_INT(n, 113); /* required keys in all tables */
	buf_release(&b);
}

static void
test_each_field_mistyped(void)
{
	struct buf   b;
	struct t_raw r;
	size_t       i, j;

	buf_init(&b, PROTO_MAX_MSG + 1);
	for (i = 0; i < ARRAY_SIZE(t_types); i++) {
		const struct proto_desc *d = proto_desc_of(t_types[i]);

		for (j = 0; j < d->n_fields; j++) {
			msgpack_packer *pk = t_raw_begin(&r);

			switch (d->fields[j].kind) {
			case PROTO_K_STR:
				msgpack_pack_bin_with_body(pk, "x", 1);
				break;
			case PROTO_K_BIN:
				msgpack_pack_str_with_body(pk, "x", 1);
				break;
			case PROTO_K_HEADERS:
				msgpack_pack_array(pk, 0);
				break;
			case PROTO_K_I64_ARR:
			case PROTO_K_STR_ARR:
			case PROTO_K_SAMPLES:
			case PROTO_K_BLOBS:
				msgpack_pack_map(pk, 0);
				break;
			case PROTO_K_BOOL:
				msgpack_pack_int(pk, 1);
				break;
			default:
				msgpack_pack_nil(pk);
				break;
			}
			t_edit(t_types[i], d->fields[j].key, r.b.data, r.b.len,
			    NULL, 0, 0, &b);
			T_EQ_INT(t_decode(t_types[i], &b), -ERR_TYPE);
			buf_release(&r.b);
		}
	}
	buf_release(&b);
}

static void
test_each_bound_exceeded(void)
{
	struct buf   b;
	struct t_raw r;
	size_t       i, j, k;
	char        *s = xcalloc(1, PROTO_CRED_MAX + 2);

	memset(s, 'a', PROTO_CRED_MAX + 1);
	buf_init(&b, PROTO_MAX_MSG + 1);
	for (i = 0; i < ARRAY_SIZE(t_types); i++) {
		const struct proto_desc *d = proto_desc_of(t_types[i]);

		for (j = 0; j < d->n_fields; j++) {
			const struct proto_field *f = &d->fields[j];
			msgpack_packer           *pk = t_raw_begin(&r);
			bool                      check = true;

			switch (f->kind) {
			case PROTO_K_STR: /* capacity includes the NUL */
				msgpack_pack_str_with_body(pk, s, f->size);
				break;
			case PROTO_K_BIN:
				msgpack_pack_bin_with_body(pk, s, f->size + 1);
				break;
			case PROTO_K_I32:
				msgpack_pack_int64(pk, (int64_t)INT32_MAX + 1);
				break;
			case PROTO_K_U32:
				msgpack_pack_uint64(
				    pk, (uint64_t)UINT32_MAX + 1);
				break;
			case PROTO_K_I64:
				msgpack_pack_uint64(
				    pk, (uint64_t)INT64_MAX + 1);
				break;
			case PROTO_K_HEADERS:
				msgpack_pack_map(pk, f->max + 1);
				for (k = 0; k <= f->max; k++) {
					msgpack_pack_str_with_body(pk, "h", 1);
					msgpack_pack_str_with_body(pk, "v", 1);
				}
				break;
			case PROTO_K_I64_ARR:
			case PROTO_K_STR_ARR:
			case PROTO_K_SAMPLES:
			case PROTO_K_BLOBS:
				/* Wrong elements, but the count fails first. */
				msgpack_pack_array(pk, f->max + 1);
				for (k = 0; k <= f->max; k++)
					msgpack_pack_nil(pk);
				break;
			default: /* bool, u64, f64 have no range to exceed */
				check = false;
				break;
			}
			if (check) {
				t_edit(t_types[i], f->key, r.b.data, r.b.len,
				    NULL, 0, 0, &b);
				T_EQ_INT(t_decode(t_types[i], &b), -ERR_TOOBIG);
			}
			buf_release(&r.b);
		}
	}
	buf_release(&b);
	free(s);
}

static void
test_integer_ranges(void)
{
	static const struct {
		const char *key;
		int64_t     v;
		bool        neg;
		int         want;
	} cases[] = {
	    {"status", INT32_MIN, true, 0},
	    {"status", (int64_t)INT32_MIN - 1, true, -ERR_TOOBIG},
	    {"status", INT32_MAX, false, 0},
	    {"uid", INT64_MIN, true, 0},
	    {"uid", -1, true, 0},
	    {"seq", -1, true, -ERR_TYPE},
	    {"in", 5, false, 0},
	};
	struct buf             b;
	struct t_raw           r;
	struct proto_usage_evt u;
	size_t                 i;

	buf_init(&b, PROTO_MAX_MSG + 1);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		msgpack_packer *pk = t_raw_begin(&r);

		msgpack_pack_int64(pk, cases[i].v);
		t_edit(MSG_USAGE_EVT, cases[i].key, r.b.data, r.b.len, NULL, 0,
		    0, &b);
		T_EQ_INT(proto_body_unpack(MSG_USAGE_EVT, b.data, b.len, &u),
		    cases[i].want);
		buf_release(&r.b);
	}
	/* Every width of positive and negative encoding reads back. */
	msgpack_pack_uint64(t_raw_begin(&r), UINT64_MAX);
	t_edit(MSG_USAGE_EVT, "seq", r.b.data, r.b.len, NULL, 0, 0, &b);
	T_OK(proto_body_unpack(MSG_USAGE_EVT, b.data, b.len, &u));
	T_ASSERT(u.seq == UINT64_MAX);
	buf_release(&r.b);
	buf_release(&b);
}

static void
test_samples_and_doubles(void)
{
	struct buf                         b;
	struct t_raw                       r;
	msgpack_packer                    *pk;
	struct proto_metrics_snapshot_evt *m = xcalloc(1, sizeof(*m));

	buf_init(&b, PROTO_MAX_MSG + 1);
	pk = t_raw_begin(&r);
	msgpack_pack_array(pk, 2);
	msgpack_pack_array(pk, 3);
	msgpack_pack_str_with_body(pk, "a", 1);
	msgpack_pack_str_with_body(pk, "", 0);
	msgpack_pack_int64(pk, -3);
	msgpack_pack_array(pk, 3);
	msgpack_pack_str_with_body(pk, "b", 1);
	msgpack_pack_str_with_body(pk, "l", 1);
	msgpack_pack_float(pk, 0.5f);
	t_edit(
	    MSG_METRICS_SNAPSHOT_EVT, "s", r.b.data, r.b.len, NULL, 0, 0, &b);
	T_OK(proto_body_unpack(MSG_METRICS_SNAPSHOT_EVT, b.data, b.len, m));
	T_EQ_INT(m->n_samples, 2);
	T_ASSERT(m->samples[0].value == -3.0 && m->samples[1].value == 0.5);
	buf_release(&r.b);

	pk = t_raw_begin(&r);
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 2);
	msgpack_pack_str_with_body(pk, "a", 1);
	msgpack_pack_str_with_body(pk, "", 0);
	t_edit(
	    MSG_METRICS_SNAPSHOT_EVT, "s", r.b.data, r.b.len, NULL, 0, 0, &b);
	T_EQ_INT(proto_body_unpack(MSG_METRICS_SNAPSHOT_EVT, b.data, b.len, m),
	    -ERR_PROTO);
	T_EQ_INT(m->n_samples, 0); /* zeroed on failure */
	buf_release(&r.b);
	buf_release(&b);
	free(m);
}

static void
test_unknown_keys_and_duplicates(void)
{
	struct buf                     b;
	struct t_raw                   r;
	msgpack_packer                *pk;
	struct proto_sched_acquire_req a, want;

	buf_init(&b, PROTO_MAX_MSG + 1);
	pk = t_raw_begin(&r);
	msgpack_pack_str_with_body(pk, "zz_future", 9);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "deep", 4);
	msgpack_pack_array(pk, 2);
	msgpack_pack_nil(pk);
	msgpack_pack_double(pk, 1.5);
	msgpack_pack_str_with_body(pk, "x", 1);
	msgpack_pack_bin_with_body(pk, "yy", 2);
	t_edit(MSG_SCHED_ACQUIRE_REQ, NULL, NULL, 0, r.b.data, r.b.len, 2, &b);
	T_OK(proto_body_unpack(MSG_SCHED_ACQUIRE_REQ, b.data, b.len, &a));
	T_ASSERT(proto_sample_fill(MSG_SCHED_ACQUIRE_REQ, &want, 1));
	T_EQ_INT(memcmp(&a, &want, sizeof(a)), 0);
	buf_release(&r.b);

	/* A known key twice is refused, whatever the values. */
	pk = t_raw_begin(&r);
	msgpack_pack_str_with_body(pk, "model", 5);
	msgpack_pack_str_with_body(pk, "m", 1);
	t_edit(MSG_SCHED_ACQUIRE_REQ, NULL, NULL, 0, r.b.data, r.b.len, 1, &b);
	T_EQ_INT(proto_body_unpack(MSG_SCHED_ACQUIRE_REQ, b.data, b.len, &a),
	    -ERR_PROTO);
	buf_release(&r.b);

	/* A non-string key, and a NUL inside a string. */
	pk = t_raw_begin(&r);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
	t_edit(MSG_SCHED_ACQUIRE_REQ, NULL, NULL, 0, r.b.data, r.b.len, 1, &b);
	T_EQ_INT(proto_body_unpack(MSG_SCHED_ACQUIRE_REQ, b.data, b.len, &a),
	    -ERR_PROTO);
	buf_release(&r.b);
	msgpack_pack_str_with_body(t_raw_begin(&r), "a\0b", 3);
	t_edit(
	    MSG_SCHED_ACQUIRE_REQ, "model", r.b.data, r.b.len, NULL, 0, 0, &b);
	T_EQ_INT(proto_body_unpack(MSG_SCHED_ACQUIRE_REQ, b.data, b.len, &a),
	    -ERR_PROTO);
	buf_release(&r.b);
	buf_release(&b);
}

static void
test_semantic_checks(void)
{
	struct buf                        b;
	struct t_raw                      r;
	struct proto_sched_acquire_req    a;
	struct proto_status_heartbeat_evt h;
	struct proto_replay_req           q;
	struct proto_error_rep            e;

	buf_init(&b, PROTO_MAX_MSG + 1);
	T_ASSERT(proto_sample_fill(MSG_SCHED_ACQUIRE_REQ, &a, 0));
	a.key_hash[5] = 'G';
	T_EQ_INT(proto_body_pack(&b, MSG_SCHED_ACQUIRE_REQ, &a), -ERR_INVAL);
	T_EQ_INT(b.len, 0);
	msgpack_pack_str_with_body(t_raw_begin(&r), "abc", 3);
	t_edit(MSG_SCHED_ACQUIRE_REQ, "key", r.b.data, r.b.len, NULL, 0, 0, &b);
	T_EQ_INT(t_decode(MSG_SCHED_ACQUIRE_REQ, &b), -ERR_PROTO);
	buf_release(&r.b);
	msgpack_pack_str_with_body(t_raw_begin(&r), "sleeping", 8);
	t_edit(MSG_STATUS_HEARTBEAT_EVT, "state", r.b.data, r.b.len, NULL, 0, 0,
	    &b);
	T_EQ_INT(t_decode(MSG_STATUS_HEARTBEAT_EVT, &b), -ERR_PROTO);
	buf_release(&r.b);
	T_ASSERT(proto_sample_fill(MSG_STATUS_HEARTBEAT_EVT, &h, 0));
	snprintf(h.state, sizeof(h.state), "idle");
	buf_reset(&b);
	T_EQ_INT(proto_body_pack(&b, MSG_STATUS_HEARTBEAT_EVT, &h), -ERR_INVAL);
	T_ASSERT(proto_sample_fill(MSG_REPLAY_REQ, &q, 0));
	q.to_seq = q.from_seq - 1;
	T_EQ_INT(proto_body_pack(&b, MSG_REPLAY_REQ, &q), -ERR_INVAL);
	memset(&e, 0, sizeof(e));
	T_EQ_INT(proto_body_pack(&b, MSG_ERROR_REP, &e), -ERR_INVAL);
	buf_release(&b);
}

/* Key info: "what" is one of two words; money is exact decimal text. */
static void
test_keyinfo_checks(void)
{
	static const char *const good[] = {"", "0", "-1", "12.5000000000",
	    "123456789012345678901234567890.123456789"};
	static const char *const bad[] = {"-", "1.", ".5", "1e3", "+1", "1,5",
	    " 1", "0x1", "NaN", "1.2.3", "--1"};
	struct buf               b;
	struct t_raw             r;
	struct proto_sched_keyinfo_req  q;
	struct proto_sched_keyinfo_rep *p = xcalloc(1, sizeof(*p));
	size_t                          i;

	buf_init(&b, PROTO_MAX_MSG + 1);
	T_ASSERT(proto_sample_fill(MSG_SCHED_KEYINFO_REQ, &q, 0));
	T_EQ_STR(q.what, "models");
	T_OK(proto_body_pack(&b, MSG_SCHED_KEYINFO_REQ, &q));
	snprintf(q.what, sizeof(q.what), "Usage");
	buf_reset(&b);
	T_EQ_INT(proto_body_pack(&b, MSG_SCHED_KEYINFO_REQ, &q), -ERR_INVAL);
	T_ASSERT(proto_sample_fill(MSG_SCHED_KEYINFO_REQ, &q, 1));
	q.key_hash[63] = 'F';
	T_EQ_INT(proto_body_pack(&b, MSG_SCHED_KEYINFO_REQ, &q), -ERR_INVAL);
	msgpack_pack_str_with_body(t_raw_begin(&r), "balance", 7);
	t_edit(
	    MSG_SCHED_KEYINFO_REQ, "what", r.b.data, r.b.len, NULL, 0, 0, &b);
	T_EQ_INT(t_decode(MSG_SCHED_KEYINFO_REQ, &b), -ERR_PROTO);
	buf_release(&r.b);

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		T_ASSERT(proto_sample_fill(MSG_SCHED_KEYINFO_REP, p, 0));
		snprintf(p->balance, sizeof(p->balance), "%s", good[i]);
		snprintf(p->remaining, sizeof(p->remaining), "%s", good[i]);
		buf_reset(&b);
		T_OK(proto_body_pack(&b, MSG_SCHED_KEYINFO_REP, p));
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		T_ASSERT(proto_sample_fill(MSG_SCHED_KEYINFO_REP, p, 0));
		snprintf(p->remaining, sizeof(p->remaining), "%s", bad[i]);
		buf_reset(&b);
		T_EQ_INT(
		    proto_body_pack(&b, MSG_SCHED_KEYINFO_REP, p), -ERR_INVAL);
		msgpack_pack_str_with_body(
		    t_raw_begin(&r), bad[i], strlen(bad[i]));
		t_edit(MSG_SCHED_KEYINFO_REP, "bal", r.b.data, r.b.len, NULL, 0,
		    0, &b);
		T_EQ_INT(t_decode(MSG_SCHED_KEYINFO_REP, &b), -ERR_PROTO);
		buf_release(&r.b);
	}
	buf_release(&b);
	free(p);
}

static void
test_pack_refuses_bad_structs(void)
{
	struct buf                     b;
	struct proto_sched_acquire_req a;
	struct proto_sched_acquire_rep p;
	struct proto_ping_req          ping;
	char                           id[PROTO_ID_MAX + 2];

	buf_init(&b, PROTO_MAX_MSG + 1);
	T_OK(buf_addstr(&b, "keep"));
	T_ASSERT(proto_sample_fill(MSG_SCHED_ACQUIRE_REQ, &a, 0));
	a.n_excluded = PROTO_EXCLUDED_MAX + 1;
	T_EQ_INT(proto_pack(&b, MSG_SCHED_ACQUIRE_REQ, "x", 0, &a), -ERR_INVAL);
	T_EQ_STR(buf_str(&b), "keep"); /* back at its length on entry */
	T_ASSERT(proto_sample_fill(MSG_SCHED_ACQUIRE_REQ, &a, 0));
	memset(a.model, 'm', sizeof(a.model)); /* unterminated */
	T_EQ_INT(proto_pack(&b, MSG_SCHED_ACQUIRE_REQ, "x", 0, &a), -ERR_INVAL);
	T_ASSERT(proto_sample_fill(MSG_SCHED_ACQUIRE_REP, &p, 0));
	p.credential_len = PROTO_CRED_MAX + 1;
	T_EQ_INT(proto_pack(&b, MSG_SCHED_ACQUIRE_REP, "x", 0, &p), -ERR_INVAL);
	T_ASSERT(proto_sample_fill(MSG_PING_REQ, &ping, 0));
	T_EQ_INT(proto_pack(&b, 999, "x", 0, &ping), -ERR_INVAL);
	T_EQ_INT(proto_pack(&b, MSG_PING_REQ, "x", -1, &ping), -ERR_INVAL);
	memset(id, 'i', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	T_EQ_INT(proto_pack(&b, MSG_PING_REQ, id, 0, &ping), -ERR_INVAL);
	id[PROTO_ID_MAX] = '\0';
	T_OK(proto_pack(&b, MSG_PING_REQ, id, 0, &ping));
	T_ASSERT(b.len > 4 && memcmp(b.data, "keep", 4) == 0);
	buf_release(&b);

	/* The output cap: the buffer is released, as buf.h promises. */
	buf_init(&b, 32);
	T_EQ_INT(proto_pack(&b, MSG_PING_REQ, id, 0, &ping), -ERR_TOOBIG);
	T_EQ_INT(b.len, 0);
	buf_release(&b);
}

static void
test_total_size_caps(void)
{
	struct proto_replay_rep *r = xcalloc(1, sizeof(*r));
	struct proto_env         env;
	struct buf               b;
	uint8_t                 *big = xcalloc(1, PROTO_MAX_MSG + 16);
	uint32_t                 i;

	/* 512 blobs of 4 KiB pass the bound of one message: refused. */
	r->n_blobs = PROTO_BLOBS_MAX;
	for (i = 0; i < r->n_blobs; i++) {
		r->blobs[i].ptr = big;
		r->blobs[i].len = 4096;
	}
	buf_init(&b, 4 * PROTO_MAX_MSG);
	T_EQ_INT(proto_pack(&b, MSG_REPLAY_REP, "x", 0, r), -ERR_TOOBIG);
	T_EQ_INT(b.len, 0);
	/* Input past PROTO_MAX_MSG is refused before being read. */
	T_EQ_INT(proto_env_unpack(big, PROTO_MAX_MSG + 1, &env), -ERR_TOOBIG);
	T_EQ_INT(proto_body_unpack(MSG_PING_REQ, big, PROTO_MAX_MSG + 1, r),
	    -ERR_TOOBIG);
	/* Too many objects: a 20000-element array, even under a bad key. */
	big[0] = 0xdc;
	big[1] = 20000 >> 8;
	big[2] = 20000 & 0xff;
	memset(big + 3, 0xc0, 20000);
	T_EQ_INT(proto_env_unpack(big, 20003, &env), -ERR_TOOBIG);
	/* Nesting: 9 arrays deep. */
	memset(big, 0x91, 9);
	big[9] = 0xc0;
	T_EQ_INT(proto_env_unpack(big, 10, &env), -ERR_TOOBIG);
	/* A count no input backs: array32 of 4 billion in 5 bytes. */
	memcpy(big, "\xdd\xff\xff\xff\xff", 5);
	T_EQ_INT(proto_env_unpack(big, 5, &env), -ERR_PROTO);
	T_EQ_INT(proto_body_unpack(MSG_PING_REQ, big, 5, r), -ERR_PROTO);
	buf_release(&b);
	free(big);
	free(r);
}

/*
 * Decodes bytes as an envelope and, if that works, as its body, then as
 * a body of every type; returns how many decodes succeeded.
 */
static int
t_try(const uint8_t *p, size_t n, void *scratch)
{
	struct proto_env env;
	size_t           i;
	int              ok = 0;

	if (proto_env_unpack(p, n, &env) == 0 && proto_msg_known(env.type))
		ok += proto_unpack(&env, env.type, scratch) == 0;
	for (i = 0; i < ARRAY_SIZE(t_types); i++)
		ok += proto_body_unpack(t_types[i], p, n, scratch) == 0;
	return ok;
}

static void
test_truncated_and_garbage(void)
{
	void            *scratch = xcalloc(1, 256 * 1024);
	struct buf       b;
	struct proto_env env;
	uint8_t         *cp;
	uint32_t         rng = 12345;
	size_t           i, n, k;

	buf_init(&b, PROTO_MAX_MSG + 1);
	for (i = 0; i < ARRAY_SIZE(t_types); i++) {
		buf_reset(&b);
		T_ASSERT(proto_sample_fill(t_types[i], scratch, 2));
		T_OK(proto_pack(&b, t_types[i], "t", 9, scratch));
		/* Every strict prefix fails, on a copy ASan can bound. */
		for (n = 0; n < b.len; n++) {
			cp = xmalloc(n + 1);
			memcpy(cp, b.data, n);
			T_ASSERT(proto_env_unpack(cp, n, &env) != 0);
			T_EQ_INT(t_try(cp, n, scratch), 0);
			free(cp);
		}
		/* Random byte flips: anything may happen but a crash. */
		for (k = 0; k < 300; k++) {
			cp = xmemdup(b.data, b.len);
			rng = rng * 1103515245u + 12345u;
			cp[(rng >> 8) % b.len] ^= (uint8_t)(1u << (rng % 8));
			rng = rng * 1103515245u + 12345u;
			cp[(rng >> 8) % b.len] = (uint8_t)(rng >> 24);
			t_try(cp, b.len, scratch);
			free(cp);
		}
	}
	/* Pure noise. */
	cp = xmalloc(4096);
	for (k = 0; k < 2000; k++) {
		n = 1 + k % 4096;
		for (i = 0; i < n; i++) {
			rng = rng * 1103515245u + 12345u;
			cp[i] = (uint8_t)(rng >> 16);
		}
		t_try(cp, n, scratch);
	}
	free(cp);
	buf_release(&b);
	free(scratch);
}

T_MAIN(T_CASE(test_registry), T_CASE(test_roundtrip_every_type),
    T_CASE(test_typed_wrappers), T_CASE(test_usage_sync),
    T_CASE(test_usage_each), T_CASE(test_each_required_key_missing),
    T_CASE(test_each_field_mistyped), T_CASE(test_each_bound_exceeded),
    T_CASE(test_integer_ranges), T_CASE(test_samples_and_doubles),
    T_CASE(test_unknown_keys_and_duplicates), T_CASE(test_semantic_checks),
    T_CASE(test_keyinfo_checks), T_CASE(test_pack_refuses_bad_structs),
    T_CASE(test_total_size_caps), T_CASE(test_truncated_and_garbage))
