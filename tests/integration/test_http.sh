#!/usr/bin/env bash
# test_http.sh AUDIOCLASS SOURCE_DIR - the HTTP service end to end with curl: every route
# and error status, raw and multipart uploads in many formats, auth, CORS, env vs flags,
# a concurrent burst checked answer by answer, a full queue, and a graceful SIGTERM drain.
# Servers listen on 127.0.0.1 with --port 0 (a free port, read from the "listening" line).
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools curl jq "$MK"
scratch_dir # T: a temporary folder; PIDS: servers killed on exit (lib.sh)
Z1=$SRC/tests/golden/zoo1d.safetensors
Z2=$SRC/tests/golden/zoo2d.safetensors

# expect_error DESCRIPTION STATUS CODE PATH CURL_ARGS...: status and error.code of a request.
expect_error() {
  expect_status_code "$@"
  local d=$1
  check "$d: message and request id" jq -e '(.error.message | length > 0) and (.request_id | length > 0)' "$T/err.json"
}
# same_predictions A B: labels equal, scores within 1e-5 (batch composition may move the
# last bits of a float), same number of windows.
same_predictions() {
  jq -e -n --slurpfile a "$1" --slurpfile b "$2" '
    ($a[0].windows == $b[0].windows) and
    ($a[0].predictions | length) == ($b[0].predictions | length) and
    ([$a[0].predictions, $b[0].predictions] | transpose |
     all(.[0].label == .[1].label and ((.[0].score - .[1].score) | fabs) < 1e-5))' >/dev/null
}
# ref FILE MODEL: the command line's answer for FILE, the reference for the server's.
ref() { "$EXE" classify --model "$2" --top-k 5 "$1" >"$1.$(basename "$2").ref"; }

# ---------------------------------------------------------------- fixtures
"$MK" "$T/tone8k.wav" wav16 8000 1 1.0 tone 440
"$MK" "$T/stereo44k.wav" wav16 44100 2 0.7 tone 1000
"$MK" "$T/u8.wav" wav8 16000 1 0.5 noise 3
"$MK" "$T/f.flac" flac 22050 1 0.6 tone 300
"$MK" "$T/v.ogg" ogg 44100 2 0.8 tone 700
"$MK" "$T/m.mp3" mp3 44100 2 0.8 noise 5
"$MK" "$T/long.wav" wav16 8000 1 3.0 noise 9
"$MK" "$T/empty.wav" wav16 8000 1 0
"$MK" "$T/oneframe.wav" wav16 48000 1 0.00002
"$MK" "$T/toolong.wav" wav8 8000 1 25 noise 1     # 200 kB, longer than --max-audio-seconds
"$MK" "$T/big.wav" wavf 16000 1 5 noise 2         # 320 kB, over --max-body-bytes
head -c 5000 /dev/urandom >"$T/garbage.bin"
FIXTURES="tone8k.wav stereo44k.wav u8.wav f.flac v.ogg m.mp3 long.wav"
for f in $FIXTURES; do ref "$T/$f" "$Z1"; done
ref "$T/v.ogg" "$Z2"

# ---------------------------------------------------------------- command line
"$EXE" serve --help >"$T/help.txt"
check_eq "serve --help exits 0" 0 $?
for v in PORT BIND THREADS HTTP_THREADS QUEUE_SIZE MAX_BATCH MAX_BATCH_WAIT_MS MAX_BODY_BYTES \
  MAX_AUDIO_SECONDS REQUEST_TIMEOUT MAX_CONNECTIONS MAX_CONNECTIONS_PER_IP SHUTDOWN_TIMEOUT \
  API_KEY_FILE CORS_ORIGIN MODELS MODELS_DIR; do
  grep -q "AUDIOCLASS_$v[;]" "$T/help.txt" || bad "--help documents AUDIOCLASS_$v"
