#!/usr/bin/env bash
# spool_test.sh: no usage event is lost when billing or the gateway dies.
#
# The gateway spools each usage event before publishing it and syncs with
# billing (USAGE_SYNC_REQ/REP) every spool_sync_interval, resending what
# billing has not committed and trimming what it has (the real ledger:
# billing_cursors.committed_seq, written in each batch's transaction).
#  (a) billing stopped (SIGTERM) during 100 requests, then restarted: every
#      request id ends as exactly one usage_logs row (through resends);
#  (b) billing stopped again and the gateway SIGKILLed mid-run: the spool
#      files (parsed here independently, CRC included) hold the unconfirmed
#      events; the gateway restarted adopts its instance and numbers on
#      from the last spooled seq; billing restarted bills every request
#      completed before the kill exactly once, and the cursor reaches the
#      new request's seq (last + 1) with no gap;
#  (c) once billing committed everything the spool is trimmed to nothing;
#      the balance moved by exactly minus the sum of the rows' actual_cost
#      and the ledger sums to it;
#  (d) billing away and the gateway's spool too small (64 KiB): the events
#      it refuses are lost for good; the gateway declares their seqs lost,
#      so billing's cursor still reaches the last seq and the spool trims.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"

export SUB2API_GATEWAY_SPOOL_SYNC_INTERVAL=200ms
export SUB2API_GATEWAY_SPOOL_RESEND_AFTER=1s
export SUB2API_BILLING_PRICE_BUNDLED=$ROOT/billing/prices.json
mkdir -p "$T_TMP/req"

gws_up 19180
SPOOL=$T_TMP/run/spool
psql -qAt "$DB" -c "UPDATE users SET concurrency = 64" >/dev/null
psql -qAt "$DB" -c "UPDATE accounts SET concurrency = 64" >/dev/null

# req ID [MODEL_SUFFIX]: one stream request; writes req/ID.{code,hdr,rc}.
req() {
	local id=$1 mode=${2:-} body rc
	body='{"model":"claude-sonnet-4-5'"$mode"'","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
	curl -s -m 30 -o /dev/null -D "$T_TMP/req/$id.hdr" -w '%{http_code}' \
		"http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $KEY" \
		-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d "$body" >"$T_TMP/req/$id.code"
	rc=$?
	echo $rc >"$T_TMP/req/$id.rc"
}

