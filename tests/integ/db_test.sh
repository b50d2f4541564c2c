# db_test.sh: the schema, the migrator and sub2apictl against a live
# PostgreSQL: migrate / no-op / checksum refusal, every ctl command with
# --json, secrets at rest, exact balances and ledger, usage idempotency,
# the health score function and the ops views.
. "$(dirname "$0")/lib.sh"

CTL="$BIN/sub2apictl"
MIGR="$(cd "$(dirname "$0")/../.." && pwd)/migrations"
DB=$(t_newdb s2a_db)
export SUB2API_DATABASE_URL="$DB"
export SUB2API_MIGRATIONS_DIR="$MIGR"
export SUB2API_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
q() { psql "$DB" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
jget() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
NMIG=$(ls "$MIGR"/*.sql | wc -l)

# --- migrations ---------------------------------------------------------
t_check "migrate applies all" "$CTL" migrate
t_eq "migrate reported $NMIG applied" "applied $NMIG migrations ($NMIG total)" \
	"$(cat "$T_TMP/last.out")"
t_check "second migrate succeeds" "$CTL" migrate
t_eq "second migrate is a no-op" "up to date ($NMIG migrations, 0 applied)" \
	"$(cat "$T_TMP/last.out")"
t_eq "json: up to date" "0 up_to_date" \
	"$("$CTL" --json migrate | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["applied"], d["status"])')"
t_eq "schema_migrations has $NMIG rows" "$NMIG" "$(q 'SELECT count(*) FROM schema_migrations')"
f1=$(ls "$MIGR"/*.sql | head -1)
t_eq "checksum is sha256 of the file" "$(sha256sum "$f1" | cut -d' ' -f1)" \
	"$(q "SELECT checksum FROM schema_migrations WHERE filename = '$(basename "$f1")'")"

mkdir -p "$T_TMP/m"
cp "$MIGR"/*.sql "$T_TMP/m/"
echo "-- edited after apply" >>"$T_TMP/m/$(basename "$f1")"
t_fails "edited migration is refused" "$CTL" --migrations "$T_TMP/m" migrate
grep -q "changed after it was applied" "$T_TMP/last.out" &&
	grep -q "$(basename "$f1")" "$T_TMP/last.out" &&
	t_ok "refusal names the file and checksums" ||
	t_bad "refusal names the file and checksums" "$(cat "$T_TMP/last.out")"
cp "$MIGR"/*.sql "$T_TMP/m/"
rm "$T_TMP/m/$(basename "$f1")"
t_fails "missing applied migration is refused" "$CTL" --migrations "$T_TMP/m" migrate
cp "$MIGR"/*.sql "$T_TMP/m/"
echo "CREATE TABLE zz_extra (id int);" >"$T_TMP/m/9999_extra.sql"
t_check "a new migration applies" "$CTL" --migrations "$T_TMP/m" migrate
t_eq "new migration recorded" "1" "$(q "SELECT count(*) FROM schema_migrations WHERE filename='9999_extra.sql'")"
echo "CREATE TABLE zz_broken (id int); SELECT nosuchfunc();" >"$T_TMP/m/9999_zbroken.sql"
t_fails "a failing migration fails" "$CTL" --migrations "$T_TMP/m" migrate
t_eq "failed migration rolled back" "0" \
	"$(q "SELECT count(*) FROM pg_tables WHERE tablename='zz_broken'")"

# --- users, groups, keys ------------------------------------------------
out=$("$CTL" --json user add --email alice@example.com --password 'pw-alice-123' --role admin)
t_eq "user add json" "alice@example.com" "$(echo "$out" | jget email)"
UID_A=$(echo "$out" | jget id)
t_fails "duplicate email refused" "$CTL" user add --email ALICE@example.com
"$CTL" user add --email bad-email >/dev/null 2>&1
t_eq "bad email exits 2" "2" "$?"
"$CTL" user add --email x@example.com --balance 1e5 >/dev/null 2>&1
t_eq "bad decimal exits 2" "2" "$?"
t_eq "password stored as scrypt" "scrypt\$32768\$8\$1" \
	"$(q "SELECT split_part(password_hash,'\$',1)||'\$'||split_part(password_hash,'\$',2)||'\$'||split_part(password_hash,'\$',3)||'\$'||split_part(password_hash,'\$',4) FROM users WHERE id=$UID_A")"
t_eq "token_version persisted" "0" "$(q "SELECT token_version FROM users WHERE id=$UID_A")"
t_eq "user list json" "1" "$("$CTL" --json user list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

out=$("$CTL" --json group add --name pro --platform openai --multiplier 1.25 --exclusive --fail-fast)
t_eq "group add json" "openai 1.2500 True True" \
	"$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["platform"], d["rate_multiplier"], d["is_exclusive"], d["fail_fast"])')"
t_fails "bad platform refused" "$CTL" group add --name x --platform foo
t_eq "default group seeded" "default" "$(q "SELECT name FROM groups WHERE id=1")"
t_eq "group list has 2" "2" "$("$CTL" --json group list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

out=$("$CTL" --json key add --user alice@example.com --group pro --name ci)
KEY=$(echo "$out" | jget key)
t_eq "key format" "1" "$(echo "$KEY" | grep -cE '^sk-[0-9a-f]{64}$')"
t_eq "key_hash is sha256 of the key" "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" \
	"$(q "SELECT key_hash FROM api_keys WHERE id=$(echo "$out" | jget id)")"
t_eq "no plaintext key in api_keys" "0" \
	"$(q "SELECT count(*) FROM api_keys k WHERE position('$KEY' in k::text) > 0")"
t_eq "key list shows prefix only" "${KEY:0:10}" \
	"$("$CTL" --json key list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["key_prefix"])')"
"$CTL" key list | grep -q "$KEY" && t_bad "key list leaks key" || t_ok "key list does not leak key"
t_fails "key for unknown user refused" "$CTL" key add --user nobody@example.com

# --- accounts -----------------------------------------------------------
SECRET="sk-ant-very-secret-$(date +%s%N)"
echo "{\"api_key\":\"$SECRET\"}" >"$T_TMP/creds.json"
out=$("$CTL" --json account add --name acc1 --platform anthropic --type apikey \
	--credentials "@$T_TMP/creds.json" --base-url https://api.example.com --group pro --group default)
t_eq "account add json" "acc1 ['default', 'pro']" \
	"$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["name"], d["groups"])')"
t_eq "credentials not plaintext in table" "0" \
	"$(q "SELECT count(*) FROM accounts a WHERE position('$SECRET' in a::text) > 0 OR position(convert_to('$SECRET','UTF8') in credentials_enc) > 0")"
t_eq "credentials blob is version 1" "1" "$(q "SELECT get_byte(credentials_enc, 0) FROM accounts")"
"$CTL" account list | grep -q "$SECRET" && t_bad "account list leaks" || t_ok "account list does not leak"
(unset SUB2API_SECRET_KEY; "$CTL" account add --name acc2 --platform anthropic --type oauth --credentials '{}' >/dev/null 2>&1)
t_eq "account add without key exits 2" "2" "$?"
t_fails "bad account type refused" "$CTL" account add --name a --platform openai --type cookie --credentials '{}'

# --- balance ------------------------------------------------------------
t_check "balance add 1" "$CTL" --json balance add --user alice@example.com --amount 10.1234567891 --note first
t_check "balance add 2" "$CTL" --json balance add --user "$UID_A" --amount 0.0000000009
t_eq "balance moved exactly" "10.1234567900" "$(q "SELECT balance FROM users WHERE id=$UID_A")"
t_check "balance add negative" "$CTL" balance add --user "$UID_A" --amount -0.12345679
t_eq "balance after subtraction" "10.0000000000" "$(q "SELECT balance FROM users WHERE id=$UID_A")"
t_eq "ledger sums to balance" "t" \
	"$(q "SELECT sum(delta) = (SELECT balance FROM users WHERE id=$UID_A) FROM balance_ledger WHERE user_id=$UID_A")"
t_eq "ledger rows are admin_adjust" "3 admin_adjust" "$(q "SELECT count(*)||' '||min(kind) FROM balance_ledger WHERE user_id=$UID_A")"
"$CTL" balance add --user "$UID_A" --amount -11 >/dev/null 2>&1
t_eq "negative result refused (exit 2)" "2" "$?"
t_check "balance set" "$CTL" balance set --user "$UID_A" --amount 2.5
t_eq "balance set exact" "2.5000000000" "$(q "SELECT balance FROM users WHERE id=$UID_A")"
t_eq "ledger still sums after set" "t" \
	"$(q "SELECT sum(delta) = (SELECT balance FROM users WHERE id=$UID_A) FROM balance_ledger WHERE user_id=$UID_A")"
"$CTL" balance add --user "$UID_A" --amount 1.2.3 >/dev/null 2>&1
t_eq "malformed amount exits 2" "2" "$?"
"$CTL" --db "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2" user list >/dev/null 2>&1
t_eq "unreachable DB exits 1" "1" "$?"
out=$("$CTL" --db "postgresql://u:hunter2@127.0.0.1:1/x?connect_timeout=2" user list 2>&1)
echo "$out" | grep -q hunter2 && t_bad "DSN password leaked" "$out" || t_ok "DSN password redacted"

# --- usage idempotency --------------------------------------------------
KID=$(q "SELECT id FROM api_keys LIMIT 1")
AID=$(q "SELECT id FROM accounts LIMIT 1")
ins="INSERT INTO usage_logs (user_id, api_key_id, account_id, request_id, model, total_cost, actual_cost) VALUES ($UID_A, $KID, $AID, 'req-1', 'claude', 0.001, 0.00125)"
t_check "usage insert" q "$ins"
t_fails "duplicate request_id refused" q "$ins"
t_eq "on conflict do nothing inserts nothing" "" \
	"$(q "$ins ON CONFLICT (request_id) DO NOTHING RETURNING id")"
t_eq "usage rows" "1" "$(q "SELECT count(*) FROM usage_logs")"
t_fails "bad redeem code format refused" q "INSERT INTO redeem_codes (code) VALUES ('ABCD-1234')"
t_check "32-hex redeem code accepted" q "INSERT INTO redeem_codes (code) VALUES (md5('x'))"

# --- ops ----------------------------------------------------------------
t_eq "health 100" "100" "$(q "SELECT calculate_health_score(99.95, 0.05, 400, 40)")"
t_eq "health 82" "82" "$(q "SELECT calculate_health_score(99.6, 0.3, 800, 60)")"
t_eq "health 65" "65" "$(q "SELECT calculate_health_score(99.0, 1.0, 3000, 85)")"
t_eq "health 17 (worst)" "17" "$(q "SELECT calculate_health_score(50, 50, 9000, 99)")"
t_eq "health 37 (mid)" "37" "$(q "SELECT calculate_health_score(95, 5, 5000, 86)")"
t_eq "seeded alert rules" "7" "$(q "SELECT count(*) FROM ops_alert_rules")"
t_eq "retention seeds" "ops_alert_events:90,ops_dimension_stats:30,ops_error_logs:30,ops_system_metrics:30,usage_logs:90" \
	"$(q "SELECT string_agg(table_name||':'||retention_days, ',' ORDER BY table_name) FROM ops_data_retention_config")"
t_check "metrics insert" q "INSERT INTO ops_system_metrics (success_rate, error_rate, p99_latency_ms, cpu_usage_percent, window_minutes) VALUES (99.95, 0.05, 400, 40, 1), (90, 9, 9000, 99, 5)"
t_eq "ops_latest_metrics" "100" "$(q "SELECT health_score FROM ops_latest_metrics")"
t_check "alert event insert" q "INSERT INTO ops_alert_events (rule_id, severity, title) SELECT id, severity, 'x' FROM ops_alert_rules ORDER BY id LIMIT 1"
t_eq "ops_active_alerts" "Global success rate < 99%" "$(q "SELECT rule_name FROM ops_active_alerts")"
t_eq "ops_system_metrics 025 columns" "3" \
	"$(q "SELECT count(*) FROM information_schema.columns WHERE table_name='ops_system_metrics' AND column_name IN ('qps','db_conn_waiting','tags')")"

# --- proxies --------------------------------------------------------------
PXPW="px-pw:@/%-$(date +%s%N)"
out=$("$CTL" --json proxy add --name px1 --protocol socks5 --host 127.0.0.1 --port 1080 \
	--username bob --password "$PXPW")
t_eq "proxy add json" "px1 socks5 1080 bob True active" \
	"$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["name"], d["protocol"], d["port"], d["username"], d["has_password"], d["status"])')"
echo "$out" | grep -qF "$PXPW" && t_bad "proxy add prints the password" || t_ok "proxy add does not print the password"
PX1=$(echo "$out" | jget id)
t_eq "proxy password sealed (no plaintext in the row)" "0" \
	"$(q "SELECT count(*) FROM proxies p WHERE position('$PXPW' in p::text) > 0 OR position(convert_to('$PXPW','UTF8') in p.password_enc) > 0")"
t_eq "proxy blob is version 1 with nonce and tag" "t" \
	"$(q "SELECT get_byte(password_enc, 0) = 1 AND length(password_enc) = 29 + length(convert_to('$PXPW','UTF8')) FROM proxies WHERE id = $PX1")"
printf '%s\n' "$PXPW" >"$T_TMP/pxpw"
t_check "proxy add with @file password, no auth" "$CTL" proxy add --name px2 --protocol http --host ::1 --port 3128 --username u --password @"$T_TMP/pxpw"
t_eq "@file password: one trailing newline dropped" "t" \
	"$(q "SELECT length(password_enc) = 29 + length(convert_to('$PXPW','UTF8')) FROM proxies WHERE name = 'px2'")"
t_check "proxy add without credentials needs no key" env -u SUB2API_SECRET_KEY "$CTL" proxy add --name px3 --protocol https --host proxy.example.com --port 443
t_eq "proxy without password has NULL password_enc" "t|" "$(q "SELECT password_enc IS NULL, username FROM proxies WHERE name = 'px3'")"
"$CTL" proxy list | grep -qF "$PXPW" && t_bad "proxy list leaks" || t_ok "proxy list does not leak"
t_eq "proxy list json" "px1,px2,px3 False" \
	"$("$CTL" --json proxy list | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(x["name"] for x in d), any("password" in x for x in d))')"
bad_px() { # bad_px DESCRIPTION ARGS...: the command must exit 2
	local what=$1
	shift
	"$CTL" proxy add "$@" >/dev/null 2>&1
	t_eq "proxy add refuses $what (exit 2)" 2 "$?"
}
bad_px "port 0" --name b --protocol http --host h --port 0
bad_px "port 65536" --name b --protocol http --host h --port 65536
bad_px "port abc" --name b --protocol http --host h --port abc
bad_px "protocol socks4" --name b --protocol socks4 --host h --port 1
bad_px "empty host" --name b --protocol http --host "" --port 1
bad_px "host with a space" --name b --protocol http --host "a b" --port 1
bad_px "host with /" --name b --protocol http --host "a/b" --port 1
bad_px "host with @" --name b --protocol http --host "u@h" --port 1
bad_px "host with a port" --name b --protocol http --host "h:80" --port 1
bad_px "password without username" --name b --protocol http --host h --port 1 --password x
bad_px "a duplicate name" --name px1 --protocol http --host h --port 1
(unset SUB2API_SECRET_KEY; "$CTL" proxy add --name b --protocol http --host h --port 1 --username u --password p >/dev/null 2>&1)
t_eq "proxy password without key exits 2" "2" "$?"
t_eq "no refused proxy was stored" "3" "$(q "SELECT count(*) FROM proxies")"
out=$("$CTL" --json account add --name accpx --platform anthropic --type apikey \
	--credentials '{"api_key":"k"}' --proxy px1)
t_eq "account add --proxy NAME sets proxy_id" "$PX1" "$(echo "$out" | jget proxy_id)"
"$CTL" account add --name accpx2 --platform anthropic --type apikey --credentials '{"api_key":"k"}' --proxy nope >/dev/null 2>&1
t_eq "account add --proxy unknown exits 2" 2 "$?"
t_eq "refused account not stored" "0" "$(q "SELECT count(*) FROM accounts WHERE name = 'accpx2'")"
t_check "account set-proxy by id" "$CTL" account set-proxy --account accpx --proxy "$(q "SELECT id FROM proxies WHERE name='px3'")"
t_eq "set-proxy changed proxy_id" "px3" "$(q "SELECT p.name FROM accounts a JOIN proxies p ON p.id = a.proxy_id WHERE a.name = 'accpx'")"
t_check "account set-proxy --none" "$CTL" account set-proxy --account accpx --none
t_eq "set-proxy --none clears proxy_id" "" "$(q "SELECT proxy_id FROM accounts WHERE name = 'accpx'")"
q "UPDATE proxies SET deleted_at = now() WHERE name = 'px3'" >/dev/null
"$CTL" account set-proxy --account accpx --proxy px3 >/dev/null 2>&1
t_eq "set-proxy to a deleted proxy exits 2" 2 "$?"

# --- a user's own multiplier in a group -----------------------------------
out=$("$CTL" --json rate set --user alice@example.com --group pro --multiplier 0.75)
t_eq "rate set json" "$UID_A 0.7500" "$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["user_id"], d["rate_multiplier"])')"
t_check "rate set again updates" "$CTL" rate set --user "$UID_A" --group pro --multiplier 0.5
t_eq "one row, the new value" "1 0.5000" "$(q "SELECT count(*) || ' ' || max(rate_multiplier) FROM user_group_rate_multipliers")"
t_eq "rate list shows it beside the group's" "alice@example.com pro 1.2500 0.5000" \
	"$("$CTL" --json rate list | python3 -c 'import json,sys; d=json.load(sys.stdin)[0]; print(d["email"], d["group_name"], d["group_multiplier"], d["rate_multiplier"])')"
for bad in -1 1.23456 abc ""; do
	"$CTL" rate set --user alice@example.com --group pro --multiplier "$bad" >/dev/null 2>&1
	t_eq "rate set --multiplier '$bad' exits 2" 2 "$?"
done
"$CTL" rate set --user nobody@example.com --group pro --multiplier 1 >/dev/null 2>&1
t_eq "rate set for an unknown user exits 2" 2 "$?"
"$CTL" rate set --user alice@example.com --group nope --multiplier 1 >/dev/null 2>&1
t_eq "rate set for an unknown group exits 2" 2 "$?"
t_check "rate unset" "$CTL" rate unset --user alice@example.com --group pro
t_eq "rate unset removed the row" 0 "$(q "SELECT count(*) FROM user_group_rate_multipliers")"
"$CTL" rate unset --user alice@example.com --group pro >/dev/null 2>&1
t_eq "rate unset of nothing exits 2" 2 "$?"

psql "$SUB2API_TEST_DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS ${DB##*/}" >/dev/null 2>&1
t_done