done
check "--help gives defaults" grep -q "default 8080" "$T/help.txt"
"$EXE" serve --port nope >/dev/null 2>&1
check_eq "bad flag value exits 2" 2 $?
AUDIOCLASS_QUEUE_SIZE=0 "$EXE" serve --model "$Z1" >/dev/null 2>&1
check_eq "bad env value exits 2" 2 $?
"$EXE" serve --port 0 --model "$T/missing.safetensors" 2>"$T/missing.log"
check_eq "missing model exits 1" 1 $?
check "missing model is logged as JSON" jq -e -s 'any(.[]; .event == "startup_failed" and (.error | test("missing")))' "$T/missing.log"
mkdir "$T/nomodels"
"$EXE" serve --port 0 --models-dir "$T/nomodels" 2>/dev/null
check_eq "empty models dir exits 1" 1 $?

# ---------------------------------------------------------------- server A: two models
start A --model zoo1d="$Z1" --model zoo2d="$Z2" --max-body-bytes 300000 --max-audio-seconds 20 \
  --max-batch-wait-ms 20 --http-threads 4 --threads 2
check_eq "healthz" 200 "$(req "$T/h.json" /healthz)"
# serve re-executes itself with passive OpenMP waiting unless the variable is set (main.c)
check_eq "OpenMP workers wait passively" "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}" \
  "$(tr '\0' '\n' < "/proc/$PID/environ" | grep '^OMP_WAIT_POLICY=')"
check_eq "healthz body" ok "$(jq -r .status "$T/h.json")"
check_eq "readyz" 200 "$(req "$T/r.json" /readyz)"
check_eq "readyz counts models" 2 "$(jq .models "$T/r.json")"
check_eq "HEAD healthz" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/healthz")"
check_eq "GET /models" 200 "$(req "$T/m.json" /models)"
check_eq "models listed by name" "zoo1d zoo2d" "$(jq -r '[.models[].name] | join(" ")' "$T/m.json")"
check_eq "GET /models/zoo1d" 200 "$(req "$T/m1.json" /models/zoo1d)"
check_eq "model labels" 6 "$(jq '.labels | length' "$T/m1.json")"
check_eq "model parameters" 492 "$(jq .parameters "$T/m1.json")"
check_eq "model sha256" "$(sha256sum "$Z1" | cut -d' ' -f1)" "$(jq -r .sha256 "$T/m1.json")"
check_eq "model sample rate and policy" "8000 1000 300 100" \
  "$(jq -r '"\(.sample_rate) \(.policy.window) \(.policy.hop) \(.policy.pad)"' "$T/m1.json")"
check "model FLOPs and layers" jq -e '.flops_per_window > 0 and (.layers | length) > 0' "$T/m1.json"
check_eq "X-Request-Id on every response" 1 "$(header "$T/m1.json" X-Request-Id | grep -c '^ac-')"
expect_error "unknown model" 404 unknown_model /models/nope
expect_error "unknown route" 404 not_found /nope
expect_error "GET /classify" 405 method_not_allowed /classify
check "405 has Allow: POST" bash -c "grep -i '^Allow:' '$T/err.json.h' | grep -q POST"
expect_error "POST /models" 405 method_not_allowed /models -X POST
check "405 has Allow: GET" bash -c "grep -i '^Allow:' '$T/err.json.h' | grep -q GET"
expect_error "DELETE /healthz" 405 method_not_allowed /healthz -X DELETE
# GET /filters: JSON for both modes, SVG, the cache, and bad parameters
check_eq "filters json" 200 "$(req "$T/f.json" "/filters?model=zoo1d")"
check "filters: one entry per conv1 channel, sorted, with responses" jq -e '.layer == "conv1" and .mode == "kernel" and
  (.filters | length) == 8 and ([.filters[] | select(.dead | not) | .centre_hz] | . == sort) and
  (.filters[0].response_db | length) == (.freqs_hz | length) and (.summary | has("mel_correlation"))' "$T/f.json"
