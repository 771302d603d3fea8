#!/usr/bin/env bash
# Gateway overhead (issues 4 and 10): requests/s and latency of a zero-latency engine reached
# directly, through tidegate (2 workers, picking and metrics on, 50 ms scrapes), and through
# nginx proxy_pass (2 workers, upstream keep-alive) — all on this 2-core machine, unpinned, one
# at a time — with the CPU each proxy spends per request. Then memory of the gateway holding
# STREAMS open streams (default 10,000, or as many as the file-descriptor limit allows: the
# gateway holds two sockets per stream).
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

# A burst of thousands of connections queues on the engine's accept backlog: give connects 10 s
# (nginx's proxy_connect_timeout is 60 s) instead of the 2 s default.
start_gateway tidegate "$eport" ", workers: 2, timeouts: {connect: 10s}"
gport=${PORT[tidegate]}; gpid=${PID[tidegate]}
# The same gateway with one worker thread: on 2 cores shared with the engine and the load
# generator, a second worker mostly adds context switches.
start_gateway tidegate1 "$eport" ", workers: 1"
g1port=${PORT[tidegate1]}

nport=$(free_port)
start_nginx_proxy "$eport" "listen 127.0.0.1:$nport;"

cat > "$TMP/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
LUA
# user and system CPU ticks of some processes
cpu_split() { local u=0 s=0 a b; for p in "$@"; do read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat"); u=$((u + a)); s=$((s + b)); done; echo "$u $s"; }
declare -A RPS P50 P99 R50 R99 CPU
for name in direct tidegate tidegate1 nginx; do
  case $name in
    direct) port=$eport ;; tidegate) port=$gport ;; tidegate1) port=$g1port ;; nginx) port=$nport ;;
  esac
  case $name in
    tidegate) procs=${PID[tidegate]} ;; tidegate1) procs=${PID[tidegate1]} ;; nginx) procs=$NGINX_PIDS ;; *) procs="" ;;
  esac
  url=http://127.0.0.1:$port
  wrk -t1 -c64 -d2s -s "$TMP/chat.lua" "$url/v1/chat/completions" >/dev/null
  [ -n "$procs" ] && read -r u0 s0 < <(cpu_split $procs)
  out=$(wrk_run -t1 -c64 -d${DURATION}s -s "$TMP/chat.lua" "$url/v1/chat/completions")
  RPS[$name]=$(wrk_rps <<<"$out"); P50[$name]=$(wrk_pct 50% <<<"$out"); P99[$name]=$(wrk_pct 99% <<<"$out")
  if [ -n "$procs" ]; then
    read -r u1 s1 < <(cpu_split $procs)
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    CPU[$name]=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%.1f / %.1f", u / hz / n * 1e6, s / hz / n * 1e6}')
  fi
  "$BIN" bench --url "$url" --model m --rate 5000 --duration ${DURATION}s --no-stream \
    --no-ignore-eos --prompt-tokens 2 --max-tokens 16 --progress off -q --json "$TMP/r.json"
  read -r R50[$name] R99[$name] <<<"$(python3 -c "
import json; d=json.load(open('$TMP/r.json')); e=d['e2e_s']
print('%.3f %.3f' % (e['p50']*1e3, e['p99']*1e3))")"
done

# Memory with STREAMS open streams through the gateway.
fd_limit=$(ulimit -n)
max_streams=$(( (fd_limit - 64) / 2 ))
STREAMS=${STREAMS:-10000}
[ "$STREAMS" -gt "$max_streams" ] && STREAMS=$max_streams
# A second engine whose streams take seconds (its simulated GPU at 20x), so they stay open.
sport=$(free_port)
start_engine "$sport" --served-model-name m --time-scale 20 --max-num-seqs 16384 \
  --kv-blocks 10000000 --max-waiting 50000
start_gateway streams "$sport" ", workers: 2, timeouts: {connect: 10s}"
gpid=${PID[streams]}
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$gpid/status)
"$BIN" bench --url "http://127.0.0.1:${PORT[streams]}" --model m -c "$STREAMS" -z 8s \
  --prompt-tokens 10 --max-tokens 100 --progress off -q --timeout 60s --json "$TMP/s.json" &
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
| proxy CPU per request, user / system (µs) | | ${CPU[tidegate]} | ${CPU[tidegate1]} | ${CPU[nginx]} |

| open loop 5,000 requests/s, ${DURATION} s (tidegate bench) | direct | tidegate (2 workers) | tidegate (1 worker) | nginx proxy_pass |
|---|---|---|---|---|
| p50 / p99 (ms) | ${R50[direct]} / ${R99[direct]} | ${R50[tidegate]} / ${R99[tidegate]} | ${R50[tidegate1]} / ${R99[tidegate1]} | ${R50[nginx]} / ${R99[nginx]} |
| added p50 / p99 vs direct (ms) | | $(awk -v a="${R50[tidegate]}" -v b="${R50[direct]}" -v c="${R99[tidegate]}" -v d="${R99[direct]}" 'BEGIN {printf "%.3f / %.3f", a-b, c-d}') | $(awk -v a="${R50[tidegate1]}" -v b="${R50[direct]}" -v c="${R99[tidegate1]}" -v d="${R99[direct]}" 'BEGIN {printf "%.3f / %.3f", a-b, c-d}') | $(awk -v a="${R50[nginx]}" -v b="${R50[direct]}" -v c="${R99[nginx]}" -v d="${R99[direct]}" 'BEGIN {printf "%.3f / %.3f", a-b, c-d}') |

| gateway memory | value |
|---|---|
| RSS idle (MiB) | $((rss_idle / 1024)) |
| open streams asked for (file-descriptor limit $fd_limit per process) | $STREAMS |
| RSS peak with them open (MiB) | $((peak / 1024)) |
| streams sent / failed | $streams |
TABLE
