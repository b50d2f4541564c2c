/*
 * metrics_test.c: registry contract: name validation, children and their
 * cap, histogram buckets, label escaping, concurrent increments, and the
 * rendered text accepted by promtool.
 */
#include <sys/wait.h>

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "metrics.h"
#include "t.h"

static const char *const tst_lbl[] = {"topic", "dir"};
static const double      tst_bounds[] = {0.005, 0.1, 1, 10};

static void
test_met_names(void)
{
	struct met_registry *r = met_registry_new(0);
	struct met_family   *f, *g;
	const char *const    bad_lbl[] = {"__x"};
	const char *const    le[] = {"le"};
	const double         desc[] = {1, 0.5};

	T_EQ_INT(met_family_new(
	             r, MET_COUNTER, "no_suffix", "", NULL, 0, NULL, 0, &f),
	    -ERR_INVAL);
	T_EQ_INT(met_family_new(r, MET_GAUGE, "9bad", "", NULL, 0, NULL, 0, &f),
	    -ERR_INVAL);
	T_EQ_INT(met_family_new(r, MET_GAUGE, "a-b", "", NULL, 0, NULL, 0, &f),
	    -ERR_INVAL);
	T_EQ_INT(
	    met_family_new(r, MET_GAUGE, "ok", "", bad_lbl, 1, NULL, 0, &f),
	    -ERR_INVAL);
	T_EQ_INT(
	    met_family_new(r, MET_HISTOGRAM, "h", "", le, 1, tst_bounds, 4, &f),
	    -ERR_INVAL);
	T_EQ_INT(
	    met_family_new(r, MET_HISTOGRAM, "h", "", NULL, 0, desc, 2, &f),
	    -ERR_INVAL);
	T_EQ_INT(
	    met_family_new(r, MET_HISTOGRAM, "h", "", NULL, 0, NULL, 0, &f),
	    -ERR_INVAL);
	T_OK(met_family_new(
	    r, MET_COUNTER, "ns:x_total", "h", tst_lbl, 2, NULL, 0, &f));
	T_OK(met_family_new(
	    r, MET_COUNTER, "ns:x_total", "h", tst_lbl, 2, NULL, 0, &g));
	T_ASSERT(f == g);
	T_EQ_INT(met_family_new(r, MET_COUNTER, "ns:x_total", "h", tst_lbl, 1,
	             NULL, 0, &g),
	    -ERR_EXISTS);
	T_EQ_INT(met_family_new(
	             r, MET_GAUGE, "ns:x_total", "h", NULL, 0, NULL, 0, &g),
	    -ERR_EXISTS);
	T_ASSERT(met_counter_new(r, "bad name_total", "") == NULL);
	met_registry_free(r);
	met_registry_free(NULL);
}

static void
test_met_children(void)
{
	struct met_registry *r = met_registry_new(0);
	struct met_family   *f;
	struct met_counter  *a, *b, *o;
	const char *const    v1[] = {"usage", "in"};
	const char *const    v2[] = {"usage", "out"};
	char                 name[16], big[300];
	const char          *v[2];
	struct buf           out;
	int                  i;

	T_OK(met_family_new(
	    r, MET_COUNTER, "msgs_total", "m", tst_lbl, 2, NULL, 0, &f));
	a = met_counter_get(f, v1);
	b = met_counter_get(f, v2);
	T_ASSERT(a != b);
	T_ASSERT(met_counter_get(f, v1) == a);
	met_counter_inc(a);
	met_counter_add(a, 4);
	T_EQ_INT(met_counter_value(a), 5);
	T_EQ_INT(met_counter_value(b), 0);
	/* long values are cut, and the cut value finds the same child */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	v[0] = big;
	v[1] = "in";
	T_ASSERT(met_counter_get(f, v) == met_counter_get(f, v));
	for (i = 0; i < MET_CHILDREN_MAX + 10; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		v[0] = name;
		o = met_counter_get(f, v);
		T_ASSERT(o != NULL);
		met_counter_inc(o);
	}
	buf_init(&out, 1 << 22);
	T_OK(met_render(r, &out));
	T_ASSERT(strstr(buf_str(&out),
	             "sub2api_metrics_children_dropped_total{family=\""
	             "msgs_total\"} 13\n") != NULL);
	T_ASSERT(strstr(buf_str(&out),
	             "msgs_total{topic=\"usage\",dir=\"in\"} "
	             "5\n") != NULL);
	buf_release(&out);
	met_registry_free(r);
}

/* Builds a registry with every kind and awkward label values. */
static struct met_registry *
tst_full_registry(void)
{
	struct met_registry  *r = met_registry_new(MET_F_PROCESS);
	struct met_family    *f;
	struct met_histogram *h;
	struct met_gauge     *g;
	const char *const     esc[] = {"a\"b\\c\nd", "é"};
	const char *const     lbl[] = {"route"};
	const char *const     rv[] = {"/v1/messages"};

	T_OK(met_family_new(r, MET_COUNTER, "sub2api_nng_messages_total",
	    "NNG messages by topic and direction.\nSecond \\ line.", tst_lbl, 2,
	    NULL, 0, &f));
	met_counter_add(met_counter_get(f, esc), 3);
	met_counter_inc(met_counter_new(r, "sub2api_plain_total", "Plain."));
	g = met_gauge_new(r, "sub2api_inflight", "In flight.");
	met_gauge_set(g, 2.5);
	met_gauge_inc(g);
	met_gauge_dec(g);
	met_gauge_add(g, -0.5);
	T_ASSERT(met_gauge_value(g) == 2.0);
	T_OK(met_family_new(r, MET_HISTOGRAM, "sub2api_latency_seconds",
	    "Latency.", lbl, 1, tst_bounds, ARRAY_SIZE(tst_bounds), &f));
	h = met_histogram_get(f, rv);
	met_histogram_observe(h, 0.001);
	met_histogram_observe(h, 0.1);
	met_histogram_observe(h, 5);
	met_histogram_observe(h, 100);
	T_OK(met_family_new(r, MET_GAUGE, "sub2api_empty", "No children.",
	    tst_lbl, 2, NULL, 0, &f));
	return r;
}

