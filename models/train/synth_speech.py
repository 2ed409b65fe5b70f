#!/usr/bin/python3
"""Synthetic spoken words for M5 training, spoken by espeak-ng (Debian package espeak-ng).

Writes OUT/<word>/<voice>_nohash_<n>.wav for the ten keywords and for other words (which
train as _unknown_), each clip with a random English voice, voice variant, speed, pitch and
amplitude drawn from --seed. prep.py takes the folder with `--synth OUT`: the clips are
decoded by `audioclass decode` like every other clip and join the TRAINING split only —
validation stays real speakers (speaker-disjoint), so any gain is measured on real speech.

    /usr/bin/python3 models/train/synth_speech.py --out models/train/runs/synth-speech
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

# espeak-ng's own English voices (no MBROLA databases needed)
VOICES = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
          "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
# the other words of Speech Commands v0.02 (they are _unknown_ in the 12-class task)
UNKNOWN_WORDS = ["backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward",
                 "four", "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila",
                 "six", "three", "tree", "two", "visual", "wow", "zero"]


def variants():
    d = subprocess.run(["espeak-ng", "--voices=variant"], check=True, capture_output=True,
                       text=True).stdout.splitlines()[1:]
    # columns: Pty Language Age/Gender VoiceName File; File is "!v/<variant>" (one has a space)
    found = (re.search(r"!v/(\S+)\s*$", line) for line in d)
    return sorted(m.group(1) for m in found if m)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-keyword", type=int, default=150)
    ap.add_argument("--per-unknown-word", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.RandomState(args.seed)
    var = variants()
    if not var:
        sys.exit("espeak-ng lists no voice variants: is the espeak-ng package installed?")
    version = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    jobs = [(w, args.per_keyword) for w in datasets.KEYWORDS] + \
           [(w, args.per_unknown_word) for w in UNKNOWN_WORDS]
    t0, made = time.time(), []
    for word, n in jobs:
        os.makedirs(os.path.join(args.out, word), exist_ok=True)
        for i in range(n):
            voice, variant = VOICES[rng.randint(len(VOICES))], var[rng.randint(len(var))]
            speed, pitch = int(rng.uniform(100, 230)), int(rng.uniform(10, 90))
            amp = int(rng.uniform(60, 180))
            # the "speaker" is the voice setting; one clip per setting
            name = f"{voice}-{variant}-s{speed}-p{pitch}-{i}".replace("_", "-") + "_nohash_0.wav"
            path = os.path.join(args.out, word, name)
            subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(speed), "-p",
                            str(pitch), "-a", str(amp), "-w", path, word], check=True)
            made.append(dict(word=word, voice=voice, variant=variant, speed=speed, pitch=pitch,
                             amplitude=amp, file=os.path.relpath(path, args.out)))
        print(f"{word}: {n} clips", file=sys.stderr)
    with open(os.path.join(args.out, "synth.json"), "w") as f:
        json.dump({"espeak_ng": version, "command": [sys.executable] + sys.argv,
                   "clips": made}, f, indent=0)
    print(f"{len(made)} clips in {time.time() - t0:.1f}s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
