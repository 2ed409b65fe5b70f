#!/usr/bin/env bash
# run.sh BUILD_DIR SECONDS - runs every fuzz harness for SECONDS each, starting from the
# committed seed corpus (tests/fuzz/corpus/NAME) and keeping new inputs in BUILD_DIR only.
# A crash (or leak: LeakSanitizer is on) leaves crash-*/leak-* in BUILD_DIR/fuzz/artifacts and
# fails the run. tests/fuzz/NAME.options, if present, holds extra libFuzzer flags for
# harness NAME; the full output (cov: lines, to see coverage plateau) is in BUILD_DIR/fuzz/logs/NAME.log.
set -euo pipefail
BUILD=$1
SECONDS_EACH=${2:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
status=0
for exe in "$BUILD"/fuzz/fuzz_*; do
  name=$(basename "$exe")
  corpus="$BUILD/fuzz/corpus/$name"
  mkdir -p "$corpus" "$BUILD/fuzz/artifacts" "$BUILD/fuzz/logs"
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  extra=()
  [ -f "$HERE/$name.options" ] && read -r -a extra <"$HERE/$name.options"
  echo "== $name for ${SECONDS_EACH}s ${extra[*]}"
  if ! "$exe" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -detect_leaks=1 "${extra[@]}" \
      -artifact_prefix="$BUILD/fuzz/artifacts/$name-" "$corpus" "$HERE/corpus/${name#fuzz_}" 2>&1 |
      tee "$BUILD/fuzz/logs/$name.log" |
      grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|crash|Test unit written"; then
    :
  fi
  if ls "$BUILD/fuzz/artifacts/$name-"* >/dev/null 2>&1; then
    echo "FAIL: $name left artifacts:"; ls "$BUILD/fuzz/artifacts/$name-"*; status=1
  fi
done
exit $status
