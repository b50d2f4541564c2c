#!/usr/bin/env bash
# config_test.sh: every service's configuration front door.
#  - --help-config lists every key with its environment variable;
#  - --check-config passes on defaults and exits 2 naming the key and the
#    source for a bad environment value, a bad file value, an unknown file
#    key, a bad NNG URL;
#  - a service refuses to start (exit 2) on a bad configuration.
. "$(dirname "$0")/lib.sh"

unset SUB2API_DATABASE_URL SUB2API_REDIS_URL SUB2API_STATE_DIR
for s in gateway scheduler billing opsmon alerter webui; do
	u=$(echo "$s" | tr a-z A-Z)
	b=$BIN/sub2api-$s
	"$b" --help-config >"$T_TMP/$s.help" 2>&1
	t_eq "$s --help-config exits 0" 0 $?
	t_check "$s --help-config names SUB2API_${u}_HEALTH_ADDR" grep -q "SUB2API_${u}_HEALTH_ADDR" "$T_TMP/$s.help"
	t_check "$s --help-config names shared SUB2API_LOG_LEVEL" grep -q "SUB2API_LOG_LEVEL" "$T_TMP/$s.help"
	t_check "$s --check-config on defaults" "$b" --check-config

	env "SUB2API_${u}_HEALTH_ADDR=nonsense" "$b" --check-config >"$T_TMP/o" 2>&1
	t_eq "$s bad env value exits 2" 2 $?
	t_check "$s error names key and env source" grep -q "health_addr.*env SUB2API_${u}_HEALTH_ADDR" "$T_TMP/o"

	echo '{"health_addr": 5}' >"$T_TMP/$s.json"
	"$b" --check-config --config "$T_TMP/$s.json" >"$T_TMP/o" 2>&1
	t_eq "$s mistyped file value exits 2" 2 $?
	t_check "$s file error names the key" grep -q "health_addr" "$T_TMP/o"

	echo '{"no_such_key": "x"}' >"$T_TMP/$s.json"
	"$b" --check-config --config "$T_TMP/$s.json" >"$T_TMP/o" 2>&1
	t_eq "$s unknown file key exits 2" 2 $?
	t_check "$s unknown key named" grep -q "no_such_key" "$T_TMP/o"

	SUB2API_LOG_LEVEL=loud "$b" >"$T_TMP/o" 2>&1
	t_eq "$s refuses to start on a bad shared value" 2 $?
done

SUB2API_GATEWAY_SCHED_ADDR=http://x "$BIN/sub2api-gateway" --check-config >"$T_TMP/o" 2>&1
t_eq "gateway rejects a non-NNG scheduler address" 2 $?
SUB2API_GATEWAY_HEARTBEAT_INTERVAL=0ms "$BIN/sub2api-gateway" --check-config >"$T_TMP/o" 2>&1
t_eq "gateway rejects a heartbeat interval below its bound" 2 $?
SUB2API_DATABASE_URL="postgresql://u:hunter2@h/db" "$BIN/sub2api-scheduler" --check-config >"$T_TMP/o" 2>&1
t_fails "a secret never appears in --check-config output" grep -q hunter2 "$T_TMP/o"
t_done
