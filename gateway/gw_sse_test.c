/*
 * gw_sse_test.c: the SSE line parser (chunking, line ends, the cap) and
 * the Anthropic stream observer (usage with the 5m/1h split, first token,
 * in-stream errors, stop reason), on a real-shaped stream.
 */
#include "err.h"
#include "gw_sse.h"
#include "t.h"

/* A Messages stream as api.anthropic.com sends it (LF line ends). */
static const char stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":"
    "\"claude-opus-4-8\",\"content\":[],\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,"
    "\"cache_creation_input_tokens\":3000,\"cache_read_input_tokens\":50000,"
    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":1000,"
    "\"ephemeral_1h_input_tokens\":2000},\"output_tokens\":1,"
    "\"service_tier\":\"standard\"}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
    "{\"type\":\"text\",\"text\":\"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    ": keepalive comment\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"Hello \\\"message_delta\\\"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data:{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\" world\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":12,"
    "\"cache_creation_input_tokens\":3000,\"cache_read_input_tokens\":50000,"
    "\"output_tokens\":42,\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
    "1000,\"ephemeral_1h_input_tokens\":2000}}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

/* Records every line and runs the observer, for comparisons. */
struct rec {
	struct buf         log;
	struct gw_sse_anth st;
	struct buf         evs; /* the observer's bits, one char per line */
	int                stop_after; /* return 1 on this line, 0 = never */
};

static void
rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->log, 1 << 20);
	buf_init(&r->evs, 1 << 16);
}

static void
rec_release(struct rec *r)
{
	buf_release(&r->log);
	buf_release(&r->evs);
}

static int
rec_cb(void *arg, const struct gw_sse_line *ln)
{
	struct rec *r = arg;
	int         ev;

	ev = gw_sse_anth_line(&r->st, ln);
	if (buf_addf(&r->log, "%d|%s|%.*s|%.*s\n", (int)ln->kind, ln->event,
	        (int)ln->value_len, ln->value, (int)ln->len, ln->line) != 0 ||
	    buf_addch(&r->evs, (char)('a' + ev)) != 0)
		return -ERR_TOOBIG;
	if (r->stop_after > 0 && --r->stop_after == 0)
		return 1;
	return 0;
}

/* Feeds s in chunks: size 0 = all at once, -1 = random 1..64 (seed). */
static void
feed(struct rec *r, const char *s, size_t n, int chunk, unsigned seed)
{
	struct gw_sse p;
	size_t        i = 0, k;

	gw_sse_init(&p, 0);
	srand(seed);
	while (i < n) {
		if (chunk == 0)
			k = n;
		else if (chunk < 0)
			k = 1 + (size_t)(rand() % 64);
		else
			k = (size_t)chunk;
		if (k > n - i)
			k = n - i;
		T_OK(gw_sse_feed(&p, s + i, k, rec_cb, r));
		i += k;
	}
	T_OK(gw_sse_finish(&p, rec_cb, r));
	T_EQ_INT(p.part.len, 0);
	gw_sse_release(&p);
}

static void
feed_str(struct rec *r, const char *s, int chunk, unsigned seed)
{
	feed(r, s, strlen(s), chunk, seed);
}

static void
check_stream_result(const struct rec *r)
{
	const struct gw_usage *u = &r->st.usage;

	T_EQ_INT(u->input, 12);
	T_EQ_INT(u->output, 42);
	T_EQ_INT(u->cache_creation, 3000);
	T_EQ_INT(u->cache_read, 50000);
	T_EQ_INT(u->cache_creation_5m, 1000);
	T_EQ_INT(u->cache_creation_1h, 2000);
	T_EQ_INT(u->flags, GW_USAGE_F_SPLIT);
	T_ASSERT(r->st.started);
	T_ASSERT(r->st.first_token);
	T_ASSERT(r->st.stopped);
	T_ASSERT(!r->st.error);
	T_EQ_STR(r->st.stop_reason, "end_turn");
}

