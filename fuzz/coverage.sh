#!/usr/bin/env bash
# Line and region coverage of the parsers, reached by each target's corpus: the seeds in
# fuzz/corpus/<target>/ plus what `make fuzz` found (<fuzz build>/fuzz-corpus/<target>/).
# Builds the targets with llvm-cov instrumentation in COVERAGE_DIR (default build-fuzz-cov),
# runs each over its corpus once (-runs=0) and prints llvm-cov's report for the files it tests.
# Usage: fuzz/coverage.sh [FUZZ_BUILD_DIR]   (default build-fuzz)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz_build="${1:-build-fuzz}"
cov_build="${COVERAGE_DIR:-build-fuzz-cov}"
profdata="$(command -v llvm-profdata-14 || command -v llvm-profdata)"
llvm_cov="$(command -v llvm-cov-14 || command -v llvm-cov)"
cd "$root"
[ -f "$cov_build/build.ninja" ] ||
  cmake -S . -B "$cov_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DTIDEGATE_FUZZ=ON -DTIDEGATE_FUZZ_COVERAGE=ON >/dev/null
cmake --build "$cov_build" -j "${JOBS:-$(nproc)}"

# The files each target tests.
declare -A files=(
  [authorization]="src/gateway/admission/keys.cc"
  [config]="src/api/loader.cc src/api/yaml_stream.cc"
  [http_request]="src/common/http_request.cc"
  [prometheus]="src/common/prometheus.cc"
  [request_body]="src/gateway/body.cc src/gateway/json_scan.h"
  [sse]="src/common/sse.cc"
  [trace]="src/common/trace.cc"
  [usage_scanner]="src/gateway/relay/usage_scanner.cc src/gateway/json_scan.h"
)
for t in $(printf '%s\n' "${!files[@]}" | sort); do
  bin="$cov_build/fuzz/fuzz_$t"
  out="$cov_build/coverage/$t"
  rm -rf "$out" && mkdir -p "$out"
  corpora=("fuzz/corpus/$t")
  [ -d "$fuzz_build/fuzz-corpus/$t" ] && corpora+=("$fuzz_build/fuzz-corpus/$t")
  LLVM_PROFILE_FILE="$out/%p.profraw" "$bin" -runs=0 "${corpora[@]}" >"$out/run.log" 2>&1
  "$profdata" merge -sparse "$out"/*.profraw -o "$out/merged.profdata"
  bytes="$(find "${corpora[@]}" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')"
  echo "== $t: $(find "${corpora[@]}" -type f | wc -l) inputs, $bytes bytes"
  # shellcheck disable=SC2086
  "$llvm_cov" report "$bin" -instr-profile="$out/merged.profdata" ${files[$t]}
done
