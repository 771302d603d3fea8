#!/usr/bin/env bash
# Runs every fuzz target of a fuzz build (make fuzz): first its regression inputs
# (fuzz/regressions/<target>/, each must pass), then libFuzzer for FUZZ_SECONDS (default 30)
# from its seed corpus (fuzz/corpus/<target>/) with its dictionary (fuzz/dicts/<target>.dict).
# New inputs go to a scratch corpus in the build directory, never into the repository; a crash,
# a leak, an input slower than FUZZ_TIMEOUT seconds (default 10) or an invariant that does not
# hold fails the run, and its input is kept in <build>/fuzz-artifacts/<target>/. FUZZ_TARGETS
# (names, space-separated) runs a subset.
# Prints one line of figures per target: executions per second, corpus size, coverage.
set -euo pipefail
build="${1:?usage: fuzz/run.sh BUILD_DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-30}"
timeout="${FUZZ_TIMEOUT:-10}"
targets="${FUZZ_TARGETS:-$(cd "$root/fuzz" && ls -- *_fuzz.cc | sed 's/_fuzz\.cc$//')}"
symbolizer="$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)"
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

summary=()
failed=()
for t in $targets; do
  bin="$build/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin is not built" >&2; exit 2; }
  scratch="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-logs/$t.log"
  mkdir -p "$scratch" "$artifacts" "$(dirname "$log")"
  dict=()
  [ -f "$root/fuzz/dicts/$t.dict" ] && dict=(-dict="$root/fuzz/dicts/$t.dict")

  regressions=("$root/fuzz/regressions/$t"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "fuzz: $t: replaying ${#regressions[@]} regression input(s)"
    if ! "$bin" -timeout="$timeout" "${regressions[@]}" >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      failed+=("$t (a regression input)")
      continue
    fi
  fi

  echo "fuzz: $t: ${seconds} s"
  # The scratch corpus comes first: libFuzzer writes what it finds into the first directory.
  if ! "$bin" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" \
    "$scratch" "$root/fuzz/corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $t failed; the input is in $artifacts/ (reproduce: $bin FILE)" >&2
    failed+=("$t")
    continue
  fi
  # The last status line (`#N DONE cov: C ft: F corp: K/S exec/s: E ...`) and the final stats.
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
  corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  seeds="$(find "$root/fuzz/corpus/$t" -type f | wc -l)"
  summary+=("$(printf '%-15s %9s %11s %6s %6s %11s %6s' "$t" "$rate" "$execs" "$cov" "$ft" \
    "$corp" "$seeds")")
done

echo
printf '%-15s %9s %11s %6s %6s %11s %6s\n' target exec/s runs cov ft corpus seeds
for line in "${summary[@]}"; do echo "$line"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (logs in $build/fuzz-logs/)" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds} s without a finding"
