#!/usr/bin/env bash
# spool_test.sh: no usage event is lost when billing or the gateway dies.
#
# The gateway spools each usage event before publishing it and syncs with
# billing (USAGE_SYNC_REQ/REP) every spool_sync_interval, resending what
# billing has not committed.  Billing does not write billing_cursors yet,
# so this test plays the ledger: it writes committed_seq with psql.  What
# billing received over the sync is read from its debug log
# ("bill.sync_event", one line per event with its request id and seq).
#  (a) billing stopped (SIGTERM) during 100 requests, then restarted:
#      every request id reaches billing through resends;
#  (b) the gateway SIGKILLed mid-run and restarted: it adopts its spool
#      instance, its first new event takes the last spooled seq + 1 (the
#      spool files are parsed here independently, CRC included), and
#      every request completed before the kill is resent;
#  (c) committed_seq set to the highest seq: the spool is trimmed to
#      nothing within a few sync intervals.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"

export SUB2API_GATEWAY_SPOOL_SYNC_INTERVAL=200ms
export SUB2API_GATEWAY_SPOOL_RESEND_AFTER=1s
export SUB2API_BILLING_LOG_LEVEL=debug
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

# synced_missing OFFSET FILE: the ids of FILE (one a line) that billing's
# log does not show as received over the sync after byte OFFSET.
synced_missing() {
	python3 - "$T_TMP/billing.log" "$1" "$2" <<'EOF'
import json, sys
log, off, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = set()
with open(log, "rb") as f:
    f.seek(off)
    for line in f:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("ev") == "bill.sync_event":
            seen.add(e.get("req"))
ids = [l.strip() for l in open(want) if l.strip()]
miss = [i for i in ids if i not in seen]
print(len(miss), " ".join(miss[:5]))
sys.exit(1 if miss else 0)
EOF
}

# synced_seq REQ_ID: the seq billing's log gives that request's event.
synced_seq() {
	python3 - "$T_TMP/billing.log" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1], "rb"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("ev") == "bill.sync_event" and e.get("req") == sys.argv[2]:
        print(e["inst"], e["seq"])
        sys.exit(0)
sys.exit(1)
EOF
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
t_check "the gateway spooled 100 events" test "$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_spooled_total)" -ge 100
t_check "syncs failed while billing was away" t_wait 10 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | awk '\$1==\"sub2api_gateway_billing_sync_failures_total\" {printf \"%d\", \$2}')\" -ge 1 ]"
off_a=$(stat -c %s "$T_TMP/billing.log")
start_svc billing
t_check "billing ready again" t_wait 15 bill_ready
t_check "every request id reached billing through the sync" t_wait 30 synced_missing "$off_a" "$T_TMP/ids_a"
t_check "the gateway counted the resends" test "$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_resent_total)" -ge 100
t_check "billing counted the synced events" test "$(gws_metric "$BILL_HEALTH" sub2api_billing_sync_events_total)" -ge 100

# ---- (b) the gateway SIGKILLed mid-run ---------------------------------
spooled0=$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_spooled_total)
(run_batch 101 160 6 "@fake:drip=20:deltas=10") &
batch=$!
t_check "events spooled during the run" t_wait 30 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | awk '\$1==\"sub2api_gateway_usage_spooled_total\" {printf \"%d\", \$2}')\" -ge $((spooled0 + 10)) ]"
kill -KILL "${PID[gateway]}"
wait "${PID[gateway]}" 2>/dev/null
unset "PID[gateway]"
wait "$batch"
for i in $(seq 101 160); do rid "$i"; done >"$T_TMP/ids_b"
nb=$(wc -l <"$T_TMP/ids_b")
echo "# $nb of 60 requests completed before the kill"
t_check "some requests completed before the kill" test "$nb" -ge 1
read -r nrec last <<<"$(spool_scan "$SPOOL/$INST")"
t_check "the spool files hold the events (CRC-valid)" test "$nrec" -ge $((100 + nb))
t_check "the highest spooled seq covers them" test "$last" -ge $((100 + nb))

off_b=$(stat -c %s "$T_TMP/billing.log")
goff=$(stat -c %s "$T_TMP/gateway.log")
start_svc gateway
t_check "gateway ready after the kill" t_wait 15 gw_ready
t_check "the restarted gateway adopted its instance" bash -c "tail -c +$((goff + 1)) '$T_TMP/gateway.log' | grep -q '\"ev\":\"gw.spool_opened\",\"instance\":\"$INST\",\"adopted\":true,\"last_seq\":$last,'"
t_check "and runs as that instance" bash -c "tail -c +$((goff + 1)) '$T_TMP/gateway.log' | grep -q '\"ev\":\"svc.started\",\"instance\":\"$INST\"'"
t_eq "still one spool instance directory" "$INST" "$(ls "$SPOOL")"
t_check "every request completed before the kill is resent" t_wait 30 synced_missing "$off_b" "$T_TMP/ids_b"

req 200
new=$(rid 200)
t_check "a request after the restart completes" test -n "$new"
t_check "its event reaches billing" t_wait 15 synced_seq "$new"
t_eq "its seq continues the spool (last + 1)" "$INST $((last + 1))" "$(synced_seq "$new")"

# ---- (c) billing confirms everything: the spool empties -----------------
top=$((last + 1))
psql -qAt "$DB" -c "INSERT INTO billing_cursors (instance_id, committed_seq) VALUES ('$INST', $top) ON CONFLICT (instance_id) DO UPDATE SET committed_seq = EXCLUDED.committed_seq" >/dev/null
t_check "pending records drop to 0" t_wait 10 bash -c "[ \"\$(curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | awk '\$1==\"sub2api_gateway_spool_pending_records\" {printf \"%d\", \$2}')\" = 0 ]"
t_eq "no segment file left" 0 "$(find "$SPOOL/$INST" -name '*.seg' | wc -l)"
t_eq "the committed seq is remembered" "$top" "$(cat "$SPOOL/$INST/committed")"
t_eq "the gateway reports it" "$top" "$(gws_metric "$GW_HEALTH" sub2api_gateway_spool_committed_seq)"
t_check "trimmed events counted" test "$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_trimmed_total)" -ge 1
t_eq "nothing went unspooled" 0 "$(curl -fsS -m 3 "http://127.0.0.1:$GW_HEALTH/metrics" | grep -c '^sub2api_gateway_usage_unspooled_total{')"
t_check "the gateway's metrics pass promtool" bash -c "curl -fsS -m 3 http://127.0.0.1:$GW_HEALTH/metrics | promtool check metrics"
t_check "billing's metrics pass promtool" bash -c "curl -fsS -m 3 http://127.0.0.1:$BILL_HEALTH/metrics | promtool check metrics"

for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' \
	"$T_TMP/gateway.log" "$T_TMP/scheduler.log" "$T_TMP/billing.log"
t_done
