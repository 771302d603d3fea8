#!/usr/bin/env bash
# TLS termination (issue 11): requests/s and CPU per request of a zero-latency engine reached
# through tidegate and through nginx, both terminating HTTPS from the client (same certificate:
# ECDSA P-256, TLS 1.3, keep-alive connections) and speaking plain HTTP to the engine, 2 workers
# each, all on this 2-core machine, one at a time. Plain-HTTP runs of both give each its own
# baseline. Then the cost of new connections: `openssl s_time -new` (a full TLS 1.3 handshake
# and one small request per connection, for 5 s).
# Usage: benchmarks/tls_overhead.sh [build/tidegate]   (prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
source benchmarks/lib.sh
SUT_CPU=0-1
LOAD_CPU=0-1

# A CA and a server certificate for 127.0.0.1, made here with the openssl CLI.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/ca.key" \
  -out "$TMP/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/tls.key" \
  -out "$TMP/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" > "$TMP/ext"
openssl x509 -req -in "$TMP/tls.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -CAcreateserial \
  -out "$TMP/tls.crt" -days 2 -extfile "$TMP/ext" 2>/dev/null

eport=$(free_port)
start_engine "$eport" --served-model-name m --time-scale inf --max-num-seqs 8192 \
  --kv-blocks 1000000 --max-waiting 50000
start_gateway tidegate "$eport" ", workers: 2"
start_gateway tidegate_tls "$eport" \
  ", workers: 2, tls: {certificateFile: $TMP/tls.crt, keyFile: $TMP/tls.key, minVersion: \"1.3\"}"

nport=$(free_port); nsport=$(free_port)
start_nginx_proxy "$eport" "listen 127.0.0.1:$nport;" "listen 127.0.0.1:$nsport ssl;" \
  "ssl_certificate $TMP/tls.crt;" "ssl_certificate_key $TMP/tls.key;" "ssl_protocols TLSv1.3;"

cat > "$TMP/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
LUA
cpu_ticks_of() { local t=0 p; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
declare -A RPS CPU HS
for name in tidegate tidegate_tls nginx nginx_tls; do
  case $name in
    tidegate) url=http://127.0.0.1:${PORT[tidegate]}; procs=${PID[tidegate]} ;;
    tidegate_tls) url=https://127.0.0.1:${PORT[tidegate_tls]}; procs=${PID[tidegate_tls]} ;;
    nginx) url=http://127.0.0.1:$nport; procs=$NGINX_PIDS ;;
    nginx_tls) url=https://127.0.0.1:$nsport; procs=$NGINX_PIDS ;;
  esac
  wrk -t1 -c64 -d2s -s "$TMP/chat.lua" "$url/v1/chat/completions" >/dev/null
  t0=$(cpu_ticks_of $procs)
  out=$(wrk_run -t1 -c64 -d${DURATION}s -s "$TMP/chat.lua" "$url/v1/chat/completions")
  t1=$(cpu_ticks_of $procs)
  RPS[$name]=$(wrk_rps <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  CPU[$name]=$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.1f", t / hz / n * 1e6}')
  # New connections: a full TLS 1.3 handshake and one GET each, for 5 s.
  case $name in
    *_tls)
      port=${url##*:}
      HS[$name]=$(openssl s_time -connect "127.0.0.1:$port" -new -time 5 -CAfile "$TMP/ca.crt" \
        -www /healthz 2>/dev/null | awk '/connections in [0-9.]+s/ {print $1; exit}')
      ;;
  esac
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
cat <<TABLE
| wrk -c64 keep-alive, ${DURATION} s, engine at zero latency, 2 workers each | tidegate | nginx |
|---|---|---|
| plain HTTP requests/s | ${RPS[tidegate]} | ${RPS[nginx]} |
| HTTPS (TLS 1.3, ECDSA P-256) requests/s | ${RPS[tidegate_tls]} | ${RPS[nginx_tls]} |
| HTTPS vs plain, same proxy | $(ratio "${RPS[tidegate_tls]}" "${RPS[tidegate]}") | $(ratio "${RPS[nginx_tls]}" "${RPS[nginx]}") |
| HTTPS throughput vs nginx HTTPS | $(ratio "${RPS[tidegate_tls]}" "${RPS[nginx_tls]}") | 1.00 |
| proxy CPU per request, plain / HTTPS (µs) | ${CPU[tidegate]} / ${CPU[tidegate_tls]} | ${CPU[nginx]} / ${CPU[nginx_tls]} |
| new TLS connections in 5 s (openssl s_time -new) | ${HS[tidegate_tls]} | ${HS[nginx_tls]} |
TABLE
