/*
 * fakeup_log.c: what the fake saw, for tests to assert on.
 *
 * Three things live here, behind one mutex: the ring of the last
 * FAKE_RING_SIZE requests (each a JSON object built at dispatch and
 * completed when MHD reports the request finished), the counters per
 * upstream key and overall (total, in flight now, the most in flight at
 * once, connections the client closed early, replies per status), and the
 * key controls that make the next requests of a key fail.
 *
 * A record is served as it stands, so an in-flight request shows with
 * "ended_ms": null.  Requests to /_fake/ are neither recorded nor counted.
 */
#include <pthread.h>

#include "fakeup.h"
#include "log.h"

#define FAKE_KEY_NONE  "(none)"  /* requests without a key */
#define FAKE_KEY_OTHER "(other)" /* past FAKE_KEYS_MAX keys */

struct fake_counts {
	int64_t total;
	int64_t in_flight;
	int64_t max_in_flight;
	int64_t closed_early;
	json_t *status; /* {"200": n, ...} */
};

struct fake_key {
	char              *key;
	struct fake_counts c;
	char              *ctl_mode; /* NULL: no control */
	int64_t            ctl_count;
};

struct fake_slot {
	uint64_t seq;
	json_t  *rec;
};

static pthread_mutex_t    fake_log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fake_slot   fake_ring[FAKE_RING_SIZE];
static uint64_t           fake_next_seq = 1;
static struct fake_key   *fake_keys;
static size_t             fake_nkeys;
static struct fake_counts fake_all;

static void
fake_counts_clear(struct fake_counts *c)
{
	json_decref(c->status);
	memset(c, 0, sizeof(*c));
	c->status = json_object();
}

void
fake_log_init(void)
{
	fake_keys = xcalloc(FAKE_KEYS_MAX + 1, sizeof(*fake_keys));
	fake_counts_clear(&fake_all);
}

/* Drops everything; the caller holds the lock (or runs alone). */
static void
fake_log_clear_locked(void)
{
	size_t i;

	for (i = 0; i < FAKE_RING_SIZE; i++) {
		json_decref(fake_ring[i].rec);
		fake_ring[i].rec = NULL;
		fake_ring[i].seq = 0;
	}
	for (i = 0; i < fake_nkeys; i++) {
		free(fake_keys[i].key);
		free(fake_keys[i].ctl_mode);
		json_decref(fake_keys[i].c.status);
		memset(&fake_keys[i], 0, sizeof(fake_keys[i]));
	}
	fake_nkeys = 0;
	fake_counts_clear(&fake_all);
}

void
fake_log_release(void)
{
	pthread_mutex_lock(&fake_log_mu);
	fake_log_clear_locked();
	json_decref(fake_all.status);
	fake_all.status = NULL;
	free(fake_keys);
	fake_keys = NULL;
	pthread_mutex_unlock(&fake_log_mu);
}

void
fake_log_reset(void)
{
	pthread_mutex_lock(&fake_log_mu);
	fake_log_clear_locked();
	pthread_mutex_unlock(&fake_log_mu);
}

/* The entry of key, created when create is set; NULL if absent. */
static struct fake_key *
fake_key_get(const char *key, bool create)
{
	size_t i;

	if (key[0] == '\0')
		key = FAKE_KEY_NONE;
	for (i = 0; i < fake_nkeys; i++) {
		if (strcmp(fake_keys[i].key, key) == 0)
			return &fake_keys[i];
	}
	if (!create)
		return NULL;
	if (fake_nkeys == FAKE_KEYS_MAX) {
		if (strcmp(key, FAKE_KEY_OTHER) == 0)
			BUG("fakeup: key table overflow");
		return fake_key_get(FAKE_KEY_OTHER, true);
	}
	fake_keys[fake_nkeys].key = xstrdup(key);
	fake_counts_clear(&fake_keys[fake_nkeys].c);
	return &fake_keys[fake_nkeys++];
}

/* The ring record of seq, or NULL once it has been overwritten. */
static json_t *
fake_rec_get(uint64_t seq)
{
	struct fake_slot *s = &fake_ring[seq % FAKE_RING_SIZE];

	return seq != 0 && s->seq == seq ? s->rec : NULL;
}

