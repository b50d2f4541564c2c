/*
 * usage_tap.c: a test collector that records every usage and error event.
 *
 *   usage_tap --listen URL [--out FILE]
 *
 * Opens a SUB socket LISTENING on URL (producers dial, as with billing and
 * opsmon), subscribed to "usage." and "error.", decodes each event with
 * the strict proto codecs and writes it as one JSON line (every field of
 * struct proto_usage_evt or proto_error_evt, plus "kind": "usage" or
 * "error", the topic and the envelope's request id) to FILE, or to stdout
 * after the ready line.  Each line is flushed at once, so a test may read
 * the file while the tap runs.
 *
 * Once listening it prints exactly one line on stdout:
 *
 *   listening URL
 *
 * SIGTERM or SIGINT stop it with status 0.  A message that fails to decode
 * is counted and logged on stderr (tap.malformed), never fatal; the totals
 * are logged at exit (tap.stopped).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "nngx.h"
#include "proto.h"
#include "sig.h"
#include "topics.h"

#define TAP_RECV_QUEUE 8192 /* messages: absorbs a burst of events */

/*
 * The tap's state.  The SUB callback runs one message at a time, so the
 * decode buffers and counters need no lock; main reads the counters only
 * after nngx_sub_close() has waited for the last callback.
 */
struct tap {
	FILE                  *out;
	uint64_t               n_usage;
	uint64_t               n_error;
	uint64_t               n_malformed;
	uint64_t               n_write_failed;
	struct proto_usage_evt usage;
	struct proto_error_evt error;
};

static void
tap_usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: usage_tap --listen URL [--out FILE]\n");
	exit(status);
}

/*
 * A JSON string for s.  The codecs refuse embedded NULs but not invalid
 * UTF-8, which jansson refuses: such bytes are replaced by '?' so the
 * line is still written.
 */
