#!/bin/bash
# bench/ab.sh OLD NEW [ROUNDS] - whole networks, items/s, two builds of audioclass alternated.
#
# OLD and NEW are audioclass binaries (build one commit in a worktree beside this one:
#   git worktree add /tmp/base REV && cmake -S /tmp/base -B /tmp/base/build -DAC_TESTS=OFF \
#     && cmake --build /tmp/base/build --target audioclass).
# Each network runs `bench --seconds 2` under OLD, then under NEW, every round, so both see
# the same machine state; the ratio is NEW / OLD within the round. Networks: the shipped
# models (EnvNet also as an FP32 copy) and bench/ops_models.py's, written to $OPS
# (default /tmp/opsm) when missing. Run it on a quiet machine.
set -eu
OLD=$1 NEW=$2 ROUNDS=${3:-2}
cd "$(dirname "$0")/.."
OPS=${OPS:-/tmp/opsm}
[ -f "$OPS/wavenet.safetensors" ] || /usr/bin/python3 bench/ops_models.py "$OPS" > /dev/null
FP32=$OPS/envnet-esc50-fp32.safetensors
[ -f "$FP32" ] || /usr/bin/python3 models/train/set_compute.py models/envnet-esc50.safetensors \
    --compute fp32 --out "$FP32" > /dev/null
rate() { env -u OPENBLAS_CORETYPE "$1" bench --model "$2" --batch "$3" --threads "$4" --seconds 2 |
         grep -o '"items_per_s":[0-9.]*' | cut -d: -f2; }
for r in $(seq "$ROUNDS"); do
    for spec in "$OPS/convnext 8 2" "$OPS/dscnn 8 2" "$OPS/wavenet 8 2" "$OPS/crnn-gru 8 2" \
                "$OPS/crnn-lstm 8 2" "models/m5-speech 1 1" "models/m5-speech 64 2" \
                "${FP32%.safetensors} 10 2" "models/envnet-esc50 10 2" "models/kws-speech 16 2"; do
        set -- $spec
        old=$(rate "$OLD" "$1.safetensors" "$2" "$3")
        new=$(rate "$NEW" "$1.safetensors" "$2" "$3")
        printf 'round %s  %-22s batch %-3s threads %s  old %10s  new %10s  ratio %s\n' "$r" \
            "$(basename "$1")" "$2" "$3" "$old" "$new" "$(awk -v a="$new" -v b="$old" 'BEGIN{printf "%.2f", a / b}')"
    done
done
