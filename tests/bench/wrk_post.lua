-- wrk_post.lua: the bench's request for wrk (a cross-check of loadgen's
-- closed loop), and its result as one JSON line.
--
-- BENCH_BODY_FILE names the request body; BENCH_KEY is sent as x-api-key,
-- the same headers loadgen sends.  done() prints
-- {"requests", "duration_us", "rps", "errors": {...}, "lat_us": {...}}
-- after wrk's own text, on a line of its own.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		'\n{"requests":%d,"duration_us":%d,"rps":%.1f,' ..
		'"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
		'"lat_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
		summary.requests, summary.duration,
		summary.requests / (summary.duration / 1e6),
		e.connect, e.read, e.write, e.status, e.timeout,
		latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, latency.mean))
end
