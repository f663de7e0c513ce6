#!/usr/bin/env bash
# Alternating A/B of `POST /print` under wrk, for experiments on the accept
# path (not part of `cargo bench`; needs wrk, curl and python3).
#
#   tests/bench/print-ab.sh ROUNDS SECONDS BIN_A [BIN_B ...]
#
# Each round starts every binary in turn on a fresh data directory (the demo
# printer paused, so every job stays queued, as in `cargo bench --bench hub
# -- front`), drives it with `wrk -t2 -c16` posting text labels for SECONDS
# (keep it at 3 or less: the bench key may submit 10,000 labels a minute),
# and prints one line per run:
#   - jobs/s, p50 and p99 (wrk's);
#   - the group commits (count, mean COMMIT time, how many took over 5 ms,
#     from /metrics);
#   - the hub's CPU per job (/proc/<pid>/stat);
#   - context switches per job, by thread name (/proc/<pid>/task/*/status;
#     threads that ended during the run, such as the front's per-connection
#     threads, are not counted).
# Then the medians per binary. Environment variables are passed to the hubs.
set -euo pipefail

rounds=$1
secs=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT

switches() { # pid -> "name vol inv" per thread-name group
    python3 - "$1" <<'PY'
import os, re, sys, collections
pid = sys.argv[1]
d = collections.Counter()
for t in os.listdir(f"/proc/{pid}/task"):
    try:
        name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        st = open(f"/proc/{pid}/task/{t}/status").read()
    except OSError:
        continue
    name = re.sub(r"\d+$", "N", name)
    d[(name, "vol")] += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
    d[(name, "inv")] += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
for (name, kind), n in d.items():
    print(name, kind, n)
PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one_run() { # bin -> one result line
    # Runs in its own subshell (a pipeline), so `hub` and `dir` are that
    # subshell's: its trap stops the hub and removes the data directory
    # however the run ends.
    local bin=$1 port key admin printer
    hub=
    dir=$(mktemp -d)
    trap '[ -z "$hub" ] || kill "$hub" 2>/dev/null || true; rm -rf "$dir"' EXIT
    port=$((20000 + RANDOM % 20000))
    PRINTER_HUB_DATA_DIR=$dir PRINTER_HUB_LISTEN=127.0.0.1:$port \
        PRINTER_HUB_MAX_CONNS_PER_CLIENT=2000 \
        PRINTER_HUB_MAX_QUEUED_PER_KEY=1000000 PRINTER_HUB_MAX_QUEUED_PER_PRINTER=1000000 \
        "$bin" serve >"$dir/log" 2>&1 &
    hub=$!
    for _ in $(seq 200); do grep -q "listening on" "$dir/log" && break; sleep 0.05; done
    admin=$(cat "$dir/bootstrap-admin.key")
    key=$(curl -fs -XPOST "localhost:$port/api/admin/api-keys" -H "X-Label-Hub-Key: $admin" \
        -H 'content-type: application/json' \
        -d '{"name":"bench","scopes":["admin"],"rate_limit_per_minute":10000}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["plaintext"])')
    printer=$(curl -fs "localhost:$port/api/printers/demo" -H "X-Label-Hub-Key: $key" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    curl -fs -XPOST "localhost:$port/api/printers/$printer/pause" -H "X-Label-Hub-Key: $key" \
        -H 'content-type: application/json' -d '{}' >/dev/null
    cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Label-Hub-Key"] = "$key"
n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/print", nil, '{"content_type":"text_one_line","data":{"primary_id":"A-' .. n .. '"}}')
end
LUA
    switches "$hub" >"$dir/s0"
    local t0 t1
    t0=$(cpu_ticks "$hub")
    wrk -t2 -c16 -d"${secs}s" --latency -s "$dir/post.lua" "http://127.0.0.1:$port/" >"$dir/wrk"
    t1=$(cpu_ticks "$hub")
    switches "$hub" >"$dir/s1"
    curl -fs "localhost:$port/metrics" -H "X-Label-Hub-Key: $key" >"$dir/metrics"
    kill "$hub"
    wait "$hub" 2>/dev/null || true
    hub=
    python3 - "$bin" "$dir" "$t0" "$t1" <<'PY'
import re, sys, collections
bin, d, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
w = open(f"{d}/wrk").read()
if "Non-2xx" in w:
    sys.exit(f"{bin}: answers other than 202:\n{w}")
n = int(re.search(r"(\d+) requests in", w).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", w).group(1))
def lat(p):
    v, u = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", w, re.M).groups()
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
m = open(f"{d}/metrics").read()
def metric(name):
    return float(re.search(rf"^{re.escape(name)} (\S+)", m, re.M).group(1))
commits = metric("labelhub_db_commit_duration_seconds_count")
mean = metric("labelhub_db_commit_duration_seconds_sum") / commits * 1000
slow = commits - metric('labelhub_db_commit_duration_seconds_bucket{le="0.005"}')
def load(f):
    c = collections.Counter()
    for line in open(f):
        name, kind, v = line.split()
        c[name] += int(v)
    return c
s0, s1 = load(f"{d}/s0"), load(f"{d}/s1")
sw = {k: (s1[k] - s0.get(k, 0)) / n for k in s1}
shown = " ".join(f"{k} {v:.2f}" for k, v in sorted(sw.items(), key=lambda x: -x[1]) if v >= 0.01)
print(f"{bin}: {rps:.0f} jobs/s p50 {lat(50):.2f} ms p99 {lat(99):.2f} ms | "
      f"{commits:.0f} commits ({n / commits:.1f} jobs each), mean {mean:.2f} ms, {slow:.0f} over 5 ms | "
      f"hub CPU {(t1 - t0) * 10000 / n:.0f} us/job | switches/job {sum(sw.values()):.2f}: {shown}")
PY
}

for _ in $(seq "$rounds"); do
    for bin in "$@"; do
        one_run "$bin" | tee -a "$out"
    done
done
echo "medians over $rounds rounds:"
python3 - "$out" <<'PY'
import re, sys, statistics as st, collections
runs = collections.defaultdict(lambda: collections.defaultdict(list))
pat = (r"(\S+): (\d+) jobs/s p50 ([\d.]+) ms p99 ([\d.]+) ms .*hub CPU (\d+) us/job "
       r"\| switches/job ([\d.]+)")
for line in open(sys.argv[1]):
    m = re.match(pat, line)
    if m:
        for k, v in zip(["rate", "p50", "p99", "cpu", "sw"], m.groups()[1:]):
            runs[m.group(1)][k].append(float(v))
for bin, r in runs.items():
    print(f"  {bin}: {st.median(r['rate']):.0f} jobs/s, p50 {st.median(r['p50']):.2f} ms, "
          f"p99 {st.median(r['p99']):.2f} ms, hub CPU {st.median(r['cpu']):.0f} us/job "
          f"(runs {', '.join(f'{c:.0f}' for c in sorted(r['cpu']))}), "
          f"{st.median(r['sw']):.2f} switches/job")
PY
