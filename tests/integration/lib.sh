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
