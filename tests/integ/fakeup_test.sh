#!/usr/bin/env bash
# fakeup_test.sh: the fake upstream (sub2api-fakeup) speaks Anthropic
# exactly and fails on demand:
#  - /v1/messages JSON and SSE shapes, event order and framing, tool_use
#    with input_json_delta, the token-count rule, usage overrides;
#  - count_tokens, /v1/models, the OAuth token endpoint;
#  - every failure mode by model name and by key control (status,
#    headers, body shape, drop, in-band error, delays, stall);
#  - the request ring and stats: in flight, max concurrent, and a client
#    that hangs up seen within 1 s;
#  - SIGTERM exits 0 with a stream open.
. "$(dirname "$0")/lib.sh"

FU=$BIN/sub2api-fakeup
"$FU" --listen 127.0.0.1:0 >"$T_TMP/fu.out" 2>"$T_TMP/fu.err" &
FU_PID=$!
trap 'kill $FU_PID 2>/dev/null' EXIT

t_check "prints its address" t_wait 5 grep -qE '^listening 127\.0\.0\.1:[0-9]+$' "$T_TMP/fu.out"
PORT=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T_TMP/fu.out")
U=http://127.0.0.1:$PORT

# The helpers: SSE parsing and JSON checks in Python (jq may be absent).
cat >"$T_TMP/sse.py" <<'EOF'
import json, sys
# Parses an SSE file strictly: every event is "event: T\ndata: J\n\n" and
# J's "type" equals T.  Prints the event list as JSON lines.
raw = open(sys.argv[1], "rb").read().decode()
blocks = raw.split("\n\n")
if blocks[-1] != "":
    sys.exit("trailing bytes without a blank line: %r" % blocks[-1][:80])
for b in blocks[:-1]:
    lines = b.split("\n")
    if len(lines) != 2 or not lines[0].startswith("event: ") or not lines[1].startswith("data: "):
        sys.exit("bad framing: %r" % b[:120])
    ev, data = lines[0][7:], json.loads(lines[1][6:])
    if data["type"] != ev:
        sys.exit("event %s carries type %s" % (ev, data["type"]))
    print(json.dumps({"event": ev, "data": data}))
