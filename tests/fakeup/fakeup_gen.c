/*
 * fakeup_gen.c: the reply generator of POST /v1/messages.
 *
 * A reply is one struct fake_gen, a state machine that MHD's content
 * reader calls for its next bytes, on the connection's own thread.  A
 * stream walks the events Anthropic sends, in this order:
 *
 *   message_start, content_block_start, ping, content_block_delta x N,
 *   content_block_stop, [tool_use block: content_block_start,
 *   input_json_delta x M, content_block_stop], message_delta, message_stop
 *
 * each framed "event: <type>\ndata: <json>\n\n" (the ping's data is
 * Anthropic's literal {"type": "ping"}).  A non-stream reply is one JSON
 * Message with a Content-Length.  Pacing (drip), stalls and cuts (drop,
 * inband-error) happen between events; every wait watches the client
 * socket, so a hang-up is seen at once (fake_wait()).
 *
 * The text is the pieces "Hello", " from", " the", " fake", " upstream."
 * repeated to N deltas (N = 5 unless the mode says deltas=N).  A tool_use
 * block follows when the request has a non-empty "tools" array, its last
 * user message holds no tool_result block and the mode is not "notools";
 * its input holds the first tool's required properties (else its first
 * property) set to "x" (strings), 1 (numbers), true, [] or {} by schema
 * type, streamed as an empty partial_json then 8-byte pieces.
 *
 * Token counts, unless the mode's usage= gives them:
 *   input_tokens  = request body bytes / 4 + 1
 *   output_tokens = 2 * N, plus 8 with a tool_use block
 *   cache fields  = 0
 * message_start reports output_tokens 1; message_delta the final count.
 * drop and inband-error strike after ceil(N / 2) text deltas.
 */
#include "fakeup.h"
#include "log.h"

#define FAKE_DELTAS_DEFAULT 5
#define FAKE_TOOL_TOKENS    8
#define FAKE_TOOL_PROPS_MAX 64         /* properties put in a tool input */
#define FAKE_TOOL_NAME_MAX  256        /* longest property or tool name kept */
#define FAKE_JSON_PIECE     8          /* bytes per input_json_delta */
#define FAKE_OUT_MAX        (16 << 20) /* one event, or the reply text */
#define FAKE_BLOCK_SIZE     16384      /* MHD reader buffer */

enum fake_gen_state {
	FAKE_GS_JSON, /* non-stream: served from doc */
	FAKE_GS_MSG_START,
	FAKE_GS_TEXT_START,
	FAKE_GS_PING,
	FAKE_GS_TEXT_DELTA,
	FAKE_GS_TEXT_STOP,
	FAKE_GS_TOOL_START,
	FAKE_GS_TOOL_DELTA,
	FAKE_GS_TOOL_STOP,
	FAKE_GS_MSG_DELTA,
	FAKE_GS_MSG_STOP,
	FAKE_GS_STALL, /* wait for the client to go, then cut */
	FAKE_GS_ABORT, /* cut the connection now */
	FAKE_GS_DONE,
};

enum fake_step { FAKE_STEP_MORE, FAKE_STEP_END, FAKE_STEP_ABORT };

struct fake_gen {
	enum fake_gen_state st;
	struct fake_req    *req; /* borrowed: the request owns us */
	struct fake_mode    mode;
	char               *model;
	int                 deltas;
	int                 cut; /* text delta where drop/inband strike; -1 */
	int                 i;   /* deltas sent in the current block */
	bool                tool;
	char               *tool_name;
	char               *tool_input; /* compact JSON */
	char                msg_id[FAKE_ID_LEN];
	char                tool_id[FAKE_ID_LEN];
	int64_t             usage[6]; /* in, out, cc, cr, cc5m, cc1h */
	bool                stream;
	int64_t             nevents;
	char               *doc; /* non-stream reply */
	size_t              doc_len;
	struct buf          out; /* bytes not yet handed to MHD */
	size_t              off;
};

