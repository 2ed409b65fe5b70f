#!/usr/bin/env bash
# test_browser.sh AUDIOCLASS SOURCE_DIR - the web page (GET /) end to end: its HTTP headers
# with curl, then the page itself in Debian's chromium, headless, driven by playwright-core
# (test_browser.mjs): model chooser, file upload and drop, a refused file, recording through
# Chromium's fake microphone, Live mode (GET /stream over a WebSocket: a real "yes" through
# the fake microphone, a change of model, a 401 and a 1009 close shown as errors), the
# filters view, the API key, dark mode and phone width.
# Screenshots go to BUILD/browser-artifacts/ (BUILD: the folder of AUDIOCLASS).
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools curl jq node npm sha256sum "$MK" /usr/bin/chromium
scratch_dir # T: a temporary folder; PIDS: servers killed on exit (lib.sh)
ART=$(dirname "$EXE")/browser-artifacts
mkdir -p "$ART"
DATA=${AUDIOCLASS_DATA:-$SRC/../shared/data}
M5=$SRC/models/m5-speech.safetensors
ENV=$SRC/models/envnet-esc50.safetensors

# playwright-core from the lock file (a no-op when node_modules is current)
if ! sh "$SRC/tests/browser/setup.sh" >"$T/npm.log" 2>&1; then
  bad "npm ci in tests/browser (the npm registry is needed once)"
  cat "$T/npm.log"
  finish
  exit 1
fi

# ---------------------------------------------------------------- fixtures
"$MK" "$T/tone200.wav" wav16 16000 1 2.0 tone 200  # stationary: any stretch of it sounds the same
"$MK" "$T/long.wav" wav16 16000 1 4.0 noise 11     # several windows: a timeline
head -c 6000 /dev/urandom >"$T/garbage.bin"
# M5 with a full card in its metadata (the shipped files have no task, data or accuracy)
node "$SRC/tests/browser/add_metadata.mjs" "$M5" "$T/carded.safetensors" "task=spoken words (card test)" \
  "data=Speech Commands (card test)" "accuracy=12.3% (card test)"