EOF
# sse FILE: the event names on one line.
sse() { python3 "$T_TMP/sse.py" "$1" | python3 -c 'import json,sys; print(" ".join(json.loads(l)["event"] for l in sys.stdin))'; }
# sse_py FILE EXPR: evaluates EXPR over ev (the list of {event,data}).
sse_py() { python3 "$T_TMP/sse.py" "$1" | python3 -c "import json,sys; ev=[json.loads(l) for l in sys.stdin]; print($2)"; }
# jpy FILE EXPR: evaluates EXPR over d (the JSON document in FILE).
jpy() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# hdr FILE NAME: a response header's value.
hdr() { grep -i "^$2:" "$1" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
# post PATH AUTH_HEADER BODY NAME: POSTs; NAME.h and NAME.b hold headers and
# body; prints the status.
post() {
	curl -s -N -m 20 -D "$T_TMP/$4.h" -o "$T_TMP/$4.b" -w '%{http_code}' \
		-H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
		${2:+-H "$2"} --data-binary "$3" "$U$1"
}
# msg MODEL [EXTRA_JSON]: a Messages body.
msg() { echo "{\"model\":\"$1\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]${2:+,$2}}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- non-stream ---------------------------------------------------------
B=$(msg claude-sonnet-4-5)
t_eq "json: 200" 200 "$(post /v1/messages 'x-api-key: k1' "$B" j1)"
t_eq "json: content-type" application/json "$(hdr "$T_TMP/j1.h" content-type)"
t_check "json: request-id req_" bash -c "grep -qiE '^request-id: req_[0-9a-f]{24}' '$T_TMP/j1.h'"
t_eq "json: shape" "True" "$(jpy "$T_TMP/j1.b" 'd["id"].startswith("msg_") and d["type"]=="message" and d["role"]=="assistant" and d["model"]=="claude-sonnet-4-5" and d["content"]==[{"type":"text","text":"Hello from the fake upstream."}] and d["stop_reason"]=="end_turn" and d["stop_sequence"] is None')"
t_eq "json: key order" "id type role model content stop_reason stop_sequence usage" "$(jpy "$T_TMP/j1.b" '" ".join(d)')"
t_eq "json: usage rule" "{'input_tokens': $((${#B} / 4 + 1)), 'cache_creation_input_tokens': 0, 'cache_read_input_tokens': 0, 'cache_creation': {'ephemeral_5m_input_tokens': 0, 'ephemeral_1h_input_tokens': 0}, 'output_tokens': 10}" "$(jpy "$T_TMP/j1.b" 'd["usage"]')"
post /v1/messages 'x-api-key: k1' "$B" j2 >/dev/null
t_fails "json: ids are unique" test "$(jpy "$T_TMP/j1.b" 'd["id"]')" = "$(jpy "$T_TMP/j2.b" 'd["id"]')"
t_eq "json: usage override" "11 22 33 44 55 66" "$(post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:usage=11,22,33,44,55,66')" j3 >/dev/null; jpy "$T_TMP/j3.b" '" ".join(str(x) for x in (d["usage"]["input_tokens"], d["usage"]["output_tokens"], d["usage"]["cache_creation_input_tokens"], d["usage"]["cache_read_input_tokens"], d["usage"]["cache_creation"]["ephemeral_5m_input_tokens"], d["usage"]["cache_creation"]["ephemeral_1h_input_tokens"]))')"

# --- auth ---------------------------------------------------------------
t_eq "no auth: 401" 401 "$(post /v1/messages '' "$B" na)"
t_eq "no auth: error shape" "True" "$(jpy "$T_TMP/na.b" 'd["type"]=="error" and d["error"]["type"]=="authentication_error" and len(d["error"]["message"])>0')"
t_eq "bearer: 200" 200 "$(post '/v1/messages?beta=true' 'authorization: Bearer kb' "$B" bb)"
curl -s "$U/_fake/requests?key=kb" >"$T_TMP/rq.json"
t_eq "bearer: recorded" "bearer /v1/messages beta=true 2023-06-01" "$(jpy "$T_TMP/rq.json" 'd["requests"][-1]["auth"], d["requests"][-1]["path"], d["requests"][-1]["query"], d["requests"][-1]["headers"]["anthropic-version"]' | tr -d "(),'")"
t_eq "x-api-key: recorded" "x-api-key" "$(curl -s "$U/_fake/requests?key=k1&limit=1" >"$T_TMP/rq.json"; jpy "$T_TMP/rq.json" 'd["requests"][0]["auth"]')"
t_eq "record: body kept" "True" "$(jpy "$T_TMP/rq.json" 'json.loads(d["requests"][0]["body"])["model"].startswith("m@fake")')"

# --- stream -------------------------------------------------------------
SB=$(msg claude-sonnet-4-5 '"stream":true')
t_eq "stream: 200" 200 "$(post /v1/messages 'x-api-key: k1' "$SB" s1)"
t_eq "stream: content-type" text/event-stream "$(hdr "$T_TMP/s1.h" content-type)"
t_eq "stream: event order" "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop" "$(sse "$T_TMP/s1.b")"
t_check "stream: ping bytes as Anthropic's" grep -qx 'data: {"type": "ping"}' "$T_TMP/s1.b"
t_eq "stream: message_start usage" "$((${#SB} / 4 + 1)) 0 0 1 []" "$(sse_py "$T_TMP/s1.b" '" ".join(str(x) for x in (ev[0]["data"]["message"]["usage"]["input_tokens"], ev[0]["data"]["message"]["usage"]["cache_creation_input_tokens"], ev[0]["data"]["message"]["usage"]["cache_read_input_tokens"], ev[0]["data"]["message"]["usage"]["output_tokens"], ev[0]["data"]["message"]["content"]))')"
t_eq "stream: text" "Hello from the fake upstream." "$(sse_py "$T_TMP/s1.b" '"".join(e["data"]["delta"]["text"] for e in ev if e["event"]=="content_block_delta")')"
t_eq "stream: message_delta" '{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 10}}' "$(sse_py "$T_TMP/s1.b" 'json.dumps(ev[-2]["data"])')"
post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:deltas=200' '"stream":true')" s2 >/dev/null
t_eq "stream: 200 deltas" "200 400" "$(sse_py "$T_TMP/s2.b" 'sum(e["event"]=="content_block_delta" for e in ev), ev[-2]["data"]["usage"]["output_tokens"]' | tr -d '(),')"
post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:usage=11,22,33,44,55,66' '"stream":true')" s3 >/dev/null
t_eq "stream: usage override" "11 33 44 55 66 22" "$(sse_py "$T_TMP/s3.b" '" ".join(str(x) for x in (ev[0]["data"]["message"]["usage"]["input_tokens"], ev[0]["data"]["message"]["usage"]["cache_creation_input_tokens"], ev[0]["data"]["message"]["usage"]["cache_read_input_tokens"], ev[0]["data"]["message"]["usage"]["cache_creation"]["ephemeral_5m_input_tokens"], ev[0]["data"]["message"]["usage"]["cache_creation"]["ephemeral_1h_input_tokens"], ev[-2]["data"]["usage"]["output_tokens"]))')"

# --- tool use -----------------------------------------------------------
TOOLS='"tools":[{"name":"Bash","description":"run","input_schema":{"type":"object","properties":{"command":{"type":"string"},"timeout":{"type":"integer"}},"required":["command","timeout"]}},{"name":"Other","input_schema":{"type":"object"}}]'
post /v1/messages 'x-api-key: k1' "$(msg claude-sonnet-4-5 "$TOOLS,\"stream\":true")" t1 >/dev/null
t_eq "tool stream: events" "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop content_block_start content_block_delta content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop" "$(sse "$T_TMP/t1.b")"
t_eq "tool stream: block start" "True" "$(sse_py "$T_TMP/t1.b" '[e for e in ev if e["event"]=="content_block_start"][1]["data"]["content_block"]["id"].startswith("toolu_") and [e for e in ev if e["event"]=="content_block_start"][1]["data"]["content_block"]["name"]=="Bash" and [e for e in ev if e["event"]=="content_block_start"][1]["data"]["content_block"]["input"]=={}')"
t_eq "tool stream: input_json_delta" '{"command": "x", "timeout": 1}' "$(sse_py "$T_TMP/t1.b" 'json.dumps(json.loads("".join(e["data"]["delta"]["partial_json"] for e in ev if e["event"]=="content_block_delta" and e["data"]["index"]==1 and e["data"]["delta"]["type"]=="input_json_delta")))')"
t_eq "tool stream: stop_reason and tokens" "tool_use 18" "$(sse_py "$T_TMP/t1.b" 'ev[-2]["data"]["delta"]["stop_reason"], ev[-2]["data"]["usage"]["output_tokens"]' | tr -d "(),'")"
post /v1/messages 'x-api-key: k1' "$(msg claude-sonnet-4-5 "$TOOLS")" t2 >/dev/null
t_eq "tool json: blocks" "text tool_use Bash tool_use" "$(jpy "$T_TMP/t2.b" '" ".join([c["type"] for c in d["content"]] + [d["content"][1]["name"], d["stop_reason"]])')"
TR='{"model":"m","max_tokens":64,'$TOOLS',"stream":true,"messages":[{"role":"user","content":"go"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]}]}'
post /v1/messages 'x-api-key: k1' "$TR" t3 >/dev/null
t_eq "tool_result: text and end_turn" "11 end_turn" "$(sse_py "$T_TMP/t3.b" 'len(ev), ev[-2]["data"]["delta"]["stop_reason"]' | tr -d "(),'")"
post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:notools' "$TOOLS")" t4 >/dev/null
t_eq "notools: text only" "end_turn 1" "$(jpy "$T_TMP/t4.b" 'd["stop_reason"], len(d["content"])' | tr -d "(),'")"

