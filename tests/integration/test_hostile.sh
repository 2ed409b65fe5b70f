#!/usr/bin/env bash
# test_hostile.sh AUDIOCLASS SOURCE_DIR - hostile input (issue 8): every case gets the right
# 4xx JSON error (or a correct 200), the server stays up, and after every case a valid
# request still gets exactly the reference answer. Then: connection limits, slow clients,
# the memory cap on queued audio, and isolation (valid answers identical, byte for byte,
# while hostile traffic runs at the same time).
# AUDIOCLASS_TEST_WRAPPER (e.g. "valgrind ...") is put before the server command line;
# AUDIOCLASS_TEST_QUICK=1 skips the slow parts (isolation, long audio), as a valgrind run does.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools curl jq "$MK"
WRAP=${AUDIOCLASS_TEST_WRAPPER:-}
QUICK=${AUDIOCLASS_TEST_QUICK:-}
SLOW=1                      # time scale for timing checks (a wrapper slows everything)
[ -n "$WRAP" ] && SLOW=10
scratch_dir # T: a temporary folder; PIDS: servers killed on exit (lib.sh)
Z1=$SRC/tests/golden/zoo1d.safetensors

is_error_json() { jq -e '(.error.code | type == "string") and (.error.message | length > 0) and (.request_id | length > 0)' "$1" >/dev/null 2>&1; }
expect_error() { # DESCRIPTION STATUS CODE PATH CURL_ARGS...
  local d=$1 status=$2 code=$3 path=$4
  shift 4
  local got
  got=$(req "$T/err.json" "$path" "$@")
  if [ "$got" = "$status" ] && [ "$(jq -r .error.code "$T/err.json" 2>/dev/null)" = "$code" ] &&
     is_error_json "$T/err.json"; then
    ok "$d: $status $code"
  else
    bad "$d: expected $status $code, got $got $(head -c 300 "$T/err.json" 2>/dev/null)"
  fi
}
# expect_any DESCRIPTION "STATUSES" PATH CURL_ARGS...: one of the statuses; a 200 with
# predictions, anything else a JSON error. For inputs whose right answer depends on how much
# of a damaged file a decoder can still use.
expect_any() {
  local d=$1 allowed=$2 path=$3
  shift 3
  local got
  got=$(req "$T/any.json" "$path" "$@")
  local shape=1
  if [ "$got" = 200 ]; then
    jq -e '.predictions | length > 0' "$T/any.json" >/dev/null 2>&1 && shape=0
  else
    is_error_json "$T/any.json" && shape=0
  fi
  if [[ " $allowed " == *" $got "* ]] && [ "$shape" = 0 ]; then
    ok "$d: $got${got:+ }$(jq -r '.error.code // empty' "$T/any.json" 2>/dev/null)"
  else
    bad "$d: expected one of $allowed, got $got $(head -c 300 "$T/any.json" 2>/dev/null)"
  fi
}
preds() { jq -c '[.predictions, .windows]' "$1" 2>/dev/null; }
# still_ok DESCRIPTION: the server is up and a valid request gets the reference answer.
still_ok() {
  local got
  got=$(req "$T/valid.json" "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/valid.wav")
  if [ "$got" = 200 ] && [ "$(preds "$T/valid.json")" = "$REF" ]; then
    VALID_OK=$((VALID_OK + 1))
  else
    bad "after $1: valid request got $got $(head -c 200 "$T/valid.json")"
  fi
}
wav_header() { # wav_header RATE CHANNELS BITS DATA_BYTES [FORMAT]: a 44-byte WAV header
  local rate=$1 ch=$2 bits=$3 data=$4 fmt=${5:-1}
  le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"; }
  le16() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))"; }
  printf 'RIFF'; le32 $(((36 + data) & 0xffffffff)); printf 'WAVEfmt '; le32 16; le16 "$fmt"; le16 "$ch"
  le32 "$rate"; le32 $(((rate * ch * (bits / 8)) & 0xffffffff)); le16 $((ch * bits / 8)); le16 "$bits"
  printf 'data'; le32 "$data"
}
flip() { # flip FILE OFFSET...: overwrites one byte at each offset with its complement
  local f=$1
  shift
  for off in "$@"; do
    local b
    b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
    [ -n "$b" ] || continue
    printf "\\x$(printf %02x $((255 - b)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
  done
}
VALID_OK=0