YES=""
if [ -d "$DATA/speech_commands/yes" ]; then
  YES=$(ls "$DATA"/speech_commands/yes/*.flac | head -n 1)
  cp "$YES" "$T/yes.flac"
  # the clip as 16 kHz float samples: test_browser.mjs writes the WAV the fake microphone plays
  "$EXE" decode --rate 16000 --out "$T/yes16k" "$T/yes.flac" >/dev/null 2>&1 || YES=""
fi

# ---------------------------------------------------------------- HTTP: headers of the page's files
start open --model m5-speech="$M5" --model envnet-esc50="$ENV" --model m5-carded="$T/carded.safetensors"
OPEN_URL=$URL
OPEN_PID=$PID
check_eq "GET / is 200" 200 "$(req "$T/index.html" /)"
check_eq "GET /: HTML" "text/html; charset=utf-8" "$(header "$T/index.html" Content-Type)"
CSP=$(header "$T/index.html" Content-Security-Policy)
check "GET /: CSP allows scripts and styles from the server only" \
  bash -c "grep -q \"script-src 'self';\" <<<\"\$1\" && grep -q \"style-src 'self';\" <<<\"\$1\" && grep -q \"default-src 'none'\" <<<\"\$1\"" _ "$CSP"
check "GET /: CSP has no unsafe-inline or unsafe-eval" bash -c "! grep -q unsafe <<<\"\$1\"" _ "$CSP"
check "GET /: nosniff" grep -qi '^X-Content-Type-Options: nosniff' "$T/index.html.h"
check "the page has no inline script or style" bash -c "! grep -Eiq '<script>|<script [^>]*>[^<]|<style|style=| on[a-z]+=' '$T/index.html'"
ETAG=$(header "$T/index.html" ETag)
check "GET /: an ETag" test -n "$ETAG"
check_eq "GET /: revalidated with If-None-Match: 304" 304 "$(req "$T/304" / -H "If-None-Match: $ETAG")"
check_eq "GET /: another ETag: 200" 200 "$(req "$T/200" / -H 'If-None-Match: "0000000000000000"')"
check_eq "HEAD /: 200 without a body" "200 0" "$(curl -s -I -o /dev/null -D "$T/head.h" -w '%{http_code} %{size_download}' "$URL/")"
check_eq "HEAD /: the GET's length and ETag" "$(stat -c %s "$T/index.html") $ETAG" \
  "$(header "$T/head" Content-Length) $(header "$T/head" ETag)"
# every file of server/web is served, with its type, and byte for byte
for f in "$SRC"/server/web/*; do
  n=$(basename "$f")
  case "$n" in
    *.js) want="text/javascript; charset=utf-8" ;; *.css) want="text/css; charset=utf-8" ;;
    *.html) want="text/html; charset=utf-8" ;; *.svg) want="image/svg+xml" ;; *) want="?" ;;
  esac
  check_eq "GET /ui/$n" 200 "$(req "$T/asset" "/ui/$n")"
  check_eq "GET /ui/$n: type" "$want" "$(header "$T/asset" Content-Type)"
  check "GET /ui/$n: the file's bytes" cmp -s "$f" "$T/asset"
done
check_eq "GET /ui/nope: 404" 404 "$(req "$T/nope" /ui/nope)"
check_eq "GET /ui/nope: JSON error" not_found "$(jq -r .error.code "$T/nope")"
check_eq "GET /ui/../models: 404 (no path outside the page)" 404 "$(req "$T/nope" /ui/../models --path-as-is)"
check_eq "POST /: 405" 405 "$(req "$T/post" / -X POST --data x)"
check_eq "/metrics counts the page as route web" 1 \
  "$(curl -s "$URL/metrics" | grep -c '^audioclass_requests_total{route="web",status="304"} 1$')"
check "GET /models: a card from the file's metadata" jq -e \
  '.models[] | select(.name == "m5-speech") | .card.description and .card.license and (.card | has("accuracy") | not)' \
  <(curl -s "$URL/models")
check "GET /models: the card has the task, data and accuracy a file carries" jq -e \
  '.models[] | select(.name == "m5-carded") | .card.task == "spoken words (card test)" and
   .card.data == "Speech Commands (card test)" and .card.accuracy == "12.3% (card test)"' <(curl -s "$URL/models")

# ---------------------------------------------------------------- API key server
printf 'sekret-key-123\n' >"$T/keys"
start keyed --model m5-speech="$M5" --api-key-file "$T/keys"
KEY_URL=$URL
KEY_PID=$PID
check_eq "with a key file, GET / needs no key" 200 "$(req "$T/k" /)"
check_eq "with a key file, GET /ui/app.js needs no key" 200 "$(req "$T/k" /ui/app.js)"
check_eq "with a key file, /models needs one" 401 "$(req "$T/k" /models)"

# ---------------------------------------------------------------- a server whose streams take tiny messages
# (Live's first chunk is too large for it: the stream closes with 1009 and an error message)
start tight --model m5-speech="$M5" --max-stream-message-bytes 64
TIGHT_URL=$URL
TIGHT_PID=$PID

# ---------------------------------------------------------------- the page in chromium
cat >"$T/config.json" <<EOF
{"url": "$OPEN_URL", "keyUrl": "$KEY_URL", "tightUrl": "$TIGHT_URL", "key": "sekret-key-123", "tmp": "$T",
 "artifacts": "$ART", "yes": $([ -n "$YES" ] && echo "\"$T/yes.flac\"" || echo null),
 "yesF32": $([ -n "$YES" ] && echo "\"$T/yes16k.f32\"" || echo null),
 "slow": ${SLOW:-1}}
EOF
[ -z "$YES" ] && echo "skip - no Speech Commands data in $DATA: the real-clip checks do not run"
node "$SRC/tests/browser/test_browser.mjs" "$T/config.json" >"$T/node.out" 2>&1
rc=$?
cat "$T/node.out"
PASS=$((PASS + $(grep -c '^ok ' "$T/node.out")))
FAIL=$((FAIL + $(grep -c '^FAIL ' "$T/node.out")))
[ $rc -ne 0 ] && [ "$(grep -c '^FAIL ' "$T/node.out")" -eq 0 ] && bad "test_browser.mjs exited with $rc"
echo "screenshots: $ART"

# both servers end cleanly after the browser's visits (and, under ASan, without a report)
PID=$OPEN_PID; stop; check_eq "server exits 0 on SIGTERM" 0 $?
PID=$KEY_PID; stop; check_eq "server with keys exits 0 on SIGTERM" 0 $?
PID=$TIGHT_PID; stop; check_eq "server with tiny stream messages exits 0 on SIGTERM" 0 $?
check "no sanitizer report in the server logs" bash -c "! grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/open.log' '$T/keyed.log' '$T/tight.log'"
finish