# --- count_tokens, models, oauth -----------------------------------------
CB='{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"count me"}]}'
t_eq "count_tokens: 200" 200 "$(post /v1/messages/count_tokens 'x-api-key: k1' "$CB" c1)"
t_eq "count_tokens: rule" "{\"input_tokens\":$((${#CB} / 4 + 1))}" "$(cat "$T_TMP/c1.b")"
t_eq "models: 200" 200 "$(curl -s -o "$T_TMP/m.b" -w '%{http_code}' -H 'x-api-key: k1' "$U/v1/models")"
t_eq "models: shape" "True" "$(jpy "$T_TMP/m.b" 'len(d["data"])>0 and all(m["type"]=="model" and m["id"] and m["display_name"] and m["created_at"] for m in d["data"]) and d["has_more"] is False and d["first_id"]==d["data"][0]["id"] and d["last_id"]==d["data"][-1]["id"]')"
t_eq "oauth: 200" 200 "$(post /v1/oauth/token '' '{"grant_type":"refresh_token","refresh_token":"rt-1","client_id":"c"}' o1)"
t_eq "oauth: tokens" "True" "$(jpy "$T_TMP/o1.b" 'd["access_token"].startswith("sk-ant-oat01-") and d["refresh_token"].startswith("sk-ant-ort01-") and d["expires_in"]>0 and d["token_type"]=="Bearer"')"
curl -s -d '{"mode":"invalid-grant","count":1}' "$U/_fake/keys/rt-1" >/dev/null
t_eq "oauth: controlled failure" 400 "$(post /v1/oauth/token '' '{"grant_type":"refresh_token","refresh_token":"rt-1"}' o2)"
t_eq "oauth: invalid_grant" invalid_grant "$(jpy "$T_TMP/o2.b" 'd["error"]')"
t_eq "oauth: then normal" 200 "$(post /v1/oauth/token '' 'grant_type=refresh_token&refresh_token=rt-1' o3)"
t_eq "HEAD /: 404" 404 "$(curl -s -I -o /dev/null -w '%{http_code}' "$U/")"