# ---------------------------------------------------------------- fixtures
"$MK" "$T/valid.wav" wav16 8000 1 1.0 tone 440
"$MK" "$T/w.wav" wav16 16000 2 1.0 noise 3
"$MK" "$T/f.flac" flac 22050 1 1.0 tone 300
"$MK" "$T/v.ogg" ogg 44100 1 1.0 tone 700
"$MK" "$T/m.mp3" mp3 44100 1 1.0 noise 5
"$MK" "$T/o.opus" opus 48000 1 1.0 tone 500
head -c 48000 /dev/urandom >"$T/random.bin"

start H --model zoo1d="$Z1" --max-body-bytes 2M --max-audio-seconds 60 --request-timeout 3 \
  --http-threads 4 --threads 1
# The reference answer: the server's own, before any hostile input.
check_eq "reference request" 200 "$(req "$T/ref.json" "/classify?model=zoo1d" -H "Content-Type: audio/wav" --data-binary "@$T/valid.wav")"
REF=$(preds "$T/ref.json")
"$EXE" classify --model "$Z1" --top-k 5 "$T/valid.wav" >"$T/cli.json"
check "reference agrees with the command line" jq -e -n --slurpfile a "$T/cli.json" --slurpfile b "$T/ref.json" \
  '[$a[0].predictions, $b[0].predictions] | transpose | all(.[0].label == .[1].label and ((.[0].score - .[1].score) | fabs) < 1e-5)'
CLS="/classify?model=zoo1d"
AW=(-H "Content-Type: audio/wav")

# ---------------------------------------------------------------- bodies
expect_error "zero-length body" 422 audio_empty "$CLS" "${AW[@]}" --data-binary ""; still_ok "empty body"
: >"$T/empty"
expect_error "zero-length multipart file" 422 audio_empty "$CLS" -F "file=@$T/empty"; still_ok "empty part"
# Truncated files: whatever a decoder can still read is classified, the rest is an error.
for f in w.wav f.flac v.ogg m.mp3 o.opus; do
  size=$(stat -c %s "$T/$f")
  for keep in 4 12 44 100 $((size / 10)) $((size / 2)) $((size - 1)); do
    head -c "$keep" "$T/$f" >"$T/cut"
    expect_any "$f cut to $keep bytes" "200 400 415 422" "$CLS" "${AW[@]}" --data-binary "@$T/cut"
    still_ok "$f cut to $keep"
  done
  # Corrupted: bytes flipped in the header, in the middle, and everywhere.
  for offs in "0 1 2 3" "8 9 10 11" "20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35" \
    "$((size / 2)) $((size / 2 + 1)) $((size / 2 + 7))" \
    "$(seq -s ' ' 5 97 "$size")"; do
    cp "$T/$f" "$T/bad"
    flip "$T/bad" $offs
    expect_any "$f with bytes flipped at ${offs:0:24}" "200 400 415 422" "$CLS" "${AW[@]}" --data-binary "@$T/bad"
    still_ok "$f corrupted"
  done
done
# Headers that lie.
data() { head -c "$1" /dev/urandom; }
{ wav_header 8000 1 16 4294967295; data 16000; } >"$T/h1"
expect_any "WAV claiming 4 GB of data, holding 16 kB" "200 413" "$CLS" "${AW[@]}" --data-binary "@$T/h1"; still_ok "huge data size"
{ wav_header 8000 1 16 $((3600 * 8000 * 2)); data 16000; } >"$T/h2"
expect_any "WAV claiming an hour, holding 1 s" "200 413" "$CLS" "${AW[@]}" --data-binary "@$T/h2"; still_ok "hour-long header"
{ wav_header 8000 0 16 16000; data 16000; } >"$T/h3"
expect_error "0 channels" 400 bad_audio "$CLS" "${AW[@]}" --data-binary "@$T/h3"; still_ok "0 channels"
{ wav_header 8000 1000 16 16000; data 16000; } >"$T/h4"
expect_error "1000 channels" 400 bad_audio "$CLS" "${AW[@]}" --data-binary "@$T/h4"; still_ok "1000 channels"
for rate in 0 1 999 4294967295 2147483647 400000; do
  { wav_header "$rate" 1 16 16000; data 16000; } >"$T/h5"
  expect_error "sample rate $rate" 400 bad_audio "$CLS" "${AW[@]}" --data-binary "@$T/h5"; still_ok "rate $rate"
