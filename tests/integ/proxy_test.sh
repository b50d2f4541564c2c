#!/usr/bin/env bash
# proxy_test.sh: per-account outbound proxies end to end, through the real
# gateway and scheduler, with two fake proxies (tests/tools/fakeproxy.c):
#  - acc-a behind an HTTP proxy with credentials: the fake upstream
#    answers, the proxy counts a forwarded request;
#  - acc-a behind a SOCKS5 proxy with credentials (socks5h): likewise;
#  - a proxy with a wrong password: the proxy refuses (auth failure), the
#    gateway fails over, acc-b serves;
#  - a password that does not decrypt: acc-a is skipped, acc-b serves,
#    the scheduler logs the ids and never the secret;
#  - the proxy disabled, then deleted: acc-a is skipped (no direct
#    connection around its proxy), acc-b serves;
#  - no password appears in any service log.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/gwstack.sh"
gws_up 18580

msg() { # msg KEY BODY
	curl -s -m 20 -o "$T_TMP/body" -w '%{http_code}' "http://127.0.0.1:$GW/v1/messages" \
		-H "x-api-key: $1" -H 'anthropic-version: 2023-06-01' \
		-H 'content-type: application/json' -d "$2"
}
jget() { python3 -c "import json,sys; d=json.load(open('$T_TMP/body')); print($1)"; }
served() { # served KEY: requests the fake upstream saw for upstream key KEY
	curl -fsS -m 3 "$FAKE_URL/_fake/stats" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"].get(sys.argv[1],{}).get("total",0))' "$1"
}
pstat() { # pstat PORT EXPR: a field of a fake proxy's stats
	curl -fsS -m 3 "http://127.0.0.1:$1/_proxy/stats" |
		python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
proxy_up() { # proxy_up NAME USER PASS VAR: starts a fake proxy; VAR = its port
	"$BIN/fakeproxy" --listen 127.0.0.1:0 --user "$2" --pass "$3" \
		>"$T_TMP/$1.out" 2>"$T_TMP/$1.log" &
	PID[$1]=$!
	t_check "$1 starts" t_wait 10 grep -q '^listening ' "$T_TMP/$1.out"
	printf -v "$4" '%s' "$(awk '/^listening/ {split($2, a, ":"); print a[2]; exit}' "$T_TMP/$1.out")"
}
use_proxy() { t_check "acc-a -> $1" $CTL account set-proxy --account acc-a --proxy "$1"; }

# Every request gets its own first message, so no sticky session binds it
# to the account an earlier request used.
body() {
	printf '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi %s"}]}' "$(date +%s%N)"
}

# Passwords with reserved characters exercise the percent-encoding.
HPW="h:p@ss/w%rd-$RANDOM"
SPW="s p@ss:w/rd%-$RANDOM"
proxy_up fpx_http hu "$HPW" HP
proxy_up fpx_socks su "$SPW" SP
t_check "proxy ports known" test -n "$HP" -a -n "$SP"

out=$($CTL --json proxy add --name px-http --protocol http --host 127.0.0.1 --port "$HP" \
	--username hu --password "$HPW")
t_check "proxy add http" test -n "$out"
echo "$out" | grep -qF "$HPW" && t_bad "proxy add prints the password" || t_ok "proxy add hides the password"
t_check "proxy add socks5" $CTL proxy add --name px-socks --protocol socks5 --host 127.0.0.1 --port "$SP" \
	--username su --password "$SPW"
t_check "proxy add socks5 with a wrong password" $CTL proxy add --name px-bad --protocol socks5 \
	--host 127.0.0.1 --port "$SP" --username su --password "not-$SPW"
t_check "proxy add http (IPv6 literal, for the decrypt check)" $CTL proxy add --name px-v6 --protocol http \
	--host ::1 --port "$HP" --username hu --password "$HPW"

# --- HTTP proxy ----------------------------------------------------------
use_proxy px-http
a0=$(served sk-up-a)
h0=$(pstat "$HP" 'd["by_kind"]["http"]')
t_eq "via http proxy: 200" 200 "$(msg "$KEY" "$(body)")"
t_eq "via http proxy: the upstream's message" message "$(jget 'd["type"]')"
t_eq "via http proxy: acc-a served it" $((a0 + 1)) "$(served sk-up-a)"
t_eq "via http proxy: the proxy forwarded it" $((h0 + 1)) "$(pstat "$HP" 'd["by_kind"]["http"]')"
t_eq "via http proxy: no auth failure" 0 "$(pstat "$HP" 'd["auth_failures"]')"

# --- SOCKS5 proxy --------------------------------------------------------
use_proxy px-socks
a0=$(served sk-up-a)
t_eq "via socks5 proxy: 200" 200 "$(msg "$KEY" "$(body)")"
t_eq "via socks5 proxy: the upstream's message" message "$(jget 'd["type"]')"
t_eq "via socks5 proxy: acc-a served it" $((a0 + 1)) "$(served sk-up-a)"
t_eq "via socks5 proxy: the proxy tunnelled it" 1 "$(pstat "$SP" 'd["by_kind"]["socks5"]')"
t_eq "via socks5 proxy: no auth failure" 0 "$(pstat "$SP" 'd["auth_failures"]')"

# --- wrong proxy password: failover to acc-b ------------------------------
use_proxy px-bad
a0=$(served sk-up-a)
b0=$(served sk-up-b)
t_eq "wrong proxy password: 200 for the client" 200 "$(msg "$KEY" "$(body)")"
t_eq "wrong proxy password: acc-b served it" $((b0 + 1)) "$(served sk-up-b)"
t_eq "wrong proxy password: acc-a never reached the upstream" "$a0" "$(served sk-up-a)"
t_eq "wrong proxy password: the proxy counted an auth failure" 1 "$(pstat "$SP" 'd["auth_failures"]')"

# --- a password that does not decrypt: acc-a skipped ----------------------
# px-v6 gets px-http's blob, sealed for another row: the AAD check fails.
psql -qAt "$DB" -c "UPDATE proxies SET password_enc = (SELECT password_enc FROM proxies WHERE name = 'px-http') WHERE name = 'px-v6'" >/dev/null
use_proxy px-v6
b0=$(served sk-up-b)
h0=$(pstat "$HP" 'd["connections"]')
t_eq "undecryptable proxy password: 200" 200 "$(msg "$KEY" "$(body)")"
t_eq "undecryptable proxy password: acc-b served it" $((b0 + 1)) "$(served sk-up-b)"
t_eq "undecryptable proxy password: the proxy saw nothing" "$h0" "$(pstat "$HP" 'd["connections"]')"
AID=$(psql -qAt "$DB" -c "SELECT id FROM accounts WHERE name = 'acc-a'")
t_check "scheduler logs the account and proxy ids" \
	grep -q "\"ev\":\"sched.account_proxy_unusable\".*\"account\":$AID" "$T_TMP/scheduler.log"

# --- disabled, then deleted proxy: acc-a skipped ---------------------------
use_proxy px-http
psql -qAt "$DB" -c "UPDATE proxies SET status = 'disabled' WHERE name = 'px-http'" >/dev/null
a0=$(served sk-up-a)
b0=$(served sk-up-b)
h0=$(pstat "$HP" 'd["connections"]')
t_eq "disabled proxy: 200" 200 "$(msg "$KEY" "$(body)")"
t_eq "disabled proxy: acc-b served it" $((b0 + 1)) "$(served sk-up-b)"
t_eq "disabled proxy: acc-a not used, not even directly" "$a0" "$(served sk-up-a)"
t_eq "disabled proxy: the proxy saw nothing" "$h0" "$(pstat "$HP" 'd["connections"]')"
psql -qAt "$DB" -c "UPDATE proxies SET status = 'active', deleted_at = now() WHERE name = 'px-http'" >/dev/null
t_eq "deleted proxy: 200" 200 "$(msg "$KEY" "$(body)")"
t_eq "deleted proxy: acc-b served it" $((b0 + 2)) "$(served sk-up-b)"
t_eq "deleted proxy: acc-a not used" "$a0" "$(served sk-up-a)"
psql -qAt "$DB" -c "UPDATE proxies SET deleted_at = NULL WHERE name = 'px-http'" >/dev/null
t_eq "restored proxy: 200" 200 "$(msg "$KEY" "$(body)")"
t_eq "restored proxy: acc-a serves again" $((a0 + 1)) "$(served sk-up-a)"
t_eq "restored proxy: through the proxy" $((h0 + 1)) "$(pstat "$HP" 'd["connections"]')"

# --- no secret in any log ---------------------------------------------------
for f in scheduler gateway billing fpx_http fpx_socks; do
	if grep -qF -e "$HPW" -e "$SPW" -e "not-$SPW" "$T_TMP/$f.log"; then
		t_bad "$f log holds a proxy password"
	else
		t_ok "$f log holds no proxy password"
	fi
done

for s in gateway scheduler billing fpx_http fpx_socks; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_fails "no sanitizer report" grep -qE 'LeakSanitizer|AddressSanitizer|runtime error' \
	"$T_TMP/gateway.log" "$T_TMP/scheduler.log" "$T_TMP/fpx_http.log" "$T_TMP/fpx_socks.log"
t_done
