#!/usr/bin/env bash
# ttfb.sh: time to first byte of a streamed Anthropic request, through the
# whole gateway path (auth, scheduler, slots, usage events) and directly to
# the fake upstream, measured side by side in one run, at concurrency 1
# and 32.  Prints a Markdown table and writes build/bench/ttfb.json.
#
# Usage: make bench-ttfb   (or BIN=build/bin bash tests/bench/ttfb.sh [N])
# N requests per cell (default 400).  Uses curl's time_starttransfer, so
# the figures include curl's own connection set-up on both paths alike.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
N=${1:-400}
BIN=${BIN:-$ROOT/build/bin}
T_TMP=$(mktemp -d)
export T_TMP BIN ROOT
. tests/integ/lib.sh
. compose/local/servers.sh
srv_pg_start "$ROOT/var/test/pg" 55432 >/dev/null || exit 1
srv_redis_start "$ROOT/var/test/redis" 56379 >/dev/null || exit 1
export SUB2API_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:55432/postgres
export SUB2API_TEST_REDIS_URL=redis://127.0.0.1:56379
export SUB2API_LOG_LEVEL=warn
. tests/integ/gwstack.sh
gws_up 18480 >"$T_TMP/up.log"
if grep -q '^FAIL' "$T_TMP/up.log"; then
	cat "$T_TMP/up.log"
	echo "the stack did not come up; no figures"
	exit 1
fi
psql -qAt "$DB" -c "UPDATE users SET concurrency = 1000; UPDATE accounts SET concurrency = 1000" >/dev/null

BODY='{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
one() { # one URL: prints "status time_starttransfer_ms"
	curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}\n' "$1" \
		-H "x-api-key: $KEY" -H 'content-type: application/json' -d "$BODY" |
		awk '{printf "%s %.3f\n", $1, $2 * 1000}'
}
export -f one
export KEY BODY

cell() { # cell NAME URL CONC
	seq 1 "$N" | xargs -P "$3" -I{} bash -c "one '$2/v1/messages'" >"$T_TMP/$1-$3.txt"
}
for c in 1 32; do
	cell direct "$FAKE_URL" $c
	cell gateway "http://127.0.0.1:$GW" $c
done

mkdir -p build/bench
python3 - "$T_TMP" "$N" <<'PY' | tee build/bench/ttfb.md
import json, statistics, sys, os
d, n = sys.argv[1], int(sys.argv[2])
def pct(v, p):
    v = sorted(v); k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]
res = {}
print("| concurrency | path | median ms | p99 ms | added median ms | added p99 ms |")
print("|---|---|---|---|---|---|")
for c in (1, 32):
    row = {}
    for path in ("direct", "gateway"):
        rows = [x.split() for x in open(os.path.join(d, f"{path}-{c}.txt")) if x.strip()]
        bad = [r for r in rows if r[0] != "200"]
        if bad:
            sys.exit(f"{path} at concurrency {c}: {len(bad)} of {len(rows)} requests failed (status {bad[0][0]}); no figures")
        v = [float(r[1]) for r in rows]
        row[path] = {"n": len(v), "median_ms": statistics.median(v), "p99_ms": pct(v, 99)}
    res[str(c)] = row
    for path in ("direct", "gateway"):
        r = row[path]
        add_m = r["median_ms"] - row["direct"]["median_ms"]
        add_p = r["p99_ms"] - row["direct"]["p99_ms"]
        print(f"| {c} | {path} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | "
              + (f"{add_m:.3f} | {add_p:.3f} |" if path == "gateway" else "- | - |"))
json.dump({"requests_per_cell": n, "ttfb": res}, open("build/bench/ttfb.json", "w"), indent=2)
PY
for s in gateway scheduler billing; do gws_stop "$s"; done