/* A JSON string of the first FAKE_REC_BODY_MAX bytes of r's body. */
static json_t *
fake_rec_body(const struct fake_req *r)
{
	size_t      n = r->body.len;
	const char *p = buf_str(&r->body);
	json_t     *s;

	if (n > FAKE_REC_BODY_MAX) {
		n = FAKE_REC_BODY_MAX;
		while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
			n--; /* never split a UTF-8 sequence */
	}
	s = json_stringn(p, n);
	return s != NULL ? s : json_null(); /* not UTF-8 */
}

void
fake_log_begin(struct fake_req *r)
{
	struct fake_slot *slot;
	struct fake_key  *k;
	json_t           *rec;

	rec = json_pack("{s:s, s:s, s:s, s:O, s:O, s:o, s:I, s:b, s:s, s:s, "
	                "s:s, s:I, s:n, s:n, s:b, s:n}",
	    "method", r->method, "path", r->path, "query", r->query, "headers",
	    r->hdrs, "header_list", r->hlist, "body", fake_rec_body(r),
	    "body_len", (json_int_t)r->body.len, "body_truncated",
	    r->body.len > FAKE_REC_BODY_MAX, "key", r->key, "auth", r->auth,
	    "request_id", r->req_id, "started_ms", (json_int_t)now_wall_ms(),
	    "ended_ms", "status", "client_closed", false, "client_closed_ms");
	if (rec == NULL)
		BUG("fakeup: cannot build a request record");

	pthread_mutex_lock(&fake_log_mu);
	r->seq = fake_next_seq++;
	json_object_set_new(rec, "seq", json_integer((json_int_t)r->seq));
	slot = &fake_ring[r->seq % FAKE_RING_SIZE];
	json_decref(slot->rec);
	slot->rec = rec;
	slot->seq = r->seq;
	k = fake_key_get(r->key, true);
	k->c.total++;
	k->c.in_flight++;
	if (k->c.in_flight > k->c.max_in_flight)
		k->c.max_in_flight = k->c.in_flight;
	fake_all.total++;
	fake_all.in_flight++;
	if (fake_all.in_flight > fake_all.max_in_flight)
		fake_all.max_in_flight = fake_all.in_flight;
	pthread_mutex_unlock(&fake_log_mu);
}

void
fake_log_set(const struct fake_req *r, const char *field, json_t *v)
{
	json_t *rec;

	pthread_mutex_lock(&fake_log_mu);
	rec = fake_rec_get(r->seq);
	if (rec != NULL)
		json_object_set(rec, field, v);
	pthread_mutex_unlock(&fake_log_mu);
	json_decref(v);
}

static const char *
fake_toe_name(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK:
		return "ok";
	case MHD_REQUEST_TERMINATED_WITH_ERROR:
		return "error";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
		return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
		return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR:
		return "read_error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
		return "client_abort";
	}
	return "unknown";
}

