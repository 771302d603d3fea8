#!/usr/bin/env bash
# `make demo`: `tidegate demo` serves examples/quickstart.yaml (gateway on 127.0.0.1:8080, admin
# on 127.0.0.1:8081), drives a calm -> peak -> calm wave and prints the scaling live: replicas
# per pool, queue, TTFT, cost, then a summary: TTFT p90 against ttft_p90<2s, the owned replica
# alone on the same wave (simulated) and the cost against static peak provisioning. About 2.5
# minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tidegate}
exec "$BIN" demo -c examples/quickstart.yaml
