#!/usr/bin/python3
"""How a streaming keyword spotter does on live audio, measured through the engine itself
(`audioclass stream`, the server's session code) on held-out speakers.

    /usr/bin/python3 models/train/eval_stream.py --model models/kws-speech.safetensors \\
        --cache models/train/runs/cache/speech8k --out models/train/runs/kws-stream.json

Streams are made from the validation split of the prep.py cache (speakers no training clip
has; the Speech Commands v0.02 test-set clips only):
  * keyword streams: every keyword clip once, in a seeded random order, each followed by a
    gap of 0.4-1.2 s of background noise (the dataset's noise recordings, 0-10% of full
    scale); a keyword counts as found when an event with its label ends (t_end_s) between
    the word's start and 1.0 s after the word's end; the word's span is where the clip's
    20 ms energy is within 25 dB of its peak. Latency = event t_end_s - word end: how long
    after a word is over the service says so.
  * speech without a command word: every _unknown_ clip (the other 25 words), with the same
    gaps; every event there is a false accept, reported per hour of audio.
    The extra word folders' clips of validation-split speakers (other words) are a second,
    larger such stream.
  * the _silence_ clips (background noise) in one stream: false accepts per hour too.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prep  # noqa: E402

RATE = 8000
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def word_span(clip):
    """(start, end) in samples of the loud part: 20 ms frames within 25 dB of the peak."""
    f = 160
    n = max(len(clip) // f, 1)
    e = np.array([float(np.mean(clip[i * f:(i + 1) * f] ** 2)) + 1e-12 for i in range(n)])
    loud = np.flatnonzero(10 * np.log10(e / e.max()) > -25)
    return int(loud[0] * f), int(min((loud[-1] + 1) * f, len(clip)))


def build(clips, noise, rng):
    """Concatenates clips with noise gaps -> (signal, [(start, end) of each clip's word])."""
    parts, spans, at = [], [], 0
    for c in clips:
        gap = int(rng.uniform(0.4, 1.2) * RATE)
        z = noise[rng.randint(len(noise))]
        s = rng.randint(0, len(z) - gap)
        parts.append(z[s:s + gap] * rng.uniform(0, 0.1))
        at += gap
        a, b = word_span(c)
        spans.append((at + a, at + b))
        parts.append(c)
        at += len(c)
    parts.append(np.zeros(RATE, np.float32))
    return np.concatenate(parts).astype(np.float32), spans


def run_engine(binary, model, signal, args):
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        signal.astype("<f4").tofile(f.name)
        out = subprocess.run([binary, "stream", "--model", model, "--format", "f32le", "--rate", str(RATE),
                              "--events", *args, f.name], check=True, capture_output=True, text=True).stdout
    msgs = [json.loads(line) for line in out.splitlines()]
    return [m for m in msgs if m["type"] == "event"], msgs[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", default="build/audioclass")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--allow-dev-cache", action="store_true")
    args = ap.parse_args()
    index, data = prep.open_cache(args.cache, args.allow_dev_cache)

    def arr(it):
        return np.array(data[it["offset"]:it["offset"] + it["frames"]], np.float32)
    val = [it for it in index["items"] if it["split"] == "val" and it.get("source") in ("local", "official")]
    noise = [arr(it) for it in index["items"] if it["split"] == "noise"]
    rng = np.random.RandomState(args.seed)
    kw = [it for it in val if it["label"] in KEYWORDS]
    kw = [kw[i] for i in rng.permutation(len(kw))]
    signal, spans = build([arr(it) for it in kw], noise, rng)
    events, start = run_engine(args.bin, args.model, signal, [])
    found, wrong, lat = 0, 0, []
    used = set()
    per_word = {w: [0, 0] for w in KEYWORDS}
    for it, (a, b) in zip(kw, spans):
        lo, hi = a / RATE, b / RATE + 1.0
        near = [i for i, e in enumerate(events) if lo <= e["t_end_s"] <= hi and i not in used]
        hit = [i for i in near if events[i]["label"] == it["label"]]
        per_word[it["label"]][1] += 1
        if hit:
            used.add(hit[0])
            found += 1
            per_word[it["label"]][0] += 1
            lat.append(events[hit[0]]["t_end_s"] - b / RATE)
        elif near:
            wrong += 1
    extra = len(events) - len(used)  # events matching no keyword: false accepts in keyword streams
    unk = [it for it in val if it["label"] == "_unknown_"]
    unk_signal, _ = build([arr(it) for it in unk], noise, rng)
    unk_events, _ = run_engine(args.bin, args.model, unk_signal, [])
    # more speech without a command word: the extra word folders' clips of validation-split
    # speakers (Speech Commands training-split speakers of the full dataset, none in ours)
    more = [it for it in index["items"] if it["split"] == "val" and it["label"] == "_unknown_"
            and it.get("source") in ("v0.01", "v0.02", "speech_commands_v0.01_sample")]
    more_signal, _ = build([arr(it) for it in more], noise, rng)
    more_events, _ = run_engine(args.bin, args.model, more_signal, [])
    sil = [it for it in val if it["label"] == "_silence_"]
    sil_signal, _ = build([arr(it) for it in sil], noise, rng)
    sil_events, _ = run_engine(args.bin, args.model, sil_signal, [])
    hours = lambda x: len(x) / RATE / 3600  # noqa: E731
    lat = np.array(lat)
    res = {
        "model": args.model, "start": start, "seed": args.seed,
        "keywords": len(kw), "keyword_stream_s": round(len(signal) / RATE, 1),
        "found": found, "recall": found / len(kw), "wrong_label_near_word": wrong,
        "extra_events_in_keyword_stream": extra,
        "per_word_recall": {w: round(f / max(n, 1), 3) for w, (f, n) in per_word.items()},
        "latency_s": {"p10": float(np.percentile(lat, 10)), "p50": float(np.median(lat)),
                      "p90": float(np.percentile(lat, 90)), "mean": float(lat.mean())} if len(lat) else None,
        "unknown_words": len(unk), "unknown_stream_s": round(len(unk_signal) / RATE, 1),
        "false_accepts_unknown": len(unk_events),
        "false_accepts_per_hour_unknown": len(unk_events) / hours(unk_signal),
        "false_accept_labels_unknown": sorted(set(e["label"] for e in unk_events)),
        "unknown_words_extra": len(more), "unknown_extra_stream_s": round(len(more_signal) / RATE, 1),
        "false_accepts_unknown_extra": len(more_events),
        "false_accepts_per_hour_unknown_extra": len(more_events) / hours(more_signal),
        "false_accepts_per_hour_all_unknown": (len(unk_events) + len(more_events)) / (hours(unk_signal) + hours(more_signal)),
        "silence_clips": len(sil), "silence_stream_s": round(len(sil_signal) / RATE, 1),
        "false_accepts_silence": len(sil_events),
        "false_accepts_per_hour_silence": len(sil_events) / hours(sil_signal),
    }
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k not in ("start", "per_word_recall")}, indent=1))


if __name__ == "__main__":
    main()