static json_t *
tap_str(const char *s)
{
	json_t *j;
	char   *copy;
	size_t  i;

	j = json_string(s);
	if (j != NULL)
		return j;
	copy = xstrdup(s);
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static void
tap_set_str(json_t *o, const char *key, const char *s)
{
	(void)json_object_set_new(o, key, tap_str(s));
}

static void
tap_set_int(json_t *o, const char *key, int64_t v)
{
	(void)json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void
tap_set_bool(json_t *o, const char *key, bool v)
{
	(void)json_object_set_new(o, key, json_boolean(v));
}

static void
tap_usage_json(json_t *o, const struct proto_usage_evt *u)
{
	tap_set_str(o, "kind", "usage");
	tap_set_str(o, "instance", u->instance);
	/* seq is a uint64; counters never come near 2^63. */
	tap_set_int(o, "seq", (int64_t)u->seq);
	tap_set_str(o, "request_id", u->request_id);
	tap_set_int(o, "user_id", u->user_id);
	tap_set_int(o, "api_key_id", u->api_key_id);
	tap_set_int(o, "group_id", u->group_id);
	tap_set_int(o, "account_id", u->account_id);
	tap_set_int(o, "subscription_id", u->subscription_id);
	tap_set_str(o, "model", u->model);
	tap_set_str(o, "upstream_model", u->upstream_model);
	tap_set_str(o, "platform", u->platform);
	tap_set_int(o, "input_tokens", u->input_tokens);
	tap_set_int(o, "output_tokens", u->output_tokens);
	tap_set_int(o, "cache_creation_tokens", u->cache_creation_tokens);
	tap_set_int(o, "cache_read_tokens", u->cache_read_tokens);
	tap_set_int(o, "cache_creation_5m_tokens", u->cache_creation_5m_tokens);
	tap_set_int(o, "cache_creation_1h_tokens", u->cache_creation_1h_tokens);
	tap_set_bool(o, "stream", u->stream);
	tap_set_int(o, "duration_ms", u->duration_ms);
	tap_set_int(o, "first_token_ms", u->first_token_ms);
	tap_set_int(o, "status", u->status);
	tap_set_str(o, "client_ip", u->client_ip);
	tap_set_str(o, "user_agent", u->user_agent);
	tap_set_int(o, "created_at_ms", u->created_at_ms);
}

static void
tap_error_json(json_t *o, const struct proto_error_evt *e)
{
	tap_set_str(o, "kind", "error");
	tap_set_str(o, "instance", e->instance);
	tap_set_int(o, "seq", (int64_t)e->seq);
	tap_set_str(o, "request_id", e->request_id);
	tap_set_int(o, "user_id", e->user_id);
	tap_set_int(o, "api_key_id", e->api_key_id);
	tap_set_int(o, "group_id", e->group_id);
	tap_set_int(o, "account_id", e->account_id);
	tap_set_str(o, "platform", e->platform);
	tap_set_str(o, "model", e->model);
	tap_set_str(o, "path", e->path);
	tap_set_int(o, "status", e->status);
	tap_set_str(o, "phase", e->phase);
	tap_set_str(o, "type", e->type);
	tap_set_str(o, "severity", e->severity);
	tap_set_str(o, "message", e->message);
	tap_set_bool(o, "stream", e->stream);
	tap_set_int(o, "duration_ms", e->duration_ms);
	tap_set_int(o, "created_at_ms", e->created_at_ms);
}

static void
tap_malformed(struct tap *t, const char *topic, size_t len, int rv)
{
	t->n_malformed++;
	log_warn("tap.malformed", LOG_STR("topic", topic), LOG_U64("len", len),
	    LOG_ERR(rv), LOG_U64("total", t->n_malformed));
}

/* Writes o as one line and flushes it; o is borrowed. */
static void
tap_write(struct tap *t, const json_t *o)
{
	char *line;
	int   rv;

	line = json_dumps(o, JSON_COMPACT);
	if (line == NULL) {
		t->n_write_failed++;
		log_warn("tap.encode_failed");
		return;
	}
	rv = fprintf(t->out, "%s\n", line);
	free(line);
	if (rv < 0 || fflush(t->out) != 0) {
		t->n_write_failed++;
		log_warn(
		    "tap.write_failed", LOG_U64("total", t->n_write_failed));
	}
}

/* One event, a usage or error envelope: decode, then one JSON line. */
static void
tap_one(struct tap *t, const char *topic, const void *payload, size_t len)
{
	struct proto_env env;
	json_t          *o;
	int              rv;
	bool             is_usage;

	is_usage = strncmp(topic, TOPIC_USAGE, strlen(TOPIC_USAGE)) == 0;
	rv = proto_env_unpack(payload, len, &env);
	if (rv != 0) {
		tap_malformed(t, topic, len, rv);
		return;
	}
	if (is_usage)
		rv = proto_usage_evt_unpack(&env, &t->usage);
	else
		rv = proto_error_evt_unpack(&env, &t->error);
	if (rv != 0) {
		tap_malformed(t, topic, len, rv);
		return;
	}

	o = json_object();
	if (o == NULL) {
		t->n_write_failed++;
		log_warn("tap.encode_failed");
		return;
	}
	if (is_usage) {
		tap_usage_json(o, &t->usage);
		t->n_usage++;
	} else {
		tap_error_json(o, &t->error);
		t->n_error++;
	}
	tap_set_str(o, "topic", topic);
	tap_set_str(o, "env_id", env.id);
	tap_write(t, o);
	json_decref(o);
}

static void
tap_usage_one(void *arg, const void *env, size_t len)
{
	tap_one(arg, TOPIC_USAGE, env, len);
}

/* The SUB callback: each event of the delivery (a batch holds several). */
static void
tap_event_cb(void *arg, const char *topic, const void *payload, size_t len)
{
	struct tap *t = arg;
	int         rv;

	if (strncmp(topic, TOPIC_USAGE, strlen(TOPIC_USAGE)) != 0) {
		tap_one(t, topic, payload, len);
		return;
	}
	rv = proto_usage_each(payload, len, tap_usage_one, t);
	if (rv < 0)
		tap_malformed(t, topic, len, rv);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"out", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *const topics[] = {TOPIC_USAGE, TOPIC_ERROR};
	const char       *listen = NULL;
	const char       *out_path = NULL;
	struct tap        t;
	struct nngx_sub  *sub = NULL;
	int               c, rv, signo;

	sig_init();
	log_init("usage_tap", LOG_INFO);
	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'h':
			tap_usage(0);
			break;
		default:
			tap_usage(2);
		}
	}
	if (optind != argc || listen == NULL)
		tap_usage(2);

	memset(&t, 0, sizeof(t));
	t.out = stdout;
	if (out_path != NULL) {
		t.out = fopen(out_path, "w");
		if (t.out == NULL)
			fatalx("tap.open_failed", LOG_STR("path", out_path));
	}

	rv = nngx_sub_new(listen, topics, ARRAY_SIZE(topics), TAP_RECV_QUEUE,
	    tap_event_cb, &t, &sub);
	if (rv != 0)
		fatalx(
		    "tap.listen_failed", LOG_STR("addr", listen), LOG_ERR(rv));
	printf("listening %s\n", listen);
	fflush(stdout);
	log_info("tap.listening", LOG_STR("addr", listen));

	if (sig_wait(&signo) != 0)
		signo = 0;
	/* Waits for a callback in progress: the counters are final after. */
	nngx_sub_close(sub);
	log_info("tap.stopped", LOG_I64("signal", signo),
	    LOG_U64("usage", t.n_usage), LOG_U64("error", t.n_error),
	    LOG_U64("malformed", t.n_malformed),
	    LOG_U64("untopiced", nngx_sub_malformed(sub)),
	    LOG_U64("write_failed", t.n_write_failed));
	nngx_sub_free(sub);
	if (t.out != stdout && fclose(t.out) != 0)
		log_warn("tap.close_failed", LOG_STR("path", out_path));
	return 0;
}
