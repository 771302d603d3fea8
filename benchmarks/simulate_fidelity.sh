#!/usr/bin/env bash
# How well `tidegate simulate` predicts a live run (issue 13's goal: TTFT p50/p90, E2E p50,
# replica-seconds per pool and the number of scale events within 10%). Ten minutes of the Azure
# conversation trace, at two points of the hour, replayed live (`tidegate serve` with its
# controller and `tidegate engine` replicas, `tidegate bench --trace`) and simulated from the
# same configuration, both at --time-scale 4 (150 s of wall time each). The comparison is the
# integration test Fidelity.LiveAndSimulatedRunsAgree, run on the longer segments; it prints the
# table and fails if a figure is off by more than 10%.
# Usage: benchmarks/simulate_fidelity.sh [build/integration_tests]   (run it on a quiet machine)
set -uo pipefail
TESTS=${1:-build/integration_tests}
status=0
for start in 0s 40m; do
  TIDEGATE_FIDELITY_START=$start TIDEGATE_FIDELITY_DURATION=150s TIDEGATE_FIDELITY_TIME_SCALE=4 \
    "$TESTS" --gtest_filter=Fidelity.LiveAndSimulatedRunsAgree | grep '^|' | awk '!seen[$0]++' ||
    status=1
  echo
done
exit $status
