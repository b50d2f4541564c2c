#!/usr/bin/env python3
"""report.py: docs/PERFORMANCE.md and docs/performance.json from the raw
results of tests/bench/perf.sh.

Usage: report.py RESULTS_DIR OUT_MD OUT_JSON

RESULTS_DIR holds one file per cell, as perf.sh writes them: loadgen's
JSON (lat_<path>_<rate>.json, closed_<path>.json, stream_<path>.json,
soak.json), wrk's (wrk_<path>.json), CPU windows (cpu_*.json), the
capacity runs (cap_<n>.json, cap_<n>.lg.json), billing.sh's JSON, the
samplers' text files, and run.json.  A cell that failed has a <file>.fail
beside it (or none at all); it is reported FAILED with what is known of
its errors, never as a latency.  The page is rewritten whole; hand-written
analysis lives in docs/PERFORMANCE_NOTES.md, which the page links to.
Exit status 1 when any cell failed (the page is still written, saying so).
Python standard library only.
"""
import datetime
import json
import os
import platform
import subprocess
import sys

PATHS = ("direct", "nginx", "gateway")
SCENARIOS = ("billing", "latency", "closed", "stream", "capacity", "soak")
STACK = ("gateway", "scheduler", "postgres", "redis", "billing", "opsmon")
PROCS = STACK + ("fakeup", "nginx", "loadgen")

# The targets.
T_WALL_S = 15 * 60
T_ADD_P50_MS = 0.15
T_ADD_P99_MS = 1.0
T_THRU_RATIO = 0.5
T_STREAMS = 5000
T_RSS_PER_STREAM_KIB = 64
T_SOAK_GROWTH = 0.01

NOT_RUN = "Not run (this run's SCENARIOS left it out).\n"


