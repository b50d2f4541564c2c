#!/usr/bin/env python3
"""chaos_drive.py: the request driver of chaos_test.sh (not a test itself).

Sends N requests to the gateway, PAR at a time (one thread and one
keep-alive connection each), request i using key i % len(keys), stream
when i is even, its own usage numbers through the fake's model mode
"usage=IN,OUT,CC,CR,CC5M,CC1H".  Writes the number of completed requests
to PROGRESS (atomically, after each one) so the shell can drive its chaos
schedule, and at the end one CSV row per request to OUT:

  i,status,outcome,rid,t

(t: wall-clock seconds when the answer ended.)

outcome: ok (200, complete answer), refused (5xx), cut (200 cut short,
or a transport error), other (any other status).
"""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse


def body(i):
    n = i % 500
    usage = "%d,%d,%d,%d,%d,%d" % (100 + n, 2 * n + 1, 3 * n, 4 * n, n, 2 * n)
    model = "claude-haiku-4-5" if i % 7 == 0 else "claude-sonnet-4-5"
    return json.dumps({
        "model": model + "@fake:usage=" + usage,
        "max_tokens": 64,
        "stream": i % 2 == 0,
        "messages": [{"role": "user", "content": "hi"}],
    })


def one(conn, path, key, i):
    """(status, outcome, rid) of request i; raises on a transport error."""
    conn.request("POST", path, body=body(i), headers={
        "x-api-key": key,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    })
    r = conn.getresponse()
    rid = r.getheader("x-request-id") or ""
    try:
        data = r.read()
    except (http.client.HTTPException, OSError):
        return r.status, "cut" if r.status == 200 else "other", rid
    if r.status == 200:
        if i % 2 == 0:
            done = b"event: message_stop" in data
        else:
            try:
                done = "usage" in json.loads(data)
            except ValueError:
                done = False
        return 200, "ok" if done else "cut", rid
    if r.status >= 500:
        return r.status, "refused", rid
    return r.status, "other", rid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--par", type=int, default=8)
    ap.add_argument("--progress", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    keys = a.keys.split(",")
    res = [None] * a.n
    lock = threading.Lock()
    state = {"next": 0, "done": 0}

    def worker():
        conn = None
        while True:
            with lock:
                i = state["next"]
                if i >= a.n:
                    break
                state["next"] = i + 1
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            try:
                res[i] = one(conn, u.path, keys[i % len(keys)], i)
            except (http.client.HTTPException, OSError) as e:
                res[i] = (0, "cut", "")
                print("request %d: %s" % (i, e), flush=True)
                conn.close()
                conn = None
            res[i] = res[i] + (time.time(),)
            if res[i][1] != "ok":
                print("request %d: %s %s" % (i, res[i][0], res[i][1]), flush=True)
            with lock:
                state["done"] += 1
                tmp = a.progress + ".tmp"
                with open(tmp, "w") as f:
                    f.write("%d\n" % state["done"])
                os.replace(tmp, a.progress)
        if conn is not None:
            conn.close()

    th = [threading.Thread(target=worker) for _ in range(a.par)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    with open(a.out, "w") as f:
        f.write("i,status,outcome,rid,t\n")
        for i, (st, oc, rid, t) in enumerate(res):
            f.write("%d,%d,%s,%s,%.3f\n" % (i, st, oc, rid, t))
    counts = {}
    for _, oc, _, _ in res:
        counts[oc] = counts.get(oc, 0) + 1
    print("done: %s" % json.dumps(counts, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
