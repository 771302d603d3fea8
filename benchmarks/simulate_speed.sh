#!/usr/bin/env bash
# How fast `tidegate simulate` runs, on one core (issue 13's goals: the hour of the Azure
# conversation trace against the quick start in <= 2 s; 24 hours of traffic at that trace's rate
# on up to 16 replicas in <= 60 s). Usage: benchmarks/simulate_speed.sh [build/tidegate]
set -euo pipefail
BIN=${1:-build/tidegate}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

run() {  # prints wall seconds of one single-core run
  local start end
  start=$(date +%s.%N)
  taskset -c 0 "$BIN" simulate "$@" -q --progress off >/dev/null || [ $? -eq 3 ]
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo "hour of azure_llm_2023_conv.csv (19,366 requests), quickstart: $(run -c "$ROOT/examples/quickstart.yaml" --trace "$ROOT/data/traces/azure_llm_2023_conv.csv") s"

# Up to 16 replicas: the quick start with maxReplicas 16 and 15 elastic nodes. 24 hours of
# Poisson arrivals at the trace's mean rate (5.53 requests/s) with its mean lengths.
sed -e 's/maxReplicas: 3/maxReplicas: 16/' -e 's/maxNodes: 2/maxNodes: 15/' \
  "$ROOT/examples/quickstart.yaml" >"$TMP/sixteen.yaml"
echo "24 h at 5.53 requests/s, up to 16 replicas: $(run -c "$TMP/sixteen.yaml" --rate 5.53 --duration 24h --prompt-tokens 1155:600 --max-tokens 211:150) s"
