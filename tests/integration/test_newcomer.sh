#!/usr/bin/env bash
# test_newcomer.sh AUDIOCLASS SOURCE_DIR - what a new user meets first (issue 18): the
# process is named audioclass, models are found from any directory and after an install,
# models are named by name on the command line, formats get human names, raw PCM, WebM and
# M4A are read, too-short audio is refused, unknown parameters are refused and form fields
# are parameters, openapi.json matches the server's settings, classify reports progress,
# and /metrics has process_* and build info.
set -u
EXE=$(realpath "$1")
SRC=$(realpath "$2")
source "$SRC/tests/integration/lib.sh"
require_tools curl jq pgrep python3 rsvg-convert "$MK"
scratch_dir # T: a temporary folder; PIDS: servers killed on exit (lib.sh)
M5=$SRC/models/m5-speech.safetensors
ENV=$SRC/models/envnet-esc50.safetensors

expect_error() { expect_status_code "$@"; } # lib.sh
# message_has NEEDLE: the last error's message contains NEEDLE
message_has() { check "message says \"$1\"" grep -qF -- "$1" <(jq -r .error.message "$T/err.json"); }

# --- 3: the server is "audioclass" to ps, pgrep and ss (it re-executes itself once) ---
cd "$T" || exit 1
start m5 --model "m5-speech=$M5"
check_eq "comm of the server is audioclass" audioclass "$(cat /proc/$PID/comm)"
check "pgrep -x audioclass finds the server" grep -qx "$PID" <(pgrep -x audioclass)
check "the re-exec kept OMP_WAIT_POLICY=passive" grep -qz '^OMP_WAIT_POLICY=passive$' "/proc/$PID/environ"

# --- 11: unknown parameters are refused by name; form fields are parameters ---
Y=$SRC/examples/yes.flac
expect_error "topk (a typo)" 400 bad_request "/classify?model=m5-speech&topk=3" --data-binary "@$Y" -H 'Content-Type: audio/flac'
message_has '"topk"'
message_has "model, top_k, windows"
check_eq "form fields model and top_k are used" 200 "$(req "$T/form.json" /classify -F model=m5-speech -F top_k=2 -F "file=@$Y")"
check_eq "  two predictions" 2 "$(jq '.predictions | length' "$T/form.json")"
check_eq "  the label" yes "$(jq -r .label "$T/form.json")"
check_eq "form field windows=1 adds segments" 200 "$(req "$T/formw.json" /classify -F windows=1 -F "file=@$Y")"
check "  segments" jq -e '.segments | length > 0' "$T/formw.json"
expect_error "unknown form field" 400 bad_request /classify -F modle=m5-speech -F "file=@$Y"
message_has '"modle"'
expect_error "a parameter in the query and the form" 400 bad_request "/classify?top_k=1" -F top_k=2 -F "file=@$Y"
expect_error "bad form value" 400 bad_request /classify -F top_k=lots -F "file=@$Y"
message_has "top_k"
check_eq "windows=true is accepted" 200 "$(req "$T/wt.json" "/classify?windows=true" --data-binary "@$Y" -H 'Content-Type: audio/flac')"
expect_error "windows=yes" 400 bad_request "/classify?windows=yes" --data-binary "@$Y" -H 'Content-Type: audio/flac'
message_has "0, 1, true or false"
expect_error "/models takes no parameters" 400 bad_request "/models?verbose=1"
message_has '"verbose"'
expect_error "/healthz takes no parameters" 400 bad_request "/healthz?x=1"
expect_error "/filters: unknown parameter" 400 bad_request "/filters?model=m5-speech&bins=64"
check_eq "/filters?freqs= (the CLI's --freqs)" 200 "$(req "$T/f64.json" "/filters?model=m5-speech&freqs=64")"
check_eq "  64 frequencies" 64 "$(jq .n_freqs "$T/f64.json")"
check_eq "/filters?n= still works" 200 "$(req "$T/n64.json" "/filters?model=m5-speech&n=64")"

# --- 7: format names people use ---
"$MK" "$T/t.ogg" ogg 16000 1 1 tone 300 && "$MK" "$T/t.mp3" mp3 16000 1 1 tone 300 &&
  "$MK" "$T/t.wav" wav16 16000 1 1 tone 300 && "$MK" "$T/t.flac" flac 16000 1 1 tone 300 ||
  bad "mkaudio"