static void
fake_counts_status(struct fake_counts *c, const char *st)
{
	json_t *v = json_object_get(c->status, st);

	json_object_set_new(c->status, st,
	    json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
}

void
fake_log_end(struct fake_req *r, enum MHD_RequestTerminationCode toe)
{
	struct fake_key *k;
	json_t          *rec;
	int64_t          now = now_wall_ms();
	char             st[16];

	if (toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ||
	    toe == MHD_REQUEST_TERMINATED_READ_ERROR) {
		if (!r->client_closed)
			r->closed_ms = now;
		r->client_closed = true;
	}
	snprintf(st, sizeof(st), "%d", r->status);

	pthread_mutex_lock(&fake_log_mu);
	rec = fake_rec_get(r->seq);
	if (rec != NULL) {
		json_object_set_new(rec, "ended_ms", json_integer(now));
		json_object_set_new(rec, "status", json_integer(r->status));
		json_object_set_new(
		    rec, "end", json_string(fake_toe_name(toe)));
		json_object_set_new(
		    rec, "client_closed", json_boolean(r->client_closed));
		if (r->client_closed)
			json_object_set_new(rec, "client_closed_ms",
			    json_integer(r->closed_ms));
	}
	k = fake_key_get(r->key, true);
	k->c.in_flight--;
	fake_all.in_flight--;
	if (r->client_closed) {
		k->c.closed_early++;
		fake_all.closed_early++;
	}
	fake_counts_status(&k->c, st);
	fake_counts_status(&fake_all, st);
	pthread_mutex_unlock(&fake_log_mu);

	log_debug("fakeup.request_done", LOG_STR("path", r->path),
	    LOG_I64("status", r->status), LOG_STR("end", fake_toe_name(toe)),
	    LOG_BOOL("client_closed", r->client_closed));
}

void
fake_log_set_ctl(const char *key, const char *mode, int64_t count)
{
	struct fake_key *k;

	pthread_mutex_lock(&fake_log_mu);
	k = fake_key_get(key, true);
	free(k->ctl_mode);
	k->ctl_mode = count != 0 ? xstrdup(mode) : NULL;
	k->ctl_count = count;
	pthread_mutex_unlock(&fake_log_mu);
}

/* Takes one use of k's control into out; the lock is held. */
static bool
fake_ctl_take_locked(struct fake_key *k, char *out, size_t cap)
{
	if (k == NULL || k->ctl_mode == NULL || k->ctl_count == 0)
		return false;
	snprintf(out, cap, "%s", k->ctl_mode);
	if (k->ctl_count > 0 && --k->ctl_count == 0) {
		free(k->ctl_mode);
		k->ctl_mode = NULL;
	}
	return true;
}

bool
fake_log_take_ctl(const char *key, char *out, size_t cap)
{
	bool taken;

	pthread_mutex_lock(&fake_log_mu);
	taken = fake_ctl_take_locked(fake_key_get(key, false), out, cap) ||
	    fake_ctl_take_locked(fake_key_get("*", false), out, cap);
	pthread_mutex_unlock(&fake_log_mu);
	return taken;
}

json_t *
fake_log_requests_json(int64_t limit, const char *key)
{
	json_t  *arr = json_array(), *out, *rec, *k;
	uint64_t seq, first;
	int64_t  n = 0;

	pthread_mutex_lock(&fake_log_mu);
	first =
	    fake_next_seq > FAKE_RING_SIZE ? fake_next_seq - FAKE_RING_SIZE : 1;
	/* Newest first while collecting, then reversed: oldest first. */
	for (seq = fake_next_seq - 1; seq >= first && seq > 0 && n < limit;
	     seq--) {
		rec = fake_rec_get(seq);
		if (rec == NULL)
			continue;
		k = json_object_get(rec, "key");
		if (key != NULL && strcmp(json_string_value(k), key) != 0)
			continue;
		json_array_insert_new(arr, 0, json_deep_copy(rec));
		n++;
	}
	pthread_mutex_unlock(&fake_log_mu);
	out = json_pack("{s:o, s:I}", "requests", arr, "count", (json_int_t)n);
	if (out == NULL)
		BUG("fakeup: cannot build the request list");
	return out;
}

static json_t *
fake_counts_json(const struct fake_counts *c)
{
	json_t *o;

	o = json_pack("{s:I, s:I, s:I, s:I, s:o}", "total",
	    (json_int_t)c->total, "in_flight", (json_int_t)c->in_flight,
	    "max_in_flight", (json_int_t)c->max_in_flight, "closed_early",
	    (json_int_t)c->closed_early, "status", json_deep_copy(c->status));
	if (o == NULL)
		BUG("fakeup: cannot build counters");
	return o;
}

json_t *
fake_log_stats_json(void)
{
	json_t *out, *keys = json_object();
	size_t  i;

	pthread_mutex_lock(&fake_log_mu);
	out = fake_counts_json(&fake_all);
	for (i = 0; i < fake_nkeys; i++)
		json_object_set_new(
		    keys, fake_keys[i].key, fake_counts_json(&fake_keys[i].c));
	pthread_mutex_unlock(&fake_log_mu);
	json_object_set_new(out, "keys", keys);
	return out;
}

json_t *
fake_log_ctl_json(const char *key)
{
	struct fake_key *k;
	json_t          *out;

	pthread_mutex_lock(&fake_log_mu);
	k = fake_key_get(key, false);
	if (k != NULL && k->ctl_mode != NULL)
		out = json_pack("{s:s, s:s, s:I}", "key", key, "mode",
		    k->ctl_mode, "count", (json_int_t)k->ctl_count);
	else
		out = json_pack("{s:s, s:n, s:I}", "key", key, "mode", "count",
		    (json_int_t)0);
	pthread_mutex_unlock(&fake_log_mu);
	if (out == NULL)
		BUG("fakeup: cannot build a control");
	return out;
}