# --- status failure modes ----------------------------------------------
for m in 401:authentication_error 403:permission_error 403-banned:permission_error 429:rate_limit_error 529:overloaded_error 500:api_error; do
	mode=${m%%:*}
	code=${mode%%-*}
	t_eq "mode $mode: status" "$code" "$(post /v1/messages 'x-api-key: k1' "$(msg "claude-sonnet-4-5@fake:$mode" '"stream":true')" f)"
	t_eq "mode $mode: body" "error ${m#*:}" "$(jpy "$T_TMP/f.b" 'd["type"], d["error"]["type"]' | tr -d "(),'")"
done
post /v1/messages 'x-api-key: k1' "$(msg claude-fake-403-banned)" f >/dev/null
t_check "403-banned: organization disabled" grep -q 'organization has been disabled' "$T_TMP/f.b"
NOW=$(date +%s)
t_eq "429 shorthand model" 429 "$(post /v1/messages 'x-api-key: k1' "$(msg 'claude-fake-429:reset=7')" f)"
t_eq "429: headers" "rejected 7" "$(hdr "$T_TMP/f.h" anthropic-ratelimit-unified-status) $(hdr "$T_TMP/f.h" retry-after)"
R=$(hdr "$T_TMP/f.h" anthropic-ratelimit-unified-reset)
t_check "429: reset is now+7" test "$R" -ge $((NOW + 6)) -a "$R" -le $((NOW + 9))
t_eq "429: the record keeps the reset sent" "$R" "$(curl -s "$U/_fake/requests?key=k1&limit=1" >"$T_TMP/rq.json"; jpy "$T_TMP/rq.json" 'd["requests"][-1]["reset"]')"
NOW=$(date +%s)
t_eq "5h option: 200" 200 "$(post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:5h=allowed_warning,3600')" f5)"
t_eq "5h option: status header" allowed_warning "$(hdr "$T_TMP/f5.h" anthropic-ratelimit-unified-5h-status)"
R5=$(hdr "$T_TMP/f5.h" anthropic-ratelimit-unified-5h-reset)
t_check "5h option: reset is now+3600" test "$R5" -ge $((NOW + 3599)) -a "$R5" -le $((NOW + 3602))
t_eq "5h option: a bad status is refused" 400 "$(curl -s -o /dev/null -w '%{http_code}' -d '{"mode":"5h=maybe"}' "$U/_fake/keys/kx")"
t_eq "bad mode: 400" 400 "$(post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:bogus')" f)"
t_eq "count_tokens follows modes" 529 "$(post /v1/messages/count_tokens 'x-api-key: k1' '{"model":"claude-fake-529","messages":[]}' f)"

