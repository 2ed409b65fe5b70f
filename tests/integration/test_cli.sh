#!/usr/bin/env bash
# test_cli.sh AUDIOCLASS SOURCE_DIR - the command line: info, classify (order, errors,
# windows, many files), decode, filters. Uses the op-zoo models and generated WAVs, plus
# the shipped models and ../shared/data clips when present.
set -u
EXE=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
ZOO=$SRC/tests/golden/zoo1d.safetensors

write_wav "$T/noise.wav" 2 16000 2
write_wav "$T/short.wav" 1 8000 1
echo "not audio at all" >"$T/garbage.wav"

# info
out=$("$EXE" info "$ZOO")
check "info exits 0" test $? -eq 0
check "info lists labels" grep -q "labels (6)" <<<"$out"
check "info lists layers with shapes" grep -q "conv1d+bn+relu" <<<"$out"
check "info on a missing file fails" bash -c "! '$EXE' info '$T/nope.safetensors'"
check "info on a non-model names the problem" bash -c "'$EXE' info '$T/garbage.wav' 2>&1 | grep -q 'header'"

# classify: one JSON line per input, in order, errors as objects, exit status 1 on any error
"$EXE" classify --model "$ZOO" --top-k 3 "$T/noise.wav" "$T/garbage.wav" "$T/missing.wav" "$T/short.wav" >"$T/out.jsonl"
rc=$?
check_eq "classify exits 1 when a file fails" 1 "$rc"
check_eq "one line per input" 4 "$(wc -l <"$T/out.jsonl")"
check_eq "input order kept" "$T/noise.wav $T/garbage.wav $T/missing.wav $T/short.wav" \
  "$(jq -r .file "$T/out.jsonl" | tr '\n' ' ' | sed 's/ $//')"
check_eq "top-k honoured" 3 "$(sed -n 1p "$T/out.jsonl" | jq '.predictions | length')"
check_eq "garbage is bad_audio" bad_audio "$(sed -n 2p "$T/out.jsonl" | jq -r .error.code)"
check_eq "missing file is io_error" io_error "$(sed -n 3p "$T/out.jsonl" | jq -r .error.code)"
check_eq "stereo 16 kHz input described" "2 16000" "$(sed -n 1p "$T/out.jsonl" | jq -r '"\(.channels) \(.sample_rate)"')"
check "scores sum to 1 over all labels" bash -c "'$EXE' classify --model '$ZOO' --top-k 100 '$T/noise.wav' | jq -e '([.predictions[].score] | add) > 0.999 and ([.predictions[].score] | add) < 1.001'"

# --windows: one segment per window, in time order
seg=$("$EXE" classify --model "$ZOO" --windows "$T/noise.wav")
check_eq "segments = windows" "$(jq .windows <<<"$seg")" "$(jq '.segments | length' <<<"$seg")"
check "segments ordered in time" jq -e '[.segments[].start_s] | . == sort' <<<"$seg"

# many files in one call give the same answers as one at a time (batching across files)
for i in $(seq 1 40); do echo "$T/noise.wav"; echo "$T/short.wav"; done >"$T/list.txt"
"$EXE" classify --model "$ZOO" --list "$T/list.txt" --batch 16 >"$T/many.jsonl"
check_eq "80 files, 80 lines" 80 "$(wc -l <"$T/many.jsonl")"
one_noise=$("$EXE" classify --model "$ZOO" "$T/noise.wav" | jq -c .predictions)
one_short=$("$EXE" classify --model "$ZOO" "$T/short.wav" | jq -c .predictions)
check_eq "batched answers equal single answers (noise)" 40 "$(jq -c .predictions "$T/many.jsonl" | grep -cxF "$one_noise")"
check_eq "batched answers equal single answers (short)" 40 "$(jq -c .predictions "$T/many.jsonl" | grep -cxF "$one_short")"

# usage errors
check "classify without --model is a usage error" bash -c "'$EXE' classify '$T/noise.wav'; test \$? -eq 2"
check "unknown command is a usage error" bash -c "'$EXE' frobnicate; test \$? -eq 2"

