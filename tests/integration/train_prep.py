#!/usr/bin/python3
"""train_prep.py AUDIOCLASS SOURCE_DIR - the training data path without PyTorch.

Builds tiny dataset trees in every layout the readers accept (Speech Commands official with
its lists, the local one-folder-per-label layout, extra and synthetic word folders; ESC-50
official with meta/esc50.csv and folds, the local layout with src_file) and runs
models/train/prep.py on them with the real `audioclass decode`. Pins: which clips land in
train / val / test (official lists honoured, speakers never on both sides, synthetic clips
only in training, takes of one ESC-50 source recording never split), labels (non-keywords are
_unknown_), and that the cache holds the decoder's resampled audio (frames and signal).
Prints one line per check; exits 1 if any failed.
"""
import json
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

BIN, SRC = sys.argv[1], sys.argv[2]
PREP = os.path.join(SRC, "models", "train", "prep.py")
sys.path.insert(0, os.path.join(SRC, "models", "train"))
import prep  # noqa: E402

failed = 0


def check(name, ok):
    global failed
    print(("ok   " if ok else "FAIL ") + name)
    failed += not ok


def write_wav(path, x, rate=16000):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def noise(seed, n=16000, tilt=0.0):
    """White noise low-passed by a one-pole filter (tilt 0..0.95): clips that differ."""
    rng = np.random.RandomState(seed)
    x = rng.randn(n) * 0.1
    for i in range(1, n):
        x[i] += tilt * x[i - 1]
    return x / (np.abs(x).max() + 1e-9) * 0.5


