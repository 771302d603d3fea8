#!/usr/bin/env bash
# tidegate bench against hey, same target, same load (issue: one bench process sustains
# >= 10,000 non-streaming requests/s and 5,000 concurrent streams against `tidegate engine` at
# zero latency; client overhead per request reported; compared with hey).
# The engine runs on CPU 0, the load generator on CPU 1. Client CPU is the generator's user+system
# time divided by the requests it sent.
# Usage: benchmarks/bench_vs_hey.sh [build/tidegate]   (prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
source benchmarks/lib.sh

# run_measured CMD...: runs CMD on LOAD_CPU; prints its CPU seconds on fd 3's file.
cpu_of() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(out.stdout)
sys.stderr.write("CPU_SECONDS %.3f\n" % (r.ru_utime + r.ru_stime))
PY
}

port=$(free_port)
start_engine "$port" --served-model-name m --time-scale inf --max-num-seqs 8192 \
  --kv-blocks 1000000 --max-waiting 20000
URL=http://127.0.0.1:$port
BODY='{"model":"m","messages":[{"role":"user","content":"w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"}],"max_tokens":16}'

# Non-streaming, 64 connections.
cpu_of taskset -c "$LOAD_CPU" "$BIN" bench --url "$URL" --model m -c 64 -z ${DURATION}s \
  --no-stream --no-ignore-eos --prompt-tokens 10 --max-tokens 16 --progress off \
  --json "$TMP/b.json" >/dev/null 2>"$TMP/b.cpu"
b_rps=$(python3 -c "import json;d=json.load(open('$TMP/b.json'));print('%.0f'%d['throughput']['requests_per_s'])")
b_mean=$(python3 -c "import json;d=json.load(open('$TMP/b.json'));print('%.3f'%(d['e2e_s']['mean']*1e3))")
b_n=$(python3 -c "import json;d=json.load(open('$TMP/b.json'));print(d['requests']['sent'])")
b_cpu=$(awk '/CPU_SECONDS/ {print $2}' "$TMP/b.cpu")
hey_out=$(cpu_of taskset -c "$LOAD_CPU" hey -z ${DURATION}s -c 64 -m POST -T application/json \
  -d "$BODY" "$URL/v1/chat/completions" 2>"$TMP/h.cpu")
h_rps=$(awk '/Requests\/sec:/ {printf "%.0f", $2}' <<<"$hey_out")
h_mean=$(awk '/Average:/ {printf "%.3f", $2*1000; exit}' <<<"$hey_out")
h_n=$(awk '/\[200\]/ {print $2}' <<<"$hey_out")
h_cpu=$(awk '/CPU_SECONDS/ {print $2}' "$TMP/h.cpu")
b_us=$(awk -v c="$b_cpu" -v n="$b_n" 'BEGIN {printf "%.1f", c*1e6/n}')
h_us=$(awk -v c="$h_cpu" -v n="$h_n" 'BEGIN {printf "%.1f", c*1e6/n}')

# 5,000 concurrent streams, 50 tokens each, simulated GPU 20x an A10.
sport=$(free_port)
start_engine "$sport" --served-model-name m --time-scale 20 --max-num-seqs 8192 \
  --kv-blocks 1000000 --max-waiting 20000
cpu_of taskset -c "$LOAD_CPU" "$BIN" bench --url "http://127.0.0.1:$sport" --model m -c 5000 \
  -z 20s --prompt-tokens 10 --max-tokens 50 --progress off --json "$TMP/s.json" \
  >/dev/null 2>"$TMP/s.cpu"
read -r s_sent s_failed s_tokens s_itln s_ttft s_itl <<<"$(python3 -c "
import json;d=json.load(open('$TMP/s.json'))
print(d['requests']['sent'], d['requests']['failed'], d['tokens']['output'], d['itl_s']['n'],
      '%.0f'%(d['ttft_s']['p50']*1e3), '%.1f'%(d['itl_s']['p50']*1e3))")"
s_cpu=$(awk '/CPU_SECONDS/ {print $2}' "$TMP/s.cpu")
s_us_tok=$(awk -v c="$s_cpu" -v n="$s_itln" 'BEGIN {printf "%.1f", c*1e6/n}')

ratio=$(awk -v a="$b_rps" -v b="$h_rps" 'BEGIN {printf "%.2f", a/b}')
cpu_ratio=$(awk -v a="$b_us" -v b="$h_us" 'BEGIN {printf "%.2f", a/b}')
cat <<TABLE
| non-streaming, 64 connections, ${DURATION} s, engine at zero latency | tidegate bench | hey | bench / hey |
|---|---|---|---|
| requests/s | $b_rps | $h_rps | $ratio |
| mean latency reported (ms) | $b_mean | $h_mean | |
| client CPU per request (µs) | $b_us | $h_us | $cpu_ratio |

| 5,000 concurrent streams, 50 tokens, 20 s (engine --time-scale 20) | tidegate bench |
|---|---|
| streams completed / failed | $s_sent / $s_failed |
| tokens timed (ITL samples) | $s_itln |
| p50 TTFT / p50 ITL (ms) | $s_ttft / $s_itl |
| client CPU per token event (µs), total CPU-s | $s_us_tok, $s_cpu |
TABLE