static void
test_stream_whole(void)
{
	struct rec  r;
	const char *evs;

	rec_init(&r);
	feed(&r, stream, sizeof(stream) - 1, 0, 0);
	check_stream_result(&r);
	/* 26 lines; which ones raised what (ping, start etc. do not count). */
	evs = buf_str(&r.evs);
	T_EQ_STR(evs, "afaaaaaaaaaacaaaaaaaaeaaqa");
	T_EQ_INT(evs[1] - 'a', GW_SSE_EV_START | GW_SSE_EV_USAGE);
	T_EQ_INT(evs[12] - 'a', GW_SSE_EV_FIRST_TOKEN);
	T_EQ_INT(evs[15] - 'a', 0); /* the second delta */
	T_EQ_INT(evs[21] - 'a', GW_SSE_EV_USAGE);
	T_EQ_INT(evs[24] - 'a', GW_SSE_EV_STOP);
	T_ASSERT(strstr(buf_str(&r.log),
	             "\n1|content_block_delta|content_block_delta|event: "
	             "content_block_delta\n") != NULL);
	T_ASSERT(strstr(buf_str(&r.log), "\n3||keepalive comment|") != NULL);
	/* "data:" without a space gives the same value. */
	T_ASSERT(
	    strstr(buf_str(&r.log),
	        "\n2|content_block_delta|{\"type\":\"content_block_delta\","
	        "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
	        "\" world\"}}|data:{") != NULL);
	rec_release(&r);
}

/* One byte at a time and random chunkings give the very same lines. */
static void
test_stream_chunkings(void)
{
	struct rec whole, r;
	unsigned   seed;

	rec_init(&whole);
	feed(&whole, stream, sizeof(stream) - 1, 0, 0);
	rec_init(&r);
	feed(&r, stream, sizeof(stream) - 1, 1, 0);
	T_EQ_STR(buf_str(&r.log), buf_str(&whole.log));
	T_EQ_STR(buf_str(&r.evs), buf_str(&whole.evs));
	check_stream_result(&r);
	rec_release(&r);
	for (seed = 1; seed <= 50; seed++) {
		rec_init(&r);
		feed(&r, stream, sizeof(stream) - 1, -1, seed);
		T_EQ_STR(buf_str(&r.log), buf_str(&whole.log));
		T_EQ_STR(buf_str(&r.evs), buf_str(&whole.evs));
		check_stream_result(&r);
		rec_release(&r);
	}
	rec_release(&whole);
}

/* Replaces every LF of s with eol, into out. */
static void
convert(const char *s, const char *eol, struct buf *out)
{
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			T_OK(buf_addstr(out, eol));
		else
			T_OK(buf_addch(out, *s));
	}
}

static void
test_line_ends(void)
{
	static const char *const eols[] = {"\r\n", "\r"};
	struct rec               whole, r;
	struct buf               s;
	size_t                   i;
	unsigned                 seed;

	rec_init(&whole);
	feed(&whole, stream, sizeof(stream) - 1, 0, 0);
	for (i = 0; i < ARRAY_SIZE(eols); i++) {
		buf_init(&s, 1 << 20);
		convert(stream, eols[i], &s);
		rec_init(&r);
		feed(&r, s.data, s.len, 0, 0);
		T_EQ_STR(buf_str(&r.log), buf_str(&whole.log));
		rec_release(&r);
		rec_init(&r);
		feed(&r, s.data, s.len, 1, 0); /* CR and LF in two chunks */
		T_EQ_STR(buf_str(&r.log), buf_str(&whole.log));
		rec_release(&r);
		for (seed = 1; seed <= 20; seed++) {
			rec_init(&r);
			feed(&r, s.data, s.len, -1, seed);
			T_EQ_STR(buf_str(&r.log), buf_str(&whole.log));
			check_stream_result(&r);
			rec_release(&r);
		}
		buf_release(&s);
	}
	/* Mixed: "a\r\n\r\nb\n\rc" is a, blank, b, blank, c. */
	rec_init(&r);
	feed_str(&r, "a\r\n\r\nb\n\rc", 1, 0);
	T_EQ_STR(buf_str(&r.log), "4|||a\n0|||\n4|||b\n0|||\n4|||c\n");
	rec_release(&r);
	rec_release(&whole);
}

