#!/usr/bin/python3
"""Evaluate a training checkpoint on its validation split, draw its pictures, export it.

    /usr/bin/python3 models/train/finalize.py --checkpoint models/train/runs/m5/last.pt \
        --cache models/train/runs/cache/speech8k --results models/train/runs/m5/results.json \
        --pictures models/m5-speech [--export models/m5-speech.safetensors --name m5-speech \
        --golden tests/golden/m5-speech.golden.safetensors] [--quant fc5=i8 ...]

--pictures P writes P-confusion.svg and P-training.svg. With --quant, the validation set is
also scored with the dequantized weights the engine computes with (F32 vs I8 change).
"""
import argparse
import copy
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import malloc_env  # noqa: E402
import common  # noqa: E402
import export  # noqa: E402
import prep  # noqa: E402

DESC = {
    "m5": ("M5 raw-waveform CNN (Dai et al. 2016), 12-class Speech Commands keyword spotting, 8 kHz",
           "weights: CC BY 4.0 (trained on Speech Commands, CC BY 4.0, Warden 2018)"),
    "tcn": ("Streaming keyword spotter: causal dilated TCN on raw 8 kHz audio, 12-class Speech "
            "Commands; answers for the last 10 ms frame, runs incrementally over live streams",
            "weights: CC BY 4.0 (trained on Speech Commands, CC BY 4.0, Warden 2018)"),
    "envnet": ("EnvNet raw-waveform CNN (Tokozume & Harada 2017), ESC-50 environmental sounds, 16 kHz",
               "weights: non-commercial use only, CC BY-NC 3.0 (trained on ESC-50, CC BY-NC 3.0, Piczak 2015)"),
}


# The spotter's live defaults: an answer every 50 ms, an event when a keyword stays on top
# above 0.8 for 3 answers (150 ms). Chosen before measuring (not tuned on validation data).
STREAM_DEFAULTS = {"hop": 400, "threshold": 0.8, "min_hops": 3, "background": ["_silence_", "_unknown_"]}


def val_data(ck, cache, allow_dev):
    index, data = prep.open_cache(cache, allow_dev)
    labels = ck["labels"]
    # the headline set: the dataset's own clips of held-out speakers (for speech, not the
    # extra word folders, which hold training-split speakers of the full dataset)
    items = [it for it in index["items"] if it["split"] == "val"
             and it.get("source") not in ("speech_commands_v0.01_sample", "v0.01", "v0.02", "synthetic")]
    clips = [np.array(data[it["offset"]:it["offset"] + it["frames"]], np.float32) for it in items]
    return index, clips, np.array([labels.index(it["label"]) for it in items]), items


