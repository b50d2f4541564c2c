/*
 * hb_test.c: heartbeats pack, decode and feed the counters; a gap and a
 * repeat are counted; garbage is counted as malformed, never a crash.
 */
#include "err.h"
#include "hb.h"
#include "proto.h"
#include "t.h"

static int
hb_test_feed(struct hb_rx *rx, const char *inst, uint64_t seq)
{
	struct buf b;
	int        rv;

	buf_init(&b, 4096);
	rv = hb_pack(&b, "gateway", inst, seq, 1000, "serving", 3);
	if (rv == 0)
		rv = hb_rx_feed(rx, b.data, b.len);
	buf_release(&b);
	return rv;
}

static void
test_hb_counts(void)
{
	struct met_registry *reg = met_registry_new(0);
	struct hb_rx         rx;
	uint64_t             s;

	hb_rx_init(&rx, reg);
	for (s = 1; s <= 100; s++)
		T_OK(hb_test_feed(&rx, "gw-1", s));
	T_OK(hb_test_feed(&rx, "gw-1", 105)); /* 101..104 lost */
	T_OK(hb_test_feed(&rx, "gw-1", 105)); /* repeated */
	T_OK(hb_test_feed(&rx, "gw-2", 7));   /* a second source */
	T_EQ_INT(met_counter_value(rx.received), 103);
	T_EQ_INT(met_counter_value(rx.missed), 4);
	T_EQ_INT(met_counter_value(rx.repeated), 1);
	T_EQ_INT(met_counter_value(rx.malformed), 0);
	T_EQ_INT((int)met_gauge_value(rx.sources), 2);
	hb_rx_release(&rx);
	met_registry_free(reg);
}

static void
test_hb_malformed(void)
{
	struct met_registry  *reg = met_registry_new(0);
	struct hb_rx          rx;
	struct buf            b;
	struct proto_ping_req ping = {.sent_at_ms = 1};

	hb_rx_init(&rx, reg);
	T_ASSERT(hb_rx_feed(&rx, "\x81\xa1v\x01", 4) < 0);
	T_ASSERT(hb_rx_feed(&rx, "", 0) < 0);
	/* A valid envelope of another type is not a heartbeat. */
	buf_init(&b, 4096);
	T_OK(proto_ping_req_pack(&b, "r", 0, &ping));
	T_EQ_INT(hb_rx_feed(&rx, b.data, b.len), -ERR_PROTO);
	buf_release(&b);
	T_EQ_INT(met_counter_value(rx.malformed), 3);
	T_EQ_INT(met_counter_value(rx.received), 0);
	hb_rx_release(&rx);
	met_registry_free(reg);
}

static void
test_hb_bad_state_refused(void)
{
	struct buf b;

	buf_init(&b, 4096);
	T_EQ_INT(hb_pack(&b, "gateway", "gw", 1, 0, "sleeping", 0), -ERR_INVAL);
	buf_release(&b);
}

T_MAIN(T_CASE(test_hb_counts), T_CASE(test_hb_malformed),
    T_CASE(test_hb_bad_state_refused))
