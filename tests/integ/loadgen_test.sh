#!/usr/bin/env bash
# loadgen_test.sh: the benchmark load generator (build/bin/loadgen) against
# the fake upstream and a small canned-response server:
#  - open mode keeps its fixed rate (500/s for 2 s: 1000 requests);
#  - closed mode loops; stream mode counts SSE events; hold mode keeps
#    200 streams open and says READY 200;
#  - a 500 is counted under its status, a refused port as conn_errors, a
#    stalled stream as a timeout, and the run still exits 0 promptly;
#  - the HTTP/1.1 parser: chunked bodies with events split across chunks,
#    Connection: close, bodies to EOF, malformed and oversized heads.
# Needs no PostgreSQL or Redis.
. "$(dirname "$0")/lib.sh"

FU=$BIN/sub2api-fakeup
LG=$BIN/loadgen
"$FU" --listen 127.0.0.1:0 >"$T_TMP/fu.out" 2>"$T_TMP/fu.err" &
FU_PID=$!
CS_PID=
trap 'kill $FU_PID $CS_PID 2>/dev/null' EXIT
t_check "fake: listening" t_wait 5 grep -qE '^listening 127\.0\.0\.1:[0-9]+$' "$T_TMP/fu.out"
U=http://127.0.0.1:$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T_TMP/fu.out")/v1/messages

