#!/usr/bin/env bash
# upload_memory.sh AUDIOCLASS SOURCE_DIR [RATES] [SECONDS] - memory one upload costs the
# server, by source rate and length (issue 14: documented, measured). For each case a fresh
# server (model zoo1d, 8 kHz) gets one FLAC upload of silence (small on the wire, so the body
# is not what is measured) and the growth of its peak RSS (VmHWM) is printed with the
# decoded size at 8 kHz. Prints a Markdown table.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
RATES=${3:-"16000 48000 384000"}
SECS=${4:-"60 600"}
MK=$(dirname "$EXE")/tests/tools/mkaudio
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=passive
echo "| source rate | length | upload | peak RSS growth | decoded at 8 kHz | answer |"
echo "|---|---|---|---|---|---|"
for rate in $RATES; do
  for s in $SECS; do
    "$MK" "$T/a.flac" flac "$rate" 1 "$s" silence
    "$EXE" serve --port 0 --bind 127.0.0.1 --model zoo1d="$SRC/tests/golden/zoo1d.safetensors" \
      --threads 1 --max-audio-seconds 600 2>"$T/log" &
    pid=$!
    port=""
    for _ in $(seq 100); do port=$(grep -m1 '"event":"listening"' "$T/log" 2>/dev/null | jq -r .port); [ -n "$port" ] && break; sleep 0.1; done
    curl -s -o /dev/null "http://127.0.0.1:$port/healthz"
    h0=$(awk '/^VmHWM:/{print $2}' /proc/$pid/status)
    code=$(curl -s -o "$T/r.json" -w '%{http_code}' -H 'Content-Type: audio/flac' --data-binary "@$T/a.flac" "http://127.0.0.1:$port/classify")
    h1=$(awk '/^VmHWM:/{print $2}' /proc/$pid/status)
    kill -TERM "$pid"; wait "$pid"
    printf "| %d Hz | %d s | %d kB | %d kB | %d kB | %s |\n" "$rate" "$s" $(($(stat -c %s "$T/a.flac") / 1024)) \
      $((h1 - h0)) $((s * 8000 * 4 / 1024)) "$code"
  done
done