static const char *const fake_words[] = {
    "Hello", " from", " the", " fake", " upstream."};

void
fake_gen_free(struct fake_gen *g)
{
	if (g == NULL)
		return;
	free(g->model);
	free(g->tool_name);
	free(g->tool_input);
	free(g->doc);
	buf_release(&g->out);
	free(g);
}

/* True when the last user message carries a tool_result block. */
static bool
fake_gen_has_tool_result(json_t *messages)
{
	json_t     *msg, *content, *block;
	const char *type;
	size_t      i, j;

	for (i = json_array_size(messages); i-- > 0;) {
		msg = json_array_get(messages, i);
		if (!json_is_string(json_object_get(msg, "role")) ||
		    strcmp(json_string_value(json_object_get(msg, "role")),
		        "user") != 0)
			continue;
		content = json_object_get(msg, "content");
		for (j = 0; j < json_array_size(content); j++) {
			block = json_array_get(content, j);
			type =
			    json_string_value(json_object_get(block, "type"));
			if (type != NULL && strcmp(type, "tool_result") == 0)
				return true;
		}
		return false;
	}
	return false;
}

/* A placeholder value for a JSON schema property. */
static json_t *
fake_gen_value(json_t *prop)
{
	const char *t = json_string_value(json_object_get(prop, "type"));

	if (t == NULL || strcmp(t, "string") == 0)
		return json_string("x");
	if (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0)
		return json_integer(1);
	if (strcmp(t, "boolean") == 0)
		return json_true();
	if (strcmp(t, "array") == 0)
		return json_array();
	if (strcmp(t, "object") == 0)
		return json_object();
	return json_string("x");
}

/* The input of the tool_use block for tool (see the file comment). */
static json_t *
fake_gen_tool_input(json_t *tool)
{
	json_t     *schema = json_object_get(tool, "input_schema");
	json_t     *props = json_object_get(schema, "properties");
	json_t     *req = json_object_get(schema, "required");
	json_t     *in = json_object();
	void       *it;
	const char *name;
	size_t      i;

	for (i = 0; i < json_array_size(req) && i < FAKE_TOOL_PROPS_MAX; i++) {
		name = json_string_value(json_array_get(req, i));
		if (name != NULL && strlen(name) <= FAKE_TOOL_NAME_MAX)
			json_object_set_new(in, name,
			    fake_gen_value(json_object_get(props, name)));
	}
	if (json_object_size(in) == 0 && json_object_size(props) > 0) {
		it = json_object_iter(props);
		name = json_object_iter_key(it);
		if (strlen(name) <= FAKE_TOOL_NAME_MAX)
			json_object_set_new(in, name,
			    fake_gen_value(json_object_iter_value(it)));
	}
	return in;
}

static json_t *
fake_gen_usage(const struct fake_gen *g, int64_t out)
{
	return json_pack("{s:I, s:I, s:I, s:{s:I, s:I}, s:I}", "input_tokens",
	    (json_int_t)g->usage[0], "cache_creation_input_tokens",
	    (json_int_t)g->usage[2], "cache_read_input_tokens",
	    (json_int_t)g->usage[3], "cache_creation",
	    "ephemeral_5m_input_tokens", (json_int_t)g->usage[4],
	    "ephemeral_1h_input_tokens", (json_int_t)g->usage[5],
	    "output_tokens", (json_int_t)out);
}

/* The text of the reply: the first n pieces of fake_words, cycling. */
static char *
fake_gen_text(int n)
{
	struct buf b;
	int        i;

	buf_init(&b, FAKE_OUT_MAX);
	for (i = 0; i < n; i++) {
		if (buf_addstr(&b, fake_words[i % ARRAY_SIZE(fake_words)]) != 0)
			BUG("fakeup: text too long");
	}
	return buf_detach(&b, NULL);
}

