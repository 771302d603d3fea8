#!/usr/bin/env bash
# Instructions a proxied request (issue 10): tidegate (one worker) and nginx proxy_pass (one
# worker, upstream keep-alive) in front of the same zero-latency engine, each under callgrind,
# serving the chat request of gateway_overhead.sh from `wrk -c4` for DURATION seconds after a
# warm-up. Instruction counts do not depend on the machine's noise, so they say what wall-clock
# ratios on this shared 2-core machine cannot resolve: how much work each proxy does a request,
# and where tidegate's goes (its request path's stages, inclusive).
# Usage: [DURATION=8] benchmarks/instructions_per_request.sh [build/tidegate]  (markdown tables)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
DURATION=${DURATION:-8}  # before lib.sh, whose default is 10
source benchmarks/lib.sh
SUT_CPU=0-1
command -v valgrind >/dev/null || { echo "valgrind is not installed (make deps)" >&2; exit 1; }

eport=$(free_port)
start_engine "$eport" --served-model-name m --time-scale inf --max-num-seqs 8192 \
  --kv-blocks 1000000 --max-waiting 50000
cat > "$TMP/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
LUA

# control zero|dump PID: callgrind_control -z|-d PID, failing unless callgrind took the command
# (callgrind_control itself exits 0 when it finds no such run).
control() {
  local out
  out=$(callgrind_control "-${1:0:1}" "$2" 2>&1 || true)
  grep -q "sending command $1 to pid $2" <<<"$out" || {
    echo "callgrind_control -${1:0:1} $2 failed: $out" >&2
    exit 1
  }
}
# measure NAME PID PORT READY_URL: waits for READY_URL, warms up, zeroes the counters, serves
# DURATION seconds, dumps (to <out-file>.1*), stops the process. Sets N to the requests served
# while measured; every one must have been a 2xx.
measure() {
  local name=$1 pid=$2 port=$3 ready=$4
  for _ in $(seq 600); do curl -sf -o /dev/null "$ready" && break; sleep 0.1; done
  curl -sf -o /dev/null "$ready" || { echo "$name did not become ready" >&2; exit 1; }
  wrk -t1 -c4 -d2s -s "$TMP/chat.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
  control zero "$pid"
  wrk -t1 -c4 -d"${DURATION}s" -s "$TMP/chat.lua" "http://127.0.0.1:$port/v1/chat/completions" \
    >"$TMP/$name.wrk"
  control dump "$pid"
  kill -TERM "$pid"
  wait "$pid" || true
  if grep -q -E "Non-2xx|Socket errors" "$TMP/$name.wrk"; then
    echo "$name: not every request succeeded:" >&2
    cat "$TMP/$name.wrk" >&2
    exit 1
  fi
  N=$(awk '/requests in/ {print $1}' "$TMP/$name.wrk")
  [ "${N:-0}" -gt 0 ] || { echo "$name served no requests" >&2; exit 1; }
}
# total FILE: the instructions a callgrind dump counted.
total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

# tidegate, one worker: one thread serves every request. Its dump is the largest of the
# per-thread dumps of the measured period; the others are the control thread's (scrapes) and the
# main thread's, given as a rate.
gateway_config tg "$eport" ", workers: 1"
mkdir -p "$TMP/tg" "$TMP/ngx"
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$TMP/tg/cg.out" \
  "$BIN" serve -c "$TMP/tg.yaml" --log-level warn >/dev/null 2>&1 &
tpid=$!
PIDS+=("$tpid")
measure tidegate "$tpid" "${PORT[tg]}" "http://127.0.0.1:${ADMIN[tg]}/readyz"
tn=$N
tfile=""
tmax=0
tall=0
for f in "$TMP"/tg/cg.out.1-*; do
  [ -e "$f" ] || { echo "tidegate: no dump of the measured period" >&2; exit 1; }
  t=$(total "$f")
  tall=$((tall + t))
  if [ "$t" -gt "$tmax" ]; then tmax=$t; tfile=$f; fi
done