done
for bits in 0 7 12 64 65535; do
  { wav_header 8000 1 "$bits" 16000; data 16000; } >"$T/h6"
  expect_any "$bits bits per sample" "200 400 415" "$CLS" "${AW[@]}" --data-binary "@$T/h6"; still_ok "$bits bits"
done
{ wav_header 8000 1 16 16000 65534; data 16000; } >"$T/h7"
expect_any "unknown WAV format tag" "400 415" "$CLS" "${AW[@]}" --data-binary "@$T/h7"; still_ok "format tag"
{ wav_header 8000 1 16 2; printf '\x01\x00'; } >"$T/one.wav"
expect_any "1-sample WAV at the model's rate" "200 422" "$CLS" "${AW[@]}" --data-binary "@$T/one.wav"; still_ok "1 sample"
{ wav_header 48000 1 16 2; printf '\x01\x00'; } >"$T/one48.wav"
expect_error "1-sample WAV at 48 kHz" 422 audio_too_short "$CLS" "${AW[@]}" --data-binary "@$T/one48.wav"; still_ok "1 sample 48k"
if [ -z "$QUICK" ]; then
  # Really long audio in small compressed files: refused while decoding, not after.
  "$MK" "$T/long.flac" flac 8000 1 200 silence
  "$MK" "$T/long.mp3" mp3 8000 1 200 tone 200
  "$MK" "$T/long.ogg" ogg 8000 1 200 silence
  for f in long.flac long.mp3 long.ogg; do
    t0=$(date +%s%N)
    expect_error "$f: 200 s in $(stat -c %s "$T/$f") bytes, over --max-audio-seconds 60" 413 audio_too_long "$CLS" \
      "${AW[@]}" --data-binary "@$T/$f"
    t1=$(date +%s%N)
    check "$f refused quickly ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt $((5000 * SLOW))
    still_ok "$f"
  done
fi
# Not audio at all.
expect_error "random bytes" 400 bad_audio "$CLS" "${AW[@]}" --data-binary "@$T/random.bin"; still_ok "random"
printf '\x89PNG\r\n\x1a\n%s' "$(head -c 300 /dev/zero | tr '\0' A)" >"$T/png"
expect_error "a PNG sent as audio" 400 bad_audio "$CLS" "${AW[@]}" --data-binary "@$T/png"; still_ok "png"
expect_error "JSON sent as audio" 400 bad_audio "$CLS" "${AW[@]}" --data-binary '{"audio": [1, 2, 3]}'; still_ok "json"
head -c 4 "$T/w.wav" >"$T/riff"; head -c 30000 /dev/zero >>"$T/riff"
expect_error "RIFF then zeros" 400 bad_audio "$CLS" "${AW[@]}" --data-binary "@$T/riff"; still_ok "riff zeros"

# ---------------------------------------------------------------- content types
expect_error "text/plain" 415 unsupported_media_type "$CLS" -H "Content-Type: text/plain" --data-binary "@$T/valid.wav"; still_ok "text/plain"
expect_error "image/png" 415 unsupported_media_type "$CLS" -H "Content-Type: image/png" --data-binary "@$T/valid.wav"; still_ok "image/png"
expect_error "form-urlencoded" 415 unsupported_media_type "$CLS" -H "Content-Type: application/x-www-form-urlencoded" --data-binary "@$T/valid.wav"
expect_error "audio without its slash part" 415 unsupported_media_type "$CLS" -H "Content-Type: audio/" --data-binary "@$T/valid.wav"
got=$(req "$T/noct.json" "$CLS" -H "Content-Type:" --data-binary "@$T/valid.wav")
check "no Content-Type: treated as octet-stream, right answer" test "$got" = 200 -a "$(preds "$T/noct.json")" = "$REF"
got=$(req "$T/params.json" "$CLS" -H "Content-Type: AUDIO/WAV ; charset=utf-8 ; x=y" --data-binary "@$T/valid.wav")
check "media type parameters and case ignored" test "$got" = 200 -a "$(preds "$T/params.json")" = "$REF"
still_ok "content types"

