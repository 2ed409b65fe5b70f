#!/usr/bin/python3
"""Decode a dataset once into a float32 cache, with the server's own decoder and resampler.

No train/serve skew: the audio reaches the network exactly as the server feeds it, because
the cache is written by `audioclass decode` (engine/audio.c: libsndfile decode, downmix,
resample), the same code the server runs on a request body.

    /usr/bin/python3 models/train/prep.py speech --data /work/shared/data/speech_commands \
        --extra /work/shared/data/speech_commands_v0.01_sample --out models/train/runs/cache/speech8k
    /usr/bin/python3 models/train/prep.py esc50 --data /work/shared/data/esc50 \
        --out models/train/runs/cache/esc50-16k

Output: PREFIX.f32 + PREFIX.json (written by `audioclass decode`: all clips' mono float32 LE
samples concatenated, and [{"path","offset","frames"} | {"path","error"}]), and
PREFIX.index.json: the items with label, group (speaker / source recording), split, offset,
frames, plus how the cache was made. Training opens PREFIX.f32 as a numpy memmap.

--backend sndfile decodes with libsndfile + libsoxr through ctypes instead; it exists only
to develop before the C binary is built and its caches are marked as such (the training
scripts refuse them unless --allow-dev-cache).
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(REPO, "build", "audioclass")


# ---------------------------------------------------------------- decoders
def decode_audioclass(binary, paths, rate, prefix):
    lst = prefix + ".list"
    with open(lst, "w") as f:
        f.write("".join(p + "\n" for p in paths))
    cmd = [binary, "decode", "--rate", str(rate), "--out", prefix, "--list", lst]
    t = time.time()
    subprocess.run(cmd, check=True)
    os.remove(lst)
    print(f"decoded {len(paths)} files in {time.time() - t:.1f}s: {' '.join(cmd)}", file=sys.stderr)
    return cmd


class _SFInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int),
                ("channels", ctypes.c_int), ("format", ctypes.c_int),
                ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]


def decode_sndfile(paths, rate, prefix):
    """Development stand-in for `audioclass decode` (same output files)."""
    sf = ctypes.CDLL(ctypes.util.find_library("sndfile") or "libsndfile.so.1")
    sx = ctypes.CDLL(ctypes.util.find_library("soxr") or "libsoxr.so.0")
    sf.sf_open.restype = ctypes.c_void_p
    sf.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_SFInfo)]
    sf.sf_readf_float.restype = ctypes.c_int64
    sf.sf_readf_float.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    sf.sf_close.argtypes = [ctypes.c_void_p]
    sx.soxr_oneshot.restype = ctypes.c_char_p
    sx.soxr_oneshot.argtypes = [ctypes.c_double, ctypes.c_double, ctypes.c_uint,
                                ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                                ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    index, offset = [], 0
    with open(prefix + ".f32", "wb") as out:
        for p in paths:
            info = _SFInfo()
            h = sf.sf_open(p.encode(), 0x10, ctypes.byref(info))
            if not h:
                index.append({"path": p, "error": "cannot open"})
                continue
            buf = np.zeros(info.frames * info.channels, np.float32)
            n = sf.sf_readf_float(h, buf.ctypes.data, info.frames)
            sf.sf_close(h)
            x = buf[: n * info.channels].reshape(n, info.channels).mean(1).astype(np.float32)
            if info.samplerate != rate:
                olen = int(np.ceil(len(x) * rate / info.samplerate)) + 16
                y = np.zeros(olen, np.float32)
                done = ctypes.c_size_t()
                err = sx.soxr_oneshot(info.samplerate, rate, 1, x.ctypes.data, len(x), None,
                                      y.ctypes.data, olen, ctypes.byref(done), None, None, None)
                if err:
                    index.append({"path": p, "error": err.decode()})
                    continue
                x = y[: done.value]
            out.write(x.astype("<f4").tobytes())
            index.append({"path": p, "offset": offset, "frames": len(x)})
            offset += len(x)
    with open(prefix + ".json", "w") as f:
        json.dump(index, f)
    return ["<dev: libsndfile+libsoxr via ctypes>", "--rate", str(rate)]


def decode(args, paths, rate):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.backend == "audioclass":
        if not os.access(args.bin, os.X_OK):
            sys.exit(f"{args.bin} not found: build it (cmake -S . -B build && cmake --build build)"
                     " or use --backend sndfile for development")
        cmd = decode_audioclass(args.bin, paths, rate, args.out)
    else:
        cmd = decode_sndfile(paths, rate, args.out)
    dec = json.load(open(args.out + ".json"))
    assert len(dec) == len(paths) and all(d["path"] == p for d, p in zip(dec, paths))
    return dec, cmd


def open_cache(prefix, allow_dev=False):
    """-> (index dict, samples memmap). index['items'][i] has offset, frames, label, ..."""
    index = json.load(open(prefix + ".index.json"))
    if index["backend"] != "audioclass" and not allow_dev:
        sys.exit(f"{prefix} was not made by `audioclass decode` (backend {index['backend']});"
                 " rebuild it with prep.py, or pass --allow-dev-cache for development")
    data = np.memmap(prefix + ".f32", dtype="<f4", mode="r")
    return index, data


# ---------------------------------------------------------------- ESC-50 grouping
def _fingerprint(x, rate):
    """Long-term log spectrum (mean and 20th percentile over frames) in 48 log bands."""
    n = 1024
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2] * np.hanning(n)
    p = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    edges = np.unique(np.geomspace(2, n // 2, 49).astype(int))
    bands = np.stack([p[:, a:b].mean(1) for a, b in zip(edges[:-1], edges[1:])], 1)
    lb = np.log10(bands + 1e-10)
    f = np.concatenate([lb.mean(0), np.percentile(lb, 20, axis=0)])
    return (f - f.mean()) / (f.std() + 1e-8)


def esc50_groups(items, data, rate, quantile, max_group=5):
    """Groups of clips that may be takes of one source recording, within each class.

    Known src_file (esc50.csv) links clips directly. For the rest, clips of one class whose
    long-term spectra are unusually close (closer than the `quantile` of all within-class
    pair distances) are linked: takes cut from one recording share its microphone, room
    and background. Groups are the connected components. Returns (group ids, stats)."""
    n = len(items)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a, b):
        parent[find(a)] = find(b)

    fps = np.stack([_fingerprint(np.asarray(data[it["offset"]: it["offset"] + it["frames"]]), rate)
                    for it in items])
    by_src, by_class = {}, {}
    for i, it in enumerate(items):
        if it["src_file"]:
            by_src.setdefault((it["label"], it["src_file"]), []).append(i)
        by_class.setdefault(it["label"], []).append(i)
    for ids in by_src.values():
        for j in ids[1:]:
            union(ids[0], j)
    pair_d = []
    for ids in by_class.values():
        f = fps[ids]
        d = np.sqrt(((f[:, None] - f[None]) ** 2).mean(-1))
        iu = np.triu_indices(len(ids), 1)
        pair_d.append((ids, d, iu))
    all_d = np.concatenate([d[iu] for _, d, iu in pair_d])
    thr = float(np.quantile(all_d, quantile))
    known = [float(np.sqrt(((fps[a] - fps[b]) ** 2).mean())) for ids in by_src.values()
             for a in ids for b in ids if a < b]
    # closest pairs first; a group never grows past max_group (stops chaining a class
    # of uniformly noisy clips into one blob)
    size = [1] * n
    for ids in by_src.values():
        size[find(ids[0])] = len(ids)
    cand = sorted((d[a, b], ids[a], ids[b]) for ids, d, iu in pair_d for a, b in zip(*iu)
                  if d[a, b] <= thr)
    links = 0
    for _, a, b in cand:
        ra, rb = find(a), find(b)
        if ra != rb and size[ra] + size[rb] <= max_group:
            parent[ra] = rb
            size[rb] += size[ra]
            links += 1
    roots = [find(i) for i in range(n)]
    remap = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    stats = {"threshold": thr, "quantile": quantile, "max_group": max_group, "spectral_links": links,
             "known_same_source_pair_distances": known,
             "known_pair_percentiles": [float((all_d < k).mean()) for k in known],
             "groups": len(remap), "largest_group": int(max(np.bincount([remap[r] for r in roots])))}
    return [int(remap[r]) for r in roots], stats


def group_split(items, groups, val_frac, seed):
    """Per class, whole groups go to validation until it holds ~val_frac of the class."""
    rng = np.random.RandomState(seed)
    by_class = {}
    for i, it in enumerate(items):
        by_class.setdefault(it["label"], {}).setdefault(groups[i], []).append(i)
    for label, gs in sorted(by_class.items()):
        total = sum(len(v) for v in gs.values())
        want = int(round(total * val_frac))
        keys = list(gs)
        rng.shuffle(keys)
        got = 0
        for k in keys:
            if got >= want:
                break
            if got + len(gs[k]) <= want + 1:
                for i in gs[k]:
                    items[i]["split"] = "val"
                got += len(gs[k])


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["speech", "esc50"])
    ap.add_argument("--data", required=True, help="dataset root (local or official layout)")
    ap.add_argument("--extra", action="append", default=[], help="speech: extra word folders")
    ap.add_argument("--synth", action="append", default=[],
                    help="speech: synthetic word folders (synth_speech.py), training split only")
    ap.add_argument("--out", required=True, help="cache prefix")
    ap.add_argument("--rate", type=int, help="default 8000 (speech), 16000 (esc50)")
    ap.add_argument("--backend", choices=["audioclass", "sndfile"], default="audioclass")
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--val-percent", type=int, default=20, help="speech (local layout): speakers")
    ap.add_argument("--val-fold", type=int, default=1, help="esc50 official layout")
    ap.add_argument("--val-frac", type=float, default=0.2, help="esc50 local layout")
    ap.add_argument("--link-quantile", type=float, default=0.05,
                    help="esc50 local: link clip pairs closer than this quantile of distances")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    extra = {}
    if args.dataset == "speech":
        rate = args.rate or 8000
        items, noise = datasets.speech_items(args.data, args.val_percent, args.extra, args.synth)
        labels = datasets.SPEECH_LABELS
        all_items = items + [dict(path=p, label="_background_noise_", group="noise:" + os.path.basename(p),
                                  split="noise") for p in noise]
    else:
        rate = args.rate or 16000
        items, labels, layout = datasets.esc50_items(args.data, args.val_fold)
        all_items = items
        extra["layout"] = layout
    dec, cmd = decode(args, [it["path"] for it in all_items], rate)
    kept = []
    for it, d in zip(all_items, dec):
        if "error" in d:
            print(f"skip {it['path']}: {d['error']}", file=sys.stderr)
            continue
        it["offset"], it["frames"] = d["offset"], d["frames"]
        kept.append(it)
    if args.dataset == "esc50" and extra["layout"] == "local":
        data = np.memmap(args.out + ".f32", dtype="<f4", mode="r")
        groups, stats = esc50_groups(kept, data, rate, args.link_quantile)
        for it, g in zip(kept, groups):
            it["group"] = g
        group_split(kept, groups, args.val_frac, args.seed)
        extra["grouping"] = stats
        print(f"grouping: {json.dumps({k: v for k, v in stats.items()})}", file=sys.stderr)
    elif args.dataset == "esc50":
        for it in kept:
            it["group"] = it["src_file"] or it["filename"]
    index = {"dataset": args.dataset, "rate": rate, "labels": labels, "backend": args.backend,
             "decode_command": cmd, "prep_command": [sys.executable] + sys.argv,
             "items": kept, **extra}
    with open(args.out + ".index.json", "w") as f:
        json.dump(index, f, indent=0)
    splits = {}
    for it in kept:
        splits.setdefault(it["split"], 0)
        splits[it["split"]] += 1
    print(f"{args.out}: {len(kept)} clips {splits} in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