check_eq "filters probe of a deeper layer" 200 "$(req "$T/fp.json" "/filters?model=zoo2d&layer=conv2&mode=probe&n=32")"
check "probe: 6 filters over 32 log-spaced frequencies" jq -e '.mode == "probe" and (.filters | length) == 6 and
  (.freqs_hz | length) == 32 and .freqs_hz[0] == 10' "$T/fp.json"
check_eq "filters svg" 200 "$(req "$T/f.svg" "/filters?model=zoo1d&format=svg")"
check "svg content type" bash -c "grep -i '^Content-Type:' '$T/f.svg.h' | grep -q 'image/svg+xml'"
check "svg is XML with one row per filter" bash -c "xmllint --noout '$T/f.svg' && test \$(grep -o 'class=\"filter\"' '$T/f.svg' | wc -l) -eq 8"
check "svg renders to a PNG picture" bash -c "rsvg-convert '$T/f.svg' -o '$T/f.png' && test \$(stat -c %s '$T/f.png') -gt 2000"
req "$T/f2.json" "/filters?model=zoo1d" >/dev/null
check "a second request gets the cached, identical answer" cmp -s "$T/f.json" "$T/f2.json"
expect_error "filters: unknown layer" 404 not_found "/filters?model=zoo1d&layer=conv9"
check "unknown layer lists the conv layers" jq -e '.error.message | contains("conv1, conv2, conv3")' "$T/err.json"
expect_error "filters: kernel mode on a deep layer" 400 invalid_argument "/filters?model=zoo1d&layer=conv2"
expect_error "filters: unknown mode" 400 bad_request "/filters?model=zoo1d&mode=fft"
expect_error "filters: n out of range" 400 bad_request "/filters?model=zoo1d&n=3"
expect_error "filters: unknown format" 400 bad_request "/filters?model=zoo1d&format=png"
expect_error "filters: unknown model" 404 unknown_model "/filters?model=nope"
check_eq "OPTIONS /classify" 204 "$(req "$T/o" /classify -X OPTIONS)"
check "OPTIONS lists methods" bash -c "grep -i '^Allow:' '$T/o.h' | grep -q POST"
check_eq "openapi.json" 200 "$(req "$T/openapi.json" /openapi.json)"
check "openapi is OpenAPI 3 with every route" jq -e '(.openapi | startswith("3.")) and
  (.paths | has("/classify") and has("/models") and has("/models/{name}") and has("/filters") and
   has("/healthz") and has("/readyz") and has("/metrics") and has("/openapi.json"))' "$T/openapi.json"

# Every fixture, raw: the same answer as the command line.
for f in $FIXTURES; do
  code=$(req "$T/$f.json" "/classify?model=zoo1d" -H "Content-Type: audio/x-anything" --data-binary "@$T/$f")
  check_eq "raw $f: 200" 200 "$code"
  check "raw $f: same predictions as the CLI" same_predictions "$T/$f.json" "$T/$f.zoo1d.safetensors.ref"
  check "raw $f: timing and request id" jq -e '(.timing_ms | .decode >= 0 and .queue >= 0 and
    .inference > 0 and .total >= .inference) and (.request_id | startswith("ac-"))' "$T/$f.json"
done
check_eq "stereo 44.1 kHz described" "2 44100 WAV" "$(jq -r '"\(.channels) \(.sample_rate) \(.format)"' "$T/stereo44k.wav.json")"
check_eq "8-bit described" "Unsigned 8 bit PCM" "$(jq -r .encoding "$T/u8.wav.json")"
check_eq "mp3 described" "MPEG Layer III" "$(jq -r .encoding "$T/m.mp3.json")"
check_eq "ogg described" Vorbis "$(jq -r .encoding "$T/v.ogg.json")"
check_eq "octet-stream accepted" 200 "$(req "$T/x.json" "/classify?model=zoo1d" -H "Content-Type: application/octet-stream" --data-binary "@$T/f.flac")"
code=$(req "$T/z2.json" "/classify?model=zoo2d" -H "Content-Type: audio/ogg" --data-binary "@$T/v.ogg")
check_eq "second model: 200" 200 "$code"
check "second model: same predictions as the CLI" same_predictions "$T/z2.json" "$T/v.ogg.zoo2d.safetensors.ref"
check_eq "second model named" zoo2d "$(jq -r .model "$T/z2.json")"

