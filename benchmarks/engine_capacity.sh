#!/usr/bin/env bash
# Engine capacity on one core (issue: `tidegate engine` must serve >= 20,000 non-streaming
# requests/s at zero simulated latency, and hold >= 2,000 concurrent streams).
#  1. Non-streaming chat completions (16 output tokens) at --time-scale inf, measured with wrk
#     and with hey; baseline: nginx (one worker, same core) answering the same-sized JSON from
#     memory, i.e. the cost of HTTP alone.
#  2. 2,000 concurrent streaming chat completions (100 tokens each) held open by wrk for 20 s,
#     with the simulated GPU 20x faster than an A10; reports the engine's CPU use.
# Usage: benchmarks/engine_capacity.sh [build/tidegate]   (prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
source benchmarks/lib.sh

BODY='{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
cat > "$TMP/chat.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$BODY'
LUA

port=$(free_port)
start_engine "$port" --served-model-name m --time-scale inf
URL=http://127.0.0.1:$port/v1/chat/completions
wrk_run -t1 -c64 -d2s -s "$TMP/chat.lua" "$URL" >/dev/null  # warm-up
wrk_out=$(wrk_run -t1 -c64 -d${DURATION}s -s "$TMP/chat.lua" "$URL")
engine_rps=$(wrk_rps <<<"$wrk_out")
engine_p50=$(wrk_pct 50% <<<"$wrk_out"); engine_p99=$(wrk_pct 99% <<<"$wrk_out")
hey_out=$(taskset -c "$LOAD_CPU" hey -z ${DURATION}s -c 64 -m POST -T application/json -d "$BODY" "$URL")
hey_rps=$(awk '/Requests\/sec:/ {print $2}' <<<"$hey_out")
sample=$(curl -s -X POST -H 'Content-Type: application/json' -d "$BODY" "$URL")

# Baseline: nginx returning a response of the same size from memory, one worker on the same core.
nport=$(free_port)
mkdir -p "$TMP/nginx"
printf '%s' "$sample" > "$TMP/nginx/body.json"
cat > "$TMP/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type application/json; return 200 '$(cat "$TMP/nginx/body.json")'; }
  }
}
CONF
taskset -c "$SUT_CPU" nginx -c "$TMP/nginx.conf" -p "$TMP" &
PIDS+=($!)
sleep 0.5
wrk_run -t1 -c64 -d2s -s "$TMP/chat.lua" "http://127.0.0.1:$nport/" >/dev/null
nginx_out=$(wrk_run -t1 -c64 -d${DURATION}s -s "$TMP/chat.lua" "http://127.0.0.1:$nport/")
nginx_rps=$(wrk_rps <<<"$nginx_out")
nginx_p99=$(wrk_pct 99% <<<"$nginx_out")

# Streams.
sport=$(free_port)
start_engine "$sport" --served-model-name m --time-scale 20 --max-num-seqs 4096 \
  --kv-blocks 400000 --max-waiting 10000
spid=${PIDS[-1]}
cat > "$TMP/stream.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":100,"stream":true}'
LUA
t0=$(cpu_ticks "$spid")
stream_out=$(wrk_run -t1 -c2000 -d20s --timeout 30s -s "$TMP/stream.lua" \
  "http://127.0.0.1:$sport/v1/chat/completions")
t1=$(cpu_ticks "$spid")
hz=$(getconf CLK_TCK)
cpu_pct=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN {printf "%.0f", (b-a)/hz/20*100}')
streams=$(awk '/requests in/ {print $1}' <<<"$stream_out")
stream_errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$stream_out")
metrics=$(curl -s "http://127.0.0.1:$sport/metrics")
tokens=$(awk '/^vllm:generation_tokens_total/ {print $2}' <<<"$metrics")
rss_kb=$(ps -o rss= -p "$spid")
stream_p50=$(wrk_pct 50% <<<"$stream_out")

ratio=$(awk -v a="$engine_rps" -v b="$nginx_rps" 'BEGIN {printf "%.2f", a/b}')
cat <<TABLE
| measurement (engine on 1 core, load generator on the other) | value |
|---|---|
| non-streaming chat, 16 tokens, wrk -c64: requests/s | $engine_rps |
| same, hey -c64: requests/s | $hey_rps |
| same, wrk: p50 / p99 latency (ms) | $engine_p50 / $engine_p99 |
| baseline nginx \`return 200\` of the same body, wrk -c64: requests/s (p99 ms) | $nginx_rps ($nginx_p99) |
| engine / nginx throughput ratio | $ratio |
| 2,000 concurrent streams (100 tokens, --time-scale 20), 20 s: streams completed | $streams |
| same: median stream duration (ms) | $stream_p50 |
| same: tokens streamed | $tokens |
| same: engine CPU (% of one core), RSS (MiB) | $cpu_pct%, $((rss_kb / 1024)) |
| same: errors | ${stream_errors:-none} |
TABLE
