# gwstack.sh: the relay stack for gateway tests (sourced after lib.sh).
#
# gws_up BASE starts, on ports of its own (gateway BASE, health listeners
# BASE+11..13): the fake upstream, a fresh database with two users (rich:
# balance 100, poor: 0), an anthropic group "claude" with accounts acc-a
# (priority 10, upstream key sk-up-a) and acc-b (priority 20, sk-up-b)
# pointing at the fake, keys KEY (rich), POOR (poor) and OFF (disabled);
# then scheduler, billing and gateway, waiting until they are ready.
# Exports GW, FAKE_URL, DB, CTL, KEY, POOR, OFF; PID holds the processes.
# GWS_FAKE_ARGS, when set, adds options to the fake's command line (the
# bench raises its --conn-limit).
# gws_stop SVC sends SIGTERM and returns the exit status; the EXIT trap
# kills whatever is left.

declare -A PID

gws_cleanup() {
	local p
	for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap gws_cleanup EXIT

# Succeeds when no slot set of the stack's Redis database holds a lease.
gws_slots_empty() {
	[ "$(redis-cli -u "$SUB2API_REDIS_URL" --scan --pattern '*slot*' | while read -r k; do redis-cli -u "$SUB2API_REDIS_URL" zcard "$k"; done | awk '{s+=$1} END {print s+0}')" = 0 ]
}

gws_metric() {
	curl -fsS -m 3 "http://127.0.0.1:$1/metrics" |
		awk -v m="$2" '$1 == m { printf "%d\n", $2 }'
}

# Succeeds once billing has confirmed every usage event the gateway
# published (the gateway trimmed them all from its spool, so it resends
# none again) and billing's writer has settled every event it received
# (inserted, known duplicate, dead letter, malformed or refused by a full
# queue; the queue is empty).  A slow
# billing gets some events twice, over the SUB and again from the spool:
# counts of received events are only comparable once this holds.
gws_billing_settled() {
	local m ev
	ev=$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_events_total)
	[ "$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_trimmed_total)" -ge "$ev" ] || return 1
	m=$(curl -fsS -m 3 "http://127.0.0.1:$BILL_HEALTH/metrics") || return 1
	awk '
		{ v[$1] = $2 }
		END {
			got = v["sub2api_billing_usage_events_total"]
			done = v["sub2api_billing_rows_total"] + v["sub2api_billing_duplicates_total"] + v["sub2api_billing_dead_letters_total"] + v["sub2api_billing_bad_events_total"] + v["sub2api_billing_queue_dropped_total"]
			exit !(got == done && v["sub2api_billing_queue_depth"] == 0)
		}' <<<"$m"
}

gws_newkey() {
	$CTL --json key add --user "$1" --group claude |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}

gws_up() {
	local base=$1 s
	GW=$base
	GW_HEALTH=$((base + 11))
	SCHED_HEALTH=$((base + 12))
	BILL_HEALTH=$((base + 13))
	mkdir -p "$T_TMP/run"
	# shellcheck disable=SC2086 # GWS_FAKE_ARGS is a list of options
	"$BIN/sub2api-fakeup" --listen 127.0.0.1:0 ${GWS_FAKE_ARGS:-} >"$T_TMP/fakeup.out" 2>"$T_TMP/fakeup.log" &
	PID[fakeup]=$!
	t_check "fake upstream starts" t_wait 10 grep -q '^listening ' "$T_TMP/fakeup.out"
	FAKE_URL=http://$(awk '/^listening/ {print $2; exit}' "$T_TMP/fakeup.out")

	DB=$(t_newdb "gws$base")
	export SUB2API_DATABASE_URL=$DB
	export SUB2API_REDIS_URL=$SUB2API_TEST_REDIS_URL/$((base % 13 + 2))
	export SUB2API_STATE_DIR=$T_TMP/run
	SUB2API_SECRET_KEY=$(openssl rand -hex 32)
	export SUB2API_SECRET_KEY
	export SUB2API_GATEWAY_LISTEN_ADDR=127.0.0.1:$GW
	export SUB2API_GATEWAY_HEALTH_ADDR=127.0.0.1:$GW_HEALTH
	export SUB2API_SCHEDULER_HEALTH_ADDR=127.0.0.1:$SCHED_HEALTH
	# The tests change accounts and proxies with SQL, which announces
	# nothing: the scheduler reads them on every acquire unless a test
	# (or the bench) asks for the account cache with GWS_ACCOUNT_CACHE_TTL.
	export SUB2API_SCHEDULER_ACCOUNT_CACHE_TTL=${GWS_ACCOUNT_CACHE_TTL:-0}
	export SUB2API_BILLING_HEALTH_ADDR=127.0.0.1:$BILL_HEALTH
	export SUB2API_GATEWAY_BODY_MAX=1M
	CTL="$BIN/sub2apictl --db $DB"
	redis-cli -u "$SUB2API_REDIS_URL" flushdb >/dev/null
	t_check "migrate" $CTL --migrations "$ROOT/migrations" migrate
	$CTL user add --email rich@example.com --balance 100 --concurrency 10 >/dev/null
	$CTL user add --email poor@example.com --balance 0 >/dev/null
	$CTL group add --name claude --platform anthropic >/dev/null
	$CTL account add --name acc-a --platform anthropic --type apikey \
		--credentials '{"api_key":"sk-up-a"}' --base-url "$FAKE_URL" \
		--priority 10 --concurrency 5 --group claude >/dev/null
	$CTL account add --name acc-b --platform anthropic --type apikey \
		--credentials '{"api_key":"sk-up-b"}' --base-url "$FAKE_URL" \
		--priority 20 --concurrency 5 --group claude >/dev/null
	KEY=$(gws_newkey rich@example.com)
	POOR=$(gws_newkey poor@example.com)
	OFF=$(gws_newkey rich@example.com)
	psql -qAt "$DB" -c "UPDATE api_keys SET status='inactive' WHERE key_prefix = '${OFF:0:10}'" >/dev/null
	t_check "keys created" test -n "$KEY" -a -n "$POOR" -a -n "$OFF"

	for s in scheduler billing gateway; do
		"$BIN/sub2api-$s" >>"$T_TMP/$s.log" 2>&1 &
		PID[$s]=$!
	done
	t_check "gateway ready" t_wait 15 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:$GW_HEALTH/readyz)\" = 200 ]"
	t_check "billing ready" t_wait 15 bash -c "[ \"\$(curl -s -o /dev/null -m 1 -w '%{http_code}' http://127.0.0.1:$BILL_HEALTH/readyz)\" = 200 ]"
}

gws_stop() {
	local rc
	kill -TERM "${PID[$1]}"
	wait "${PID[$1]}"
	rc=$?
	unset "PID[$1]"
	return $rc
}