# Multipart uploads (MHD's post processor): the field `file`; other fields are parameters
# (test_newcomer.sh checks them), so an unknown one is refused.
code=$(req "$T/mp.json" "/classify?model=zoo1d" -F "top_k=5" -F "file=@$T/f.flac")
check_eq "multipart: 200" 200 "$code"
check "multipart: same predictions as raw" same_predictions "$T/mp.json" "$T/f.flac.zoo1d.safetensors.ref"
code=$(req "$T/mp3.json" "/classify?model=zoo1d" -F "file=@$T/m.mp3;type=audio/mpeg")
check "multipart mp3: same predictions" same_predictions "$T/mp3.json" "$T/m.mp3.zoo1d.safetensors.ref"
expect_error "multipart without file" 400 bad_request "/classify?model=zoo1d" -F "audio=@$T/f.flac"
expect_error "multipart with two files" 400 bad_request "/classify?model=zoo1d" -F "file=@$T/f.flac" -F "file=@$T/v.ogg"
expect_error "multipart without boundary" 400 bad_request "/classify?model=zoo1d" -H "Content-Type: multipart/form-data" --data-binary "@$T/f.flac"

# Parameters.
code=$(req "$T/w.json" "/classify?model=zoo1d&top_k=3&windows=1" -H "Content-Type: audio/wav" --data-binary "@$T/long.wav")
check_eq "windows=1: 200" 200 "$code"
check "windows=1: one segment per window" jq -e '(.segments | length) == .windows and .windows > 1' "$T/w.json"
check_eq "top_k=3" 3 "$(jq '.predictions | length' "$T/w.json")"
req "$T/k.json" "/classify?model=zoo1d&top_k=1000" -H "Content-Type: audio/wav" --data-binary "@$T/long.wav" >/dev/null
check_eq "top_k capped at the labels" 6 "$(jq '.predictions | length' "$T/k.json")"
check "no segments unless asked" jq -e 'has("segments") | not' "$T/k.json"
expect_error "top_k=0" 400 bad_request "/classify?model=zoo1d&top_k=0" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
expect_error "top_k=abc" 400 bad_request "/classify?model=zoo1d&top_k=abc" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
expect_error "windows=2" 400 bad_request "/classify?model=zoo1d&windows=2" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
expect_error "no model with two loaded" 400 bad_request "/classify" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
check "the 400 names the choices" grep -q zoo2d "$T/err.json"
expect_error "unknown model" 404 unknown_model "/classify?model=nope" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
expect_error "non-ASCII model name" 404 unknown_model "/classify?model=%FFx" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"

# Bodies that are not usable audio.
expect_error "text/plain" 415 unsupported_media_type "/classify?model=zoo1d" -H "Content-Type: text/plain" --data-binary "@$T/tone8k.wav"
expect_error "application/json" 415 unsupported_media_type "/classify?model=zoo1d" -H "Content-Type: application/json" --data-binary '{"a":1}'
expect_error "form-urlencoded (curl -d)" 415 unsupported_media_type "/classify?model=zoo1d" --data-binary "@$T/tone8k.wav"
expect_error "garbage bytes" 400 bad_audio "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/garbage.bin"
expect_error "empty body" 422 audio_empty "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary ""
expect_error "WAV with no frames" 422 audio_empty "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/empty.wav"
expect_error "one frame at 48 kHz" 422 audio_too_short "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/oneframe.wav"
expect_error "longer than --max-audio-seconds" 413 audio_too_long "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/toolong.wav"
expect_error "Content-Length over the limit" 413 body_too_large "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/big.wav"
expect_error "chunked body over the limit" 413 body_too_large "/classify?model=zoo1d" -H "Content-Type: audio/wav" -H "Transfer-Encoding: chunked" --data-binary "@$T/big.wav"
expect_error "multipart over the limit" 413 body_too_large "/classify?model=zoo1d" -F "file=@$T/big.wav"
check_eq "still healthy after bad input" 200 "$(req "$T/h.json" /healthz)"

