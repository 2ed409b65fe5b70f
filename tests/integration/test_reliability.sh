#!/usr/bin/env bash
# test_reliability.sh AUDIOCLASS SOURCE_DIR - issue 14 ("reliability round 2") and issue 18
# item 10: decoding off the HTTP threads, the one memory budget, parameter and connection
# floods, HTTP framing, NUL bytes, RFC 2046 multipart, JSON-only logs, signals and model
# reload, bad model files, /metrics for every answer. No check depends on timing: where a
# request must be "in progress", a test hook holds it there (AUDIOCLASS_TEST_HOLD_DIR, see
# server/core/test_hooks.h) and the test waits for the server to say so in /metrics.
# Timeouts (curl -m, timeout) are only there so that a broken server fails instead of
# hanging the test; each is far above what a correct answer needs and far below the
# --request-timeout that a wrong one would wait for.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools curl jq "$MK"
WRAP=${AUDIOCLASS_TEST_WRAPPER:-}
SLOW=1
[ -n "$WRAP" ] && SLOW=10
T=$(mktemp -d)
PIDS=()
BG=()
cleanup() {
  for p in "${BG[@]}" "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
Z1=$SRC/tests/golden/zoo1d.safetensors
Z2=$SRC/tests/golden/zoo2d.safetensors
export OMP_WAIT_POLICY=passive
HOLD=$T/hold
mkdir -p "$HOLD"
export AUDIOCLASS_TEST_HOLD_DIR=$HOLD
"$MK" "$T/v.wav" wav16 8000 1 1.0 tone 440
AW=(-H "Content-Type: audio/wav")
metric() { curl -s -m 10 "$URL/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
# wait_metric NAME VALUE: polls /metrics until NAME has VALUE (a condition, not a duration;
# gives up after 30 s so that a broken server fails the check)
wait_metric() {
  for _ in $(seq $((300 * SLOW))); do
    [ "$(metric "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
rawreq() { # rawreq FILE: sends FILE on a new connection, prints the answer (10 s at most)
  timeout $((10 * SLOW)) bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat '$1' >&3; cat <&3" 2>/dev/null
}

# ------------------------------------------------------------ item 3: decoding off the HTTP threads
start D --model zoo1d="$Z1" --http-threads 2 --decode-threads 2 --request-timeout 60
REF=$(curl -s "${AW[@]}" --data-binary "@$T/v.wav" "$URL/classify" | jq -c .predictions)
touch "$HOLD/decode"
for i in 1 2 3 4; do
  curl -s -o "$T/d$i.json" -w '%{http_code}' "${AW[@]}" --data-binary "@$T/v.wav" "$URL/classify" >"$T/d$i.code" &
  BG+=($!)
done
check "4 uploads are being decoded at once (2 decoders busy, 2 waiting)" wait_metric audioclass_decodes_in_progress 4
check_eq "/healthz answers while they decode" 200 "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/healthz")"
check_eq "/readyz answers while they decode" 200 "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/readyz")"
check_eq "/models answers while they decode" 200 "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/models")"
check_eq "the decodes were still in progress during those answers" 4 "$(metric audioclass_decodes_in_progress)"
rm "$HOLD/decode"
wait "${BG[@]}"
BG=()
check_eq "the held uploads are answered once released" "200 200 200 200" "$(for i in 1 2 3 4; do cat "$T/d$i.code"; echo; done | paste -sd ' ')"
check_eq "with the right answer" "$REF" "$(jq -c .predictions "$T/d1.json")"
stop
check_eq "server D exits 0" 0 $?

# ------------------------------------------------------------ item 4: one memory budget
# 8 s at 8 kHz: 128 kB of WAV body, 256 kB of decoded samples, the answer a few kB.
"$MK" "$T/e.wav" wav16 8000 1 8 noise 3
start M --model zoo1d="$Z1" --max-memory 400K --request-timeout 60
touch "$HOLD/dispatch"
curl -s -o "$T/m1.json" -w '%{http_code}' "${AW[@]}" --data-binary "@$T/e.wav" "$URL/classify" >"$T/m1.code" &
BG+=($!)
check "the first clip is decoded and queued (the dispatcher is held)" wait_metric audioclass_queue_depth 1
held=$(metric audioclass_memory_held_bytes)
check "its decoded audio is held in the budget ($held bytes >= 256000)" test "${held:-0}" -ge 256000
expect503() {
  local got
  got=$(req "$T/m2.json" /classify "${AW[@]}" --data-binary "@$T/e.wav")
  [ "$got" = 503 ] && jq -e '.error.code == "queue_full" and (.error.message | test("max-memory"))' "$T/m2.json" >/dev/null &&
    grep -qi '^Retry-After:' "$T/m2.json.h"
}
check "a second clip that does not fit beside it: 503 naming --max-memory, Retry-After" expect503
rm "$HOLD/dispatch"
wait "${BG[@]}"
BG=()
check_eq "the first clip is answered" 200 "$(cat "$T/m1.code")"
check "the decoded audio and the answer are given back" wait_metric audioclass_memory_held_bytes 0
check_eq "then the second fits" 200 "$(req "$T/m3.json" /classify "${AW[@]}" --data-binary "@$T/e.wav")"
# 30 s decode to 960 kB: more than the whole budget, so never: 413 naming the limit
"$MK" "$T/long.flac" flac 8000 1 30 noise 4
got=$(req "$T/m4.json" /classify "${AW[@]}" --data-binary "@$T/long.flac")
check "decoded audio larger than the whole budget: 413 naming --max-memory (got $got)" \
  bash -c "[ $got = 413 ] && grep -q max-memory '$T/m4.json'"
stop
check_eq "server M exits 0" 0 $?

# ------------------------------------------------------------ items 5, 7, 8, 9, 10, 12 on one server
start H --model zoo1d="$Z1" --request-timeout 60
# item 5: hundreds of query parameters are answered at once (MHD alone never answered them)
for n in 65 500 3000; do
  q=$(seq -s '&' -f 'p%g=1' "$n")
  got=$(curl -s -m $((10 * SLOW)) -o "$T/q.json" -w '%{http_code}' "$URL/healthz?$q")
  check "$n query parameters: 414 uri_too_long (got $got)" bash -c "[ $got = 414 ] && jq -e '.error.code == \"uri_too_long\"' '$T/q.json' >/dev/null"
done
q=$(seq -s '&' -f 'p%g=1' 20)
got=$(curl -s -m 10 -o "$T/q.json" -w '%{http_code}' "$URL/healthz?$q")
# 20 are under the limit: parsed, and (issue 18: strict parameters) refused by name, not 414
check "20 query parameters are parsed: 400 naming an unknown one (got $got)" \
  bash -c "[ $got = 400 ] && jq -e '.error.message | test(\"unknown parameter\")' '$T/q.json' >/dev/null"

# item 7: framing
framing() { # framing DESCRIPTION RAW: 400 JSON, then the connection is closed (one answer only)
  printf "$2" >"$T/raw"
  rawreq "$T/raw" >"$T/raw.out"
  local n status
  n=$(grep -c '^HTTP/1.1 ' "$T/raw.out")
  status=$(head -c 12 "$T/raw.out" | cut -c10-12)
  if [ "$status" = 400 ] && [ "$n" = 1 ] && grep -qi '^Connection: close' "$T/raw.out"; then
    ok "$1: 400 and the connection closed"
  else
    bad "$1: expected one 400 with Connection: close, got status '$status', $n answers"
  fi
}
GETH='GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
framing "two different Content-Length (a request smuggled behind)" \
  "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 4\r\nContent-Length: 41\r\n\r\nabcd$GETH"
framing "the same Content-Length twice" \
  "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd$GETH"
framing "Content-Length with Transfer-Encoding" \
  "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$GETH"
framing "'Content-Length :' (blank before the colon)" \
  "POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nabcd$GETH"
framing "Transfer-Encoding: gzip, chunked" \
  "POST /classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
framing "Transfer-Encoding: identity" \
  "POST /classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"
# (MHD refuses a Content-Length that is not a number itself, before our checks run)
printf 'POST /classify HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n' >"$T/raw"
check_eq "Content-Length that is not a number: 400" 400 "$(rawreq "$T/raw" | head -c 12 | cut -c10-12)"
check_eq "chunked alone is still fine" 200 "$(req "$T/ch.json" /classify "${AW[@]}" -H 'Transfer-Encoding: chunked' --data-binary "@$T/v.wav")"

# item 8: NUL bytes
nul() { # nul DESCRIPTION PATH
  local got
  got=$(req "$T/nul.json" "$2" "${AW[@]}" --data-binary "@$T/v.wav")
  check "$1: 400 (got $got)" bash -c "[ $got = 400 ] && jq -e '.error.code == \"bad_request\"' '$T/nul.json' >/dev/null"
}
nul "model=zoo1d%00garbage" "/classify?model=zoo1d%00garbage"
nul "top_k=2%00junk" "/classify?top_k=2%00junk"
nul "/classify%00x" "/classify%00x"
nul "a NUL in a parameter name" "/classify?to%00p_k=2"

# item 9: multipart per RFC 2046
mp() { # mp FILE BOUNDARY EPILOGUE: a multipart body with the file in field "file"
  { printf -- 'preamble\r\n--%s\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n' "$2"
    cat "$1"; printf -- '\r\n--%s--%s' "$2" "$3"; } >"$T/mp.body"
}
mpreq() { req "$T/mp.json" /classify -H "Content-Type: multipart/form-data; boundary=$1" --data-binary "@$T/mp.body"; }
mp "$T/v.wav" BBB $'\r\n'
check "a CRLF after the closing boundary: 200, right answer" bash -c "[ $(mpreq BBB) = 200 ] && [ \"\$(jq -c .predictions '$T/mp.json')\" = '$REF' ]"
mp "$T/v.wav" BBB $'\r\nthe epilogue, which RFC 2046 says to ignore\r\n'
check_eq "an epilogue after the closing boundary: 200" 200 "$(mpreq BBB)"
mp "$T/v.wav" x ""
check_eq "a one-character boundary: 200" 200 "$(mpreq x)"
B70=$(printf 'b%.0s' $(seq 70))
mp "$T/v.wav" "$B70" ""
check_eq "a 70-character boundary: 200" 200 "$(mpreq "$B70")"
mp "$T/v.wav" "a'b(c)+_,-./:=?" ""
check_eq "a quoted boundary with every special bchar: 200" 200 "$(mpreq "\"a'b(c)+_,-./:=?\"")"
check_eq "a 71-character boundary: 400" 400 "$(mpreq "${B70}b")"
mp "$T/v.wav" BBB ""
head -c $(($(stat -c %s "$T/mp.body") - 4)) "$T/mp.body" >"$T/mp.cut"; mv "$T/mp.cut" "$T/mp.body"
check_eq "no closing boundary: still 400" 400 "$(mpreq BBB)"