class Res:
    """The results directory: files read as JSON, failures remembered."""

    def __init__(self, d):
        self.d = d
        self.failed = []

    def path(self, name):
        return os.path.join(self.d, name)

    def text(self, name):
        try:
            with open(self.path(name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def json(self, name):
        t = self.text(name)
        if not t:
            return None
        try:
            return json.loads(t)
        except ValueError:
            return None

    def fail_text(self, name):
        t = self.text(name + ".fail")
        return " ".join(t.split())[:300] if t else None


def lg_cell(res, name, label):
    """A loadgen cell: (data, None) when every request succeeded, else
    (data or None, reason)."""
    d = res.json(name)
    why = res.fail_text(name)
    if d is None:
        why = why or "no result"
    else:
        st = d.get("status") or {}
        bad_status = {k: v for k, v in st.items() if k != "200" and v}
        errs = [(k, d.get(k) or 0) for k in ("errors", "conn_errors", "timeouts")]
        if any(v for _, v in errs) or bad_status or not d.get("completed"):
            why = ", ".join(f"{k} {v}" for k, v in errs)
            why += f", completed {d.get('completed', 0)} of {d.get('requests', 0)}"
            if bad_status:
                why += ", status " + json.dumps(bad_status, sort_keys=True)
            if res.fail_text(name):
                why += "; " + res.fail_text(name)
    if why:
        res.failed.append(f"{label}: {why}")
    return d, why


def ms(us):
    return None if us is None else us / 1000.0


def fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:,.{nd}f}"


def pct(v):
    return "-" if v is None else f"{100 * v:.1f} %"


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    model, mem = "?", "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
                break
    except OSError:
        pass
    osname = "?"
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    gcc = (sh(["gcc", "--version"]).splitlines() or ["?"])[0]
    nginx = "?"
    try:
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    except OSError:
        pass
    return {
        "cpu": model, "nproc": os.cpu_count(), "mem_total": mem,
        "kernel": platform.release(), "os": osname, "gcc": gcc,
        "nginx": nginx.replace("nginx version: ", ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def cpu_of(res, name, rps):
    """A CPU window: {proc: {"pct": % of one core, "us_per_req": µs}} and
    served_per_s, the requests the fake served meanwhile (every path ends
    there), which CPU is divided by; loadgen's rate when that is missing."""
    c = res.json(name)
    if not c or not c.get("window_s"):
        return None
    out = {}
    ticks = dict(c["ticks"])
    served = ticks.pop("served", None)
    for p, t in ticks.items():
        s = t / c["clk_tck"]
        out[p] = {"pct": 100 * s / c["window_s"],
                  "us_per_req": (1e6 * s / served if served else
                                 1e6 * s / c["window_s"] / rps if rps else None)}
    if served:
        out["served_per_s"] = served / c["window_s"]
    return out


def added(path_stats, direct_stats, key):
    if not path_stats or not direct_stats:
        return None
    return path_stats[key] - direct_stats[key]


def soak_billed(soak):
    """Whether billing caught up with the soak (duplicates of events the
    gateway resent after a restart count as committed, hence >=)."""
    if "gateway_events" not in soak:
        return ""
    g, b = soak["gateway_events"], soak["billing_committed"]
    if b >= g:
        return " Within 60 s of the end billing had committed every usage event the gateway published."
    return (f" Billing was still {g - b:,} usage events behind the gateway 60 s after the end "
            f"(committed {b:,} of {g:,}).")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: report.py RESULTS_DIR OUT_MD OUT_JSON")
    res = Res(sys.argv[1])
    out_md, out_json = sys.argv[2], sys.argv[3]
    run = res.json("run.json") or {}
    mach = machine()
    if run.get("started"):
        mach["date"] = run["started"]
    doc = {"machine": mach, "run": run}
    ran = set(run.get("scenarios") or SCENARIOS)
    md = []
    w = md.append

    # --- 1. latency at fixed rates ---
    rates = [int(r) for r in run.get("rates", [])] if "latency" in ran else []
    lat = {}
    for r in rates:
        lat[r] = {}
        for p in PATHS:
            d, why = lg_cell(res, f"lat_{p}_{r}.json", f"latency {p} at {r}/s")
            cell = {"failed": why} if why else {
                "rps": d.get("rps"), "requests": d.get("requests"),
                **{k: ms(d["lat_us"].get(k)) for k in ("p50", "p90", "p99", "max", "mean")}}
            cpu = cpu_of(res, f"cpu_lat_{p}_{r}.json", d.get("rps") if d else None)
            if cpu:
                cell["cpu"] = cpu
            lat[r][p] = cell
        dct = lat[r]["direct"]
        for p in ("nginx", "gateway"):
            c = lat[r][p]
            if "failed" not in c and "failed" not in dct:
                c["added_ms"] = {k: c[k] - dct[k] for k in ("p50", "p90", "p99", "max")}
    doc["latency"] = {str(r): v for r, v in lat.items()}

    # --- 1b. closed loop ---
    closed = {}
    for p in PATHS if "closed" in ran else ():
        d, why = lg_cell(res, f"closed_{p}.json", f"closed loop {p} (loadgen)")
        c = {"loadgen": {"failed": why} if why else {
            "rps": d.get("rps"), "p50": ms(d["lat_us"]["p50"]), "p99": ms(d["lat_us"]["p99"])}}
        wk = res.json(f"wrk_{p}.json")
        werr = res.fail_text(f"wrk_{p}.json")
        if wk and not werr and not any(wk["errors"].values()):
            c["wrk"] = {"rps": wk["rps"], "p50": ms(wk["lat_us"]["p50"]), "p99": ms(wk["lat_us"]["p99"])}
        else:
            why = werr or (f"errors {json.dumps(wk['errors'], sort_keys=True)}" if wk else "no result")
            res.failed.append(f"closed loop {p} (wrk): {why}")
            c["wrk"] = {"failed": why}
        cpu = cpu_of(res, f"cpu_closed_{p}.json", c["loadgen"].get("rps"))
        if cpu:
            c["cpu"] = cpu
        closed[p] = c

    def ratio(tool, a, b):
        if not closed:
            return None
        x, y = closed[a][tool].get("rps"), closed[b][tool].get("rps")
        return x / y if x and y else None

    ratios = {f"{a}/{b}": {t: ratio(t, a, b) for t in ("loadgen", "wrk")}
              for a, b in (("gateway", "nginx"), ("gateway", "direct"), ("nginx", "direct"))}
    doc["closed_loop"] = {"conns": run.get("conns"), "paths": closed, "ratios": ratios}

    # --- 2. streaming ---
    stream = {}
    for p in PATHS if "stream" in ran else ():
        d, why = lg_cell(res, f"stream_{p}.json", f"streaming {p}")
        if why or not d.get("ttfb_us"):
            stream[p] = {"failed": why or "no ttfb in loadgen's result"}
            if not why:
                res.failed.append(f"streaming {p}: no ttfb in loadgen's result")
            continue
        g = d.get("event_gap_us") or {}
        stream[p] = {"rps": d.get("rps"), "ttfb_p50": ms(d["ttfb_us"]["p50"]),
                     "ttfb_p99": ms(d["ttfb_us"]["p99"]), "events_min": d.get("events_min"),
                     "events_max": d.get("events_max"), "gap_p50_us": g.get("p50"),
                     "gap_p99_us": g.get("p99")}
    for p in ("nginx", "gateway") if stream else ():
        if "failed" not in stream[p] and "failed" not in stream["direct"]:
            stream[p]["added"] = {k: stream[p][k] - stream["direct"][k]
                                  for k in ("ttfb_p50", "ttfb_p99", "gap_p50_us", "gap_p99_us")
                                  if stream[p][k] is not None and stream["direct"][k] is not None}
    doc["streaming"] = {"rate": run.get("stream_rate"), "paths": stream}

    # --- 3. capacity ---
    cap = {}
    for n in [int(x) for x in run.get("streams", [])] if "capacity" in ran else []:
        c = res.json(f"cap_{n}.json") or {}
        lgd = res.json(f"cap_{n}.lg.json") or {}
        why = res.fail_text(f"cap_{n}.json")
        ready = c.get("ready", 0)
        e = {"streams": n, "held": ready, "loadgen": lgd, "error": why}
        if ready:
            e["rss_idle_mib"] = c["rss_idle_kb"] / 1024
            e["rss_ready_mib"] = c["rss_ready_kb"] / 1024
            e["rss_per_stream_kib"] = (c["rss_ready_kb"] - c["rss_idle_kb"]) / ready
            e["cpu_pct"] = (100 * c["cpu_ticks"] / c["clk_tck"] / c["window_s"]
                            if c.get("window_s") else None)
            e["window_s"] = c.get("window_s")
            e["ramp_s"] = c.get("ramp_s")
            e["fake_rss_mib"] = c["fake_rss_ready_kb"] / 1024
            e["sched_rss_mib"] = c["sched_rss_ready_kb"] / 1024
        e["gateway_log"] = c.get("gateway_log") or ""
        if ready < n:
            st = lgd.get("status") or {}
            bad = {k: v for k, v in st.items() if k != "200" and v}
            more = [f"held {ready:,} of {n:,}"]
            if bad:
                more.append("responses " + json.dumps(bad, sort_keys=True))
            for k in ("conn_errors", "timeouts"):
                if lgd.get(k):
                    more.append(f"{k} {lgd[k]}")
            if why:
                more.append(why)
            why = e["error"] = ", ".join(more)
        if why:
            res.failed.append(f"capacity {n}: {why}")
        cap[n] = e
    doc["capacity"] = {str(k): v for k, v in cap.items()}

    # --- 4. billing ---
    bill = res.json("billing.json")
    bwhy = res.fail_text("billing.json") if not bill else None
    if not bill and "billing" in ran:
        bwhy = bwhy or "no result"
        res.failed.append(f"billing events/s: {bwhy}")
    lag = {}
    samples = []
    for line in (res.text("lag.txt") or "").splitlines():
        f = line.split()
        if len(f) == 3 and all(x.lstrip("-").isdigit() for x in f):
            samples.append(tuple(int(x) for x in f))
    end = res.text("lag_load_end.txt")
    if samples and end:
        end = int(end)
        lags = [(t, g - b) for t, g, b in samples]
        lag["max_lag_events"] = max(x for _, x in lags)
        lag["samples"] = len(samples)
        caught = [t for t, x in lags if t >= end and x <= 0]
        lag["catch_up_s"] = (caught[0] - end) / 1000 if caught else None
        lag["gateway_rps"] = closed["gateway"]["loadgen"].get("rps") if closed else None
    doc["billing"] = {"throughput": bill, "failed": bwhy, "lag_at_gateway_max": lag}

    # --- 5. soak ---
    soak = {"seconds": run.get("soak_s"), "rate": run.get("soak_rate")}
    growth = {}
    d = None
    if "soak" in ran:
        d, why = lg_cell(res, "soak.json", "soak")
        soak["failed"] = why
        if d:
            soak.update(requests=d.get("requests"), completed=d.get("completed"),
                        errors=(d.get("errors") or 0) + (d.get("conn_errors") or 0) + (d.get("timeouts") or 0),
                        rps=d.get("rps"), p50=ms(d["lat_us"]["p50"]), p99=ms(d["lat_us"]["p99"]))
        rows = [line.split() for line in (res.text("soak_rss.txt") or "").splitlines()]
        head, rows = (rows[0], rows[1:]) if rows else ([], [])
        rows = [[int(x) for x in r] for r in rows if len(r) == len(head)]
        soak["rss_kb"] = [dict(zip(head, r)) for r in rows]
        if rows:
            # The first 30 % (at least 60 s) is warm-up: heaps, arenas and
            # connection caches fill, then RSS must stay flat.  What the
            # warm-up took is shown beside it.
            soak_s = run.get("soak_s") or 20
            base_t = max(60, int(soak_s * 0.3) // 10 * 10) if soak_s >= 120 else max(10, soak_s // 2 // 10 * 10)
            base = next((r for r in rows if r[0] >= base_t), rows[0])
            last = rows[-1]
            soak["baseline_t_s"], soak["end_t_s"] = base[0], last[0]
            win = [r for r in rows if r[0] >= base[0]]
            for i, s in enumerate(head[1:], 1):
                growth[s] = {"first_kb": rows[0][i], "base_kb": base[i], "end_kb": last[i],
                             "min_kb": min(r[i] for r in win), "max_kb": max(r[i] for r in win),
                             "growth": (last[i] - base[i]) / base[i] if base[i] else None}
        else:
            res.failed.append("soak: no RSS samples")
        soak["growth"] = growth
        billed = (res.text("soak_billed.txt") or "").split()
        if len(billed) == 2:
            soak["gateway_events"], soak["billing_committed"] = int(billed[0]), int(billed[1])
        doc["soak"] = soak

    # --- targets ---
    wall = run.get("wall_s")
    soak_s = run.get("soak_s") or 0
    full = wall - soak_s + 600 if wall is not None else None
    targets, limits = [], []

    lim_of = {}

    def target(name, measured, ok, limit=None):
        """ok None: not measured in this run (SCENARIOS)."""
        targets.append({"target": name, "measured": measured,
                        "pass": None if ok is None else bool(ok)})
        if ok is None:
            return
        if not ok and limit:
            if limit in lim_of:  # one line for targets missed for one reason
                i = lim_of[limit]
                limits[i] = limits[i].replace("**: ", f"; {name}**: ", 1)
            else:
                lim_of[limit] = len(limits)
                limits.append(f"- **{name}**: {limit}")

    full_run = ran == set(SCENARIOS)
    target("`make bench` end to end under 15 minutes",
           f"{wall:.0f} s this run" + ("" if soak_s == 600 else
                                       f" (soak {soak_s} s; {full:.0f} s with the 600 s soak)")
           if wall is not None else "-",
           (full is not None and full < T_WALL_S) if full_run else None,
           f"the run took {wall:.0f} s" if wall is not None else "no timing")

    top = max(rates) if rates else None
    gcell = lat.get(top, {}).get("gateway", {}) if top else {}
    gadd = gcell.get("added_ms")

    def cpu_line(cpu, what):
        if not cpu:
            return ""
        parts = [f"{p} {cpu[p]['us_per_req']:.0f} µs" for p in PROCS
                 if p in cpu and cpu[p].get("us_per_req") is not None and cpu[p]["pct"] >= 0.5]
        stack = sum(cpu[p]["us_per_req"] or 0 for p in STACK if p in cpu)
        sched = sum(cpu[p]["us_per_req"] or 0 for p in ("scheduler", "postgres", "redis") if p in cpu)
        s = f"CPU per request {what}"
        if cpu.get("served_per_s"):
            s += f" ({cpu['served_per_s']:,.0f} requests/s served)"
        s += ": " + ", ".join(parts) + "."
        if stack:
            s += (f" The scheduler's share (scheduler, this database's PostgreSQL backends, "
                  f"Redis) is {100 * sched / stack:.0f} % of the stack's {stack:.0f} µs.")
        return s

    def lat_limit():
        base = (f"FAILED: {gcell['failed']}. " if gcell.get("failed") else "")
        return base + cpu_line(gcell.get("cpu"), f"at {top}/s through the gateway")

    if not top:
        target(f"added latency p50 ≤ {T_ADD_P50_MS} ms and p99 ≤ {T_ADD_P99_MS} ms", "not run", None)
    else:
        target(f"added latency p50 ≤ {T_ADD_P50_MS} ms at {top}/s",
               f"{gadd['p50']:.3f} ms" if gadd else "FAILED",
               gadd and gadd["p50"] <= T_ADD_P50_MS, lat_limit())
        target(f"added latency p99 ≤ {T_ADD_P99_MS} ms at {top}/s",
               f"{gadd['p99']:.3f} ms" if gadd else "FAILED",
               gadd and gadd["p99"] <= T_ADD_P99_MS, lat_limit())
    gn = ratios["gateway/nginx"]["loadgen"]
    gcpu = closed["gateway"].get("cpu") if closed else None

    def thru_limit():
        if not gcpu:
            return "no CPU figures"
        total = sum(v["pct"] for k, v in gcpu.items() if k in PROCS)
        ncores = mach["nproc"] or 1
        bound = ("the machine's cores are saturated, so CPU per request is the limit"
                 if total >= 90 * ncores else
                 "this run's processes do NOT saturate the cores, so waiting (round trips, "
                 "queues, locks) or other work on the shared machine limits it, not this "
                 "stack's CPU")
        busy = ", ".join(f"{p} {gcpu[p]['pct']:.0f} %" for p in PROCS
                         if p in gcpu and gcpu[p]["pct"] >= 0.5)
        load = " ".join(run.get("loadavg_end") or []) or "?"
        return (f"at the gateway's closed-loop maximum this run's processes used {total:.0f} % of "
                f"{ncores} cores ({busy}; the machine's load average at the end: {load}): {bound}. "
                + cpu_line(gcpu, "at that maximum"))

    target(f"closed-loop throughput gateway ≥ {T_THRU_RATIO:.0%} of nginx",
           f"{gn:.1%}" if gn else "FAILED" if closed else "not run",
           (gn is not None and gn >= T_THRU_RATIO) if closed else None, thru_limit())
    c5 = cap.get(T_STREAMS)
    if c5 is None:
        target(f"{T_STREAMS:,} concurrent streams held, ≤ {T_RSS_PER_STREAM_KIB} KiB RSS each",
               "not run", None)
    else:
        per = c5.get("rss_per_stream_kib")
        ok = c5["held"] >= T_STREAMS and per is not None and per <= T_RSS_PER_STREAM_KIB
        meas = f"held {c5['held']:,}" + (f", {per:.1f} KiB per stream" if per is not None else "")
        lim = []
        if c5["held"] < T_STREAMS:
            lim.append(f"{c5.get('error') or 'no error recorded'}"
                       + (f"; gateway log: {c5['gateway_log']}" if c5.get("gateway_log") else ""))
        if per is not None and per > T_RSS_PER_STREAM_KIB:
            lim.append(f"RSS per stream {per:.1f} KiB (gateway {c5['rss_idle_mib']:.1f} MiB idle, "
                       f"{c5['rss_ready_mib']:.1f} MiB holding them)")
        target(f"{T_STREAMS:,} concurrent streams held, ≤ {T_RSS_PER_STREAM_KIB} KiB RSS each",
               meas, ok, "; ".join(lim))
    if growth:
        worst = max(growth.items(), key=lambda kv: kv[1]["growth"] or 0)
        ok = all(g["growth"] is not None and g["growth"] < T_SOAK_GROWTH for g in growth.values()) \
            and not soak.get("failed")
        lim = [f"{s} grew {g['growth']:.2%} ({g['base_kb'] / 1024:.1f} -> {g['end_kb'] / 1024:.1f} MiB)"
               for s, g in growth.items() if g["growth"] is not None and g["growth"] >= T_SOAK_GROWTH]
        if soak.get("failed"):
            lim.append(f"requests failed: {soak['failed']}")
        target(f"soak: every service's RSS grows < {T_SOAK_GROWTH:.0%}, no error",
               f"largest {worst[0]} {worst[1]['growth']:+.2%} over {soak['end_t_s'] - soak['baseline_t_s']} s"
               + (f" ({soak_s} s soak, not the 600 s target)" if soak_s < 600 else "")
               + f", {soak.get('errors', '?')} errors", ok, "; ".join(lim))
    elif "soak" in ran:
        target("soak: every service's RSS grows < 1 %", "FAILED", False, "no RSS samples")
    else:
        target("soak: every service's RSS grows < 1 %", "not run", None)
    gw_exits = (res.text("gw_exits.txt") or "").splitlines()
    doc["gateway_exits"] = gw_exits
    doc["targets"] = targets
    doc["limits"] = limits
    doc["failed_cells"] = res.failed

    # --- the page ---
    w("# Performance\n")
    w("<!-- Generated by `make bench` (tests/bench/perf.sh and tests/bench/report.py); "
      "edits here are overwritten. Hand-written analysis: docs/PERFORMANCE_NOTES.md. -->\n")
    w(f"Figures from one run of `make bench` on {mach['date']}. Every comparison was measured "
      "side by side in this one run, because the machine is shared and noisy; read ratios and "
      "added latencies, not absolute figures. The same figures are in "
      "[performance.json](performance.json). Earlier hand-written analysis (where the "
      "scheduler's time goes, billing's design): [PERFORMANCE_NOTES.md](PERFORMANCE_NOTES.md).\n")
    w("## How to rerun\n")
    w("```\nmake bench          # everything, 10-minute soak, under 15 minutes\n"
      "make bench-quick    # short cells, 30 s soak\n"
      "SOAK_S=60 CELL_S=5 BENCH_BASE=20080 bash tests/bench/perf.sh\n"
      "SCENARIOS='capacity' bash tests/bench/perf.sh   # a subset (billing latency closed "
      "stream capacity soak)\n"
      "python3 tests/bench/report.py build/bench/perf-res OUT.md OUT.json   # the page again "
      "from the last run's raw results\n```\n"
      "Every knob is described at the top of tests/bench/perf.sh; the services' logs of the "
      "last run stay in build/bench/perf-logs/.\n")
    w("The stack is the real one on loopback: the fake upstream (answering at once), a fresh "
      "PostgreSQL database, scheduler, billing, opsmon and gateway (the gateway publishes every "
      "usage event to billing and opsmon). nginx is the reference proxy: one worker, "
      "`proxy_pass` to the same fake with 64 keep-alive connections, no access log. The request "
      "is the same on every path: a small `POST /v1/messages` with the stack's `x-api-key`. "
      "Latency comes from `loadgen` (open loop: requests are sent on a fixed schedule whatever "
      "the answers, so queueing shows as latency); wrk is a cross-check of the closed loop.\n")
    w("## Machine\n")
    w("| | |\n|---|---|")
    for k, label in (("cpu", "CPU"), ("nproc", "cores (nproc)"), ("mem_total", "memory"),
                     ("os", "OS"), ("kernel", "kernel"), ("gcc", "compiler"), ("nginx", "nginx"),
                     ("date", "date")):
        w(f"| {label} | {mach[k]} |")
    if run.get("loadavg_end"):
        w(f"| load average at the end | {' '.join(run['loadavg_end'])} |")
    w(f"| cells | {run.get('warm_s')} s warm-up + {run.get('cell_s')} s measured |")
    w("")

    w("## Targets\n")
    w("| target | measured | result |\n|---|---|---|")
    for t in targets:
        res_txt = "-" if t["pass"] is None else "PASS" if t["pass"] else "**MISS**"
        w(f"| {t['target']} | {t['measured']} | {res_txt} |")
    w("")
    if limits:
        w("What limits each miss, measured in this run:\n")
        md.extend(limits)
        w("")
    if gw_exits:
        w("**The gateway did not stop cleanly** when the bench restarted it:\n")
        md.extend(f"- {x}" for x in gw_exits)
        w("")
    if res.failed:
        w("**Failed cells** (no figures printed for them):\n")
        md.extend(f"- {f}" for f in res.failed)
        w("")

    w("## 1. Added latency, small non-streaming request, open loop\n")
    w("Latency in ms from loadgen; \"added\" is the path's percentile minus the direct path's "
      "in the same run. The order of the paths turns from one rate to the next.\n")
    if rates:
        w("| rate/s | path | achieved/s | p50 | p90 | p99 | max | added p50 | added p90 | added p99 | added max |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        w(NOT_RUN)
    for r in rates:
        for p in PATHS:
            c = lat[r][p]
            if c.get("failed"):
                w(f"| {r:,} | {p} | FAILED: {c['failed']} | | | | | | | | |")
                continue
            a = c.get("added_ms") or {}
            w(f"| {r:,} | {p} | {fmt(c['rps'], 0)} | {fmt(c['p50'])} | {fmt(c['p90'])} | "
              f"{fmt(c['p99'])} | {fmt(c['max'])} | " +
              " | ".join(fmt(a.get(k)) for k in ("p50", "p90", "p99", "max")) + " |")
    w("")
    w(f"### Closed-loop maximum ({run.get('conns')} connections)\n")
    if closed:
        w("| path | loadgen req/s | p50 ms | p99 ms | wrk req/s | wrk p50 ms | wrk p99 ms |")
        w("|---|---|---|---|---|---|---|")
    else:
        w(NOT_RUN)
    for p in closed:
        a, b = closed[p]["loadgen"], closed[p]["wrk"]
        la = (f"FAILED: {a['failed']} | | " if a.get("failed") else
              f"{fmt(a['rps'], 0)} | {fmt(a['p50'])} | {fmt(a['p99'])} ")
        wb = (f"FAILED: {b['failed']} | | " if b.get("failed") else
              f"{fmt(b['rps'], 0)} | {fmt(b['p50'])} | {fmt(b['p99'])} ")
        w(f"| {p} | {la}| {wb}|")
    w("")
    if closed:
        w("| throughput ratio | loadgen | wrk |\n|---|---|---|")
        for k, v in ratios.items():
            w(f"| {k} | {pct(v['loadgen'])} | {pct(v['wrk'])} |")
        w("")
    w("### Where the CPU goes\n")
    w("CPU of each process during the cell, as % of one core and µs per request (utime + stime "
      "from /proc; PostgreSQL is the backends of this run's database; Redis is the shared test "
      "server, so other work on the machine may show there).\n")
    windows = [(f"{p}, closed loop", closed[p].get("cpu")) for p in reversed(PATHS) if p in closed]
    if top:
        windows.insert(1, (f"gateway at {top:,}/s", gcell.get("cpu")))
    windows = [(n, c) for n, c in windows if c]
    if not windows:
        w(NOT_RUN)
    else:
        w("| process | " + " | ".join(n for n, _ in windows) + " |")
        w("|---|" + "---|" * len(windows))
        for p in PROCS:
            if not any(p in c for _, c in windows):
                continue
            cells = []
            for _, c in windows:
                v = c.get(p)
                cells.append("-" if not v else
                             f"{v['pct']:.0f} % ({fmt(v['us_per_req'], 0)} µs)")
            w(f"| {p} | " + " | ".join(cells) + " |")
        w("| *requests/s served* | " + " | ".join(fmt(c.get("served_per_s"), 0) for _, c in windows) + " |")
        w("")

    w(f"## 2. Streaming: 200-event stream at {run.get('stream_rate')}/s\n")
    w("Time to first byte (ms) and the gap between consecutive SSE events as the client sees "
      "them (µs); added = path minus direct.\n")
    if stream:
        w("| path | achieved/s | TTFB p50 | TTFB p99 | added p50 | added p99 | events | gap p50 µs | gap p99 µs | added gap p50 | added gap p99 |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        w(NOT_RUN)
    for p in stream:
        s = stream[p]
        if s.get("failed"):
            w(f"| {p} | FAILED: {s['failed']} | | | | | | | | | |")
            continue
        a = s.get("added", {})
        ev = (f"{s['events_min']}" if s["events_min"] == s["events_max"]
              else f"{s['events_min']}-{s['events_max']}")
        w(f"| {p} | {fmt(s['rps'], 0)} | {fmt(s['ttfb_p50'])} | {fmt(s['ttfb_p99'])} | "
          f"{fmt(a.get('ttfb_p50'))} | {fmt(a.get('ttfb_p99'))} | {ev} | {fmt(s['gap_p50_us'], 0)} | "
          f"{fmt(s['gap_p99_us'], 0)} | {fmt(a.get('gap_p50_us'), 0)} | {fmt(a.get('gap_p99_us'), 0)} |")
    w("")

    w("## 3. Capacity: concurrent long SSE streams through one gateway\n")
    w(f"Each stream drips one event a second; the gateway is restarted before each run, its RSS "
      f"read when every stream has its first event (loadgen's READY), its CPU over the "
      f"{run.get('hold_s')} s holding window. RSS per stream = (RSS holding - RSS idle) / streams "
      "held.\n")
    if cap:
        w("| streams | held | ramp s | gateway RSS idle MiB | holding MiB | per stream KiB | gateway CPU % | fake RSS MiB | scheduler RSS MiB | error |")
        w("|---|---|---|---|---|---|---|---|---|---|")
    else:
        w(NOT_RUN)
    for n, e in cap.items():
        err = e.get("error") or ""
        if e.get("gateway_log"):
            err += (" " if err else "") + f"(gateway log: {e['gateway_log']})"
        if not e["held"]:
            w(f"| {n:,} | 0 | | | | | | | | FAILED: {err} |")
            continue
        w(f"| {n:,} | {e['held']:,} | {fmt(e['ramp_s'], 1)} | {fmt(e['rss_idle_mib'], 1)} | "
          f"{fmt(e['rss_ready_mib'], 1)} | {fmt(e['rss_per_stream_kib'], 1)} | {fmt(e['cpu_pct'], 0)} | "
          f"{fmt(e['fake_rss_mib'], 1)} | {fmt(e['sched_rss_mib'], 1)} | {err} |")
    w("")

    w("## 4. Billing\n")
    if bill:
        w(f"tests/bench/billing.sh: {bill.get('events', run.get('bill_n')):,} usage events "
          "published over NNG as a gateway does, into a database of 1,000 users and 2,000 keys; "
          "the money is checked exactly afterwards.\n")
        w("| events/s | writers | batch_max | mean batch | p50 commit latency ms | p99 ms |")
        w("|---|---|---|---|---|---|")
        w(f"| {fmt(bill.get('events_per_s'), 0)} | {bill.get('writers')} | {bill.get('batch_max')} | "
          f"{fmt(bill.get('mean_batch'), 0)} | {fmt(bill.get('latency_p50_ms'), 1)} | "
          f"{fmt(bill.get('latency_p99_ms'), 1)} |")
    elif "billing" in ran:
        w(f"Billing throughput: FAILED: {bwhy}")
    else:
        w("Billing throughput: " + NOT_RUN)
    w("")
    w("Lag at the gateway's closed-loop maximum: usage events the gateway published minus "
      "events billing committed, sampled every 200 ms; catch-up is the time from the end of "
      "the load until billing has committed everything.\n")
    if lag:
        w("| gateway req/s | max lag, events | catch-up s |\n|---|---|---|")
        w(f"| {fmt(lag.get('gateway_rps'), 0)} | {lag['max_lag_events']:,} | "
          f"{fmt(lag.get('catch_up_s'), 1) if lag.get('catch_up_s') is not None else 'not within 120 s'} |")
    else:
        w("No lag samples (the gateway's closed-loop run did not take place).")
    if not ran & {"billing", "closed"}:
        md[-1] = ""
    w("")

    w(f"## 5. Soak: {soak_s} s at {run.get('soak_rate')} requests/s through the gateway\n")
    if "soak" not in ran:
        w(NOT_RUN)
    if soak.get("failed"):
        w(f"Requests: FAILED: {soak['failed']}\n")
    if d:
        w(f"{soak.get('completed', 0):,} requests completed at {fmt(soak.get('rps'), 0)}/s, "
          f"{soak.get('errors')} errors, latency p50 {fmt(soak.get('p50'))} ms, "
          f"p99 {fmt(soak.get('p99'))} ms."
          + soak_billed(soak) + "\n")
    if growth:
        w(f"Before the soak a 3 s closed-loop burst opens the most client connections the "
          f"soak's loadgen may use ({run.get('soak_conns', 256)}), so a stall of the shared "
          f"machine later finds its connections and buffers already pooled on both sides of "
          f"the gateway. RSS (VmRSS) sampled every 10 s; the first {soak['baseline_t_s']} s "
          f"are warm-up (heaps, allocator arenas and connection caches fill); growth from t = "
          f"{soak['baseline_t_s']} s to t = {soak['end_t_s']} s.\n")
        w("| service | RSS at 10 s MiB | RSS at baseline MiB | min MiB | max MiB | RSS at end MiB | growth | < 1 % |")
        w("|---|---|---|---|---|---|---|---|")
        for s, g in growth.items():
            w(f"| {s} | {g.get('first_kb', g['base_kb']) / 1024:.1f} | {g['base_kb'] / 1024:.1f} | {g['min_kb'] / 1024:.1f} | "
              f"{g['max_kb'] / 1024:.1f} | {g['end_kb'] / 1024:.1f} | "
              f"{g['growth']:+.2%} | {'PASS' if g['growth'] < T_SOAK_GROWTH else 'MISS'} |")
        w("")

    with open(out_md, "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
    print("\n".join(md))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
