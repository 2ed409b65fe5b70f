#!/bin/bash
# test_websocket.sh EXE SRC - GET /stream (WebSocket) against live servers, with a real client
# (stream_checks.py, python3-websocket): handshake refusals as plain HTTP errors, every
# message type, exactness against `audioclass stream` for any message sizes and fragments,
# ping, resampling, bad messages and their close codes, vanishing and non-reading clients,
# 50 concurrent streams, the stream limit, the idle timeout, and a drain on SIGTERM.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
. "$SRC/tests/integration/lib.sh"
require_tools curl jq /usr/bin/python3
/usr/bin/python3 -c "import websocket, numpy" 2>/dev/null || { echo "FAIL - python3-websocket is missing"; exit 1; }
scratch_dir
PY="/usr/bin/python3 $SRC/tests/integration/stream_checks.py"
M5=$SRC/models/m5-speech.safetensors
KWS=$SRC/tests/golden/stream/kws.safetensors

# Fixture: examples/yes.flac at 8 kHz with 1.5 s of silence on each side, raw s16le.
"$EXE" decode --rate 8000 --out "$T/yes" "$SRC/examples/yes.flac" >/dev/null 2>&1
/usr/bin/python3 -c "
import numpy as np, sys
x = np.fromfile('$T/yes.f32', np.float32)
z = np.zeros(12000, np.float32)
(np.clip(np.concatenate([z, x, z]), -1, 1) * 32767).astype('<i2').tofile('$T/yes.s16')
"
check "fixture: yes.flac as raw 8 kHz PCM" test -s "$T/yes.s16"

# --- the CLI on its own: the same session code the server runs ---
"$EXE" stream --model "$M5" --events "$T/yes.s16" >"$T/cli.jsonl"
check_eq "audioclass stream: one event, yes" "yes" "$(jq -r 'select(.type=="event") | .label' "$T/cli.jsonl")"
check_eq "audioclass stream: a summary of 4 s" "4" "$(jq -r 'select(.type=="summary") | .duration_s' "$T/cli.jsonl")"
"$EXE" stream --model "$M5" --format f64 "$T/yes.s16" >/dev/null 2>&1
check_eq "audioclass stream --format f64: usage error" "2" "$?"