# run_batch FROM TO CONC [MODE]: requests FROM..TO, CONC at a time.
run_batch() {
	local i pids=()
	for i in $(seq "$1" "$2"); do
		req "$i" "${4:-}" &
		pids+=($!)
		if [ ${#pids[@]} -ge "$3" ]; then
			wait "${pids[@]}"
			pids=()
		fi
	done
	[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
	return 0
}

# rid ID: the x-request-id of a request, if it completed with 200.
rid() {
	[ "$(cat "$T_TMP/req/$1.code" 2>/dev/null)" = 200 ] &&
		[ "$(cat "$T_TMP/req/$1.rc" 2>/dev/null)" = 0 ] || return 1
	awk -F': *' 'tolower($1) == "x-request-id" { gsub("\r", "", $2); print $2 }' \
		"$T_TMP/req/$1.hdr"
}

# billed_once FILE: every id of FILE (one a line) has exactly one
# usage_logs row.  Prints how many do not.
billed_once() {
	local n
	n=$(python3 -c '
import sys
ids = [l.strip().replace("\x27", "") for l in open(sys.argv[1]) if l.strip()]
print("SELECT count(*) FROM unnest(ARRAY[%s]::text[]) AS i(id) WHERE"
      " (SELECT count(*) FROM usage_logs WHERE request_id = i.id) <> 1"
      % ",".join("\x27%s\x27" % i for i in ids))' "$1" | psql -qAt "$DB" 2>&1)
	echo "$n"
	[ "$n" = 0 ]
}

# spool_scan DIR: "records max_seq" of the valid records in DIR's
# segments, read like the gateway does (len, crc32c(seq, body), seq).
spool_scan() {
	python3 - "$1" <<'EOF'
import os, struct, sys
tab = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    tab.append(c)
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = tab[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
n, top = 0, 0
for name in sorted(os.listdir(sys.argv[1])):
    if not name.endswith(".seg"):
        continue
    data = open(os.path.join(sys.argv[1], name), "rb").read()
    off = 0
    while off + 16 <= len(data):
        ln, crc, seq = struct.unpack_from("<IIQ", data, off)
        body = data[off + 16:off + 16 + ln]
        if ln == 0 or len(body) != ln or crc32c(body, crc32c(struct.pack("<Q", seq))) != crc:
            break
        n, top, off = n + 1, max(top, seq), off + 16 + ln
print(n, top)
EOF
}

gw_ready() {
	[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$GW_HEALTH/readyz")" = 200 ]
}
bill_ready() {
	[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$BILL_HEALTH/readyz")" = 200 ]
}
start_svc() {
	"$BIN/sub2api-$1" >>"$T_TMP/$1.log" 2>&1 &
	PID[$1]=$!
}
metric_ge() {
	[ "$(gws_metric "$1" "$2")" -ge "$3" ]
}

# Exactly one instance directory, named like the running gateway.
INST=$(ls "$SPOOL")
t_eq "one spool instance directory" 1 "$(echo "$INST" | wc -l)"
t_check "the gateway runs as that instance" grep -q "\"ev\":\"svc.started\",\"instance\":\"$INST\"" "$T_TMP/gateway.log"

# ---- (a) billing away during 100 requests -------------------------------
gws_stop billing
t_eq "billing stops on SIGTERM" 0 $?
run_batch 1 100 10
for i in $(seq 1 100); do rid "$i"; done >"$T_TMP/ids_a"
t_eq "100 requests answered 200 while billing was away" 100 "$(wc -l <"$T_TMP/ids_a")"
t_check "the gateway spooled 100 events" metric_ge "$GW_HEALTH" sub2api_gateway_usage_spooled_total 100
t_check "syncs failed while billing was away" t_wait 10 metric_ge "$GW_HEALTH" sub2api_gateway_billing_sync_failures_total 1
t_eq "no row while billing was away" 0 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM usage_logs')"
start_svc billing
t_check "billing ready again" t_wait 15 bill_ready
t_check "every request id has exactly one row (resends)" t_wait 30 billed_once "$T_TMP/ids_a"
t_eq "and no other row" 100 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM usage_logs')"
t_check "the cursor reaches seq 100" t_wait 10 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT committed_seq FROM billing_cursors WHERE instance_id = '$INST'\")\" = 100 ]"
t_check "the gateway counted the resends" metric_ge "$GW_HEALTH" sub2api_gateway_usage_resent_total 100
t_check "billing counted the synced events" metric_ge "$BILL_HEALTH" sub2api_billing_sync_events_total 100

# ---- (b) the gateway SIGKILLed while billing is away -------------------
t_check "the spool is trimmed to seq 100" t_wait 10 bash -c "[ \"\$(cat '$SPOOL/$INST/committed' 2>/dev/null)\" = 100 ]"
gws_stop billing
t_eq "billing stops again" 0 $?
spooled0=$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_spooled_total)
(run_batch 101 160 6 "@fake:drip=20:deltas=10") &
batch=$!
t_check "events spooled during the run" t_wait 30 metric_ge "$GW_HEALTH" sub2api_gateway_usage_spooled_total $((spooled0 + 10))
kill -KILL "${PID[gateway]}"
wait "${PID[gateway]}" 2>/dev/null
unset "PID[gateway]"
wait "$batch"
for i in $(seq 101 160); do rid "$i"; done >"$T_TMP/ids_b"
nb=$(wc -l <"$T_TMP/ids_b")
echo "# $nb of 60 requests completed before the kill"
t_check "some requests completed before the kill" test "$nb" -ge 10
read -r nrec last <<<"$(spool_scan "$SPOOL/$INST")"
echo "# spool: $nrec records, last seq $last"
t_check "the spool files hold the unconfirmed events (CRC-valid)" test "$nrec" -ge "$nb"
t_check "the highest spooled seq covers them" test "$last" -ge $((100 + nb))

goff=$(stat -c %s "$T_TMP/gateway.log")
start_svc gateway
t_check "gateway ready after the kill" t_wait 15 gw_ready
t_check "the restarted gateway adopted its instance" bash -c "tail -c +$((goff + 1)) '$T_TMP/gateway.log' | grep -q '\"ev\":\"gw.spool_opened\",\"instance\":\"$INST\",\"adopted\":true,\"last_seq\":$last,'"
t_check "and runs as that instance" bash -c "tail -c +$((goff + 1)) '$T_TMP/gateway.log' | grep -q '\"ev\":\"svc.started\",\"instance\":\"$INST\"'"
t_eq "still one spool instance directory" "$INST" "$(ls "$SPOOL")"
t_eq "nothing billed while billing was away" 100 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM usage_logs')"

req 200
new=$(rid 200)
t_check "a request after the gateway restart completes" test -n "$new"
start_svc billing
t_check "billing ready again" t_wait 15 bill_ready
t_check "every request completed before the kill has exactly one row" t_wait 30 billed_once "$T_TMP/ids_b"
echo "$new" >"$T_TMP/ids_new"
t_check "the request after the restart has exactly one row" t_wait 15 billed_once "$T_TMP/ids_new"
t_check "the cursor reaches last + 1 (its seq continues the spool, no gap)" t_wait 15 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT committed_seq FROM billing_cursors WHERE instance_id = '$INST'\")\" = $((last + 1)) ]"
# Requests cut by the kill may have a row (spooled before the kill) or not.
rows=$(psql -qAt "$DB" -c 'SELECT count(*) FROM usage_logs')
echo "# rows: $rows (100 + $nb completed + 1 + cut ones that were spooled)"
t_check "no row beyond the requests sent" test "$rows" -ge $((101 + nb)) -a "$rows" -le 161
t_eq "rows are distinct request ids" "$rows" "$(psql -qAt "$DB" -c 'SELECT count(DISTINCT request_id) FROM usage_logs')"
t_eq "rows equal the seqs committed (one event, one row)" "$((last + 1))" "$rows"

# ---- (c) billing confirmed everything: the spool empties ----------------
top=$((last + 1))
t_check "pending records drop to 0" t_wait 10 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | awk '\$1==\"sub2api_gateway_spool_pending_records\" {printf \"%d\", \$2}')\" = 0 ]"
t_eq "no segment file left" 0 "$(find "$SPOOL/$INST" -name '*.seg' | wc -l)"
t_eq "the committed seq is remembered" "$top" "$(cat "$SPOOL/$INST/committed")"
t_eq "the gateway reports it" "$top" "$(gws_metric "$GW_HEALTH" sub2api_gateway_spool_committed_seq)"
t_check "trimmed events counted" metric_ge "$GW_HEALTH" sub2api_gateway_usage_trimmed_total 1
t_eq "nothing went unspooled" 0 "$(curl -fsS -m 3 "http://127.0.0.1:$GW_HEALTH/metrics" | grep -c '^sub2api_gateway_usage_unspooled_total{')"
t_eq "the balance moved by minus the sum of actual_cost" t "$(psql -qAt "$DB" -c "
	SELECT 100 - u.balance = (SELECT sum(actual_cost) FROM usage_logs WHERE user_id = u.id)
		AND u.balance < 100 FROM users u WHERE email = 'rich@example.com'")"
t_eq "the ledger sums to the balance" t "$(psql -qAt "$DB" -c "
	SELECT sum(l.delta) = u.balance FROM balance_ledger l JOIN users u ON u.id = l.user_id
	WHERE u.email = 'rich@example.com' GROUP BY u.id, u.balance")"
t_eq "no dead letter" 0 "$(psql -qAt "$DB" -c 'SELECT count(*) FROM billing_dead_letters')"
t_check "the gateway's metrics pass promtool" bash -c "curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | promtool check metrics"
t_check "billing's metrics pass promtool" bash -c "curl -fsS -m 3 http://127.0.0.1:$BILL_HEALTH/metrics | promtool check metrics"

# ---- (d) a full spool while billing is away: seqs lost for good ---------
# Events the full spool refuses are only published, and billing is away,
# so they are gone: the gateway must declare them lost (USAGE_SYNC_REQ
# "lost"), or billing's cursor would stop at the first one forever and the
# spool would never trim again.
gws_stop gateway
t_eq "gateway stops on SIGTERM" 0 $?
gws_stop billing
t_eq "billing stops once more" 0 $?
SUB2API_GATEWAY_SPOOL_MAX=65536 start_svc gateway
t_check "gateway ready with a 64 KiB spool" t_wait 15 gw_ready
run_batch 301 800 10
for i in $(seq 301 800); do rid "$i"; done >"$T_TMP/ids_d"
t_eq "500 requests answered 200 with the spool full" 500 "$(wc -l <"$T_TMP/ids_d")"
sp_d=$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_spooled_total)
un_d=$(curl -fsS -m 3 "http://127.0.0.1:$GW_HEALTH/metrics" | awk '$1 ~ /^sub2api_gateway_usage_unspooled_total\{reason="full"\}$/ {printf "%d", $2}')
echo "# with the spool full: $sp_d spooled, ${un_d:-0} refused"
t_check "some events were refused by the full spool" test "${un_d:-0}" -ge 1
t_eq "every event spooled or refused" 500 $((sp_d + ${un_d:-0}))
t_check "the lost seqs are recorded in the spool" test -s "$SPOOL/$INST/lost"
start_svc billing
t_check "billing ready again" t_wait 15 bill_ready
t_check "the cursor passes the lost seqs to the last one ($((top + 500)))" t_wait 30 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT committed_seq FROM billing_cursors WHERE instance_id = '$INST'\")\" = $((top + 500)) ]"
t_check "billing counted the declared ranges" metric_ge "$BILL_HEALTH" sub2api_billing_sync_lost_ranges_total 1
t_check "the spool empties again" t_wait 10 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | awk '\$1==\"sub2api_gateway_spool_pending_records\" {printf \"%d\", \$2}')\" = 0 ]"
t_check "no lost range left" test ! -s "$SPOOL/$INST/lost"
t_eq "the spooled events are billed, the lost ones are not" $((top + sp_d)) "$(psql -qAt "$DB" -c 'SELECT count(*) FROM usage_logs')"
t_eq "and the balance still reconciles" t "$(psql -qAt "$DB" -c "
	SELECT 100 - u.balance = (SELECT sum(actual_cost) FROM usage_logs WHERE user_id = u.id)
	FROM users u WHERE email = 'rich@example.com'")"
req 801
t_check "a request afterwards completes" test -n "$(rid 801)"
t_check "and the cursor follows it" t_wait 15 bash -c "[ \"\$(psql -qAt '$DB' -c \"SELECT committed_seq FROM billing_cursors WHERE instance_id = '$INST'\")\" = $((top + 501)) ]"

for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' \
	"$T_TMP/gateway.log" "$T_TMP/scheduler.log" "$T_TMP/billing.log"
t_done
