#!/usr/bin/env bash
# test_make.sh AUDIOCLASS SOURCE_DIR - `make run` builds only the server, quietly, prints
# the URL to open and serves there (run against the build directory under test, which is
# already built, so no compiler runs here).
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools make curl pgrep python3
BUILD=$(dirname "$EXE")
T=$(mktemp -d)
MAKE_PID=""
cleanup() {
  [ -n "$MAKE_PID" ] && pkill -KILL -P "$MAKE_PID" 2>/dev/null
  [ -n "$MAKE_PID" ] && kill -KILL "$MAKE_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
cd "$SRC" || exit 1
# As a person types it: not a sub-make of `make test` (a sub-make prints "Entering directory").
unset MAKEFLAGS MFLAGS MAKELEVEL

# What `make run` would do, without doing it.
make -n run BUILD="$BUILD" PORT=8080 >"$T/plan.txt" 2>&1
check "make run builds the audioclass target" grep -q -- '--target audioclass' "$T/plan.txt"
check "make run builds nothing else (no bare build, no tests)" \
  bash -c "! grep -E 'cmake --build [^ ]+ (-j [0-9]+)?( |$)' '$T/plan.txt' | grep -v -- '--target audioclass' | grep -q . && ! grep -q ctest '$T/plan.txt'"
check "make run keeps the compiler's output in a log" grep -q 'run-build.log' "$T/plan.txt"

# The real thing, on a free port.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
make run BUILD="$BUILD" PORT="$PORT" >"$T/out.txt" 2>"$T/err.txt" &
MAKE_PID=$!
up=""
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && { up=1; break; }
  kill -0 "$MAKE_PID" 2>/dev/null || break
  sleep 0.2
done
check "make run serves on PORT" test -n "$up"
check "make run prints the URL to open" grep -qF "http://localhost:$PORT/" "$T/out.txt"
check "make run prints an example request" grep -qF 'curl -F file=@examples/dog.ogg' "$T/out.txt"
check_eq "no make chatter (Entering directory)" 0 "$(grep -c 'Entering directory' "$T/out.txt" "$T/err.txt" | awk -F: '{s += $2} END {print s}')"
check "the server's log line has the URL" grep -q '"url":"http://localhost:'"$PORT"'/"' "$T/err.txt"
SERVER=$(pgrep -P "$MAKE_PID" -x audioclass)
check "the server is a process named audioclass" test -n "$SERVER"
[ -n "$SERVER" ] && kill -TERM "$SERVER"
wait "$MAKE_PID"
check_eq "SIGTERM: make run exits 0" 0 "$?"
MAKE_PID=""
finish