# item 12: /metrics counts every answer, MHD's own too, and how requests ended
{ printf 'X-Big: '; head -c 70000 /dev/zero | tr '\0' a; echo; } >"$T/bighdr"
curl -s -m 10 -o /dev/null -H "@$T/bighdr" "$URL/healthz"
printf 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n' >"$T/v99"
rawreq "$T/v99" >/dev/null
# a client that sends half its body and hangs up (a reset: SO_LINGER 0)
python3 - "$PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 1000\r\n\r\nRIFF")
import time, urllib.request
for _ in range(300):  # until the server holds the announced body: the request has begun
    m = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read().decode()
    if "\naudioclass_memory_held_bytes 1000\n" in m:
        break
    time.sleep(0.1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
check "MHD's own 431 is counted" wait_metric 'audioclass_requests_total{route="other",status="431"}' 1
check_eq "MHD's own 505 is counted" 1 "$(metric 'audioclass_requests_total{route="other",status="505"}')"
ab() { local a r; a=$(metric 'audioclass_requests_ended_total{end="client_abort"}'); r=$(metric 'audioclass_requests_ended_total{end="read_error"}'); [ $((a + r)) -ge 1 ]; }
abw() { for _ in $(seq 300); do ab && return 0; sleep 0.1; done; return 1; }
check "a client that hung up mid-body is counted (client_abort/read_error)" abw
check "framing refusals are counted as 400s" test "$(metric 'audioclass_requests_total{route="other",status="400"}')" -ge 7

# item 10: every log line is JSON, library output included
"$MK" "$T/m.mp3" mp3 44100 1 2.0 noise 5
# every 7th byte from 400 on complemented: libmpg123 prints "Note: Illegal Audio-MPEG-Header"
od -An -v -tu1 "$T/m.mp3" | tr -s ' ' '\n' | grep -v '^$' |
  LC_ALL=C awk '{ v = (NR > 400 && (NR - 401) % 7 == 0) ? 255 - $1 : $1; printf "%c", v }' >"$T/bad.mp3"
req "$T/mp3.json" /classify "${AW[@]}" --data-binary "@$T/bad.mp3" >/dev/null
req "$T/mp3.json" /classify "${AW[@]}" --data-binary "@$T/bad.mp3" >/dev/null
stop
check_eq "server H exits 0" 0 $?
if ldd "$EXE" 2>/dev/null | grep -q libasan; then
  echo "# ASan build: stderr is not captured (sanitizer reports must reach fd 2 as they are)"
else
  nonjson=$(grep -cv '^{.*}$' "$T/H.log")
  check_eq "every log line is a JSON object (corrupt MP3s included)" 0 "$nonjson"
  check "every log line parses as JSON" jq -e . "$T/H.log"
  check "libmpg123's complaints are in the log as JSON" grep -q '"event":"library"' "$T/H.log"
fi
# the port-in-use message names the cause
start U --model zoo1d="$Z1"
"$EXE" serve --port "$PORT" --bind 127.0.0.1 --model zoo1d="$Z1" 2>"$T/inuse.log"
check_eq "a second server on a port in use exits 1" 1 $?
check "and says why: $(grep -o '"error":"[^"]*"' "$T/inuse.log" | head -c 160)" grep -q 'startup_failed.*Address already in use' "$T/inuse.log"
stop

# ------------------------------------------------------------ item 6: connection floods
start F --model zoo1d="$Z1" --max-connections 20 --http-threads 2 --request-timeout 120
flood() { # one client: a partial upload, then wait for the server to close (or be killed;
  # only builtins, so that killing this shell closes its connection)
  trap '' PIPE
  exec 3<>/dev/tcp/127.0.0.1/$PORT || exit 0
  printf 'POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF' >&3 2>/dev/null
  while read -r -u 3 _ 2>/dev/null; do :; done
  echo closed >>"$T/flood.closed"
}
: >"$T/flood.closed"
for i in $(seq 100); do flood & BG+=($!); done
closed_80() { for _ in $(seq $((300 * SLOW))); do [ "$(wc -l <"$T/flood.closed")" -ge 80 ] && return 0; sleep 0.1; done; return 1; }
check "100 partial uploads against --max-connections 20: the 80 over the limit are closed at once" closed_80
kill "${BG[@]}" 2>/dev/null
wait "${BG[@]}" 2>/dev/null
BG=()
check_eq "the flood's clients are gone: /healthz answers (request timeout is 120 s)" 200 "$(curl -s -m $((10 * SLOW)) -o /dev/null -w '%{http_code}' "$URL/healthz")"
refused=$(metric audioclass_connections_refused_total)
check "the refused connections were counted ($refused)" test "${refused:-0}" -ge 80
check_eq "and a classification" 200 "$(curl -s -m $((10 * SLOW)) -o /dev/null -w '%{http_code}' "${AW[@]}" --data-binary "@$T/v.wav" "$URL/classify")"
stop
check_eq "server F exits 0" 0 $?

# ------------------------------------------------------------ item 11 + issue 18 item 10: signals, reload, bad model files
MD=$T/models
mkdir -p "$MD"
cp "$Z1" "$MD/m.safetensors"
head -c 5000 /dev/urandom >"$MD/broken.safetensors"
"$EXE" serve --port 0 --bind 127.0.0.1 --models-dir "$MD" --strict 2>"$T/strict.log"
check_eq "--strict: a bad model file stops the start (exit 1)" 1 $?
check "--strict: the log names the bad file" grep -q 'startup_failed.*broken.safetensors' "$T/strict.log"
start R --models-dir "$MD" --request-timeout 60
check "without --strict the bad file is skipped with a logged reason" grep -q '"event":"model_failed".*broken' "$T/R.log"
curl -s "$URL/models" >"$T/models.json"
check "/models lists it as failed with the reason" jq -e '.models | any(.name == "broken" and .status == "failed" and (.error | length > 0))' "$T/models.json"
check_eq "the good model is served" 200 "$(req "$T/r0.json" "/classify?model=m" "${AW[@]}" --data-binary "@$T/v.wav")"
kill -USR1 "$PID"; kill -USR2 "$PID"
check_eq "SIGUSR1 and SIGUSR2 are ignored (still serving)" 200 "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/healthz")"
check_eq "and logged" 2 "$(grep -c '"event":"signal_ignored"' "$T/R.log")"
# a request in flight while the model file is replaced and SIGHUP reloads it
touch "$HOLD/dispatch"
curl -s -o "$T/r1.json" -w '%{http_code}' "${AW[@]}" --data-binary "@$T/v.wav" "$URL/classify?model=m" >"$T/r1.code" &
BG+=($!)
check "a request is queued on model m (zoo1d)" wait_metric audioclass_queue_depth 1
cp "$Z2" "$MD/m.new" && mv "$MD/m.new" "$MD/m.safetensors"   # m is now zoo2d
cp "$Z1" "$MD/extra.safetensors"
kill -HUP "$PID"
for _ in $(seq 300); do grep -q '"event":"reload"' "$T/R.log" && break; sleep 0.1; done
check "SIGHUP reloads the files (logged)" grep -q '"event":"reload"' "$T/R.log"
check "the new file is served" jq -e '.models | any(.name == "extra")' <(curl -s "$URL/models")
check_eq "the new m is zoo2d" zoo2d "$(curl -s "$URL/models/m" | jq -r '.arch // .architecture // empty')"
rm "$HOLD/dispatch"
wait "${BG[@]}"
BG=()
check "the request in flight finished on the model it started with (zoo1d labels)" \
  bash -c "[ $(cat "$T/r1.code") = 200 ] && jq -e '.predictions[0].label | startswith(\"zoo1d-\")' '$T/r1.json' >/dev/null"
check "new requests use the new model (zoo2d labels)" \
  bash -c "curl -s -H 'Content-Type: audio/wav' --data-binary @$T/v.wav '$URL/classify?model=m' | jq -e '.predictions[0].label | startswith(\"zoo2d-\")' >/dev/null"
# a bad new file where a good model was: the whole old set is kept
head -c 3000 /dev/urandom >"$MD/m.new" && mv "$MD/m.new" "$MD/m.safetensors"
kill -HUP "$PID"
for _ in $(seq 300); do grep -q '"event":"reload_failed"' "$T/R.log" && break; sleep 0.1; done
check "a bad new file: the reload is refused and logged with the reason" grep -q '"event":"reload_failed".*m.safetensors' "$T/R.log"
check "the old set is kept (m is still zoo2d, extra still served)" \
  bash -c "curl -s -H 'Content-Type: audio/wav' --data-binary @$T/v.wav '$URL/classify?model=m' | jq -e '.predictions[0].label | startswith(\"zoo2d-\")' >/dev/null && curl -s '$URL/models/extra' | jq -e .name >/dev/null"
check_eq "SIGHUP did not stop the server" 200 "$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$URL/healthz")"
# SIGTERM drains: a queued request is answered before exit 0
touch "$HOLD/dispatch"
curl -s -o "$T/r2.json" -w '%{http_code}' "${AW[@]}" --data-binary "@$T/v.wav" "$URL/classify?model=extra" >"$T/r2.code" &
BG+=($!)
check "a request is queued before SIGTERM" wait_metric audioclass_queue_depth 1
kill -TERM "$PID"
rm "$HOLD/dispatch"
wait "${BG[@]}"
BG=()
check_eq "SIGTERM: the queued request is answered" 200 "$(cat "$T/r2.code")"
for _ in $(seq 200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
wait "$PID"
check_eq "SIGTERM: exit 0" 0 $?
finish
