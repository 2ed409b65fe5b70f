#!/usr/bin/env bash
# run.sh BUILD_DIR - the hostile-input integration test (tests/integration/test_hostile.sh,
# quick mode: no long-audio and isolation parts) with every server under valgrind memcheck.
# Fails on any valgrind error (invalid reads/writes, uninitialised values, definite or
# indirect leaks: --error-exitcode makes the server exit non-zero, which the test checks at
# each SIGTERM) and on any test failure. Logs: BUILD_DIR/valgrind/PID.log.
set -euo pipefail
BUILD=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)"; exit 1; }
LOGS=$BUILD/valgrind
rm -rf "$LOGS"
mkdir -p "$LOGS"
export AUDIOCLASS_TEST_WRAPPER="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
  --track-origins=yes --num-callers=30 --suppressions=$SRC/tests/valgrind/glibc.supp
  --log-file=$LOGS/%p.log"
export AUDIOCLASS_TEST_QUICK=1
# `serve` re-executes itself when OMP_WAIT_POLICY is unset (server/cli/main.c); under valgrind
# that second process would run without valgrind, so set it here.
export OMP_WAIT_POLICY=passive
status=0
bash "$SRC/tests/integration/test_hostile.sh" "$BUILD/audioclass" "$SRC" || status=1
echo "== valgrind summary ($(ls "$LOGS" | wc -l) server processes)"
for log in "$LOGS"/*.log; do
  errors=$(grep -m1 "ERROR SUMMARY" "$log" | awk '{print $4}')
  definite=$(grep -m1 "definitely lost:" "$log" | awk '{print $4}')
  indirect=$(grep -m1 "indirectly lost:" "$log" | awk '{print $4}')
  echo "$(basename "$log"): errors ${errors:-?}, definitely lost ${definite:-0} bytes, indirectly lost ${indirect:-0} bytes"
  if [ "${errors:-1}" != 0 ]; then status=1; grep -A30 -m3 "^==[0-9]*== [A-Z]" "$log" | head -60; fi
done
exit $status