def repo_relative(text):
    """The build machine's checkout path out of a command line: paths relative to the repository."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return text.replace(root + os.sep, "")


def main():
    malloc_env.ensure()  # re-executes with glibc's allocator set up for PyTorch (malloc_env.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--pictures")
    ap.add_argument("--export")
    ap.add_argument("--name")
    ap.add_argument("--golden")
    ap.add_argument("--quant", action="append", default=[], help="LAYER=i8|f16")
    ap.add_argument("--no-eval", action="store_true", help="export only (train-on-all runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--allow-dev-cache", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    quant = dict(q.split("=", 1) for q in args.quant)
    ck, net = export.load_checkpoint(args.checkpoint)
    arch, labels = ck["arch"], ck["labels"]
    res = {"checkpoint": args.checkpoint, "epoch": ck["epoch"], "commands": ck["commands"],
           "seed": ck["seed"], "cache": ck["cache"], "args": ck["args"],
           "train_time_s": sum(h.get("train_s", h.get("time_s", 0)) + h.get("val_s", 0)
                               for h in ck["history"]),
           "history": ck["history"]}
    if not args.no_eval:
        index, clips, y, items = val_data(ck, args.cache, args.allow_dev_cache)
        t = time.time()
        pred, probs = export.evaluate_policy(net, arch, clips)
        cm = common.confusion(y, pred, len(labels))
        res.update(val_clips=len(clips), val_acc=float((pred == y).mean()),
                   per_class=common.per_class(cm, labels), confusion=cm.tolist(),
                   eval_s=time.time() - t, eval_cache_backend=index["backend"])
        print(f"validation accuracy {res['val_acc']:.4f} on {len(clips)} clips", file=sys.stderr)
        if quant:
            _, eff = export.quantized_state(net, quant)
            qnet = copy.deepcopy(net)
            export.apply_effective(qnet, eff)
            qpred, _ = export.evaluate_policy(qnet, arch, clips)
            res["quant"] = quant
            res["val_acc_quant"] = float((qpred == y).mean())
            res["quant_pred_changed"] = int((qpred != pred).sum())
            qcm = common.confusion(y, qpred, len(labels))
            res["per_class_quant"] = common.per_class(qcm, labels)
            print(f"with {quant}: {res['val_acc_quant']:.4f} ({res['quant_pred_changed']} "
                  f"predictions changed)", file=sys.stderr)
        if args.pictures:
            title = f"{arch} validation ({len(clips)} clips): accuracy {100 * res['val_acc']:.1f}%"
            common.svg_confusion(cm, labels, args.pictures + "-confusion.svg", title)
    if args.pictures:
        common.svg_curves(ck["history"], args.pictures + "-training.svg", f"{arch} training")
    if args.export:
        desc, lic = DESC[arch]
        training = (f"{' ; '.join(ck['commands'])} (seed {ck['seed']}, {ck['epoch']} epochs, "
                    f"cache by {' '.join(ck['cache']['decode_command'])})")
        extra = {"description": desc, "license": lic, "training": repo_relative(training)}
        if arch == "tcn":  # the live event rule's defaults (engine/detect.h), fixed before evaluation
            extra["stream"] = STREAM_DEFAULTS
        eff = export.export_model(net, arch, labels, args.export, args.name, quant, extra)
        res["export"] = {"path": args.export, "bytes": os.path.getsize(args.export), "quant": quant}
        print(f"wrote {args.export} ({os.path.getsize(args.export)} bytes)", file=sys.stderr)
        if args.golden:
            index, data = prep.open_cache(args.cache, args.allow_dev_cache)
            clips = golden_clips(arch, index, data)
            export.write_golden(net, arch, args.golden, clips, eff)
            res["golden"] = {"path": args.golden, "bytes": os.path.getsize(args.golden),
                             "clip_samples": [len(c) for c in clips]}
            print(f"wrote {args.golden} ({os.path.getsize(args.golden)} bytes)", file=sys.stderr)
    common.write_json(args.results, res)


def golden_clips(arch, index, data):
    """Short real clips from the validation part (fixed choice, deterministic)."""
    items = [it for it in index["items"] if it["split"] == "val"]

    def arr(it):
        return np.array(data[it["offset"]:it["offset"] + it["frames"]], np.float32)
    if arch in ("m5", "tcn"):
        full = [it for it in items if it["frames"] == 8000 and it["label"] == "yes"][0]
        short = [it for it in items if it["frames"] < 8000 and it["label"] not in ("_silence_",)][0]
        a = [it for it in items if it["frames"] == 8000 and it["label"] == "stop"][0]
        b = [it for it in items if it["frames"] == 8000 and it["label"] == "left"][0]
        # 1 s keyword (3 windows), a short clip (2 windows, or 1 centred when under 6,000
        # samples), 2.5 s of three real clips (15 windows)
        return [arr(full), arr(short), np.concatenate([arr(a), arr(b), arr(full)[:4000]])]
    dog = [it for it in items if it["label"] == "dog"][0]
    rooster = [it for it in items if it["label"] == "rooster"][0]
    # one 5 s clip (10 windows) and 2 s of another (5 windows)
    return [arr(dog), arr(rooster)[:32000]]


if __name__ == "__main__":
    main()
