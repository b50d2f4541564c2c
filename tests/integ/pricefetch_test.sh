#!/usr/bin/env bash
# pricefetch_test.sh: billing's price table downloaded from a URL.
#
# Billing alone (health 127.0.0.1:19491, base port 19480 + 11; its own
# state dir and database) with price_url pointing at a local
# python3 http.server that serves prices.json and prices.json.sha256;
# the check interval is 1 s.  Checks:
#  - at start the downloaded table replaces the bundled one (the
#    sub2api_billing_price_models gauge, price_reloads_total, the
#    bill.prices_fetched log line with the sha256, the stored copy);
#  - a changed file and sha256 are swapped in within a few intervals;
#  - a body that does not match its announced sha256 is refused
#    (price_reload_failures_total, bill.price_sha_mismatch) and the table
#    stays; a body that does not parse likewise;
#  - after a restart with the server gone, the stored copy is the table
#    (bill.prices_local_loaded) and failed checks are counted;
#  - SIGTERM stops billing with status 0 while checks run.
. "$(dirname "$0")/lib.sh"

HEALTH=19491
WWW=$T_TMP/www
RUN=$T_TMP/run
declare -A PID

pf_cleanup() {
	local p
	for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap pf_cleanup EXIT

# pf_metric NAME: the metric's value as an integer, "" when absent.
pf_metric() {
	curl -fsS -m 3 "http://127.0.0.1:$HEALTH/metrics" |
		awk -v m="$1" '$1 == m { printf "%d\n", $2 }'
}

# pf_metric_is NAME VALUE
pf_metric_is() {
	[ "$(pf_metric "$1")" = "$2" ]
}

# pf_json N: prices.json with N models named test-model-<i>.
pf_json() {
	python3 - "$WWW/prices.json.tmp" "$1" <<'EOF'
import json, sys
n = int(sys.argv[2])
doc = {f"test-model-{i}": {"input_cost_per_token": 1e-06 * (i + 1),
                           "output_cost_per_token": 2e-06} for i in range(n)}
json.dump(doc, open(sys.argv[1], "w"), indent=1)
EOF
	mv "$WWW/prices.json.tmp" "$WWW/prices.json"
}

# pf_sha [HEX]: prices.json.sha256 as sha256sum writes it, announcing HEX
# or the sha256 of prices.json.  Written after the body, so a check sees
# the old sha256 (no change) or the new pair.
pf_sha() {
	local hex=${1:-$(sha256sum <"$WWW/prices.json" | cut -d' ' -f1)}
	echo "$hex  prices.json" >"$WWW/prices.json.sha256.tmp"
	mv "$WWW/prices.json.sha256.tmp" "$WWW/prices.json.sha256"
}

pf_serve() {
	pf_json "$1"
	pf_sha
}

pf_start_billing() {
	"$BIN/sub2api-billing" >>"$T_TMP/billing.log" 2>&1 &
	PID[billing]=$!
	t_check "billing serves /metrics" t_wait 15 \
		curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$HEALTH/metrics"
}

pf_stop_billing() {
	local rc
	kill -TERM "${PID[billing]}"
	wait "${PID[billing]}"
	rc=$?
	unset "PID[billing]"
	return $rc
}

mkdir -p "$WWW" "$RUN"
pf_serve 3
python3 -u -m http.server --bind 127.0.0.1 --directory "$WWW" 0 \
	>"$T_TMP/www.out" 2>"$T_TMP/www.log" &
PID[www]=$!
t_check "http server starts" t_wait 10 grep -q 'port [0-9]' "$T_TMP/www.out"
PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$T_TMP/www.out" | head -1)
URL=http://127.0.0.1:$PORT/prices.json

DB=$(t_newdb pricefetch19480)
unset SUB2API_DATABASE_URL SUB2API_REDIS_URL
export SUB2API_DATABASE_URL=$DB
export SUB2API_REDIS_URL=$SUB2API_TEST_REDIS_URL/$((19480 % 13 + 2))
export SUB2API_STATE_DIR=$RUN
export SUB2API_BILLING_HEALTH_ADDR=127.0.0.1:$HEALTH
export SUB2API_BILLING_PRICE_BUNDLED=$ROOT/billing/prices.json
export SUB2API_BILLING_PRICE_URL=$URL
export SUB2API_BILLING_PRICE_CHECK_INTERVAL=1s
export SUB2API_BILLING_PRICE_FETCH_TIMEOUT=3s
t_check "migrate" "$BIN/sub2apictl" --db "$DB" --migrations "$ROOT/migrations" migrate

pf_start_billing
t_check "the downloaded table is in use (3 models)" t_wait 10 \
	pf_metric_is sub2api_billing_price_models 3
t_eq "one table swapped in" 1 "$(pf_metric sub2api_billing_price_reloads_total)"
SHA1=$(cut -d' ' -f1 "$WWW/prices.json.sha256")
t_check "bill.prices_fetched logged with its sha256" \
	grep -q "\"ev\":\"bill.prices_fetched\",\"sha256\":\"$SHA1\"" "$T_TMP/billing.log"
t_check "the copy is stored in the data dir" cmp -s "$WWW/prices.json" "$RUN/prices/prices.json"

pf_serve 5
t_check "a changed file is swapped in within a few intervals" t_wait 10 \
	pf_metric_is sub2api_billing_price_models 5
t_eq "two tables swapped in" 2 "$(pf_metric sub2api_billing_price_reloads_total)"
t_check "the new copy is stored" cmp -s "$WWW/prices.json" "$RUN/prices/prices.json"
SHA2=$(cut -d' ' -f1 "$WWW/prices.json.sha256")
t_check "its sha256 is logged" grep -q "\"sha256\":\"$SHA2\"" "$T_TMP/billing.log"
t_eq "no failure so far" 0 "$(pf_metric sub2api_billing_price_reload_failures_total)"

# A tampered body: the sha256 announces something else.
cp "$WWW/prices.json" "$T_TMP/good.json"
pf_json 7
pf_sha "$(echo other | sha256sum | cut -d' ' -f1)"
t_check "a body not matching its sha256 is refused" t_wait 10 \
	grep -q '"ev":"bill.price_sha_mismatch"' "$T_TMP/billing.log"
t_check "the refusal is counted" t_wait 5 bash -c \
	"[ \"\$(curl -fsS -m 3 http://127.0.0.1:$HEALTH/metrics | awk '\$1 == \"sub2api_billing_price_reload_failures_total\" {print \$2}')\" -ge 1 ]"
t_eq "the table stays (5 models)" 5 "$(pf_metric sub2api_billing_price_models)"
t_check "the stored copy stays" cmp -s "$T_TMP/good.json" "$RUN/prices/prices.json"

# A body that does not parse, with a correct sha256.
printf '{"test-model-0": {' >"$WWW/prices.json.tmp"
mv "$WWW/prices.json.tmp" "$WWW/prices.json"
pf_sha
t_check "a body that does not parse is refused" t_wait 10 \
	grep -q '"ev":"bill.price_fetch_refused"' "$T_TMP/billing.log"
t_eq "the table stays (5 models) after it" 5 "$(pf_metric sub2api_billing_price_models)"
t_eq "still two tables swapped in" 2 "$(pf_metric sub2api_billing_price_reloads_total)"

pf_stop_billing
t_eq "billing stops with status 0" 0 $?

# No network: the restart keeps the last good downloaded table.
kill -TERM "${PID[www]}"
wait "${PID[www]}" 2>/dev/null
unset "PID[www]"
pf_start_billing
t_check "after a restart the stored copy is in use" t_wait 5 \
	pf_metric_is sub2api_billing_price_models 5
t_check "bill.prices_local_loaded logged" \
	grep -q "\"ev\":\"bill.prices_local_loaded\",\"sha256\":\"$SHA2\"" "$T_TMP/billing.log"
t_check "failed checks are counted without the server" t_wait 10 bash -c \
	"[ \"\$(curl -fsS -m 3 http://127.0.0.1:$HEALTH/metrics | awk '\$1 == \"sub2api_billing_price_reload_failures_total\" {print \$2}')\" -ge 1 ]"
t_eq "the table is still the stored copy" 5 "$(pf_metric sub2api_billing_price_models)"
pf_stop_billing
t_eq "billing stops with status 0 again" 0 $?
psql "$SUB2API_TEST_DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS ${DB##*/}" >/dev/null
t_done
