#!/usr/bin/env bash
# sdk_test.sh: the real clients, pinned in tests/e2e/package.json and
# installed from npm, through the gateway to the fake upstream:
#  - @anthropic-ai/sdk 1.14.0 (Bearer) and 0.137.0 (x-api-key): non-stream,
#    stream with usage, a tool_use round trip, count_tokens, a bad key;
#  - Claude Code 2.1.197 runs -p with the offline flags of CLIENTS.md and
#    completes, once plain and once with a tool round trip.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gwstack.sh"

E2E=$ROOT/tests/e2e
if [ ! -f "$E2E/node_modules/.package-lock.json" ] ||
	! cmp -s "$E2E/package-lock.json" "$E2E/node_modules/.lock-copy"; then
	t_check "npm ci of the pinned clients" bash -c "cd '$E2E' && npm ci --no-audit --no-fund >'$T_TMP/npm.log' 2>&1 && cp package-lock.json node_modules/.lock-copy"
fi

gws_up 18280
export GW_URL=http://127.0.0.1:$GW GW_KEY=$KEY FAKE_URL

# Node's test runner (TAP): every "ok"/"not ok" line becomes one of ours.
(cd "$E2E" && node --test --test-reporter=tap anthropic_sdk.test.mjs) >"$T_TMP/sdk.tap" 2>&1
while IFS= read -r line; do
	case $line in
	"ok "*) t_ok "${line#ok * - }" ;;
	"not ok "*) t_bad "${line#not ok * - }" "see $T_TMP/sdk.tap" ;;
	esac
done < <(grep -E '^(not )?ok [0-9]+ - ' "$T_TMP/sdk.tap")
t_check "the SDK suite ran its 11 tests" test "$(grep -cE '^(not )?ok [0-9]+ - ' "$T_TMP/sdk.tap")" -eq 11

# Claude Code, offline, with a fresh HOME.
CLAUDE=$E2E/node_modules/@anthropic-ai/claude-code/bin/claude.exe
cc() {
	env HOME="$T_TMP/cchome" ANTHROPIC_BASE_URL="$GW_URL" ANTHROPIC_API_KEY="$KEY" \
		DISABLE_TELEMETRY=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
		DISABLE_AUTOUPDATER=1 DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_MAX_RETRIES=1 \
		timeout 120 "$CLAUDE" "$@" </dev/null
}
mkdir -p "$T_TMP/cchome"
cc -p "hello" --output-format json >"$T_TMP/cc1.json" 2>"$T_TMP/cc1.err"
t_eq "claude -p exits 0" 0 $?
t_eq "claude -p result is a success" "success false" \
	"$(python3 -c "import json; d=json.load(open('$T_TMP/cc1.json')); print(d['subtype'], str(d['is_error']).lower())" 2>&1)"
t_check "claude -p got the fake's text" grep -q "fake upstream" "$T_TMP/cc1.json"

cc -p "TOOL_TEST please run echo" --output-format stream-json --verbose \
	--allowedTools "Bash(echo *)" >"$T_TMP/cc2.jsonl" 2>"$T_TMP/cc2.err"
t_eq "claude tool round trip exits 0" 0 $?
t_check "claude ran the tool and sent its result back" \
	python3 -c "
import json
types = [json.loads(l).get('type') for l in open('$T_TMP/cc2.jsonl') if l.strip()]
assert 'user' in types and types[-1] == 'result', types
"
# Two runs of one Claude Code session (--session-id, then --resume) stay
# on one account: every request of both runs reaches the same upstream key.
keytotals() {
	curl -fsS "$FAKE_URL/_fake/stats" | python3 -c 'import json,sys; k=json.load(sys.stdin)["keys"]; print(k.get("sk-up-a",{}).get("total",0), k.get("sk-up-b",{}).get("total",0))'
}
U=$(python3 -c 'import uuid; print(uuid.uuid4())')
read -r a0 b0 < <(keytotals)
cc -p "first run" --session-id "$U" --output-format json >"$T_TMP/cc3.json" 2>"$T_TMP/cc3.err"
t_eq "claude run 1 of the session exits 0" 0 $?
cc -p "second run" --resume "$U" --output-format json >"$T_TMP/cc4.json" 2>"$T_TMP/cc4.err"
t_eq "claude run 2 (--resume) exits 0" 0 $?
read -r a1 b1 < <(keytotals)
t_check "both Claude Code runs on one account (a +$((a1 - a0)), b +$((b1 - b0)))" \
	test $(((a1 - a0) * (b1 - b0))) -eq 0 -a $((a1 - a0 + b1 - b0)) -ge 2
t_check "the gateway saw each Claude Code turn as a completed request" \
	test "$(gws_metric "$GW_HEALTH" sub2api_gateway_usage_events_total)" -ge 3

for s in gateway scheduler billing; do
	gws_stop "$s"
	t_eq "$s exits 0 on SIGTERM" 0 $?
done
t_done