/* The whole non-stream Message document. */
static char *
fake_gen_doc(struct fake_gen *g)
{
	json_t *content = json_array(), *msg;
	char   *text = fake_gen_text(g->deltas), *s;

	json_array_append_new(
	    content, json_pack("{s:s, s:s}", "type", "text", "text", text));
	free(text);
	if (g->tool)
		json_array_append_new(content,
		    json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
		        g->tool_id, "name", g->tool_name, "input",
		        json_loads(g->tool_input, 0, NULL)));
	msg = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:o}", "id",
	    g->msg_id, "type", "message", "role", "assistant", "model",
	    g->model, "content", content, "stop_reason",
	    g->tool ? "tool_use" : "end_turn", "stop_sequence", "usage",
	    fake_gen_usage(g, g->usage[1]));
	if (msg == NULL)
		BUG("fakeup: cannot build a message");
	s = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(msg);
	return s;
}

struct fake_gen *
fake_gen_new(
    struct fake_req *r, json_t *body, const struct fake_mode *m, bool stream)
{
	struct fake_gen *g = xcalloc(1, sizeof(*g));
	json_t          *tools = json_object_get(body, "tools");
	json_t          *input;
	const char      *name;

	g->req = r;
	g->mode = *m;
	g->model = xstrdup(json_string_value(json_object_get(body, "model")));
	g->deltas = m->deltas > 0 ? m->deltas : FAKE_DELTAS_DEFAULT;
	g->cut = -1;
	if (m->fail == FAKE_FAIL_DROP || m->fail == FAKE_FAIL_INBAND)
		g->cut = (g->deltas + 1) / 2;
	g->tool = json_array_size(tools) > 0 && !m->no_tools &&
	    !fake_gen_has_tool_result(json_object_get(body, "messages"));
	fake_new_id("msg_", g->msg_id);
	if (g->tool) {
		name = json_string_value(
		    json_object_get(json_array_get(tools, 0), "name"));
		g->tool_name =
		    xstrndup(name != NULL ? name : "tool", FAKE_TOOL_NAME_MAX);
		input = fake_gen_tool_input(json_array_get(tools, 0));
		g->tool_input =
		    json_dumps(input, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(input);
		fake_new_id("toolu_", g->tool_id);
	}
	if (m->has_usage) {
		memcpy(g->usage, m->usage, sizeof(g->usage));
	} else {
		g->usage[0] = (int64_t)(r->body.len / 4 + 1);
		g->usage[1] =
		    2 * (int64_t)g->deltas + (g->tool ? FAKE_TOOL_TOKENS : 0);
	}
	buf_init(&g->out, FAKE_OUT_MAX);
	g->stream = stream;
	if (stream) {
		g->st = FAKE_GS_MSG_START;
	} else {
		g->st =
		    m->fail == FAKE_FAIL_STALL ? FAKE_GS_STALL : FAKE_GS_JSON;
		g->doc = fake_gen_doc(g);
		g->doc_len = strlen(g->doc);
	}
	return g;
}

/* Appends one SSE event; data is taken. */
static void
fake_gen_event(struct fake_gen *g, const char *type, json_t *data)
{
	char *s;

	if (data == NULL)
		BUG("fakeup: cannot build event %s", type);
	s = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(data);
	if (s == NULL ||
	    buf_addf(&g->out, "event: %s\ndata: %s\n\n", type, s) != 0)
		BUG("fakeup: event %s too large", type);
	free(s);
}

static json_t *
fake_gen_delta(
    int index, const char *type, const char *key, const char *v, size_t vlen)
{
	return json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type",
	    "content_block_delta", "index", index, "delta", "type", type, key,
	    v, vlen);
}

/* What happens at the cut: drop the connection or send an error event. */
static enum fake_step
fake_gen_cut(struct fake_gen *g)
{
	if (g->mode.fail == FAKE_FAIL_DROP) {
		log_debug("fakeup.drop", LOG_STR("path", g->req->path));
		return FAKE_STEP_ABORT;
	}
	fake_gen_event(g, "error",
	    json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
	        "overloaded_error", "message", "Overloaded"));
	g->st = FAKE_GS_DONE;
	return FAKE_STEP_MORE;
}