# msg MODEL [EXTRA]: a Messages body.
msg() { echo "{\"model\":\"$1\",\"max_tokens\":64${2:+,$2},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"; }
# run NAME URL ARGS...: one loadgen run; NAME.json, NAME.err, NAME.rc.
run() {
	local name=$1 url=$2
	shift 2
	timeout 30 "$LG" --url "$url" -H 'x-api-key: k-loadgen' \
		-H 'anthropic-version: 2023-06-01' --json "$@" \
		>"$T_TMP/$name.json" 2>"$T_TMP/$name.err"
	echo $? >"$T_TMP/$name.rc"
}
# jv NAME EXPR: EXPR over d, the run's JSON result (False when unreadable).
jv() {
	python3 -c "import json,sys
try: d=json.load(open(sys.argv[1]))
except Exception: print(False); sys.exit()
print($2)" "$T_TMP/$1.json"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- modes against the fake ----------------------------------------------
run open "$U" --mode open --rate 500 --duration 2 --body "$(msg claude-sonnet-4-5)"
t_eq "open: exit 0" 0 "$(cat "$T_TMP/open.rc")"
t_eq "open: 1000 requests due" 1000 "$(jv open 'd["requests"]')"
t_eq "open: completed within 2% of 1000" True "$(jv open 'abs(d["completed"] - 1000) <= 20')"
t_eq "open: no errors" "0 0 0" "$(jv open '"%d %d %d" % (d["errors"], d["conn_errors"], d["timeouts"])')"
t_eq "open: all 200" True "$(jv open 'd["status"] == {"200": d["completed"]}')"
t_eq "open: latency figures" True "$(jv open '0 < d["lat_us"]["p50"] <= d["lat_us"]["p90"] <= d["lat_us"]["p99"] <= d["lat_us"]["p999"] <= d["lat_us"]["max"]')"
t_eq "open: rps near the rate" True "$(jv open 'abs(d["rps"] - 500) <= 10 and d["rate_target"] == 500')"

run closed "$U" --mode closed --conns 4 --duration 2 --warmup 0.5 --body "$(msg claude-sonnet-4-5)"
t_eq "closed: exit 0" 0 "$(cat "$T_TMP/closed.rc")"
t_eq "closed: rps > 0, no errors" True "$(jv closed 'd["rps"] > 0 and d["completed"] > 0 and d["errors"] == d["conn_errors"] == d["timeouts"] == 0')"

run stream "$U" --mode open --rate 50 --duration 1 --warmup 0 --stream \
	--body "$(msg 'claude-sonnet-4-5@fake:deltas=200' '"stream":true')"
t_eq "stream: 50 complete" "50 0" "$(jv stream '"%d %d" % (d["completed"], d["errors"] + d["conn_errors"] + d["timeouts"])')"
t_eq "stream: events_min >= 200" True "$(jv stream 'd["events_min"] >= 200 and d["events_max"] >= d["events_min"]')"
t_eq "stream: ttfb and gap figures" True "$(jv stream '0 < d["ttfb_us"]["p50"] <= d["lat_us"]["p50"] and d["event_gap_us"]["p99"] >= d["event_gap_us"]["p50"]')"

run hold "$U" --mode hold --streams 200 --ramp 1000 --duration 1 \
	--body "$(msg 'claude-sonnet-4-5@fake:drip=200:deltas=100' '"stream":true')"
t_eq "hold: READY 200 on stderr" "READY 200" "$(grep '^READY' "$T_TMP/hold.err")"
t_eq "hold: all alive at the end" "200 200 200 200" "$(jv hold '"%d %d %d %d" % (d["streams"], d["ready"], d["ok_200"], d["alive_end"])')"
t_eq "hold: events flowed, no errors" True "$(jv hold 'd["events"] >= 400 and d["errors"] == d["conn_errors"] == 0')"

# --- failures ---------------------------------------------------------------
run e500 "$U" --mode open --rate 100 --duration 1 --warmup 0 --body "$(msg claude-fake-500)"
t_eq "500: exit 0 with a result" 0 "$(cat "$T_TMP/e500.rc")"
t_eq "500: counted under its status" "True 100" "$(jv e500 'd["status"] == {"500": 100}, d["errors"]' | tr -d '(),')"

t0=$(now_ms)
run refused http://127.0.0.1:1/v1/messages --mode closed --duration 1 --warmup 0 --body x
t_eq "refused: exit 0" 0 "$(cat "$T_TMP/refused.rc")"
t_eq "refused: conn_errors counted" True "$(jv refused 'd["conn_errors"] > 0 and d["completed"] == 0')"
t_check "refused: exits promptly" test $(($(now_ms) - t0)) -lt 3000
run refused_open http://127.0.0.1:1/v1/messages --mode open --rate 100 --duration 0.5 --warmup 0 --body x
t_eq "refused, open: every request a conn error" 50 "$(jv refused_open 'd["conn_errors"]')"
t0=$(now_ms)
run hold_refused http://127.0.0.1:1/v1/messages --mode hold --streams 20 --duration 0.2 --body x
t_eq "refused, hold: READY 0 at once" "READY 0" "$(grep '^READY' "$T_TMP/hold_refused.err")"
t_check "refused, hold: no wait for --timeout" test $(($(now_ms) - t0)) -lt 3000

run stall "$U" --mode open --rate 10 --duration 0.5 --warmup 0 --timeout 0.5 --stream \
	--body "$(msg claude-fake-stall '"stream":true')"
t_eq "stall: timeouts counted" "5 0" "$(jv stall '"%d %d" % (d["timeouts"], d["completed"])')"

# --- the parser, against canned responses -------------------------------------
cat >"$T_TMP/canned.py" <<'EOF'
import socket, socketserver, sys, time
R = {
    "/chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"8;x=1\r\ndata: a\n\r\na\r\n\ndata: bb\r\r\n2\r\n\n\r\r\n"
                 b"1\r\n\n\r\n0\r\nX-Trailer: 1\r\n\r\n", False),
    "/close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True),
    "/eof": (b"HTTP/1.1 200 OK\r\n\r\nbody until EOF", True),
    "/bad": (b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", True),
    "/huge": (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", True),
    "/junk": (b"SMTP ready\r\n\r\n", True),
}
# /trickle: the chunked answer one byte per write, so every parser state
# (status line, header, chunk size, SSE boundary) is split across reads.
R["/trickle"] = (R["/chunked"][0], False)
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = self.request.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            n = 0
            for l in head.split(b"\r\n")[1:]:
                k, _, v = l.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            while len(buf) < n:
                buf += self.request.recv(65536)
            buf = buf[n:]
            path = head.split(b" ")[1].decode()
            body, close = R.get(path, R["/bad"])
            if path == "/trickle":
                for i in range(len(body)):
                    self.request.sendall(body[i:i + 1])
                    time.sleep(0.0005)
            else:
                self.request.sendall(body)
            if close:
                return
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
s = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
python3 "$T_TMP/canned.py" >"$T_TMP/cs.out" 2>"$T_TMP/cs.err" &
CS_PID=$!
t_check "canned: listening" t_wait 5 grep -qE '^[0-9]+$' "$T_TMP/cs.out"
C=http://127.0.0.1:$(cat "$T_TMP/cs.out")

run chunked "$C/chunked" --mode closed --conns 2 --duration 0.5 --warmup 0 --stream --body x
t_eq "chunked: events split across chunks" "True 2 2" "$(jv chunked 'd["completed"] > 0 and d["conn_errors"] == 0, d["events_min"], d["events_max"]' | tr -d '(),')"
run trickle "$C/trickle" --mode closed --conns 2 --duration 0.5 --warmup 0 --stream --body x
t_eq "trickle: byte by byte, same events" "True 2 2" "$(jv trickle 'd["completed"] > 2 and d["conn_errors"] == 0, d["events_min"], d["events_max"]' | tr -d '(),')"
run close "$C/close" --mode closed --conns 2 --duration 0.5 --warmup 0 --body x
t_eq "Connection: close: reconnects" True "$(jv close 'd["completed"] > 10 and d["conn_errors"] == 0')"
run eof "$C/eof" --mode open --rate 40 --duration 0.5 --warmup 0 --body x
t_eq "body to EOF: complete" "20 0" "$(jv eof '"%d %d" % (d["completed"], d["conn_errors"])')"
for k in bad huge junk; do
	run $k "$C/$k" --mode open --rate 40 --duration 0.25 --warmup 0 --body x
	t_eq "$k response: a conn error, exit 0" "0 10 0" "$(jv $k '"%d %d" % (d["completed"], d["conn_errors"])') $(cat "$T_TMP/$k.rc")"
done
t_fails "usage: no --mode" "$LG" --url "$U"
t_fails "usage: bad url" "$LG" --url "https://x/" --mode closed
t_check "fake still up" kill -0 $FU_PID

t_done
