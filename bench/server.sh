#!/usr/bin/env bash
# server.sh [SECONDS] - POST /classify throughput and latency: audioclass against a minimal
# Python service around PyTorch (bench/pytorch_service.py) and a Node service around ONNX
# Runtime (bench/ort/ort_service.mjs: what a user would build with ONNX Runtime; the models
# exported by bench/compare_onnx.py --export-onnx), same models, same inputs, in one run.
# SERVICES="audioclass ort" (default: all three) picks the services. M5 gets a 1 s 16 kHz WAV, EnvNet a 5 s 44.1 kHz stereo WAV (resampled to 16 kHz
# and cut into 10 crops by both). For each: saturation (wrk, 8 keep-alive connections) and
# a fixed rate of half of each service's own saturation (build/bench/pace: open loop,
# latency counted from the scheduled send time, so a stall is not hidden). Also the
# server's RSS after loading both models and after the load. The clients run on the same
# 2 cores, so every service is measured under the same client overhead. Against ONNX
# Runtime, "at the same p99": audioclass is also paced at 3x the rate ONNX Runtime's service
# was paced at, and the two p99s are printed side by side.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-15}
B=$ROOT/build
EXE=$B/audioclass
M5=$ROOT/models/m5-speech.safetensors
ENV=$ROOT/models/envnet-esc50.safetensors
T=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
for f in "$EXE" "$B/tests/tools/mkaudio" "$B/bench/pace" "$M5" "$ENV"; do [ -e "$f" ] || { echo "missing $f (make build; trained models)"; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk"; exit 1; }

"$B/tests/tools/mkaudio" "$T/speech.wav" wav16 16000 1 1 noise 1 >/dev/null
"$B/tests/tools/mkaudio" "$T/env.wav" wav16 44100 2 5 noise 2 >/dev/null

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
wait_up() { for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" -H "Content-Type: audio/wav" -X POST --data-binary @"$T/speech.wav" && return 0; sleep 0.2; done; echo "server at $1 did not come up; its log:"; tail -5 "$2"; exit 1; }

"$EXE" serve --port 18181 --model "m5-speech=$M5" --model "envnet-esc50=$ENV" 2>"$T/audioclass.log" &
PIDS+=($!); AC_PID=$!
SERVICES=${SERVICES:-audioclass pytorch ort}
PORT_audioclass=18181 PORT_pytorch=18182 PORT_ort=18183
declare -A PID
PID[audioclass]=$AC_PID
if [[ " $SERVICES " == *" pytorch "* ]]; then
  /usr/bin/python3 "$ROOT/bench/pytorch_service.py" --port 18182 --threads "$(nproc)" "$M5" "$ENV" >"$T/pytorch.log" 2>&1 &
  PIDS+=($!); PID[pytorch]=$!
fi
if [[ " $SERVICES " == *" ort "* ]]; then
  command -v node >/dev/null || { echo "node missing: apt-get install nodejs npm"; exit 1; }
  [ -d "$ROOT/bench/ort/node_modules/onnxruntime-node" ] ||
    (cd "$ROOT/bench/ort" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
  /usr/bin/python3 "$ROOT/bench/compare_onnx.py" --export-onnx "$T/onnx" >/dev/null
  node "$ROOT/bench/ort/ort_service.mjs" 18183 "$(nproc)" "m5-speech=$T/onnx/m5-speech.onnx:$M5" \
    "envnet-esc50=$T/onnx/envnet-esc50.onnx:$ENV" >"$T/ort.log" 2>&1 &
  PIDS+=($!); PID[ort]=$!
fi
for svc in $SERVICES; do
  port=PORT_$svc
  wait_up "http://127.0.0.1:${!port}/classify?model=m5-speech" "$T/${svc}.log"
done
declare -A RSS0
for svc in $SERVICES; do RSS0[$svc]=$(rss_kb "${PID[$svc]}"); done

# Each run starts after a pause: a saturated service still works off the requests that were
# in flight when the client stopped (the Python service for seconds), and that work must not
# land on the next measurement.
settle() { sleep 4; }
# saturate NAME URL BODY -> "NAME rps=... p50=... p90=... p99=... max=... requests=... errors=..."
saturate() {
  settle
  BODY=$3 wrk -t1 -c8 -d"${SECS}s" --timeout 10s -s "$ROOT/bench/post.lua" "$2" 2>&1 | grep RESULT | sed "s#^RESULT #$1 #"
}
# paced NAME URL BODY RATE -> the same fields, from bench/pace at RATE requests/s
paced() {
  settle
  "$B/bench/pace" --url "$2" --body "$3" --rate "$4" --seconds "$SECS" --conns 8 2>/dev/null | grep RESULT |
    sed "s#^RESULT rate=[0-9.]* #$1 #; s#ok=\([0-9]*\)#requests=\1#"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
row() { awk '{printf "%-34s %10s %9s %9s %9s %7s\n", $1, substr($2,5), substr($3,5), substr($5,5), substr($6,5), substr($8,8)}'; }

printf "%-34s %10s %9s %9s %9s %7s\n" "case" "req/s" "p50 ms" "p99 ms" "max ms" "errors"
declare -A RPS
for model in m5-speech envnet-esc50; do
  body=$T/speech.wav; [ $model = envnet-esc50 ] && body=$T/env.wav
  for name in $SERVICES; do
    port=PORT_$name
    line=$(saturate "$name/$model/saturation" "http://127.0.0.1:${!port}/classify?model=$model" "$body")
    RPS[$name/$model]=$(echo "$line" | field rps)
    echo "$line" | row
  done
  # each service at half of its own saturation rate
  declare -A P99
  for name in $SERVICES; do
    port=PORT_$name
    rate=$(awk -v r="${RPS[$name/$model]}" 'BEGIN {printf "%.1f", r / 2}')
    line=$(paced "$name/$model/at_${rate%.*}_rps" "http://127.0.0.1:${!port}/classify?model=$model" "$body" "$rate")
    P99[$name]=$(echo "$line" | field p99)
    echo "$line" | row
  done
  for other in pytorch ort; do
    [[ " $SERVICES " == *" $other "* ]] || continue
    printf "  => audioclass / %s saturation throughput on %s: %.1fx\n" "$other" "$model" \
      "$(awk -v a="${RPS[audioclass/$model]}" -v b="${RPS[$other/$model]}" 'BEGIN {print a / b}')"
  done
  if [[ " $SERVICES " == *" ort "* ]]; then
    # audioclass at 3x the rate ONNX Runtime's service ran at above: its p99 against ORT's
    rate=$(awk -v r="${RPS[ort/$model]}" 'BEGIN {printf "%.1f", 3 * r / 2}')
    line=$(paced "audioclass/$model/at_${rate%.*}_rps" "http://127.0.0.1:18181/classify?model=$model" "$body" "$rate")
    echo "$line" | row
    printf "  => at 3x ONNX Runtime's rate on %s, audioclass p99 %s ms vs ONNX Runtime's %s ms at 1x\n" "$model" \
      "$(echo "$line" | field p99)" "${P99[ort]}"
  fi
done
declare -A RSS1
for svc in $SERVICES; do RSS1[$svc]=$(rss_kb "${PID[$svc]}"); done
RSS_AC0=${RSS0[audioclass]} RSS_AC1=${RSS1[audioclass]}
W=$(( ($(stat -c %s "$M5") + $(stat -c %s "$ENV")) / 1024 ))
echo
echo "model files: $((W / 1024)) MiB"
for svc in $SERVICES; do
  printf "%-10s RSS: %d MiB after loading, %d MiB after the load\n" "$svc" $((RSS0[$svc] / 1024)) $((RSS1[$svc] / 1024))
done
awk -v r="$RSS_AC1" -v w="$W" 'BEGIN {printf "audioclass RSS / (1.2 x weights + 64 MiB) = %.3f\n", r / (1.2 * w + 65536)}'
