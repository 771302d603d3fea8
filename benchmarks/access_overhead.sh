#!/usr/bin/env bash
# Cost of access control (issue 6): the same gateway (2 workers) in front of a zero-latency
# engine with auth off; with API keys and in-process plan limits (rpm, tpm, daily tokens,
# concurrency: every limit checked and charged on every request); the same plus the SQLite
# ledger; and with the limits shared through a real redis-server. Throughput and latency under
# wrk (closed loop, 64 connections) and latency at a fixed open-loop rate (tidegate bench).
# Usage: benchmarks/access_overhead.sh [build/tidegate]   (prints markdown tables)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
source benchmarks/lib.sh
SUT_CPU=0-1
LOAD_CPU=0-1
RATE=${RATE:-3000}

eport=$(free_port)
start_engine "$eport" --served-model-name m --time-scale inf --max-num-seqs 8192 \
  --kv-blocks 1000000 --max-waiting 50000
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
  >/dev/null &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done

hash=$(printf %s sk-bench | sha256sum | cut -d' ' -f1)
access="---
apiVersion: tidegate.io/v1alpha1
kind: UsagePlan
metadata: {name: bench}
spec: {requestsPerMinute: 100000000, tokensPerMinute: 1000000000000, tokensPerDay: 1000000000000, maxConcurrentRequests: 100000}
---
apiVersion: tidegate.io/v1alpha1
kind: APIKey
metadata: {name: bench}
spec: {plan: bench, sha256: $hash}"

start_gateway off "$eport" ", workers: 2"
start_gateway local "$eport" ", workers: 2" "$access"
start_gateway ledger "$eport" ", workers: 2, ledger: {path: \"$TMP/ledger.db\"}" "$access"
start_gateway redis "$eport" ", workers: 2, rateLimit: {backend: redis, redis: {address: \"127.0.0.1:$rport\"}}" "$access"

cat > "$TMP/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
LUA
declare -A RPS P99 R50 R99
names=(off local ledger redis)
for name in "${names[@]}"; do
  url=http://127.0.0.1:${PORT[$name]}
  wrk -t1 -c64 -d2s -s "$TMP/chat.lua" "$url/v1/chat/completions" >/dev/null
  out=$(wrk_run -t1 -c64 -d${DURATION}s -s "$TMP/chat.lua" "$url/v1/chat/completions")
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: non-2xx responses" >&2; grep Non-2xx <<<"$out" >&2; fi
  RPS[$name]=$(wrk_rps <<<"$out"); P99[$name]=$(wrk_pct 99% <<<"$out")
  "$BIN" bench --url "$url" --model m --rate "$RATE" --duration ${DURATION}s --no-stream \
    --no-ignore-eos --prompt-tokens 2 --max-tokens 16 --progress off -q --api-key sk-bench \
    --json "$TMP/r.json"
  read -r R50[$name] R99[$name] <<<"$(python3 -c "
import json; d=json.load(open('$TMP/r.json')); e=d['e2e_s']
assert d['requests']['failed'] == 0, d['requests']
print('%.3f %.3f' % (e['p50']*1e3, e['p99']*1e3))")"
done
records=$(python3 -c "import sqlite3; print(sqlite3.connect('$TMP/ledger.db').execute('select count(*) from usage').fetchone()[0])")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
diff() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.3f", a-b}'; }
cat <<TABLE
| wrk -c64, ${DURATION} s, engine at zero latency | auth off | keys + local limits | + SQLite ledger | keys + Redis limits |
|---|---|---|---|---|
| requests/s | ${RPS[off]} | ${RPS[local]} | ${RPS[ledger]} | ${RPS[redis]} |
| throughput vs auth off | 1.00 | $(ratio "${RPS[local]}" "${RPS[off]}") | $(ratio "${RPS[ledger]}" "${RPS[off]}") | $(ratio "${RPS[redis]}" "${RPS[off]}") |
| p99 (ms) | ${P99[off]} | ${P99[local]} | ${P99[ledger]} | ${P99[redis]} |

| open loop ${RATE} requests/s, ${DURATION} s (tidegate bench) | auth off | keys + local limits | + SQLite ledger | keys + Redis limits |
|---|---|---|---|---|
| p50 / p99 (ms) | ${R50[off]} / ${R99[off]} | ${R50[local]} / ${R99[local]} | ${R50[ledger]} / ${R99[ledger]} | ${R50[redis]} / ${R99[redis]} |
| added p50 / p99 vs auth off (ms) | | $(diff "${R50[local]}" "${R50[off]}") / $(diff "${R99[local]}" "${R99[off]}") | $(diff "${R50[ledger]}" "${R50[off]}") / $(diff "${R99[ledger]}" "${R99[off]}") | $(diff "${R50[redis]}" "${R50[off]}") / $(diff "${R99[redis]}" "${R99[off]}") |
| added p99, Redis vs local limits (ms) | | | | $(diff "${R99[redis]}" "${R99[local]}") |

Ledger records written during the ledger runs: $records.
TABLE
