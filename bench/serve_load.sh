#!/usr/bin/env bash
# Load test of dsocr serve with wrk on loopback, bounded in time: chat completions (a small image as
# a data URL, greedy, a few tokens) from C connections for D seconds, twice:
#   1. C = parallel + max-queue: every request admitted; requests/s and latency percentiles;
#   2. C = 4 x that: the queue overflows; how many 429s, and the server's peak RSS stays bounded.
# Prints requests/s, p50/p90/p99, status counts, peak RSS (VmHWM, and the largest RSS sampled while
# the queue was full), and the server's own /metrics rejections. Not a ctest: figures go in BENCHMARKS.md.
# Usage: bench/serve_load.sh [MODEL_DIR] [SECONDS] [PARALLEL] [MAX_QUEUE] [MAX_TOKENS] [MODE]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-build/testdata/tiny-model} SECONDS_EACH=${2:-15} PARALLEL=${3:-8} QUEUE=${4:-8} TOKENS=${5:-16} MODE=${6:-tiny}
BIN=${DSOCR_BIN:-build/dsocr}
command -v wrk >/dev/null || { echo "wrk missing (apt-get install wrk)"; exit 1; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$BIN" serve --model "$MODEL" --port 0 --parallel "$PARALLEL" --max-queue "$QUEUE" -q 2>"$tmp/server.log" &
pid=$!
for _ in $(seq 600); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/server.log")
  [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
URL=http://127.0.0.1:$port

# The request: wrk's Lua sends it, counts statuses and prints them at the end.
{ printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{"model":"x","max_tokens":%s,"mode":"%s","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,' "$TOKENS" "$MODE"
  base64 -w0 tests/data/images/small.png
  printf '"}},{"type":"text","text":"Free OCR."}]}]}]]\n'
  cat <<'LUA'
local counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do table.insert(parts, k .. ": " .. v) end
  io.write("statuses: " .. table.concat(parts, ", ") .. "\n")
end
LUA
} >"$tmp/post.lua"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
run() {  # run CONNECTIONS LABEL
  local c=$1 label=$2 peak=0
  ( while kill -0 "$pid" 2>/dev/null; do rss_kb; sleep 0.2; done ) >"$tmp/rss.$label" &
  local sampler=$!
  wrk -t2 -c "$c" -d "${SECONDS_EACH}s" --timeout 60s --latency -s "$tmp/post.lua" "$URL/v1/chat/completions" >"$tmp/wrk.$label"
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  peak=$(sort -n "$tmp/rss.$label" | tail -1)
  echo "== $label: $c connections, ${SECONDS_EACH}s, parallel $PARALLEL, queue $QUEUE, mode $MODE, $TOKENS tokens"
  grep -E "Requests/sec|^ +(50|90|99)%|statuses|requests in|Non-2xx" "$tmp/wrk.$label" | sed 's/^ */  /'
  echo "  largest RSS sampled during the run: $((peak / 1024)) MiB"
}
run $((PARALLEL + QUEUE)) admitted
run $((4 * (PARALLEL + QUEUE))) overloaded
echo "== server: peak RSS (VmHWM) $(( $(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024 )) MiB"
curl -fs "$URL/metrics" | grep -E "^dsocr_queue_rejections_total|^dsocr_requests_total|^dsocr_pages_total" | sed 's/^/  /'
kill -TERM "$pid"; wait "$pid"; pid=
