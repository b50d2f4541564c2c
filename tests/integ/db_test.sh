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

psql "$SUB2API_TEST_DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS ${DB##*/}" >/dev/null 2>&1
t_done
