#!/usr/bin/env bash
# usage_test.sh: exactly one correct usage event per completed request.
#
# A usage_tap listens where opsmon would and records every event the
# gateway publishes.  500 requests (odd i non-stream, even i stream, in
# batches of 16 concurrent) each ask the fake upstream for its own exact
# token counts with the model "claude-sonnet-4-5@fake:usage=i,2i,3i,4i,i,2i".
# Checks:
#  - every request answers 200 with an x-request-id header;
#  - the tap holds exactly one usage event per x-request-id (none missing,
#    no duplicates, no extras), each carrying that request's token counts,
#    its stream flag, status 200 and nonzero account and user ids;
#  - per gateway instance the seqs arrive strictly increasing, contiguous;
#  - billing inserted one row per request; extra receipts (spool resends)
#    were known as duplicates;
#  - with events and releases held 20 ms, some left as batches and
#    bundles, and no lease stayed held;
#  - the tap decoded everything and exits 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"

N=500
BATCH=16
mkdir -p "$T_TMP/req"

# The tap first, so the gateway's PUB finds it from its first event.
"$BIN/usage_tap" --listen "ipc://$T_TMP/tap.ipc" --out "$T_TMP/tap.jsonl" \
	>"$T_TMP/tap.out" 2>"$T_TMP/tap.log" &
PID[tap]=$!
t_check "usage_tap listening" t_wait 10 grep -q '^listening ' "$T_TMP/tap.out"
export SUB2API_GATEWAY_OPSMON_EVENTS_ADDR=ipc://$T_TMP/tap.ipc
# Events and releases held 20 ms (2 ms by default): with 16 requests at
# once, usage events leave in batches and releases ride on acquires, and
# the checks below must hold for them as for single messages.
export SUB2API_GATEWAY_USAGE_LINGER=20ms SUB2API_GATEWAY_RELEASE_LINGER=20ms

gws_up 18380

# The stack's users and accounts allow 10 requests at once and the
# scheduler has no wait queue (a full slot answers 429): lift the limits
# so that batches of 16 all succeed.  No key has been resolved yet (the
# scheduler caches keys, not accounts), so the new limits apply at once.
psql -qAt "$DB" -c "UPDATE users SET concurrency = 64" >/dev/null
psql -qAt "$DB" -c "UPDATE accounts SET concurrency = 64" >/dev/null

# req I: one request with its own usage numbers; writes req/I.{code,hdr}.
req() {
	local i=$1 stream=false body
	[ $((i % 2)) -eq 0 ] && stream=true
	body='{"model":"claude-sonnet-4-5@fake:usage='"$i,$((2 * i)),$((3 * i)),$((4 * i)),$i,$((2 * i))"'","max_tokens":64,"stream":'$stream',"messages":[{"role":"user","content":"hi"}]}'
	curl -s -m 30 -o /dev/null -D "$T_TMP/req/$i.hdr" -w '%{http_code}' \
		"http://127.0.0.1:$GW/v1/messages" -H "x-api-key: $KEY" \
		-H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' \
		-d "$body" >"$T_TMP/req/$i.code"
}

