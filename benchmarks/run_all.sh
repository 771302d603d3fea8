#!/usr/bin/env bash
# `make bench`: every whole-system benchmark, each printing a markdown table for
# docs/benchmarks.md. Needs both cores free for meaningful figures.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
echo "## engine capacity"
bash benchmarks/engine_capacity.sh "$BUILD/tidegate"
echo; echo "## tidegate bench vs hey"; bash benchmarks/bench_vs_hey.sh "$BUILD/tidegate"
echo; echo "## gateway overhead"; bash benchmarks/gateway_overhead.sh "$BUILD/tidegate"
echo; echo "## instructions a request"; bash benchmarks/instructions_per_request.sh "$BUILD/tidegate"
echo; echo "## TLS termination"; bash benchmarks/tls_overhead.sh "$BUILD/tidegate"
echo; echo "## access control overhead"; bash benchmarks/access_overhead.sh "$BUILD/tidegate"