static void
test_line_cap(void)
{
	struct gw_sse p;
	struct rec    r;

	rec_init(&r);
	gw_sse_init(&p, 16);
	T_OK(gw_sse_feed(&p, "data: 0123456789\n", 17, rec_cb, &r));
	T_EQ_INT(gw_sse_feed(&p, "data: 01234567890\n", 18, rec_cb, &r),
	    -ERR_TOOBIG);
	/* Sticky: nothing more is delivered. */
	T_EQ_INT(gw_sse_feed(&p, "x\n", 2, rec_cb, &r), -ERR_TOOBIG);
	T_EQ_INT(gw_sse_finish(&p, rec_cb, &r), -ERR_TOOBIG);
	T_EQ_INT(p.lines, 1);
	gw_sse_reset(&p);
	T_EQ_INT(p.max_line, 16);
	/* Split across chunks: caught when the pieces add up. */
	T_OK(gw_sse_feed(&p, "data: 0123", 10, rec_cb, &r));
	T_EQ_INT(gw_sse_feed(&p, "4567890", 7, rec_cb, &r), -ERR_TOOBIG);
	gw_sse_reset(&p);
	T_OK(gw_sse_feed(&p, "data: 0123", 10, rec_cb, &r));
	T_EQ_INT(gw_sse_feed(&p, "4567890\n", 8, rec_cb, &r), -ERR_TOOBIG);
	gw_sse_reset(&p);
	T_OK(gw_sse_feed(&p, "data: 0123", 10, rec_cb, &r));
	T_OK(gw_sse_feed(&p, "456789\r", 7, rec_cb, &r));
	T_EQ_INT(p.lines, 1);
	gw_sse_release(&p);
	gw_sse_init(&p, 0);
	T_EQ_INT(p.max_line, GW_SSE_LINE_MAX_DEFAULT);
	gw_sse_release(&p);
	rec_release(&r);
}

static void
test_callback_stops(void)
{
	struct gw_sse p;
	struct rec    r;

	rec_init(&r);
	r.stop_after = 2;
	gw_sse_init(&p, 0);
	T_EQ_INT(gw_sse_feed(&p, "a\nb\nc\n", 6, rec_cb, &r), 1);
	T_EQ_INT(gw_sse_feed(&p, "d\n", 2, rec_cb, &r), 1);
	T_EQ_STR(buf_str(&r.log), "4|||a\n4|||b\n");
	gw_sse_release(&p);
	rec_release(&r);
}

static void
test_fields(void)
{
	struct rec r;

	rec_init(&r);
	feed_str(&r,
	    "id: 7\nretry:100\nevent:x\ndata\ndata:  two\n:c\n\nevent\n", 0, 0);
	T_EQ_STR(buf_str(&r.log),
	    "4||7|id: 7\n4||100|retry:100\n1|x|x|event:x\n2|x||data\n"
	    "2|x| two|data:  two\n3|x|c|:c\n0|x||\n1|||event\n");
	rec_release(&r);
	/* An unterminated last line is delivered by gw_sse_finish(). */
	rec_init(&r);
	feed_str(&r, "data: {}\n\ndata: tail", 3, 0);
	T_EQ_STR(buf_str(&r.log), "2||{}|data: {}\n0|||\n2||tail|data: tail\n");
	rec_release(&r);
}

static void
test_error_event(void)
{
	static const char ev_err[] =
	    "event: message_start\n"
	    "data: {\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
	    "event: error\n"
	    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
	    "\"message\":\"Overloaded\"}}\n\n";
	struct rec r;

	rec_init(&r);
	feed(&r, ev_err, sizeof(ev_err) - 1, 0, 0);
	T_ASSERT(r.st.error);
	T_EQ_STR(r.st.err_type, "overloaded_error");
	T_EQ_STR(r.st.err_msg, "Overloaded");
	T_EQ_STR(buf_str(&r.evs), "afaaia");
	T_EQ_INT(buf_str(&r.evs)[4] - 'a', GW_SSE_EV_ERROR);
	T_EQ_INT(r.st.usage.input, 5);
	T_ASSERT(!r.st.stopped);
	rec_release(&r);

	/* An error event without data is reported on its blank line. */
	rec_init(&r);
	feed_str(&r, "event: error\n\n", 1, 0);
	T_ASSERT(r.st.error);
	T_EQ_STR(r.st.err_type, "api_error");
	T_EQ_STR(buf_str(&r.evs), "ai");
	rec_release(&r);

	/* Data-only error (no event line), with a non-JSON payload too. */
	rec_init(&r);
	feed_str(&r,
	    "data: {\"type\": \"error\", \"error\": {\"type\": "
	    "\"api_error\", \"message\": \"boom\"}}\n\n",
	    0, 0);
	T_ASSERT(r.st.error);
	T_EQ_STR(r.st.err_msg, "boom");
	rec_release(&r);
	rec_init(&r);
	feed_str(&r, "event: error\ndata: not json\n\n", 0, 0);
	T_ASSERT(r.st.error);
	T_EQ_STR(r.st.err_type, "api_error");
	T_EQ_STR(r.st.err_msg, "upstream stream error");
	T_EQ_STR(buf_str(&r.evs), "aia"); /* reported once */
	rec_release(&r);
}