# --- stream failure modes ----------------------------------------------
post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:drop:deltas=6' '"stream":true')" d1 >/dev/null
t_eq "drop: cut after 3 deltas" "message_start content_block_start ping content_block_delta content_block_delta content_block_delta" "$(python3 -c 'import sys; print(" ".join(l[7:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("event: ")))' "$T_TMP/d1.b")"
t_fails "drop: curl sees a broken transfer" curl -s -N -m 5 -o /dev/null -H 'x-api-key: k1' --data-binary "$(msg 'm@fake:drop' '"stream":true')" "$U/v1/messages"
t_fails "drop: non-stream broken too" curl -s -m 5 -o /dev/null -H 'x-api-key: k1' --data-binary "$(msg 'm@fake:drop')" "$U/v1/messages"
post /v1/messages 'x-api-key: k1' "$(msg 'm@fake:inband-error' '"stream":true')" i1 >/dev/null
t_eq "inband-error: events" "message_start content_block_start ping content_block_delta content_block_delta content_block_delta error" "$(sse "$T_TMP/i1.b")"
t_check "inband-error: exact error event" grep -qx 'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' "$T_TMP/i1.b"
T=$(curl -s -o /dev/null -w '%{time_starttransfer}' -H 'x-api-key: k1' --data-binary "$(msg 'm@fake:slow-first-byte=400')" "$U/v1/messages")
t_check "slow-first-byte: >= 400 ms" python3 -c "import sys; sys.exit(0 if $T >= 0.4 else 1)"
T=$(curl -s -N -o /dev/null -w '%{time_total}' -H 'x-api-key: k1' --data-binary "$(msg 'm@fake:drip=40' '"stream":true')" "$U/v1/messages")
t_check "drip: 10 gaps of 40 ms" python3 -c "import sys; sys.exit(0 if $T >= 0.4 else 1)"

# --- control API ------------------------------------------------------
t_eq "ctl: set" '{"key":"kc","mode":"429","count":2}' "$(curl -s -d '{"mode":"429","count":2}' "$U/_fake/keys/kc")"
t_eq "ctl: 2 failures then normal" "429 429 200" "$(for i in 1 2 3; do post /v1/messages 'x-api-key: kc' "$B" f; echo; done | tr '\n' ' ' | sed 's/ $//')"
curl -s -d '{"mode":"529"}' "$U/_fake/keys/kc" >/dev/null
t_eq "ctl: count -1 by default" "529 529 529" "$(for i in 1 2 3; do post /v1/messages 'x-api-key: kc' "$B" f; echo; done | tr '\n' ' ' | sed 's/ $//')"
t_eq "ctl: get" '{"key":"kc","mode":"529","count":-1}' "$(curl -s "$U/_fake/keys/kc")"
curl -s -X DELETE "$U/_fake/keys/kc" >/dev/null
t_eq "ctl: delete" 200 "$(post /v1/messages 'x-api-key: kc' "$B" f)"
t_eq "ctl: bad mode 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' -d '{"mode":"nope"}' "$U/_fake/keys/kc")"
curl -s -d '{"mode":"usage=5,6","count":1}' "$U/_fake/keys/*" >/dev/null
post /v1/messages 'x-api-key: kany' "$B" f >/dev/null
t_eq "ctl: '*' applies to any key" "5 6" "$(jpy "$T_TMP/f.b" 'd["usage"]["input_tokens"], d["usage"]["output_tokens"]' | tr -d '(),')"
t_eq "ctl: overrides the model's mode" 200 "$(curl -s -d '{"mode":"ok","count":1}' "$U/_fake/keys/kc" >/dev/null; post /v1/messages 'x-api-key: kc' "$(msg claude-fake-500)" f)"

# --- stats: in flight, max concurrent, client hang-up --------------------
STALL=$(msg claude-fake-stall '"stream":true')
CURLS=
for i in 1 2 3; do
	curl -s -N -m 3 -o /dev/null -H 'x-api-key: kst' --data-binary "$STALL" "$U/v1/messages" &
	CURLS="$CURLS $!"
