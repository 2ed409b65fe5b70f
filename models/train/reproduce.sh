#!/bin/sh
# Reproduce a shipped model from the data, one command per model:
#   models/train/reproduce.sh m5     [SPEECH_COMMANDS_ROOT [EXTRA_WORD_FOLDERS_ROOT]]
#   models/train/reproduce.sh envnet [ESC50_ROOT]
# Roots may be the layouts in /work/shared/data or the official full datasets
# (Speech Commands with validation_list.txt; ESC-50 with meta/esc50.csv, fold 1 validates).
# Needs build/audioclass (cmake -S . -B build && cmake --build build): the training data is
# decoded by the server's own decoder and resampler. Runs niced, logs under models/train/runs/.
# Each step can be re-run; training steps resume from their last checkpoint.
set -eu
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
R=models/train/runs
mkdir -p $R/cache
case "${1:-}" in
m5)
    DATA=${2:-/work/shared/data/speech_commands}
    EXTRA=${3:-/work/shared/data/speech_commands_v0.01_sample}
    X=""; [ -d "$EXTRA" ] && X="--extra $EXTRA"
    nice -n 10 $PY models/train/prep.py speech --data "$DATA" $X --out $R/cache/speech8k
    REC="--epochs 120 --snr-min 5 --noise-prob 0.6 --seed 1"
    # 1) speaker-disjoint validation run (numbers, pictures), 2) the shipped run on train+val
    nice -n 10 $PY models/train/train_m5.py --cache $R/cache/speech8k --out $R/m5 $REC --resume > $R/m5.log 2>&1
    nice -n 10 $PY models/train/train_m5.py --cache $R/cache/speech8k --out $R/m5-all $REC --train-on-all --resume > $R/m5-all.log 2>&1
    nice -n 10 $PY models/train/finalize.py --checkpoint $R/m5/last.pt --cache $R/cache/speech8k \
        --results $R/m5/results.json --pictures models/m5-speech
    nice -n 10 $PY models/train/finalize.py --checkpoint $R/m5-all/last.pt --cache $R/cache/speech8k \
        --results $R/m5-all/results.json --no-eval --export models/m5-speech.safetensors --name m5-speech \
        --golden tests/golden/m5-speech.golden.safetensors
    ;;
envnet)
    DATA=${2:-/work/shared/data/esc50}
    nice -n 10 $PY models/train/prep.py esc50 --data "$DATA" --out $R/cache/esc50-16k
    REC="--epochs 40 --batch 32 --lr 0.01 --bc 0 --val-every 10 --seed 1"
    nice -n 10 $PY models/train/train_envnet.py --cache $R/cache/esc50-16k --out $R/envnet $REC --resume > $R/envnet.log 2>&1
    nice -n 10 $PY models/train/finalize.py --checkpoint $R/envnet/last.pt --cache $R/cache/esc50-16k \
        --results $R/envnet/results.json --pictures models/envnet-esc50 \
        --quant fc5=i8 --quant fc6=i8 --quant fc7=i8 \
        --export models/envnet-esc50.safetensors --name envnet-esc50 \
        --golden tests/golden/envnet-esc50.golden.safetensors
    ;;
*)
    echo "usage: $0 m5|envnet [DATA_ROOT [EXTRA_ROOT]]" >&2
    exit 2
    ;;
esac