# Request ids: a safe client id is echoed; anything else is replaced.
req "$T/id.json" "/classify?model=zoo1d" -H "X-Request-Id: client-42.a:b" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav" >/dev/null
check_eq "client request id in JSON" client-42.a:b "$(jq -r .request_id "$T/id.json")"
check_eq "client request id in header" client-42.a:b "$(header "$T/id.json" X-Request-Id)"
req "$T/id2.json" /healthz -H "X-Request-Id: two words<script>" >/dev/null
check "unsafe request id replaced" bash -c "[[ \$(grep -i '^X-Request-Id:' '$T/id2.json.h' | tr -d '\r') == *': ac-'* ]]"
req "$T/id3.json" /healthz -H "X-Request-Id: $(printf 'a%.0s' $(seq 65))" >/dev/null
check "overlong request id replaced" bash -c "grep -i '^X-Request-Id:' '$T/id3.json.h' | grep -q ': ac-'"

# Burst: 100 concurrent requests over 7 fixtures, each answer checked against its reference.
mkdir "$T/burst"
cat >"$T/one.sh" <<EOF
curl -s -o "$T/burst/\$1.json" -w '%{http_code}' -H 'Content-Type: audio/wav' \\
  --data-binary "@$T/\$2" "$URL/classify?model=zoo1d" >"$T/burst/\$1.code"