/* GLM-style upstreams: no event lines, usage only in message_delta. */
static void
test_data_only_and_merge(void)
{
	static const char s[] =
	    "data: {\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
	    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}"
	    "\n\n"
	    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	    "\"max_tokens\"},\"usage\":{\"input_tokens\":70,"
	    "\"cache_read_input_tokens\":8,\"output_tokens\":5}}\n\n"
	    "data: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":99,"
	    "\"output_tokens\":9}}\n\n"
	    "data: {\"type\":\"message_stop\"}\n\n";
	struct rec r;

	rec_init(&r);
	feed(&r, s, sizeof(s) - 1, -1, 3);
	T_ASSERT(r.st.started);
	T_ASSERT(r.st.first_token);
	T_ASSERT(r.st.stopped);
	T_EQ_INT(r.st.usage.input, 70); /* taken while 0, then kept */
	T_EQ_INT(r.st.usage.cache_read, 8);
	T_EQ_INT(r.st.usage.output, 9); /* always overwritten */
	T_EQ_INT(r.st.usage.flags, 0);
	T_EQ_STR(r.st.stop_reason, "max_tokens");
	rec_release(&r);
}

static void
test_usage_invariants(void)
{
	static const char bad[] =
	    "event: message_start\n"
	    "data: {\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":-4,\"cache_creation_input_tokens\":100,"
	    "\"cache_creation\":{\"ephemeral_5m_input_tokens\":80,"
	    "\"ephemeral_1h_input_tokens\":30},\"output_tokens\":1.5}}}\n\n";
	struct gw_usage u;
	struct rec      r;

	rec_init(&r);
	feed(&r, bad, sizeof(bad) - 1, 0, 0);
	T_EQ_INT(r.st.usage.input, 0);
	T_EQ_INT(r.st.usage.output, 0);
	T_EQ_INT(r.st.usage.flags,
	    GW_USAGE_F_SPLIT | GW_USAGE_F_BAD_SPLIT | GW_USAGE_F_BAD_VALUE);
	rec_release(&r);

	memset(&u, 0, sizeof(u));
	u.flags = GW_USAGE_F_SPLIT;
	u.cache_creation = 10;
	u.cache_creation_5m = 4;
	u.cache_creation_1h = 6;
	T_EQ_INT(gw_usage_check(&u), GW_USAGE_F_SPLIT);
	u.cache_creation_1h = 7;
	T_EQ_INT(gw_usage_check(&u), GW_USAGE_F_SPLIT | GW_USAGE_F_BAD_SPLIT);
	u.cache_creation_1h = INT64_MAX;
	u.cache_creation_5m = INT64_MAX;
	T_EQ_INT(gw_usage_check(&u), GW_USAGE_F_SPLIT | GW_USAGE_F_BAD_SPLIT);
	/* Without a reported split there is nothing to violate. */
	u.flags = 0;
	T_EQ_INT(gw_usage_check(&u), 0);
}

static void
test_usage_json(void)
{
	static const char body[] =
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"claude-x\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"usage\":"
	    "{\"input_tokens\":3,\"cache_creation_input_tokens\":20,"
	    "\"cache_read_input_tokens\":7,\"cache_creation\":"
	    "{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":20},"
	    "\"output_tokens\":11}}";
	struct gw_usage u;

	memset(&u, 0, sizeof(u));
	T_OK(gw_usage_from_json(body, sizeof(body) - 1, &u));
	T_EQ_INT(u.input, 3);
	T_EQ_INT(u.output, 11);
	T_EQ_INT(u.cache_creation, 20);
	T_EQ_INT(u.cache_read, 7);
	T_EQ_INT(u.cache_creation_5m, 0);
	T_EQ_INT(u.cache_creation_1h, 20);
	T_EQ_INT(u.flags, GW_USAGE_F_SPLIT);
	T_EQ_INT(gw_usage_from_json("{\"usage\":", 9, &u), -ERR_PROTO);
	T_EQ_INT(gw_usage_from_json("[]", 2, &u), -ERR_PROTO);
	T_EQ_INT(gw_usage_from_json("{\"usage\":1}", 11, &u), -ERR_MISSING);
	T_EQ_INT(u.output, 11); /* untouched on failure */
}

T_MAIN(T_CASE(test_stream_whole), T_CASE(test_stream_chunkings),
    T_CASE(test_line_ends), T_CASE(test_line_cap), T_CASE(test_callback_stops),
    T_CASE(test_fields), T_CASE(test_error_event),
    T_CASE(test_data_only_and_merge), T_CASE(test_usage_invariants),
    T_CASE(test_usage_json))