# ---------------------------------------------------------------- multipart
expect_error "multipart without a file" 400 bad_request "$CLS" -F "note=hello"; still_ok "no file"
expect_error "multipart with two files" 400 bad_request "$CLS" -F "file=@$T/valid.wav" -F "file=@$T/f.flac"; still_ok "two files"
{ printf -- '--BBB\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'; cat "$T/valid.wav"; printf '\r\n--BBB--\r\n'; } >"$T/mp"
expect_error "multipart with a wrong boundary" 400 bad_request "$CLS" -H "Content-Type: multipart/form-data; boundary=AAA" --data-binary "@$T/mp"; still_ok "wrong boundary"
expect_error "multipart with an empty boundary" 400 bad_request "$CLS" -H "Content-Type: multipart/form-data; boundary=" --data-binary "@$T/mp"; still_ok "empty boundary"
got=$(req "$T/mpok.json" "$CLS" -H "Content-Type: multipart/form-data; boundary=BBB" --data-binary "@$T/mp")
check "hand-made multipart with the right boundary: right answer" test "$got" = 200 -a "$(preds "$T/mpok.json")" = "$REF"
head -c 200 "$T/mp" >"$T/mpcut"
expect_error "multipart cut inside the file part (no closing boundary)" 400 bad_request "$CLS" -H "Content-Type: multipart/form-data; boundary=BBB" --data-binary "@$T/mpcut"; still_ok "cut multipart"
expect_error "multipart file that is not audio" 400 bad_audio "$CLS" -F "file=@$T/random.bin"; still_ok "multipart random"