t0=$(date +%s%N)
jobs_=()
for i in $(seq 1 $N); do
	req "$i" &
	jobs_+=($!)
	if [ ${#jobs_[@]} -ge $BATCH ]; then
		wait "${jobs_[@]}"
		jobs_=()
	fi
done
[ ${#jobs_[@]} -gt 0 ] && wait "${jobs_[@]}"
echo "# $N requests in $((($(date +%s%N) - t0) / 1000000)) ms"

t_check "tap received $N usage events" t_wait 10 bash -c "[ \$(grep -c '\"kind\":\"usage\"' '$T_TMP/tap.jsonl') -ge $N ]"
t_check "billing confirmed and settled every event" t_wait 30 gws_billing_settled
bm() { gws_metric $BILL_HEALTH "sub2api_billing_$1"; }
echo "# billing: $(bm usage_events_total) events received, $(bm sync_events_total) of them resent from the spool, $(bm duplicates_total) duplicates, $(bm queue_dropped_total) refused by a full queue"
# A slow billing gets some events again from the gateway's spool and
# knows them as duplicates: still exactly one row per request.
t_eq "billing wrote no dead letter and saw no bad event" 0:0 "$(bm dead_letters_total):$(bm bad_events_total)"
t_eq "billing inserted one row per request" "$N" \
	"$(gws_metric $BILL_HEALTH sub2api_billing_rows_total)"
t_eq "usage_logs holds one row per request" "$N" \
	"$(psql -qAt "$DB" -c "SELECT count(DISTINCT request_id) || ':' || count(*) FROM usage_logs" | awk -F: '$1 == $2 { print $1 }')"
t_eq "gateway usage_events_total equals the request count" "$N" \
	"$(gws_metric $GW_HEALTH sub2api_gateway_usage_events_total)"

t_check "usage events went out in batches" \
	test "$(gws_metric $GW_HEALTH sub2api_gateway_usage_batches_total)" -gt 0
t_check "releases rode on acquires" \
	test "$(gws_metric $GW_HEALTH sub2api_gateway_release_bundles_total)" -gt 0
t_eq "no scheduler call failed" 0 \
	"$(gws_metric $GW_HEALTH sub2api_gateway_sched_calls_failed_total)"
t_check "no slot left held" t_wait 5 gws_slots_empty

kill -TERM "${PID[tap]}"
wait "${PID[tap]}"
t_eq "usage_tap exits 0 on SIGTERM" 0 $?
unset "PID[tap]"
t_check "usage_tap decoded every message" grep -q '"ev":"tap.stopped".*"malformed":0,"untopiced":0,"write_failed":0' "$T_TMP/tap.log"

# The per-event checks, one ok/FAIL line each (python prints them).
python3 - "$T_TMP" "$N" >"$T_TMP/checks.out" 2>&1 <<'EOF'
import json, os, sys

tmp, n = sys.argv[1], int(sys.argv[2])
res = []


def check(name, bad, show=5):
    res.append((name, bad[:show], len(bad)))


codes, rid_of = {}, {}
for i in range(1, n + 1):
    with open(os.path.join(tmp, "req", "%d.code" % i)) as f:
        codes[i] = f.read().strip()
    rid = None
    with open(os.path.join(tmp, "req", "%d.hdr" % i), errors="replace") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip().lower() == "x-request-id":
                rid = v.strip()
    rid_of[i] = rid
check("every request answered 200",
      ["req %d: %s" % (i, c) for i, c in codes.items() if c != "200"])
check("every response has an x-request-id",
      ["req %d" % i for i, r in rid_of.items() if not r])
by_rid = {r: i for i, r in rid_of.items() if r}
check("x-request-ids are unique", ["%d distinct of %d" % (len(by_rid), n)]
      if len(by_rid) != n else [])

usage, errors = [], []
with open(os.path.join(tmp, "tap.jsonl")) as f:
    for line in f:
        e = json.loads(line)
        (usage if e["kind"] == "usage" else errors).append(e)
seen = {}
for e in usage:
    seen.setdefault(e["request_id"], []).append(e)
check("no usage event missing",
      ["req %d rid %s" % (i, r) for r, i in by_rid.items() if r not in seen])
check("no duplicate usage event",
      ["rid %s x%d seqs %s" % (r, len(es), [e["seq"] for e in es])
       for r, es in seen.items() if len(es) > 1])
check("no extra usage event",
      ["rid %s seq %s" % (r, es[0]["seq"]) for r, es in seen.items()
       if r not in by_rid])
check("usage event count equals the request count",
      ["%d events for %d requests" % (len(usage), n)] if len(usage) != n else [])
check("no error events", ["%s %s %s" % (e["request_id"], e["status"],
                                        e["message"]) for e in errors])

bad_tok, bad_flags = [], []
for r, i in by_rid.items():
    for e in seen.get(r, []):
        want = dict(input_tokens=i, output_tokens=2 * i,
                    cache_creation_tokens=3 * i, cache_read_tokens=4 * i,
                    cache_creation_5m_tokens=i, cache_creation_1h_tokens=2 * i)
        got = {k: e[k] for k in want}
        if got != want:
            bad_tok.append("req %d rid %s got %s" % (i, r, got))
        flags = (e["stream"], e["status"], e["account_id"] > 0,
                 e["user_id"] > 0)
        if flags != (i % 2 == 0, 200, True, True):
            bad_flags.append("req %d rid %s stream=%s status=%s aid=%s uid=%s"
                             % (i, r, e["stream"], e["status"],
                                e["account_id"], e["user_id"]))
check("token counts match the request", bad_tok)
check("stream flag, status 200, account and user ids", bad_flags)

by_inst = {}
for e in usage:
    by_inst.setdefault(e["instance"], []).append(e["seq"])
bad_order, bad_gap = [], []
for inst, seqs in by_inst.items():
    for a, b in zip(seqs, seqs[1:]):
        if b <= a:
            bad_order.append("%s: %d then %d" % (inst, a, b))
    s = sorted(set(seqs))
    if s and s[-1] - s[0] + 1 != len(s):
        have = set(s)
        miss = [q for q in range(s[0], s[-1] + 1) if q not in have]
        bad_gap.append("%s: %d..%d missing %s" % (inst, s[0], s[-1], miss[:10]))
check("seqs strictly increasing per instance (arrival order)", bad_order)
check("seqs contiguous per instance", bad_gap)

for name, sample, nbad in res:
    if nbad:
        print("FAIL\t%s\t%d bad: %s" % (name, nbad, "; ".join(sample)))
    else:
        print("ok\t%s" % name)
EOF
if [ ! -s "$T_TMP/checks.out" ] || grep -q Traceback "$T_TMP/checks.out"; then
	t_bad "event checks ran" "$(tail -c 600 "$T_TMP/checks.out" | tr '\n' ' ')"
fi
while IFS=$'\t' read -r st name detail; do
	case $st in
	ok) t_ok "$name" ;;
	FAIL) t_bad "$name" "$detail" ;;
	esac
done <"$T_TMP/checks.out"

for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' \
	"$T_TMP/gateway.log" "$T_TMP/scheduler.log" "$T_TMP/billing.log" "$T_TMP/tap.log"
t_done