# --- the same rule offline: /classify?events=1 finds and times the word; aggregate=max ---
/usr/bin/python3 -c "
import wave
w = wave.open('$T/yes.wav', 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
w.writeframes(open('$T/yes.s16', 'rb').read()); w.close()"
"$EXE" classify --model "$M5" --events "$T/yes.wav" >"$T/cls.json"
check_eq "classify --events: the mean says _silence_ (the issue's example)" _silence_ "$(jq -r .label "$T/cls.json")"
check_eq "classify --events: one event, yes" yes "$(jq -r '[.events[].label] | join(",")' "$T/cls.json")"
check_eq "classify --events: the event is the CLI stream's event" \
  "$(jq -c 'select(.type=="event") | [.label, .t_start_s, .t_end_s]' "$T/cli.jsonl")" \
  "$(jq -c '.events[0] | [.label, .t_start_s, .t_end_s]' "$T/cls.json")"
check_eq "classify --aggregate max: yes" yes "$("$EXE" classify --model "$M5" --aggregate max "$T/yes.wav" | jq -r .label)"
"$EXE" classify --model "$M5" --aggregate median "$T/yes.wav" >/dev/null 2>&1
check_eq "classify --aggregate median: usage error" 2 "$?"

# --- handshake refusals are ordinary HTTP errors ---
start main --model "m5-speech=$M5" --model "stream-kws=$KWS" --model "resnet=$SRC/tests/golden/zoo/resnet1d.safetensors" --max-streams 3
WSH=(-H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13"
     -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
expect_status_code "plain GET /stream" 426 upgrade_required "/stream?model=m5-speech"
check_eq "426 names the version" "13" "$(header "$T/err.json" Sec-WebSocket-Version)"
expect_status_code "Sec-WebSocket-Version 8" 426 upgrade_required "/stream?model=m5-speech" \
  -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 8" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
expect_status_code "a key that is not 16 bytes" 426 upgrade_required "/stream?model=m5-speech" \
  -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: c2hvcnQ="
expect_status_code "unknown model" 404 unknown_model "/stream?model=nope" "${WSH[@]}"
expect_status_code "no model named, two loaded" 400 bad_request "/stream" "${WSH[@]}"
for bad in "hop_ms=0" "hop_ms=abc" "rate=500" "format=mp3" "top_k=0" "threshold=1.5" "mode=fast" "colour=red"; do
  expect_status_code "bad parameter $bad" 400 bad_request "/stream?model=m5-speech&$bad" "${WSH[@]}"
done
expect_status_code "mode=incremental for a model that is not causal" 400 invalid_argument \
  "/stream?model=resnet&mode=incremental" "${WSH[@]}"
check "the refusal names the node" grep -q "pads 1 on the right" "$T/err.json"
curl -s -m 10 -o /dev/null -D "$T/up.h" "${WSH[@]}" "$URL/stream?model=m5-speech" --max-time 2
check "a valid handshake: 101 with the RFC 6455 accept key" \
  grep -qi "^Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" "$T/up.h"

expect_status_code "a page of another origin" 403 forbidden_origin "/stream?model=m5-speech" "${WSH[@]}" \
  -H "Origin: http://evil.example"
curl -s -m 10 -o /dev/null -D "$T/same.h" "${WSH[@]}" -H "Origin: $URL" "$URL/stream?model=m5-speech" --max-time 2
check "a page of the server's own origin: 101" grep -q "^HTTP/1.1 101" "$T/same.h"

check_eq "POST /classify?events=1: the same event" \
  "$(jq -c '.events' "$T/cls.json")" \
  "$(curl -s -H "Content-Type: audio/wav" --data-binary "@$T/yes.wav" "$URL/classify?model=m5-speech&events=1" | jq -c .events)"
check_eq "POST /classify?aggregate=max" yes \
  "$(curl -s -H "Content-Type: audio/wav" --data-binary "@$T/yes.wav" "$URL/classify?model=m5-speech&aggregate=max" | jq -r .label)"
expect_status_code "aggregate=median" 400 bad_request "/classify?model=m5-speech&aggregate=median" \
  --data-binary "@$T/yes.wav"
expect_status_code "events=maybe" 400 bad_request "/classify?model=m5-speech&events=maybe" --data-binary "@$T/yes.wav"

# --- protocol, bad input, clients that vanish ---
STREAM_MODEL=m5-speech $PY protocol "$URL" "$EXE" "$M5" "$T/yes.s16" | tee "$T/p.out"
check_eq "stream_checks.py protocol exited 0 (ran to its end, no failure)" 0 "${PIPESTATUS[0]}"
$PY abrupt "$URL" m5-speech "$T/yes.s16" | tee -a "$T/p.out"
check_eq "stream_checks.py abrupt exited 0 (ran to its end, no failure)" 0 "${PIPESTATUS[0]}"
PASS=$((PASS + $(grep -c '^ok' "$T/p.out"))); FAIL=$((FAIL + $(grep -c '^FAIL' "$T/p.out")))
check_eq "server healthy after all that" 200 "$(req "$T/h.json" /healthz)"
MAIN_PID=$PID MAIN_URL=$URL

# --- small limits: message size and idle time ---
start strict --model "m5-speech=$M5" --max-stream-message-bytes 4096 --stream-idle-timeout 2
$PY bad "$URL" m5-speech | tee "$T/b.out"
check_eq "stream_checks.py bad exited 0 (ran to its end, no failure)" 0 "${PIPESTATUS[0]}"
$PY idle "$URL" m5-speech | tee -a "$T/b.out"
check_eq "stream_checks.py idle exited 0 (ran to its end, no failure)" 0 "${PIPESTATUS[0]}"
PASS=$((PASS + $(grep -c '^ok' "$T/b.out"))); FAIL=$((FAIL + $(grep -c '^FAIL' "$T/b.out")))
stop
check_eq "the small-limits server exits 0" "0" "$?"
PID=$MAIN_PID URL=$MAIN_URL

# --- the stream limit (--max-streams 3), once the streams above are all gone ---
for _ in $(seq 200); do
  [ "$(curl -s "$URL/metrics" | awk '$1=="audioclass_streams_open" {print $2}')" = 0 ] && break
  sleep 0.1
done
check_eq "every stream above is closed (audioclass_streams_open)" 0 \
  "$(curl -s "$URL/metrics" | awk '$1=="audioclass_streams_open" {print $2}')"
for i in 1 2 3; do $PY hold "$URL" stream-kws "$T/open$i" >"$T/hold$i.out" & done
for _ in $(seq 100); do [ -s "$T/open1" ] && [ -s "$T/open2" ] && [ -s "$T/open3" ] && break; sleep 0.1; done
expect_status_code "a fourth stream over --max-streams 3" 503 too_many_streams "/stream?model=stream-kws" "${WSH[@]}"
check_eq "503 says when to retry" "1" "$(header "$T/err.json" Retry-After)"
# --- drain: open streams get their summary and close 1001; the server exits 0 ---
stop
check_eq "SIGTERM with 3 open streams: exit 0" "0" "$?"
wait
check_eq "each open stream was closed with 1001 after its summary" "3" \
  "$(cat "$T"/hold*.out | jq -c 'select(.close==1001 and .last=="summary")' | wc -l)"
check_eq "the log has a stream line (with its close code) for every upgraded request" \
  "$(grep -c '"status":101' "$T/main.log")" "$(grep '"event":"stream"' "$T/main.log" | jq -r .close_code | wc -l)"
check "vanished clients are logged with close code 0" grep -q '"close_code":0' "$T/main.log"

# --- 50 concurrent streams on the incremental executor: the shipped spotter ---
SPOT=$SRC/models/kws-speech.safetensors
"$EXE" stream --model "$SPOT" --events "$T/yes.s16" >"$T/spot.jsonl"
check_eq "the spotter streams incrementally" incremental "$(jq -r 'select(.type=="start") | .mode' "$T/spot.jsonl")"
check_eq "the spotter hears the one yes" yes "$(jq -r 'select(.type=="event") | .label' "$T/spot.jsonl" | tr '\n' ' ' | sed 's/ $//')"
start conc --model "kws-speech=$SPOT" --max-streams 64
$PY concurrent "$URL" "$EXE" "$SPOT" "$T/yes.s16" 50 | tee "$T/c.out"
check_eq "stream_checks.py concurrent exited 0 (ran to its end, no failure)" 0 "${PIPESTATUS[0]}"
PASS=$((PASS + $(grep -c '^ok' "$T/c.out"))); FAIL=$((FAIL + $(grep -c '^FAIL' "$T/c.out")))
stop
check_eq "the 50-stream server exits 0" "0" "$?"

# --- an API key: a header, or ?api_key= (what a browser's WebSocket can send) ---
echo "stream-key-1" >"$T/keys"
start keyed --model "m5-speech=$M5" --api-key-file "$T/keys"
expect_status_code "keyed server, no key" 401 unauthorized "/stream" "${WSH[@]}"
expect_status_code "keyed server, wrong ?api_key" 401 unauthorized "/stream?api_key=nope" "${WSH[@]}"
curl -s -m 10 -o /dev/null -D "$T/k1.h" "${WSH[@]}" "$URL/stream?api_key=stream-key-1" --max-time 2
check "keyed server, ?api_key=KEY: 101" grep -q "^HTTP/1.1 101" "$T/k1.h"
curl -s -m 10 -o /dev/null -D "$T/k2.h" "${WSH[@]}" -H "Authorization: Bearer stream-key-1" "$URL/stream" --max-time 2
check "keyed server, Authorization header: 101" grep -q "^HTTP/1.1 101" "$T/k2.h"
check "the key is not in the log" bash -c "! grep -q stream-key-1 $T/keyed.log"
expect_status_code "?api_key= on another route is still an unknown parameter" 401 unauthorized "/models?api_key=stream-key-1"
stop
check_eq "the keyed server exits 0" "0" "$?"

# --- streams off ---
start off --model "m5-speech=$M5" --max-streams 0
expect_status_code "--max-streams 0" 503 too_many_streams "/stream" "${WSH[@]}"
stop
check "no sanitizer report in any server log" bash -c "! grep -lE 'Sanitizer|runtime error:' $T/*.log"
finish