static void
test_met_render_text(void)
{
	struct met_registry *r = tst_full_registry();
	struct buf           out;
	const char          *s;

	buf_init(&out, 1 << 20);
	T_OK(met_render(r, &out));
	s = buf_str(&out);
	T_ASSERT(strstr(s,
	             "# HELP sub2api_nng_messages_total NNG messages by "
	             "topic and direction.\\nSecond \\\\ line.\n") != NULL);
	T_ASSERT(
	    strstr(s, "# TYPE sub2api_nng_messages_total counter\n") != NULL);
	T_ASSERT(strstr(s,
	             "sub2api_nng_messages_total{topic=\"a\\\"b\\\\c\\n"
	             "d\",dir=\"é\"} 3\n") != NULL);
	T_ASSERT(strstr(s, "sub2api_inflight 2\n") != NULL);
	T_ASSERT(strstr(s,
	             "sub2api_latency_seconds_bucket{route=\"/v1/"
	             "messages\",le=\"0.005\"} 1\n") != NULL);
	T_ASSERT(strstr(s, "le=\"0.1\"} 2\n") != NULL);
	T_ASSERT(strstr(s, "le=\"10\"} 3\n") != NULL);
	T_ASSERT(strstr(s, "le=\"+Inf\"} 4\n") != NULL);
	T_ASSERT(strstr(s,
	             "sub2api_latency_seconds_sum{route=\"/v1/"
	             "messages\"} 105.101\n") != NULL);
	T_ASSERT(strstr(s,
	             "sub2api_latency_seconds_count{route=\"/v1/"
	             "messages\"} 4\n") != NULL);
	T_ASSERT(strstr(s, "\nprocess_resident_memory_bytes ") != NULL);
	T_ASSERT(strstr(s, "\nprocess_open_fds ") != NULL);
	T_ASSERT(
	    strstr(s, "# TYPE process_cpu_seconds_total counter\n") != NULL);
	buf_release(&out);
	buf_init(&out, 64);
	T_EQ_INT(met_render(r, &out), -ERR_TOOBIG);
	buf_release(&out);
	met_registry_free(r);
}

/* Runs promtool on text; returns its exit status, or -1 if absent. */
static int
tst_promtool(const char *text)
{
	char  path[64], cmd[160];
	FILE *f;
	int   st;

	if (access("/usr/bin/promtool", X_OK) != 0)
		return -1;
	snprintf(path, sizeof(path), "/tmp/metrics_test.%d.txt", (int)getpid());
	f = fopen(path, "w");
	T_ASSERT(f != NULL);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s 2>&1",
	    path);
	f = popen(cmd, "r");
	T_ASSERT(f != NULL);
	while (fgets(cmd, sizeof(cmd), f) != NULL)
		printf("  promtool: %s", cmd);
	st = pclose(f);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void
test_met_promtool(void)
{
	struct met_registry *r = tst_full_registry();
	struct buf           out;
	int                  st;

	buf_init(&out, 1 << 20);
	T_OK(met_render(r, &out));
	st = tst_promtool(buf_str(&out));
	buf_release(&out);
	met_registry_free(r);
	if (st < 0)
		T_SKIP("/usr/bin/promtool not installed");
	T_EQ_INT(st, 0);
}

static void *
tst_hammer(void *arg)
{
	struct met_family *f = arg;
	const char *const  v[] = {"t", "in"};
	int                i;

	for (i = 0; i < 100000; i++) {
		met_counter_inc(met_counter_get(f, v));
		if (i % 100 == 0)
			met_histogram_observe(
			    met_histogram_new(
			        metrics_default(), "tst_h", "h", tst_bounds, 4),
			    1);
	}
	return NULL;
}

static void
test_met_threads(void)
{
	struct met_family *f;
	pthread_t          th[4];
	const char *const  v[] = {"t", "in"};
	struct buf         out;
	int                i;

	T_OK(met_family_new(metrics_default(), MET_COUNTER, "tst_hammer_total",
	    "h", tst_lbl, 2, NULL, 0, &f));
	for (i = 0; i < 4; i++)
		T_OK(pthread_create(&th[i], NULL, tst_hammer, f));
	buf_init(&out, 1 << 20);
	T_OK(metrics_render(&out));
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	T_EQ_INT(met_counter_value(met_counter_get(f, v)), 400000);
	buf_reset(&out);
	T_OK(metrics_render(&out));
	T_ASSERT(strstr(buf_str(&out), "tst_h_count 4000\n") != NULL);
	buf_release(&out);
}

T_MAIN(T_CASE(test_met_names), T_CASE(test_met_children),
    T_CASE(test_met_render_text), T_CASE(test_met_promtool),
    T_CASE(test_met_threads))