# decode: what training reads
"$EXE" decode --rate 8000 --out "$T/cache" "$T/noise.wav" "$T/garbage.wav" "$T/short.wav" 2>/dev/null
check_eq "decode index has an entry per input" 3 "$(jq length "$T/cache.json")"
check_eq "decode records the failure" true "$(jq '.[1] | has("error")' "$T/cache.json")"
check_eq "decoded sizes add up" "$(stat -c %s "$T/cache.f32")" "$(jq '[.[].frames // 0] | add * 4' "$T/cache.json")"
check_eq "2 s at 8 kHz is 16000 samples" 16000 "$(jq '.[0].frames' "$T/cache.json")"

# filters
"$EXE" filters --model "$ZOO" --format json >"$T/f.json"
check_eq "filters: one entry per conv1 channel" 8 "$(jq '.filters | length' "$T/f.json")"
check "filters sorted by centre frequency" jq -e '[.filters[] | select(.dead | not) | .centre_hz] | . == sort' "$T/f.json"
"$EXE" filters --model "$ZOO" --mode probe --freqs 32 --format svg -o "$T/f.svg"
check "filters SVG is well-formed XML" xmllint --noout "$T/f.svg"
check_eq "SVG has one row per filter" 8 "$(grep -o 'class="filter"' "$T/f.svg" | wc -l)"
check "unknown layer names the choices" bash -c "'$EXE' filters --model '$ZOO' --layer nope 2>&1 | grep -q 'conv layers: conv1, conv2, conv3'"
check "kernel mode on a deep layer is refused" bash -c "! '$EXE' filters --model '$ZOO' --layer conv2"

# forward: raw outputs, probabilities and every node's value as safetensors
WIN=$("$EXE" info "$ZOO" | awk '/^input/ {print $2}')
head -c $((WIN * 4 * 2)) /dev/zero >"$T/zeros.f32"
check "forward writes outputs and node values" "$EXE" forward --model "$ZOO" --input "$T/zeros.f32" --out "$T/fw.safetensors" --nodes
# the header: every node/<id> of batch 2, output and probs [2, 6]
hdr=$(/usr/bin/python3 -c 'import json,struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; print(json.dumps(json.loads(b[8:8+n])))' "$T/fw.safetensors")
check_eq "forward: output is [2, 6]" "[2,6]" "$(jq -c .output.shape <<<"$hdr")"
check "forward: every node value has the batch first" jq -e '[to_entries[] | select(.key | startswith("node/")) | .value.shape[0] == 2] | length >= 3 and all' <<<"$hdr"
head -c 10 /dev/zero >"$T/odd.f32"
check "forward refuses input that is not whole windows" bash -c "'$EXE' forward --model '$ZOO' --input '$T/odd.f32' --out '$T/x.st' 2>&1 | grep -q 'whole number'"

# shipped models: their training commands name repository paths, not a build machine's
for f in "$SRC"/models/*.safetensors; do
  abs=$("$EXE" info "$f" | awk '$1 == "training"' | grep -oE '(^|[ =])/[^ ]+' | grep -vE '^[ =]?/usr/' || true)
  check_eq "$(basename "$f"): no absolute path in its training string" "" "$abs"
done

# shipped models on real clips, when both are present
DATA=$SRC/../shared/data
if [ -f "$SRC/models/m5-speech.safetensors" ] && [ -d "$DATA/speech_commands/yes" ]; then
  ls "$DATA"/speech_commands/{yes,no,stop}/*.flac | head -n 60 >"$T/speech.txt"
  "$EXE" classify --model "$SRC/models/m5-speech.safetensors" --list "$T/speech.txt" >"$T/speech.jsonl"
  check_eq "m5-speech: 60 real clips classified" 60 "$(jq -r .label "$T/speech.jsonl" | grep -vc null)"
  check_eq "m5-speech: a 1 s clip is read at -125, 0 and +125 ms" 3 "$(head -n 1 "$T/speech.jsonl" | jq .windows)"
fi
if [ -f "$SRC/models/envnet-esc50.safetensors" ] && [ -d "$DATA/esc50/audio" ]; then
  out=$("$EXE" classify --model "$SRC/models/envnet-esc50.safetensors" "$(ls "$DATA"/esc50/audio/*-0.ogg | head -1)")
  check_eq "envnet-esc50: a 5 s clip gives the paper's 10 crops" 10 "$(jq .windows <<<"$out")"
fi
finish
