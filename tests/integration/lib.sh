# lib.sh - helpers shared by the integration tests (sourced, not run).
# Every check prints one line; `finish` prints "N passed, N failed" and sets the exit code.

PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }
# check DESCRIPTION COMMAND...: passes when the command succeeds
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi; }
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (expected '$2', got '$3')"; fi; }

# require_tools TOOL...: stops the test with one FAIL line when a command or file is missing
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "FAIL - $tool is missing"; exit 1; }
  done
}

# The test-audio generator next to the binary under test (EXE is set before sourcing).
MK=$(dirname "${EXE:-.}")/tests/tools/mkaudio

finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}

# write_wav PATH SECONDS RATE CHANNELS: 16-bit PCM WAV of deterministic noise, no tools needed.
write_wav() {
  local path=$1 secs=$2 rate=$3 ch=$4
  local frames=$((secs * rate)) bytes
  bytes=$((frames * ch * 2))
  le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"; }
  le16() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))"; }
  {
    printf 'RIFF'; le32 $((36 + bytes)); printf 'WAVEfmt '; le32 16; le16 1; le16 "$ch"
    le32 "$rate"; le32 $((rate * ch * 2)); le16 $((ch * 2)); le16 16; printf 'data'; le32 "$bytes"
    LC_ALL=C awk -v n="$bytes" 'BEGIN { srand(7); for (i = 0; i < n; i += 2) { v = int((rand() - 0.5) * 8000); if (v < 0) v += 65536; printf "%c%c", v % 256, int(v / 256) } }'
  } >"$path"
}

# --- helpers for tests that start servers (they need EXE and T; WRAP, a command put before
# the server, e.g. valgrind, and SLOW, a time multiplier, are optional) ---

# start NAME ARGS...: starts `audioclass serve ARGS` on a free loopback port (env from the
# caller); sets PID, PORT and URL, and adds PID to PIDS for the caller's cleanup.
start() {
  local name=$1
  shift
  ${WRAP:-} "$EXE" serve --port 0 --bind 127.0.0.1 "$@" 2>"$T/$name.log" &
  PID=$!
  PIDS+=("$PID")
  PORT=""
  for _ in $(seq $((100 * ${SLOW:-1}))); do
    PORT=$(grep -m1 '"event":"listening"' "$T/$name.log" 2>/dev/null | jq -r .port)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$PORT" ]; then
    bad "server $name started"
    cat "$T/$name.log"
    exit 1
  fi
  URL=http://127.0.0.1:$PORT
}
# stop: SIGTERM, then the exit status (124 if it did not exit in time).
stop() {
  kill -TERM "$PID"
  for _ in $(seq $((200 * ${SLOW:-1}))); do
    kill -0 "$PID" 2>/dev/null || { wait "$PID"; return $?; }
    sleep 0.1
  done
  return 124
}
# req OUT PATH CURL_ARGS...: body to OUT, headers to OUT.h; prints the HTTP status.
req() {
  local out=$1 path=$2
  shift 2
  curl -s -m $((30 * ${SLOW:-1})) -o "$out" -D "$out.h" -w '%{http_code}' "$@" "$URL$path"
}
# header FILE NAME: the value of header NAME saved by req in FILE.h.
header() { grep -i "^$2:" "$1.h" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }

# scratch_dir: T, a temporary folder (kept and named when KEEP is set), and PIDS, the
# servers a script started, killed when it exits.
scratch_dir() {
  T=$(mktemp -d)
  PIDS=()
  trap scratch_cleanup EXIT
}
scratch_cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}

# expect_status_code DESCRIPTION STATUS CODE PATH CURL_ARGS...: a request's status and JSON
# error.code (the body lands in $T/err.json).
expect_status_code() {
  local d=$1 status=$2 code=$3 path=$4
  shift 4
  local got
  got=$(req "$T/err.json" "$path" "$@")
  check_eq "$d: status" "$status" "$got"
  check_eq "$d: error code" "$code" "$(jq -r .error.code "$T/err.json" 2>/dev/null)"
}
