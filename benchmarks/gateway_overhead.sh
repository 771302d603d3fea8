#!/usr/bin/env bash
# Gateway overhead (issue 4): requests/s and latency of a zero-latency engine reached directly,
# through tidegate (2 workers, picking and metrics on, 50 ms scrapes), and through nginx
# proxy_pass (2 workers, upstream keep-alive) — all on this 2-core machine, unpinned, one at a
# time. Then memory of the gateway holding 5,000 open streams.
# Usage: benchmarks/gateway_overhead.sh [build/tidegate]   (prints markdown tables)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
source benchmarks/lib.sh
SUT_CPU=0-1
LOAD_CPU=0-1

eport=$(free_port)
start_engine "$eport" --served-model-name m --time-scale inf --max-num-seqs 8192 \
  --kv-blocks 1000000 --max-waiting 50000

start_gateway tidegate "$eport" ", workers: 2"
gport=${PORT[tidegate]}; gpid=${PID[tidegate]}
# The same gateway with one worker thread: on 2 cores shared with the engine and the load
# generator, a second worker mostly adds context switches.
start_gateway tidegate1 "$eport" ", workers: 1"
g1port=${PORT[tidegate1]}

nport=$(free_port)
cat > "$TMP/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $TMP;
  proxy_temp_path $TMP;
  keepalive_requests 1000000;
  upstream engine { server 127.0.0.1:$eport; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$nport;
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP" &
PIDS+=($!)
sleep 0.5

cat > "$TMP/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
LUA
declare -A RPS P50 P99 R50 R99
for name in direct tidegate tidegate1 nginx; do
  case $name in
    direct) port=$eport ;; tidegate) port=$gport ;; tidegate1) port=$g1port ;; nginx) port=$nport ;;
  esac
  url=http://127.0.0.1:$port
  wrk -t1 -c64 -d2s -s "$TMP/chat.lua" "$url/v1/chat/completions" >/dev/null
  out=$(wrk_run -t1 -c64 -d${DURATION}s -s "$TMP/chat.lua" "$url/v1/chat/completions")
  RPS[$name]=$(wrk_rps <<<"$out"); P50[$name]=$(wrk_pct 50% <<<"$out"); P99[$name]=$(wrk_pct 99% <<<"$out")
  "$BIN" bench --url "$url" --model m --rate 5000 --duration ${DURATION}s --no-stream \
    --no-ignore-eos --prompt-tokens 2 --max-tokens 16 --progress off -q --json "$TMP/r.json"
  read -r R50[$name] R99[$name] <<<"$(python3 -c "
import json; d=json.load(open('$TMP/r.json')); e=d['e2e_s']
print('%.3f %.3f' % (e['p50']*1e3, e['p99']*1e3))")"
done

# Memory with 5,000 open streams through the gateway.
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$gpid/status)
"$BIN" bench --url "http://127.0.0.1:$gport" --model m -c 5000 -z 8s --prompt-tokens 10 \
  --max-tokens 300 --progress off -q --timeout 60s --json "$TMP/s.json" &
bpid=$!
sleep 0.2
peak=0; for _ in $(seq 40); do
  r=$(awk '/VmRSS/ {print $2}' /proc/$gpid/status); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.25; done
wait $bpid || true
streams=$(python3 -c "import json; d=json.load(open('$TMP/s.json')); print(d['requests']['sent'], d['requests']['failed'])")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
cat <<TABLE
| wrk -c64, ${DURATION} s, engine at zero latency | direct | tidegate (2 workers) | tidegate (1 worker) | nginx proxy_pass (2 workers) |
|---|---|---|---|---|
| requests/s | ${RPS[direct]} | ${RPS[tidegate]} | ${RPS[tidegate1]} | ${RPS[nginx]} |
| p50 / p99 (ms) | ${P50[direct]} / ${P99[direct]} | ${P50[tidegate]} / ${P99[tidegate]} | ${P50[tidegate1]} / ${P99[tidegate1]} | ${P50[nginx]} / ${P99[nginx]} |
| throughput vs nginx | | $(ratio "${RPS[tidegate]}" "${RPS[nginx]}") | $(ratio "${RPS[tidegate1]}" "${RPS[nginx]}") | 1.00 |

| open loop 5,000 requests/s, ${DURATION} s (tidegate bench) | direct | tidegate (2 workers) | tidegate (1 worker) | nginx proxy_pass |
|---|---|---|---|---|
| p50 / p99 (ms) | ${R50[direct]} / ${R99[direct]} | ${R50[tidegate]} / ${R99[tidegate]} | ${R50[tidegate1]} / ${R99[tidegate1]} | ${R50[nginx]} / ${R99[nginx]} |
| added p50 / p99 vs direct (ms) | | $(awk -v a="${R50[tidegate]}" -v b="${R50[direct]}" -v c="${R99[tidegate]}" -v d="${R99[direct]}" 'BEGIN {printf "%.3f / %.3f", a-b, c-d}') | $(awk -v a="${R50[tidegate1]}" -v b="${R50[direct]}" -v c="${R99[tidegate1]}" -v d="${R99[direct]}" 'BEGIN {printf "%.3f / %.3f", a-b, c-d}') | $(awk -v a="${R50[nginx]}" -v b="${R50[direct]}" -v c="${R99[nginx]}" -v d="${R99[direct]}" 'BEGIN {printf "%.3f / %.3f", a-b, c-d}') |

| gateway memory | value |
|---|---|
| RSS idle (MiB) | $((rss_idle / 1024)) |
| RSS peak with up to 5,000 open streams (MiB) | $((peak / 1024)) |
| streams sent / failed | $streams |
TABLE