def run_prep(*args):
    r = subprocess.run([sys.executable, PREP, *args, "--bin", BIN], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
    return r.returncode == 0


def items_by_name(prefix):
    index = json.load(open(prefix + ".index.json"))
    return index, {os.path.relpath(it["path"], os.path.dirname(os.path.dirname(it["path"])))
                   if it["split"] != "noise" else "noise/" + os.path.basename(it["path"]): it
                   for it in index["items"]}


def speech_official(t):
    root, synth = os.path.join(t, "sc"), os.path.join(t, "synth")
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    write_wav(f"{root}/yes/aaaa_nohash_0.wav", tone)
    write_wav(f"{root}/yes/bbbb_nohash_0.wav", noise(1))
    write_wav(f"{root}/no/cccc_nohash_0.wav", noise(2))
    write_wav(f"{root}/bed/dddd_nohash_0.wav", noise(3))
    write_wav(f"{root}/_background_noise_/white.wav", noise(4, 48000))
    open(f"{root}/validation_list.txt", "w").write("yes/bbbb_nohash_0.wav\n")
    open(f"{root}/testing_list.txt", "w").write("no/cccc_nohash_0.wav\n")
    write_wav(f"{synth}/yes/en-us-m1-s120-p50-0_nohash_0.wav", noise(5), 22050)
    write_wav(f"{synth}/cat/en-gb-f2-s160-p30-1_nohash_0.wav", noise(6), 22050)
    prefix = os.path.join(t, "cache", "sc")
    check("speech official: prep.py runs", run_prep("speech", "--data", root, "--synth", synth, "--out", prefix))
    index, it = items_by_name(prefix)
    split = {k: v["split"] for k, v in it.items()}
    check("speech official: validation_list.txt -> val", split.get("yes/bbbb_nohash_0.wav") == "val")
    check("speech official: testing_list.txt -> test", split.get("no/cccc_nohash_0.wav") == "test")
    check("speech official: unlisted -> train", split.get("yes/aaaa_nohash_0.wav") == "train")
    check("speech official: other words are _unknown_", it["bed/dddd_nohash_0.wav"]["label"] == "_unknown_")
    check("speech official: background noise kept apart", split.get("noise/white.wav") == "noise")
    syn = [v for v in index["items"] if v.get("source") == "synthetic"]
    check("synthetic: both clips, training split only",
          len(syn) == 2 and all(v["split"] == "train" for v in syn))
    check("synthetic: keyword keeps its label, other word is _unknown_",
          sorted(v["label"] for v in syn) == ["_unknown_", "yes"])
    data = np.memmap(prefix + ".f32", dtype="<f4", mode="r")
    a = it["yes/aaaa_nohash_0.wav"]
    x = np.asarray(data[a["offset"]:a["offset"] + a["frames"]])
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    mid = slice(200, 7800)  # away from the resampler's edges
    check(f"cache: 1 s at 16 kHz -> 8000 frames at 8 kHz (got {a['frames']})", a["frames"] == 8000)
    err = float(np.abs(x[mid] - ref[mid]).max()) if len(x) == 8000 else 1.0
    check(f"cache: resampled 440 Hz tone matches (max error {err:.2e})", err < 2e-2)
    check("cache: made by audioclass decode", index["backend"] == "audioclass"
          and os.path.basename(index["decode_command"][0]) == "audioclass")
    _, mm = prep.open_cache(prefix)
    check("cache: prep.open_cache reads it", len(mm) == len(data))


def speech_local(t):
    root = os.path.join(t, "local")
    for s in range(40):
        spk = f"{s:08x}"
        write_wav(f"{root}/yes/{spk}_nohash_0.wav", noise(100 + s, 4000))
        write_wav(f"{root}/yes/{spk}_nohash_1.wav", noise(200 + s, 4000))
        write_wav(f"{root}/_unknown_/bed_{spk}_nohash_0.wav", noise(300 + s, 4000))
    for k in range(5):
        write_wav(f"{root}/_silence_/silence_{k}.wav", noise(400 + k, 4000))
    prefix = os.path.join(t, "cache", "local")
    check("speech local: prep.py runs", run_prep("speech", "--data", root, "--out", prefix))
    index = json.load(open(prefix + ".index.json"))
    sides = {}  # speaker (from the file name, as written above) -> splits
    for v in index["items"]:
        if v["label"] != "_silence_":
            spk = os.path.basename(v["path"]).split("_nohash_")[0].split("_")[-1]
            sides.setdefault(spk, set()).add(v["split"])
    check("speech local: no speaker on both sides", all(len(s) == 1 for s in sides.values()))
    val_spk = sum(1 for s in sides.values() if s == {"val"})
    check(f"speech local: some speakers validate ({val_spk} of 40)", 0 < val_spk < 40)
    unk = [v for v in index["items"] if v["label"] == "_unknown_"]
    check("speech local: _unknown_ clips keep their word", unk and all(v["word"] == "bed" for v in unk))


def esc50_official(t):
    root = os.path.join(t, "esc50-official")
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for c, cat in enumerate(["dog", "rain"]):
            name = f"{fold}-{c}00{fold}-A-{c}.wav"
            write_wav(f"{root}/audio/{name}", noise(fold * 10 + c, 8000, 0.5 * c))
            rows.append(f"{name},{fold},{c},{cat},False,{c}00{fold},A")
    os.makedirs(f"{root}/meta")
    open(f"{root}/meta/esc50.csv", "w").write("\n".join(rows) + "\n")
    prefix = os.path.join(t, "cache", "esc-official")
    check("esc50 official: prep.py runs", run_prep("esc50", "--data", root, "--val-fold", "2", "--out", prefix))
    index = json.load(open(prefix + ".index.json"))
    check("esc50 official: --val-fold 2 validates exactly fold 2",
          all((v["split"] == "val") == (v["fold"] == 2) for v in index["items"]))
    check("esc50 official: 16 kHz frames", all(v["frames"] == 8000 for v in index["items"]))


def esc50_local(t):
    root = os.path.join(t, "esc50-local")
    rows = ["filename,target,category,esc10,fold,src_file,original"]
    for c, cat in enumerate(["dog", "rain"]):
        for k in range(10):
            name = f"{cat}-{k:02d}.wav"
            write_wav(f"{root}/audio/{name}", noise(500 + 20 * c + k, 8000, 0.09 * k))
            src = "shared-source" if c == 0 and k < 3 else ""  # three takes of one dog recording
            rows.append(f"{name},{c},{cat},False,,{src},")
    open(f"{root}/esc50.csv", "w").write("\n".join(rows) + "\n")
    prefix = os.path.join(t, "cache", "esc-local")
    ok = all(run_prep("esc50", "--data", root, "--val-frac", "0.3", "--seed", str(s), "--out", f"{prefix}{s}")
             for s in range(4))
    check("esc50 local: prep.py runs (4 seeds)", ok)
    together, val_any = True, True
    for s in range(4):
        items = json.load(open(f"{prefix}{s}.index.json"))["items"]
        takes = [v for v in items if v["src_file"] == "shared-source"]
        together &= len({v["group"] for v in takes}) == 1 and len({v["split"] for v in takes}) == 1
        val_any &= all(any(v["split"] == "val" and v["label"] == c for v in items) for c in ("dog", "rain"))
    check("esc50 local: takes of one src_file share a group and a split", together)
    check("esc50 local: every class has validation clips", val_any)


with tempfile.TemporaryDirectory() as t:
    os.makedirs(os.path.join(t, "cache"))
    speech_official(t)
    speech_local(t)
    esc50_official(t)
    esc50_local(t)
print(f"{failed} failed")
sys.exit(1 if failed else 0)
