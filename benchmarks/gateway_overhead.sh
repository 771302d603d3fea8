#!/usr/bin/env bash
# Gateway overhead (issues 4 and 10): requests/s and latency of a zero-latency engine reached
# directly, through tidegate (2 workers, picking and metrics on, 50 ms scrapes), and through
# nginx proxy_pass (2 workers, upstream keep-alive) — all on this 2-core machine, unpinned, one
# at a time — with the CPU each proxy spends per request. Then memory of the gateway holding
# STREAMS open streams (default 10,000, or as many as the file-descriptor limit allows: the
# gateway holds two sockets per stream).
# The machine is shared, so one pass can catch a neighbour's burst: ROUNDS passes (default 3)
# measure every target in turn, the order reversed each pass, and the tables give each pass's
# ratios and the median of every figure.
# Usage: [ROUNDS=3] [DURATION=8] benchmarks/gateway_overhead.sh [build/tidegate]
#   (prints markdown tables)
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
ROUNDS=${ROUNDS:-3}
# Figures of every pass, space-separated, per target: requests/s, wrk p50/p99, open-loop
# p50/p99, user and system µs a request.
declare -A RPS P50 P99 R50 R99 CU CS
measure() {
  local name=$1 port procs url out n u0 s0 u1 s1 r50 r99
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
  RPS[$name]+="$(wrk_rps <<<"$out") "
  P50[$name]+="$(wrk_pct 50% <<<"$out") "
  P99[$name]+="$(wrk_pct 99% <<<"$out") "
  if [ -n "$procs" ]; then
    read -r u1 s1 < <(cpu_split $procs)
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    CU[$name]+="$(awk -v t=$((u1 - u0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz / n * 1e6}') "
    CS[$name]+="$(awk -v t=$((s1 - s0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz / n * 1e6}') "
  fi
  "$BIN" bench --url "$url" --model m --rate 5000 --duration ${DURATION}s --no-stream \
    --no-ignore-eos --prompt-tokens 2 --max-tokens 16 --progress off -q --json "$TMP/r.json"
  read -r r50 r99 <<<"$(python3 -c "
import json; d=json.load(open('$TMP/r.json')); e=d['e2e_s']
print('%.3f %.3f' % (e['p50']*1e3, e['p99']*1e3))")"
  R50[$name]+="$r50 "
  R99[$name]+="$r99 "
}
order=(direct tidegate tidegate1 nginx)
for ((round = 0; round < ROUNDS; round++)); do
  for name in "${order[@]}"; do measure "$name"; done
  # Reversed for the next pass: over the passes each target runs as often early as late.
  for ((i = 0, j = ${#order[@]} - 1; i < j; i++, j--)); do
    t=${order[i]}; order[i]=${order[j]}; order[j]=$t
  done
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

# The median of a list of numbers (the lower middle one of an even count).
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {printf "%s", v[int((NR + 1) / 2)]}'; }
# Element-wise a OP b over two lists of the passes, printed with 3 decimals.
pairwise() { awk -v a="$1" -v b="$2" -v op="$3" -v f="$4" 'BEGIN {
  n = split(a, x, " "); split(b, y, " ")
  for (i = 1; i <= n; i++) printf (i > 1 ? " " : "") f, (op == "/" ? x[i] / y[i] : x[i] - y[i]) }'; }
ratios() { pairwise "${RPS[$1]}" "${RPS[nginx]}" / %.2f; }
added() { pairwise "$1" "$2" - %.3f; }
cpu() { echo "$(median "${CU[$1]}") / $(median "${CS[$1]}")"; }
lat() { echo "$(median "${1}") / $(median "${2}")"; }
addlat() { echo "$(median "$(added "${R50[$1]}" "${R50[direct]}")") / $(median "$(added "${R99[$1]}" "${R99[direct]}")")"; }
cat <<TABLE
| wrk -c64, ${DURATION} s, engine at zero latency; medians of ${ROUNDS} passes | direct | tidegate (2 workers) | tidegate (1 worker) | nginx proxy_pass (2 workers) |
|---|---|---|---|---|
| requests/s | $(median "${RPS[direct]}") | $(median "${RPS[tidegate]}") | $(median "${RPS[tidegate1]}") | $(median "${RPS[nginx]}") |
| p50 / p99 (ms) | $(lat "${P50[direct]}" "${P99[direct]}") | $(lat "${P50[tidegate]}" "${P99[tidegate]}") | $(lat "${P50[tidegate1]}" "${P99[tidegate1]}") | $(lat "${P50[nginx]}" "${P99[nginx]}") |
| throughput vs nginx, each pass | | $(ratios tidegate) | $(ratios tidegate1) | |
| throughput vs nginx, median | | $(median "$(ratios tidegate)") | $(median "$(ratios tidegate1)") | 1.00 |
| proxy CPU per request, user / system (µs) | | $(cpu tidegate) | $(cpu tidegate1) | $(cpu nginx) |

| open loop 5,000 requests/s, ${DURATION} s (tidegate bench); medians of ${ROUNDS} passes | direct | tidegate (2 workers) | tidegate (1 worker) | nginx proxy_pass |
|---|---|---|---|---|
| p50 / p99 (ms) | $(lat "${R50[direct]}" "${R99[direct]}") | $(lat "${R50[tidegate]}" "${R99[tidegate]}") | $(lat "${R50[tidegate1]}" "${R99[tidegate1]}") | $(lat "${R50[nginx]}" "${R99[nginx]}") |
| added p50 vs direct, each pass (ms) | | $(added "${R50[tidegate]}" "${R50[direct]}") | $(added "${R50[tidegate1]}" "${R50[direct]}") | $(added "${R50[nginx]}" "${R50[direct]}") |
| added p50 / p99 vs direct, median (ms) | | $(addlat tidegate) | $(addlat tidegate1) | $(addlat nginx) |

| gateway memory | value |
|---|---|
| RSS idle (MiB) | $((rss_idle / 1024)) |
| open streams asked for (file-descriptor limit $fd_limit per process) | $STREAMS |
| RSS peak with them open (MiB) | $((peak / 1024)) |
| streams sent / failed | $streams |
TABLE