done
inflight() { curl -s "$U/_fake/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); k=d['keys'].get('$1',{}); sys.exit(0 if k.get('in_flight')==$2 else 1)"; }
t_check "stats: 3 stalled streams in flight" t_wait 3 inflight kst 3
wait $CURLS
t_check "stats: in flight back to 0" t_wait 2 inflight kst 0
curl -s "$U/_fake/stats" >"$T_TMP/st.json"
t_eq "stats: key counters" "3 0 3 3" "$(jpy "$T_TMP/st.json" 'd["keys"]["kst"]["total"], d["keys"]["kst"]["in_flight"], d["keys"]["kst"]["max_in_flight"], d["keys"]["kst"]["closed_early"]' | tr -d '(),')"
t_eq "stats: global shape" "True" "$(jpy "$T_TMP/st.json" 'all(k in d for k in ("total","in_flight","max_in_flight","closed_early","status","keys")) and d["max_in_flight"]>=3')"

curl -s -N -m 1 -o /dev/null -H 'x-api-key: kcl' --data-binary "$STALL" "$U/v1/messages"
END=$(now_ms)
closed() { curl -s "$U/_fake/requests?key=kcl&limit=1" >"$T_TMP/cl.json"; jpy "$T_TMP/cl.json" 'd["requests"][0]["ended_ms"] is not None' | grep -q True; }
t_check "hang-up: request completed" t_wait 3 closed
t_eq "hang-up: flagged" "True 200" "$(jpy "$T_TMP/cl.json" 'd["requests"][0]["client_closed"], d["requests"][0]["status"]' | tr -d '(),')"
CMS=$(jpy "$T_TMP/cl.json" 'd["requests"][0]["client_closed_ms"]')
t_check "hang-up: seen within 1 s ($((CMS - END)) ms)" test $((CMS - END)) -le 1000 -a $((CMS - END)) -ge -100

# --- the ring: big bodies, limit, reset -----------------------------------
python3 -c 'import json; print(json.dumps({"model":"big","max_tokens":1,"messages":[{"role":"user","content":"é"*60000}]}))' >"$T_TMP/big.json"
curl -s -o /dev/null -H 'x-api-key: kbig' --data-binary @"$T_TMP/big.json" "$U/v1/messages"
curl -s "$U/_fake/requests?key=kbig" >"$T_TMP/rq.json"
SZ=$(stat -c %s "$T_TMP/big.json")
t_eq "ring: body truncated at 64 KiB" "True $SZ True" "$(jpy "$T_TMP/rq.json" 'd["requests"][0]["body_truncated"], d["requests"][0]["body_len"], 65533 <= len(d["requests"][0]["body"].encode()) <= 65536' | tr -d '(),')"
t_eq "ring: limit" 2 "$(curl -s "$U/_fake/requests?limit=2" >"$T_TMP/rq.json"; jpy "$T_TMP/rq.json" 'len(d["requests"])')"
head -c $((100 * 1024 * 1024 + 1)) /dev/zero >"$T_TMP/huge"
t_eq "body cap: 413" 413 "$(curl -s -o /dev/null -w '%{http_code}' -H 'x-api-key: k1' --data-binary @"$T_TMP/huge" "$U/v1/messages")"
rm -f "$T_TMP/huge"
curl -s -X POST "$U/_fake/reset" >/dev/null
t_eq "reset: counters cleared" "0 0" "$(curl -s "$U/_fake/stats" >"$T_TMP/st.json"; jpy "$T_TMP/st.json" 'd["total"], len(d["keys"])' | tr -d '(),')"

# --- shutdown -----------------------------------------------------------
curl -s -N -m 10 -o /dev/null -H 'x-api-key: k1' --data-binary "$STALL" "$U/v1/messages" &
CURL=$!
t_check "shutdown: stream open" t_wait 3 inflight k1 1
T0=$(now_ms)
kill -TERM $FU_PID
(sleep 5 && kill -KILL $FU_PID 2>/dev/null) &
WD=$!
wait $FU_PID
RC=$?
kill $WD 2>/dev/null
t_eq "shutdown: exit 0" 0 $RC
t_check "shutdown: within 5 s ($(($(now_ms) - T0)) ms)" test $(($(now_ms) - T0)) -lt 5000
wait $CURL 2>/dev/null
trap - EXIT
t_done