/* Emits the event of the current state and moves on. */
static enum fake_step
fake_gen_emit(struct fake_gen *g)
{
	const char *w;
	json_t     *msg;
	size_t      n, len;

	switch (g->st) {
	case FAKE_GS_MSG_START:
		msg = json_pack("{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:o}",
		    "id", g->msg_id, "type", "message", "role", "assistant",
		    "model", g->model, "content", "stop_reason",
		    "stop_sequence", "usage", fake_gen_usage(g, 1));
		fake_gen_event(g, "message_start",
		    json_pack(
		        "{s:s, s:o}", "type", "message_start", "message", msg));
		g->st = g->mode.fail == FAKE_FAIL_STALL ? FAKE_GS_STALL
		                                        : FAKE_GS_TEXT_START;
		break;
	case FAKE_GS_TEXT_START:
		fake_gen_event(g, "content_block_start",
		    json_pack("{s:s, s:i, s:{s:s, s:s}}", "type",
		        "content_block_start", "index", 0, "content_block",
		        "type", "text", "text", ""));
		g->st = FAKE_GS_PING;
		break;
	case FAKE_GS_PING:
		if (buf_addstr(
		        &g->out, "event: ping\ndata: {\"type\": \"ping\"}\n\n"))
			BUG("fakeup: ping");
		g->st = FAKE_GS_TEXT_DELTA;
		g->i = 0;
		break;
	case FAKE_GS_TEXT_DELTA:
		if (g->i == g->cut)
			return fake_gen_cut(g);
		w = fake_words[(size_t)g->i % ARRAY_SIZE(fake_words)];
		fake_gen_event(g, "content_block_delta",
		    fake_gen_delta(0, "text_delta", "text", w, strlen(w)));
		if (++g->i == g->deltas)
			g->st = FAKE_GS_TEXT_STOP;
		break;
	case FAKE_GS_TEXT_STOP:
		if (g->i == g->cut)
			return fake_gen_cut(g);
		fake_gen_event(g, "content_block_stop",
		    json_pack("{s:s, s:i}", "type", "content_block_stop",
		        "index", 0));
		g->st = g->tool ? FAKE_GS_TOOL_START : FAKE_GS_MSG_DELTA;
		break;
	case FAKE_GS_TOOL_START:
		fake_gen_event(g, "content_block_start",
		    json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:{}}}", "type",
		        "content_block_start", "index", 1, "content_block",
		        "type", "tool_use", "id", g->tool_id, "name",
		        g->tool_name, "input"));
		g->st = FAKE_GS_TOOL_DELTA;
		g->i = 0;
		break;
	case FAKE_GS_TOOL_DELTA:
		/* The first piece is empty, as Anthropic's is. */
		len = strlen(g->tool_input);
		n = g->i == 0 ? 0 : (size_t)(g->i - 1) * FAKE_JSON_PIECE;
		fake_gen_event(g, "content_block_delta",
		    fake_gen_delta(1, "input_json_delta", "partial_json",
		        g->tool_input + n,
		        g->i == 0
		            ? 0
		            : (len - n < FAKE_JSON_PIECE ? len - n
		                                         : FAKE_JSON_PIECE)));
		g->i++;
		if ((size_t)(g->i - 1) * FAKE_JSON_PIECE >= len)
			g->st = FAKE_GS_TOOL_STOP;
		break;
	case FAKE_GS_TOOL_STOP:
		fake_gen_event(g, "content_block_stop",
		    json_pack("{s:s, s:i}", "type", "content_block_stop",
		        "index", 1));
		g->st = FAKE_GS_MSG_DELTA;
		break;
	case FAKE_GS_MSG_DELTA:
		fake_gen_event(g, "message_delta",
		    json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type",
		        "message_delta", "delta", "stop_reason",
		        g->tool ? "tool_use" : "end_turn", "stop_sequence",
		        "usage", "output_tokens", (json_int_t)g->usage[1]));
		g->st = FAKE_GS_MSG_STOP;
		break;
	case FAKE_GS_MSG_STOP:
		fake_gen_event(g, "message_stop",
		    json_pack("{s:s}", "type", "message_stop"));
		g->st = FAKE_GS_DONE;
		break;
	default:
		BUG("fake_gen_emit: state %d", (int)g->st);
	}
	return FAKE_STEP_MORE;
}