nport=$(free_port)
# One process, no master: callgrind follows the one process that serves.
nginx_proxy_config "$eport" $'worker_processes 1;\nmaster_process off;' "listen 127.0.0.1:$nport;"
valgrind --tool=callgrind --callgrind-out-file="$TMP/ngx/cg.out" \
  nginx -c "$TMP/nginx.conf" -p "$TMP" >/dev/null 2>&1 &
npid=$!
PIDS+=("$npid")
measure nginx "$npid" "$nport" "http://127.0.0.1:$nport/v1/models"
nn=$N
[ -e "$TMP/ngx/cg.out.1" ] || { echo "nginx: no dump of the measured period" >&2; exit 1; }
nmax=$(total "$TMP/ngx/cg.out.1")

per() { awk -v t="$1" -v n="$2" 'BEGIN {printf "%.0f", t / n}'; }
ti=$(per "$tmax" "$tn")
ni=$(per "$nmax" "$nn")
echo "| proxy (one worker, \`wrk -c4\`, ${DURATION} s under callgrind) | requests | instructions a request |"
echo "|---|---|---|"
echo "| nginx \`proxy_pass\` | $nn | $ni |"
echo "| tidegate, its worker thread | $tn | $ti ($(awk -v a="$ti" -v b="$ni" 'BEGIN {printf "%.2f", a / b}')x nginx's) |"
# The other threads' work (the control thread's scrapes, timers) comes per second, not per
# request: at callgrind's pace it would weigh ~15x more per request than at full speed.
echo "| tidegate's other threads (scrapes, timers), a second | | $(per $((tall - tmax)) "$DURATION") |"
echo
# Where tidegate's went, by plain functions (inclusive): callgrind follows calls and returns, and
# a coroutine resumed by the event loop is entered from the loop, not from its caller, so the
# coroutines' own inclusive counts are left out. The rows may overlap by the allocations inside.
callgrind_annotate --inclusive=yes --threshold=100 "$tfile" 2>/dev/null >"$TMP/incl.txt"
listed=0
row() {
  local label=$1 pattern=$2 ir
  ir=$(grep -m1 -E "$pattern" "$TMP/incl.txt" | awk '{gsub(",", "", $1); print $1}' || true)
  [ -n "$ir" ] || { echo "| $label | (not found) | |"; return 0; }
  listed=$((listed + ir))
  echo "| $label | $(per "$ir" "$tn") | $(awk -v a="$ir" -v b="$tmax" 'BEGIN {printf "%.1f%%", 100 * a / b}') |"
}
echo "| tidegate's request path, by function (inclusive) | instructions a request | share |"
echo "|---|---|---|"
echo "| *work nginx does too* | | |"
row "request head and body parsing (\`RequestReader::put\`)" ':tidegate::http::RequestReader::put\('
row "response head and body parsing (\`ResponseParser::put\`)" ':tidegate::http::ResponseParser::put\('
row "writing the response head (\`appendResponseHead\`)" ':tidegate::http::appendResponseHead\('
row "writing the upstream request head (\`appendRequestHead\`)" ':tidegate::http::appendRequestHead\('
echo "| *work nginx does not do* | | |"
row "request body: model, stream, prompt (\`scanRequest\`)" ':tidegate::gateway::scanRequest\('
row "response body: validity and usage (\`scanObject\`)" 'relay::scanObject\('
row "prompt tokens for the picker (\`tokenizer::encode\`)" 'tokenizer::encode\('
row "routing (\`pipeline::route\`)" 'pipeline::route\('
row "picking an endpoint (\`pick\`)" ':tidegate::gateway::pick\('
row "accounting: cost, usage, key counters (\`Access::finish\`)" 'Access::finish\('
echo "| *the rest*: Asio's scheduler, reactor and coroutine frames, socket calls, allocations, the stages' glue | $(per $((tmax - listed)) "$tn") | $(awk -v a=$((tmax - listed)) -v b="$tmax" 'BEGIN {printf "%.1f%%", 100 * a / b}') |"