for f in "ogg:Ogg Vorbis" "mp3:MP3" "wav:WAV" "flac:FLAC"; do
  ext=${f%%:*} name=${f#*:}
  req "$T/fmt.json" /classify --data-binary "@$T/t.$ext" -H 'Content-Type: application/octet-stream' >/dev/null
  check_eq "format of .$ext" "$name" "$(jq -r .format "$T/fmt.json")"
done

# --- 8: a minimum duration per model ---
"$MK" "$T/3samples.wav" wav16 16000 1 0.0002 tone 300 || bad "mkaudio 3 samples"
expect_error "3 samples" 422 audio_too_short /classify --data-binary "@$T/3samples.wav" -H 'Content-Type: audio/wav'
message_has "m5-speech needs at least"
req "$T/models.json" /models/m5-speech >/dev/null
MIN=$(jq .min_duration_s "$T/models.json")
check "/models/m5-speech says min_duration_s" jq -e '.min_duration_s > 0' "$T/models.json"
"$MK" "$T/short.wav" wav16 16000 1 "$(jq -n "$MIN * 0.9")" tone 300
"$MK" "$T/enough.wav" wav16 16000 1 "$(jq -n "$MIN * 1.1")" tone 300
expect_error "just under the minimum" 422 audio_too_short /classify --data-binary "@$T/short.wav" -H 'Content-Type: audio/wav'
check_eq "just over the minimum" 200 "$(req "$T/ok.json" /classify --data-binary "@$T/enough.wav" -H 'Content-Type: audio/wav')"

# --- 9: raw PCM, WebM/Opus, M4A/AAC; 415 lists what is read ---
"$MK" "$T/yes16.wav" wav16 16000 1 1 noise 3
tail -c +45 "$T/yes16.wav" >"$T/pcm.s16le"      # the canonical 44-byte header off
dd if="$T/pcm.s16le" of="$T/pcm.s16be" conv=swab status=none
req "$T/wav.json" /classify --data-binary "@$T/yes16.wav" -H 'Content-Type: audio/wav' >/dev/null
check_eq "audio/L16 (big-endian)" 200 "$(req "$T/l16.json" /classify --data-binary "@$T/pcm.s16be" -H 'Content-Type: audio/L16; rate=16000; channels=1')"
check_eq "  same answer as the WAV" "$(jq -c .predictions "$T/wav.json")" "$(jq -c .predictions "$T/l16.json")"
check_eq "  format" "raw PCM" "$(jq -r .format "$T/l16.json")"
check_eq "audio/pcm (little-endian)" 200 "$(req "$T/pcm.json" /classify --data-binary "@$T/pcm.s16le" -H 'Content-Type: audio/pcm;rate=16000')"
check_eq "  same answer as the WAV" "$(jq -c .predictions "$T/wav.json")" "$(jq -c .predictions "$T/pcm.json")"
check_eq "audio/L16 as a form part" 200 "$(req "$T/l16f.json" /classify -F "file=@$T/pcm.s16be;type=audio/L16;rate=16000")"
check_eq "  same answer" "$(jq -c .predictions "$T/wav.json")" "$(jq -c .predictions "$T/l16f.json")"
check_eq "audio/L16 at 8 kHz stereo" 200 "$(req "$T/l16s.json" /classify --data-binary "@$T/pcm.s16be" -H 'Content-Type: audio/L16;rate=8000;channels=2')"
check_eq "  2 channels, 1 s" "2 1" "$(jq -r '"\(.channels) \(.duration_s)"' "$T/l16s.json")"
expect_error "audio/L16 without rate" 400 bad_request /classify --data-binary "@$T/pcm.s16be" -H 'Content-Type: audio/L16'
message_has "rate="
printf 'abcde' >"$T/odd.raw"
expect_error "not a whole number of frames" 400 bad_audio /classify --data-binary "@$T/odd.raw" -H 'Content-Type: audio/L16;rate=8000'
for f in "yes.webm:WebM/Opus" "yes.m4a:M4A/AAC"; do
  file=${f%%:*} name=${f#*:}
  check_eq "$name" 200 "$(req "$T/av.json" /classify --data-binary "@$SRC/tests/fixtures/$file" -H 'Content-Type: audio/webm')"
  check_eq "  $name: format" "$name" "$(jq -r .format "$T/av.json")"
  check_eq "  $name: label" yes "$(jq -r .label "$T/av.json")"
done
expect_error "PCM inside Matroska" 415 unsupported_audio /classify --data-binary "@$SRC/tests/fixtures/pcm-in.mka" -H 'Content-Type: audio/x-matroska'
expect_error "text/plain" 415 unsupported_media_type /classify --data-binary "@$Y" -H 'Content-Type: text/plain'
message_has "audio/L16;rate="
message_has "WebM/Opus"
expect_error "not audio at all" 400 bad_audio /classify --data-binary "@$SRC/README.md" -H 'Content-Type: audio/wav'
message_has "WebM"

# --- 12: openapi.json ---
req "$T/openapi.json" /openapi.json >/dev/null
check "openapi: no security requirement when auth is off" jq -e 'has("security") | not' "$T/openapi.json"
check "openapi: licence" jq -e '.info.license.name | length > 0' "$T/openapi.json"
check "openapi: invalid_argument and every 4xx code listed" jq -e '.components.schemas.Error.properties.error.properties.code.enum as $e |
  ["invalid_argument","bad_request","bad_audio","unauthorized","not_found","unknown_model","method_not_allowed","body_too_large",
   "audio_too_long","unsupported_media_type","unsupported_audio","audio_empty","audio_too_short","queue_full","shutting_down"] |
  all(. as $c | $e | index($c))' "$T/openapi.json"
check "openapi: every operation documents 405 and 400" jq -e '[.paths[][] | .responses | has("405") and has("400")] | all' "$T/openapi.json"
check "openapi: /filters documents freqs" jq -e '[.paths["/filters"].get.parameters[].name] | index("freqs")' "$T/openapi.json"
check "openapi: raw PCM and the form's parameters" jq -e '.paths["/classify"].post.requestBody.content |
  has("audio/L16") and has("audio/pcm") and (."multipart/form-data".schema.properties | has("model") and has("top_k"))' "$T/openapi.json"
check_eq "405 is what openapi says" 405 "$(req "$T/405.json" /models -X DELETE)"

# --- 15: /metrics: process_* and build info ---
req "$T/metrics.txt" /metrics >/dev/null
VERSION=$("$EXE" --version | awk '{print $2}')
check "build info with the binary's version" grep -qx "audioclass_build_info{version=\"$VERSION\"} 1" "$T/metrics.txt"
RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
check "process_resident_memory_bytes near /proc's VmRSS" awk -v kb="$RSS_KB" \
  '/^process_resident_memory_bytes / { r = $2 / 1024; ok = r > kb / 2 && r < kb * 2 } END { exit !ok }' "$T/metrics.txt"
check "process_cpu_seconds_total > 0" awk '/^process_cpu_seconds_total / { ok = $2 > 0 } END { exit !ok }' "$T/metrics.txt"
FDS=$(ls "/proc/$PID/fd" | wc -l)
check "process_open_fds near the fds /proc lists" awk -v n="$FDS" \
  '/^process_open_fds / { ok = $2 >= n - 3 && $2 <= n + 3 } END { exit !ok }' "$T/metrics.txt"
NOW=$(date +%s)
check "process_start_time_seconds within the last hour" awk -v now="$NOW" \
  '/^process_start_time_seconds / { ok = $2 <= now + 2 && $2 > now - 3600 } END { exit !ok }' "$T/metrics.txt"
check "process_max_fds" grep -q '^process_max_fds ' "$T/metrics.txt"
stop
check_eq "SIGTERM: exit 0" 0 "$?"

# --- 12: with --api-key-file the document says so ---
echo "k3y-for-tests" >"$T/keys"
start auth --model "m5-speech=$M5" --api-key-file "$T/keys"
req "$T/openapi-auth.json" /openapi.json -H 'X-API-Key: k3y-for-tests' >/dev/null
check "openapi: security requirement with --api-key-file" jq -e '.security == [{"bearer": []}, {"apiKey": []}]' "$T/openapi-auth.json"
stop >/dev/null

# --- 4: models found from any working directory, and after an install ---
BUILD=$(dirname "$EXE")
if [ -d "$BUILD/../models" ]; then
  start cwd-elsewhere # in $T, which has no models/: like `cd build && ./audioclass serve`
  req "$T/m.json" /models >/dev/null
  check "serve from another directory finds ../models beside the build tree" jq -e '[.models[].name] | index("m5-speech")' "$T/m.json"
  stop >/dev/null
else
  ok "(build tree not inside the checkout: ../models check skipped)"
fi
if cmake --install "$BUILD" --prefix "$T/prefix" --component audioclass >"$T/install.log" 2>&1; then
  ok "cmake --install into a temporary prefix"
  check "installed binary" test -x "$T/prefix/bin/audioclass"
  check "installed models" test -f "$T/prefix/share/audioclass/models/m5-speech.safetensors"
  mkdir -p "$T/empty" && cd "$T/empty"
  EXE_SAVED=$EXE EXE=$T/prefix/bin/audioclass
  start installed
  req "$T/mi.json" /models >/dev/null
  SHIPPED=$(cd "$SRC/models" && ls *.safetensors | sed 's/\.safetensors$//' | jq -R . | jq -sc 'sort')
  check_eq "installed server serves the installed models (every models/*.safetensors)" "$SHIPPED" \
    "$(jq -c '[.models[].name] | sort' "$T/mi.json")"
  stop >/dev/null
  check_eq "installed classify --model NAME" yes \
    "$("$EXE" classify --quiet --model m5-speech "$Y" | jq -r .label)"
  EXE=$EXE_SAVED
  cd "$T"
else
  bad "cmake --install"; cat "$T/install.log"
fi
# A binary with no models anywhere near it says where it looked.
mkdir -p "$T/lonely/bin" && cp "$EXE" "$T/lonely/bin/audioclass"
if [ ! -d /usr/local/share/audioclass/models ]; then
  (cd "$T/lonely" && "$T/lonely/bin/audioclass" serve --port 0 2>"$T/lonely.log")
  check_eq "no models directory: exit 1" 1 "$?"
  check "  the error lists where it looked" grep -q 'looked in: models, .*lonely/bin/../models' "$T/lonely.log"
  check "  and what to pass" grep -q -- '--models-dir' "$T/lonely.log"
else
  ok "(an installed copy exists: the no-models check skipped)"
fi

# --- 5: the command line takes model names as the server does ---
cd "$SRC" || exit 1
check_eq "classify --model m5-speech" yes "$("$EXE" classify --quiet --model m5-speech "$Y" | jq -r .label)"
check_eq "info m5-speech" m5-speech "$("$EXE" info m5-speech | awk '$1 == "name" {print $2; exit}')"
"$EXE" classify --model no-such-model "$Y" 2>"$T/nosuch.log" >/dev/null
check "an unknown name lists the models" grep -q 'no model named "no-such-model".*m5-speech' "$T/nosuch.log"
check_eq "filters --freqs 64 = HTTP freqs=64" "$(jq -c '.freqs_hz' "$T/f64.json")" \
  "$("$EXE" filters --model m5-speech --freqs 64 | jq -c .freqs_hz)"

# --- 16: the filter picture: small, ticks on the filter axis, the mel curve fitted to the dots ---
"$EXE" filters --model m5-speech --format svg -o "$T/m5.svg"
check "m5 filter SVG under 200 kB (was 1.2 MB)" test "$(stat -c %s "$T/m5.svg")" -lt 200000
check "  renders" rsvg-convert "$T/m5.svg" -o "$T/m5.png"
check "  one tooltip row per filter" test "$(grep -o 'class="filter"' "$T/m5.svg" | wc -l)" -eq 64
check "  the filter axis has ticks (1, 8, 16, ... 64)" python3 - "$T/m5.svg" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
labels = set(re.findall(r'text-anchor="end">(\d+)</text>', s))
sys.exit(0 if {"1", "8", "16", "32", "64"} <= labels else 1)
PY
check "  the mel curve runs through the learned centres (mean gap < 25 px)" python3 - "$T/m5.svg" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
curve = [tuple(map(float, p.split(","))) for p in re.search(r'stroke="#d62728"[^>]*points="([^"]+)"', s).group(1).split()]
dots = [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', s)]
gap = sum(abs(cy - dy) for (cx, cy), (dx, dy) in zip(curve, dots)) / len(dots)
sys.exit(0 if len(dots) == len(curve) and gap < 25 else 1)
PY

# --- 16: the model cards' pictures: legends off the curves, readable confusion labels ---
for m in m5-speech envnet-esc50; do
  check "$m training curves: the legend is below the plot" python3 - "$SRC/models/$m-training.svg" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
frame = re.search(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="none"', s)
bottom = float(frame.group(1)) + float(frame.group(2))
legend = [float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" font-size="12">[^<]*axis[^<]*</text>', s)]
sys.exit(0 if legend and min(legend) > bottom + 30 else 1)
PY
  check "$m confusion matrix: labels at 11 px or more" python3 - "$SRC/models/$m-confusion.svg" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
sizes = [float(x) for x in re.findall(r'text-anchor="end" font-size="([\d.]+)"', s)]
sys.exit(0 if sizes and min(sizes) >= 11 else 1)
PY
done

# --- 13: classify reports progress and a summary on stderr ---
printf '%s\n' "$Y" "$Y" "$T/3samples.wav" >"$T/list.txt"
"$EXE" classify --model m5-speech --list "$T/list.txt" >"$T/out.jsonl" 2>"$T/progress.txt"
check_eq "classify --list: one line per file" 3 "$(wc -l <"$T/out.jsonl")"
check "  summary on stderr" grep -q '3/3 files, 1 failed' "$T/progress.txt"
check "  the too-short file is refused" grep -q audio_too_short "$T/out.jsonl"
"$EXE" classify --quiet --model m5-speech --list "$T/list.txt" >/dev/null 2>"$T/quiet.txt"
check_eq "  --quiet: nothing on stderr" 0 "$(wc -c <"$T/quiet.txt")"

finish