EOF
files=($FIXTURES)
for i in $(seq 0 99); do
  f=${files[$((i % ${#files[@]}))]}
  echo "$i $f"
  echo "$f" >"$T/burst/$i.file"
done >"$T/burst.list"
xargs -P 32 -L 1 bash "$T/one.sh" <"$T/burst.list"
ok200=0
right=0
for i in $(seq 0 99); do
  [ "$(cat "$T/burst/$i.code" 2>/dev/null)" = 200 ] && ok200=$((ok200 + 1))
  f=$(cat "$T/burst/$i.file" 2>/dev/null)
  [ -n "$f" ] && same_predictions "$T/burst/$i.json" "$T/$f.zoo1d.safetensors.ref" && right=$((right + 1))
done
check_eq "burst: 100 x 200" 100 "$ok200"
check_eq "burst: 100 correct answers" 100 "$right"
check_eq "burst: request ids unique" 100 "$(cat "$T"/burst/*.json | jq -r .request_id | sort -u | wc -l)"

# Metrics reflect what happened.
check_eq "GET /metrics" 200 "$(req "$T/metrics.txt" /metrics)"
check "metrics content type" bash -c "grep -i '^Content-Type:' '$T/metrics.txt.h' | grep -q 'text/plain'"
M=$T/metrics.txt
mval() { grep -F "$1" "$M" | head -1 | awk '{print $NF}'; }
check_eq "classify 200s counted" 114 "$(mval 'audioclass_requests_total{route="classify",status="200"}')"
check "415s counted" grep -q 'audioclass_requests_total{route="classify",status="415"} 3' "$M"
check "unknown routes counted as other" grep -q 'audioclass_requests_total{route="other",status="404"} 1' "$M"
check "latency histogram" grep -q 'audioclass_request_duration_seconds_bucket{route="classify",le="+Inf"}' "$M"
check "queue depth gauge" grep -q '^audioclass_queue_depth 0' "$M"
check "inference histogram" awk -v n="$(mval 'audioclass_inference_seconds_count{model="zoo1d"}')" 'BEGIN{exit !(n > 0)}'
check "audio seconds counted" awk -v n="$(mval 'audioclass_audio_seconds_total{model="zoo1d"}')" 'BEGIN{exit !(n > 50)}'
singles=$(mval 'audioclass_batch_size_clips_bucket{model="zoo1d",le="1"}')
batches=$(mval 'audioclass_batch_size_clips_count{model="zoo1d"}')
check "the burst formed batches of more than one clip ($singles of $batches batches single)" \
  test "$singles" -lt "$batches"

stop
check_eq "server A exits 0 on SIGTERM" 0 $?
check "shutdown logged" grep -q '"event":"shutdown_complete"' "$T/A.log"
# The access log (complete once the server has exited): one JSON line per request.
check "access log line for the client id" jq -e -s 'map(select(.event == "request" and .request_id == "client-42.a:b")) |
  length == 1 and (.[0] | .status == 200 and .model == "zoo1d" and .method == "POST" and .path == "/classify" and .bytes_in > 0 and
  .decode_ms >= 0 and .queue_ms >= 0 and .inference_ms > 0 and .total_ms > 0)' "$T/A.log"
check "every log line is JSON" jq -e -s 'length > 100' "$T/A.log"
check_eq "one access log line per request" "$(jq -s '[.[] | select(.event == "request")] | length' "$T/A.log")" \
  "$(awk '/^audioclass_requests_total/{n += $2} END {print n + 1}' "$M")"


# ---------------------------------------------------------------- server B: env, auth, CORS
printf '# keys\n\n  s3cret-key  \nother-key\n' >"$T/keys"
AUDIOCLASS_MODELS="zoo1d=$Z1" AUDIOCLASS_API_KEY_FILE="$T/keys" AUDIOCLASS_CORS_ORIGIN=http://env.example \
  AUDIOCLASS_MAX_BODY_BYTES=1K start B --cors-origin http://flag.example --max-body-bytes 1M
expect_error "no key" 401 unauthorized /models
check "401 asks for a bearer token" bash -c "grep -i '^WWW-Authenticate:' '$T/err.json.h' | grep -q Bearer"
expect_error "wrong key" 401 unauthorized /models -H "Authorization: Bearer s3cret-kez"
expect_error "key prefix" 401 unauthorized /models -H "X-API-Key: s3cret"
expect_error "metrics need a key" 401 unauthorized /metrics
expect_error "unknown routes need a key" 401 unauthorized /nope
check_eq "healthz without key" 200 "$(req "$T/h.json" /healthz)"
check_eq "readyz without key" 200 "$(req "$T/h.json" /readyz)"
check_eq "Bearer key" 200 "$(req "$T/b.json" /models -H "Authorization: Bearer s3cret-key")"
check_eq "X-API-Key, second key" 200 "$(req "$T/b.json" /models -H "X-API-Key: other-key")"
check_eq "CORS origin: the flag wins over the environment" http://flag.example "$(header "$T/b.json" Access-Control-Allow-Origin)"
check_eq "preflight without key" 204 "$(req "$T/pf" /classify -X OPTIONS -H "Origin: http://flag.example" -H "Access-Control-Request-Method: POST")"
check "preflight allows POST and the auth headers" bash -c "grep -i '^Access-Control-Allow-Methods:' '$T/pf.h' | grep -q POST &&
  grep -i '^Access-Control-Allow-Headers:' '$T/pf.h' | grep -q Authorization"
code=$(req "$T/one.json" /classify -H "X-API-Key: s3cret-key" -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav")
check_eq "one model: ?model may be left out (and 1M flag beat the 1K env limit)" 200 "$code"
check "one model: right answer" same_predictions "$T/one.json" "$T/tone8k.wav.zoo1d.safetensors.ref"
expect_error "upload without key refused before the body" 401 unauthorized /classify -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
stop
check_eq "server B exits 0" 0 $?

# ---------------------------------------------------------------- server C: full queue, drain
# A long batch wait keeps accepted clips queued; a tiny queue then overflows.
start C --model "$Z1" --queue-size 6 --max-batch-wait-ms 20000 --max-batch 4096 --shutdown-timeout 20
for i in 1 2 3 4 5 6; do
  f=$(echo $FIXTURES | cut -d' ' -f$i)
  (curl -s -o "$T/q$i.json" -w '%{http_code}' -H "Content-Type: audio/wav" --data-binary "@$T/$f" \
    "$URL/classify" >"$T/q$i.code"; echo "$f" >"$T/q$i.file") &
done
for _ in $(seq 100); do
  depth=$(curl -s "$URL/metrics" | awk '/^audioclass_queue_depth /{print $2}')
  [ "$depth" = 6 ] && break
  sleep 0.1
done
check_eq "six clips queued" 6 "$depth"
t0=$(date +%s%N)
expect_error "full queue" 503 queue_full /classify -H "Content-Type: audio/wav" --data-binary "@$T/tone8k.wav"
t1=$(date +%s%N)
check "full queue answered at once" test $(((t1 - t0) / 1000000)) -lt 2000
check_eq "503 has Retry-After" 1 "$(header "$T/err.json" Retry-After)"
# An upload still arriving when SIGTERM comes is answered too: ~2 s at 100 kB/s.
"$MK" "$T/slow.wav" wav16 16000 1 6.0 noise 4
ref "$T/slow.wav" "$Z1"
(curl -s -o "$T/slow.json" -w '%{http_code}' --limit-rate 100K -H "Content-Type: audio/wav" \
  --data-binary "@$T/slow.wav" "$URL/classify" >"$T/slow.code") &
SLOW=$!
sleep 0.5
t0=$(date +%s%N)
stop
rc=$?
t1=$(date +%s%N)
wait
check_eq "SIGTERM with queued work: exit 0" 0 "$rc"
check "drain did not sit out the 20 s batch wait ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 10000
lost=0
for i in 1 2 3 4 5 6; do
  [ "$(cat "$T/q$i.code")" = 200 ] && same_predictions "$T/q$i.json" "$T/$(cat "$T/q$i.file").zoo1d.safetensors.ref" || lost=$((lost + 1))
done
check_eq "no queued request lost in the drain" 0 "$lost"
check_eq "upload in progress at SIGTERM answered" 200 "$(cat "$T/slow.code")"
check "and answered right" same_predictions "$T/slow.json" "$T/slow.wav.zoo1d.safetensors.ref"
check "drain logged" grep -q '"event":"shutdown_begin"' "$T/C.log"
check_eq "no new connections after the drain" 000 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")"

# ---------------------------------------------------------------- shipped models (make run)
shipped=$(ls "$SRC"/models/*.safetensors 2>/dev/null | wc -l)
if [ "$shipped" -gt 0 ]; then
  # Like `make run`: from the repository root, serving models/ by default.
  cd "$SRC"
  start D
  cd - >/dev/null
  "$MK" "$T/tone16k.wav" wav16 16000 1 1.5 tone 500
  for m in "$SRC"/models/*.safetensors; do
    name=$(basename "$m" .safetensors)
    ref "$T/tone16k.wav" "$m"
    code=$(req "$T/$name.json" "/classify?model=$name" -H "Content-Type: audio/wav" --data-binary "@$T/tone16k.wav")
    check_eq "shipped $name: 200" 200 "$code"
    check "shipped $name: same predictions as the CLI" same_predictions "$T/$name.json" "$T/tone16k.wav.$name.safetensors.ref"
  done
  check_eq "shipped models all listed" "$shipped" "$(curl -s "$URL/models" | jq '.models | length')"
  stop
  check_eq "server D exits 0" 0 $?
else
  echo "skip - no models/*.safetensors yet"
fi

finish