static enum fake_step
fake_gen_step(struct fake_gen *g)
{
	int64_t pause;

	if (g->st == FAKE_GS_DONE)
		return FAKE_STEP_END;
	if (g->st == FAKE_GS_ABORT)
		return FAKE_STEP_ABORT;
	if (g->st == FAKE_GS_STALL) {
		if (fake_wait(g->req, FAKE_STALL_MS) == 0)
			log_info("fakeup.stall_gave_up",
			    LOG_STR("path", g->req->path));
		return FAKE_STEP_ABORT;
	}
	pause = g->nevents > 0 ? g->mode.drip_ms : 0;
	if (fake_wait(g->req, pause) != 0)
		return FAKE_STEP_ABORT;
	g->nevents++;
	return fake_gen_emit(g);
}

/*
 * Serves the non-stream document from byte pos; drop cuts it in half.
 * The client's liveness is checked before the first byte only: the whole
 * document leaves at once.
 */
static ssize_t
fake_gen_read_doc(struct fake_gen *g, size_t pos, char *out, size_t max)
{
	bool   drop = g->mode.fail == FAKE_FAIL_DROP;
	size_t end = drop ? g->doc_len / 2 : g->doc_len, n;

	if (pos == 0 && fake_wait(g->req, 0) != 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= end)
		return drop ? MHD_CONTENT_READER_END_WITH_ERROR
		            : MHD_CONTENT_READER_END_OF_STREAM;
	n = end - pos < max ? end - pos : max;
	memcpy(out, g->doc + pos, n);
	return (ssize_t)n;
}

static ssize_t
fake_gen_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
	struct fake_gen *g = cls;
	enum fake_step   rv;
	size_t           n;

	if (g->st == FAKE_GS_JSON)
		return fake_gen_read_doc(g, (size_t)pos, out, max);
	while (g->off >= g->out.len) {
		buf_reset(&g->out);
		g->off = 0;
		rv = fake_gen_step(g);
		if (rv == FAKE_STEP_END)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (rv == FAKE_STEP_ABORT)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = g->out.len - g->off;
	if (n > max)
		n = max;
	memcpy(out, g->out.data + g->off, n);
	g->off += n;
	return (ssize_t)n;
}

struct MHD_Response *
fake_gen_response(struct fake_gen *g)
{
	struct MHD_Response *resp;
	char                 reset[24];

	resp = MHD_create_response_from_callback(
	    g->stream ? MHD_SIZE_UNKNOWN : g->doc_len, FAKE_BLOCK_SIZE,
	    fake_gen_read_cb, g, NULL);
	if (resp == NULL)
		return NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    g->stream ? "text/event-stream" : "application/json");
	MHD_add_response_header(resp, "request-id", g->req->req_id);
	if (g->stream)
		MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (g->mode.rl5h[0] != '\0') {
		MHD_add_response_header(resp,
		    "anthropic-ratelimit-unified-5h-status", g->mode.rl5h);
		if (g->mode.rl5h_reset_s > 0) {
			snprintf(reset, sizeof(reset), "%lld",
			    (long long)(now_wall_ms() / 1000 +
			        g->mode.rl5h_reset_s));
			MHD_add_response_header(resp,
			    "anthropic-ratelimit-unified-5h-reset", reset);
		}
	}
	return resp;
}
