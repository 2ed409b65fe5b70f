"""Dataset readers: list (path, label, group, split) for Speech Commands and ESC-50.

Two layouts each, chosen automatically from what is on disk:

Speech Commands (12-class task: yes no up down left right on off stop go _silence_ _unknown_)
  * official: ROOT/<word>/<speaker>_nohash_<n>.wav for the 35 (or 30) words,
    ROOT/validation_list.txt, ROOT/testing_list.txt, ROOT/_background_noise_/*.wav.
    The split comes from the lists (speaker-disjoint by construction); words outside the
    ten keywords become _unknown_; _silence_ is cut from the background noise at train time.
  * local (/work/shared/data/speech_commands): one folder per label, including _silence_
    and _unknown_ (file name <word>_<speaker>_nohash_<n>), plus _background_noise_.
    The split is speaker-disjoint by a hash of the speaker id (val_percent of speakers).
  * extra word folders (speech_commands_v0.01_sample): ROOT/<word>/<speaker>_nohash_<n>,
    keywords keep their label, other words are _unknown_; same speaker hash split.
  * synthetic word folders (synth_speech.py, espeak-ng): the same layout, always in the
    training split (validation is real speakers only).

ESC-50 (50 classes)
  * official: ROOT/meta/esc50.csv (filename,fold,target,category,esc10,src_file,take),
    ROOT/audio/*.wav; validation = one fold (--val-fold), the standard protocol.
  * local (/work/shared/data/esc50): ROOT/esc50.csv (filename,target,category,esc10,fold,
    src_file,original) + ROOT/audio/*.flac, fold mostly unknown. Validation groups are
    built so that takes of one recording stay together: see esc50_groups() in prep.py.
"""
import csv
import os
import zlib

SPEECH_LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                 "_silence_", "_unknown_"]
KEYWORDS = SPEECH_LABELS[:10]
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def _audio_files(d):
    return sorted(f for f in os.listdir(d) if f.lower().endswith(AUDIO_EXT))


def speaker_of(fname):
    """'<speaker>_nohash_<n>.wav' or '<word>_<speaker>_nohash_<n>.wav' -> speaker."""
    stem = fname.split("_nohash_")[0]
    return stem.rsplit("_", 1)[-1] if "_" in stem else stem


def speaker_is_val(speaker, val_percent):
    return zlib.crc32(speaker.encode()) % 100 < val_percent


def _word_folders(root):
    """ROOT/<word>/<file> -> [(word, label, folder, file)]; non-keywords are _unknown_."""
    out = []
    for word in sorted(os.listdir(root)):
        d = os.path.join(root, word)
        if os.path.isdir(d) and not word.startswith("_"):
            label = word if word in KEYWORDS else "_unknown_"
            out += [(word, label, d, f) for f in _audio_files(d)]
    return out


def speech_items(root, val_percent=20, extra_roots=(), synth_roots=()):
    """-> (items, noise_paths). item: dict(path, label, group, split, source)."""
    items, noise = [], []
    bg = os.path.join(root, "_background_noise_")
    if os.path.isdir(bg):
        noise = [os.path.join(bg, f) for f in _audio_files(bg)]
    if os.path.exists(os.path.join(root, "validation_list.txt")):
        def read_list(name):
            p = os.path.join(root, name)
            return set(open(p).read().split()) if os.path.exists(p) else set()
        val, test = read_list("validation_list.txt"), read_list("testing_list.txt")
        for word, label, d, f in _word_folders(root):
            rel = f"{word}/{f}"
            split = "test" if rel in test else "val" if rel in val else "train"
            items.append(dict(path=os.path.join(d, f), label=label, group=speaker_of(f),
                              split=split, source="official", word=word))
    else:
        for label in SPEECH_LABELS:
            d = os.path.join(root, label)
            if not os.path.isdir(d):
                continue
            for f in _audio_files(d):
                word = f.split("_")[0] if label == "_unknown_" else label
                # _silence_ clips have no speaker: each is its own group
                spk = ("sil:" + f) if label == "_silence_" else speaker_of(f)
                split = "val" if speaker_is_val(spk, val_percent) else "train"
                items.append(dict(path=os.path.join(d, f), label=label, group=spk,
                                  split=split, source="local", word=word))
    for extra in extra_roots:
        for word, label, d, f in _word_folders(extra):
            spk = speaker_of(f)
            split = "val" if speaker_is_val(spk, val_percent) else "train"
            items.append(dict(path=os.path.join(d, f), label=label, group=spk, split=split,
                              source=os.path.basename(extra.rstrip("/")), word=word))
    for synth in synth_roots:
        for word, label, d, f in _word_folders(synth):
            items.append(dict(path=os.path.join(d, f), label=label, group="synth:" + f,
                              split="train", source="synthetic", word=word))
    return items, noise


def esc50_items(root, val_fold=None):
    """-> (items, labels, layout). item: dict(path, label, target, fold, src_file, split)."""
    official = os.path.exists(os.path.join(root, "meta", "esc50.csv"))
    csv_path = os.path.join(root, "meta", "esc50.csv") if official else os.path.join(root, "esc50.csv")
    rows = list(csv.DictReader(open(csv_path)))
    labels = [None] * 50
    items = []
    for r in rows:
        t = int(r["target"])
        labels[t] = r["category"]
        fold = int(r["fold"]) if r.get("fold") else None
        split = "train"
        if official and val_fold is not None:
            split = "val" if fold == val_fold else "train"
        items.append(dict(path=os.path.join(root, "audio", r["filename"]), label=r["category"],
                          target=t, fold=fold, src_file=r.get("src_file") or None,
                          take=r.get("take") or (r.get("original", "").split("-")[2:3] or [None])[0],
                          split=split, filename=r["filename"]))
    return items, labels, "official" if official else "local"