# ---------------------------------------------------------------- HTTP itself
{ printf 'X-Big: '; head -c 200000 /dev/zero | tr '\0' a; echo; } >"$T/bighdr"
got=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "@$T/bighdr" "$URL/healthz")
check "200 kB header refused with a 4xx (got $got)" test "$got" -ge 400 -a "$got" -lt 500; still_ok "huge header"
hdrs=()
for i in $(seq 2000); do hdrs+=(-H "X-H$i: v"); done
got=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "${hdrs[@]}" "$URL/healthz")
check "2000 headers refused with a 4xx (got $got)" test "$got" -ge 400 -a "$got" -lt 500; still_ok "many headers"
{ printf 'GET /classify?model='; head -c 200000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; } >"$T/bigurl"
got=$(timeout $((10 * SLOW)) bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat '$T/bigurl' >&3 2>/dev/null; head -c 12 <&3" | cut -c10-12)
check "200 kB URL refused with a 4xx (got $got)" test "${got:-0}" -ge 400 -a "${got:-0}" -lt 500; still_ok "huge URL"
got=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$URL/models/$(head -c 3000 /dev/zero | tr '\0' b)")
check "long model name: 404 (got $got)" test "$got" = 404
expect_error "unknown method on /classify" 405 method_not_allowed "$CLS" -X BREW
expect_error "unknown method elsewhere" 404 not_found /teapot -X BREW
expect_error "TRACE" 405 method_not_allowed /models -X TRACE
expect_error "PUT with a body" 405 method_not_allowed "$CLS" -X PUT "${AW[@]}" --data-binary "@$T/valid.wav"
expect_error "query junk" 400 bad_request "/classify?model=zoo1d&top_k=%00%FF&top_k=2" "${AW[@]}" --data-binary "@$T/valid.wav"
expect_error "top_k overflow" 400 bad_request "/classify?model=zoo1d&top_k=99999999999999999999999" "${AW[@]}" --data-binary "@$T/valid.wav"
expect_error "Content-Length beyond the limit" 413 body_too_large "$CLS" "${AW[@]}" -H "Content-Length: 3000000" --data-binary "x"
# A Content-Length that overflows 64 bits: MHD refuses it itself (413, its own HTML body).
check_eq "Content-Length over 2^64" 413 "$(req "$T/cl.json" "$CLS" "${AW[@]}" -H "Content-Length: 99999999999999999999" --data-binary x)"
still_ok "HTTP oddities"
# Raw bytes that are not HTTP, and a request line with a bad version: the connection ends.
raw() { # raw FILE: sends FILE on a fresh connection, prints what comes back (10 s at most)
  timeout $((10 * SLOW)) bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat '$1' >&3; cat <&3" 2>/dev/null
}
head -c 3000 /dev/urandom >"$T/rawjunk"
raw "$T/rawjunk" >"$T/rawjunk.out"
check "binary junk instead of HTTP: connection closed" test $? -ne 124
printf 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n' >"$T/v99"
check "unknown HTTP version refused" bash -c "[[ \$(head -c 12 <(cat '$T/v99' | timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT; cat >&3; cat <&3')) == 'HTTP/1.1 505' ]]"
printf 'POST /classify?model=zoo1d HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n' >"$T/badchunk"
raw "$T/badchunk" >"$T/badchunk.out"
check "malformed chunked encoding: 400 or closed" bash -c "[ ! -s '$T/badchunk.out' ] || head -c 12 '$T/badchunk.out' | grep -q 'HTTP/1.1 4'"
still_ok "raw junk"
check "healthz after all hostile input" test "$(req "$T/h.json" /healthz)" = 200

echo "# $VALID_OK valid requests checked between hostile cases"

# ---------------------------------------------------------------- slow clients
# A client that stops sending is dropped after --request-timeout (3 s).
t0=$(date +%s%N)
timeout $((20 * SLOW)) bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT
  printf 'POST /classify?model=zoo1d HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF' >&3
  cat <&3 >/dev/null"
rc=$?
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
check "stalled upload dropped by the request timeout (after ${ms} ms, not before 2.5 s)" test "$rc" -ne 124 -a "$ms" -ge 2500
# Headers that never end (slowloris), a byte a second: dropped once the idle limit passes
# between bytes, or once the headers outgrow MHD's buffer; never served forever.
t0=$(date +%s%N)
timeout $((20 * SLOW)) bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT
  printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&3
  sleep 4; printf 'X-a: b\r\n' >&3 2>/dev/null; cat <&3 >/dev/null"
rc=$?
t1=$(date +%s%N)
check "slowloris headers dropped ($(((t1 - t0) / 1000000)) ms)" test "$rc" -ne 124
still_ok "slow clients"
stop
check_eq "server H exits 0 after all of it" 0 $?
check "no mhd error other than expected ones" bash -c "! grep -q '\"event\":\"startup_failed\"' '$T/H.log'"

# ---------------------------------------------------------------- connection limits
start P --model zoo1d="$Z1" --max-connections-per-ip 3 --request-timeout 20
idle() { # opens an idle connection, held by a sleeping subshell
  (exec 3<>/dev/tcp/127.0.0.1/$PORT; sleep 30) &
  IDLE+=($!)
}
# until_code CODE: asks /healthz until it gets CODE (000: refused); prints the last answer.
# A condition, not a duration: the loop only bounds how long a broken server can take.
until_code() {
  local got=""
  for _ in $(seq $((100 * SLOW))); do
    got=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL/healthz")
    [ "$got" = "$1" ] && break
    sleep 0.1
  done
  echo "$got"
}
IDLE=()
for _ in 1 2 3; do idle; done
check_eq "--max-connections-per-ip 3: a 4th connection from the address is refused" 000 "$(until_code 000)"
kill "${IDLE[@]}" 2>/dev/null
wait "${IDLE[@]}" 2>/dev/null
check_eq "per-address limit: served again once the idle connections close" 200 "$(until_code 200)"
stop
check_eq "server P exits 0" 0 $?
start C --model zoo1d="$Z1" --max-connections 3 --request-timeout 20
IDLE=()
for _ in 1 2 3; do idle; done
check_eq "--max-connections 3: a 4th connection is refused" 000 "$(until_code 000)"
kill "${IDLE[@]}" 2>/dev/null
wait "${IDLE[@]}" 2>/dev/null
check_eq "connection limit: served again once they close" 200 "$(until_code 200)"
stop
check_eq "server C exits 0" 0 $?

# ---------------------------------------------------------------- memory cap on queued audio
# 8 s clips are 256 kB of samples at 8 kHz; a 600 kB cap holds two, however long the queue.
# The dispatcher is held (test hook) so that the two stay queued for as long as needed.
"$MK" "$T/eight.wav" wav16 8000 1 8 noise 6
mkdir -p "$T/hold"
export AUDIOCLASS_TEST_HOLD_DIR=$T/hold
start Q --model zoo1d="$Z1" --queue-size 100 --max-queue-bytes 600K --max-batch 4096
grep -q 'AUDIOCLASS_MAX_QUEUE_BYTES' <("$EXE" serve --help)
check_eq "--help documents --max-queue-bytes and AUDIOCLASS_MAX_QUEUE_BYTES" 0 $?
touch "$T/hold/dispatch"
QPIDS=()
for i in 1 2; do
  curl -s -o "$T/qa$i.json" -w '%{http_code}' "${AW[@]}" --data-binary "@$T/eight.wav" "$URL$CLS" >"$T/qa$i.code" &
  QPIDS+=($!)
done
depth() { curl -s "$URL/metrics" | awk '/^audioclass_queue_depth /{print $2}'; }
for _ in $(seq $((300 * SLOW))); do [ "$(depth)" = 2 ] && break; sleep 0.1; done
check_eq "two 8 s clips are queued" 2 "$(depth)"
expect_error "third 8 s clip over the 600 kB cap" 503 queue_full "$CLS" "${AW[@]}" --data-binary "@$T/eight.wav"
check_eq "the refusal did not wait for the queued clips (still queued)" 2 "$(depth)"
check_eq "cap refusal has Retry-After" 1 "$(grep -i '^Retry-After:' "$T/err.json.h" | tr -d '\r ' | cut -d: -f2)"
rm "$T/hold/dispatch"
wait "${QPIDS[@]}"
check_eq "the clips under the cap were answered" "200 200" "$(cat "$T/qa1.code") $(cat "$T/qa2.code")"
stop
check_eq "server Q exits 0" 0 $?
unset AUDIOCLASS_TEST_HOLD_DIR

# ---------------------------------------------------------------- memory cap on uploads being received
# 576 kB bodies (6 s of 48 kHz WAV, 192 kB once decoded at 8 kHz) under --max-memory 1M:
# one held half-sent by a client leaves no room for a second (refused before its body is
# read; with "Expect: 100-continue", before it is sent), nor for a chunked one (read, dropped,
# 503); the room comes back when the held upload is done. Timing-free: the held client sends the rest only when told to, and the
# second upload starts once /metrics shows the first one's reservation.
"$MK" "$T/big.wav" wav16 48000 1 6 noise 8
BIG=$(stat -c %s "$T/big.wav")
start U --model zoo1d="$Z1" --max-memory 1M --max-body-bytes 32M --max-audio-seconds 60 --request-timeout 60
check "--help documents --max-memory" bash -c "'$EXE' serve --help | grep -q AUDIOCLASS_MAX_MEMORY"
mkfifo "$T/go"
( exec 3<>/dev/tcp/127.0.0.1/$PORT
  printf 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' "$CLS" "$BIG" >&3
  head -c 100000 "$T/big.wav" >&3
  read -r _ <"$T/go"
  tail -c +100001 "$T/big.wav" >&3
  head -c 12 <&3 | cut -c10-12 >"$T/slow.code" ) &
SLOW_PID=$!
held=""
for _ in $(seq $((300 * SLOW))); do
  held=$(curl -s "$URL/metrics" | awk '$1 == "audioclass_memory_held_bytes" {print $2}')
  [ "$held" = "$BIG" ] && break
  sleep 0.1
done
check_eq "the held upload's announced body is reserved" "$BIG" "$held"
expect_error "second 576 kB upload while one is being received" 503 queue_full "$CLS" "${AW[@]}" --data-binary "@$T/big.wav"
check_eq "memory refusal has Retry-After" 1 "$(grep -i '^Retry-After:' "$T/err.json.h" | tr -d '\r ' | cut -d: -f2)"
check "memory refusal names the limit" grep -q max-memory "$T/err.json"
EXPECT_ARGS=("${AW[@]}" -H "Expect: 100-continue" --data-binary "@$T/big.wav")
check_eq "with Expect: 100-continue: 503, and the body is never sent" "503 0" \
  "$(curl -s -o "$T/err.json" -w '%{http_code} %{size_upload}' "${EXPECT_ARGS[@]}" "$URL$CLS")"
check "the refusal before the body names the limit" grep -q max-memory "$T/err.json"
# A client that writes its whole body before it reads (as many HTTP clients do): refused
# before the body is read, it must still get the answer. Without lingering, the server's close
# with the body unread resets the connection, and the client's writes fail (ECONNRESET/EPIPE)
# before it reads anything. 16 MB is more than the two sockets' buffers can hold.
send_all_then_read() { # BYTES: prints the status line the client got, or the error
  /usr/bin/python3 - "$PORT" "$CLS" "$1" <<'PY'
import socket, sys
port, path, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
try:
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n"
              % (path.encode(), size))
    chunk = bytes(65536)
    for _ in range(size // len(chunk)):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    print(s.makefile("rb").readline().decode()[:12])
except OSError as e:
    print("error: %s" % e)
PY
}
check_eq "a 16 MB body over --max-memory, sent whole before reading: the 413 arrives" "HTTP/1.1 413" \
  "$(send_all_then_read $((16 << 20)))"
expect_error "chunked 576 kB upload while one is being received" 503 queue_full "$CLS" "${AW[@]}" \
  -H "Transfer-Encoding: chunked" --data-binary "@$T/big.wav"
echo go >"$T/go"
wait $SLOW_PID
check_eq "the held upload under the cap was answered" 200 "$(cat "$T/slow.code")"
check_eq "room is given back: the same upload now" 200 "$(req "$T/after.json" "$CLS" "${AW[@]}" --data-binary "@$T/big.wav")"
stop
check_eq "server U exits 0" 0 $?

# ---------------------------------------------------------------- isolation
# Valid requests give the same bytes whether or not hostile requests run beside them.
# --max-batch 1: each window is its own forward pass, so batch composition (which other
# clients decide) cannot move the last bits of a float; the comparison is exact.
if [ -z "$QUICK" ]; then
  start I --model zoo1d="$Z1" --max-batch 1 --max-body-bytes 2M --max-audio-seconds 60 --request-timeout 3
  VALIDS="valid.wav w.wav f.flac v.ogg m.mp3 o.opus"
  for f in $VALIDS; do
    req "$T/iso.$f.ref" "$CLS" "${AW[@]}" --data-binary "@$T/$f" >/dev/null
    jq -c '[.predictions, .windows, .segments]' "$T/iso.$f.ref" >"$T/iso.$f.want"
  done
  # hostile traffic in the background: damaged files, junk, stalls, wrong types
  cat >"$T/hostile.sh" <<EOF
for i in \$(seq 400); do
  case \$((i % 6)) in
  0) curl -s -o /dev/null -H 'Content-Type: audio/wav' --data-binary @$T/bad "$URL$CLS" ;;
  1) curl -s -o /dev/null -H 'Content-Type: audio/wav' --data-binary @$T/random.bin "$URL$CLS" ;;
  2) curl -s -o /dev/null -H 'Content-Type: audio/wav' --data-binary @$T/h1 "$URL$CLS" ;;
  3) curl -s -o /dev/null -F file=@$T/cut "$URL$CLS" ;;
  4) curl -s -o /dev/null -H 'Content-Type: text/plain' --data-binary @$T/valid.wav "$URL$CLS" ;;
  5) curl -s -o /dev/null -H 'Content-Type: audio/wav' --data-binary @$T/one.wav "$URL$CLS?windows=1" ;;
  esac
done
EOF
  bash "$T/hostile.sh" & H1=$!
  bash "$T/hostile.sh" & H2=$!
  diffs=0
  n=0
  for round in $(seq 10); do
    for f in $VALIDS; do
      curl -s -o "$T/iso.out" -H 'Content-Type: audio/wav' --data-binary "@$T/$f" "$URL$CLS"
      n=$((n + 1))
      [ "$(jq -c '[.predictions, .windows, .segments]' "$T/iso.out")" = "$(cat "$T/iso.$f.want")" ] || diffs=$((diffs + 1))
    done
  done
  wait $H1 $H2
  check_eq "isolation: $n valid answers under concurrent hostile traffic, all identical to the reference" 0 "$diffs"
  check "isolation: the hostile traffic did reach the server" bash -c "[ \$(grep -c '\"status\":4' '$T/I.log') -gt 100 ]"
  stop
  check_eq "server I exits 0" 0 $?
fi
finish
