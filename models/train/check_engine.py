#!/usr/bin/python3
"""End-to-end check: the C engine (`audioclass classify`) on the validation files vs PyTorch.

Runs the shipped model file through the server's path (file bytes -> decode -> resample ->
windows -> forward -> averaged softmax) on every validation clip, and compares its top-1
labels and scores with PyTorch evaluating the same model file's weights on the cache.

    /usr/bin/python3 models/train/check_engine.py --model models/m5-speech.safetensors \
        --cache models/train/runs/cache/speech8k
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import malloc_env  # noqa: E402
import export  # noqa: E402
import prep  # noqa: E402


def main():
    malloc_env.ensure()  # re-executes with glibc's allocator set up for PyTorch (malloc_env.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--bin", default=prep.DEFAULT_BIN)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net, arch, labels, _ = export.load_model_file(args.model)
    index, data = prep.open_cache(args.cache, True)
    items = [it for it in index["items"] if it["split"] == "val"
             and it.get("source") not in ("speech_commands_v0.01_sample", "v0.01", "v0.02", "synthetic")]
    if args.limit:
        items = items[:args.limit]
    clips = [np.array(data[it["offset"]:it["offset"] + it["frames"]], np.float32) for it in items]
    y = np.array([labels.index(it["label"]) for it in items])
    pred, probs = export.evaluate_policy(net, arch, clips)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as f:
        f.write("".join(it["path"] + "\n" for it in items))
    out = subprocess.run([args.bin, "classify", "--model", args.model, "--top-k", str(len(labels)),
                          "--list", f.name], capture_output=True, text=True)
    os.remove(f.name)
    res = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(res) == len(items), (len(res), len(items), out.stderr[-500:])
    c_pred = np.array([labels.index(r["label"]) for r in res])
    c_probs = np.array([[{p["label"]: p["score"] for p in r["predictions"]}[l] for l in labels] for r in res])
    print(json.dumps({"clips": len(items), "torch_acc": float((pred == y).mean()),
                      "engine_acc": float((c_pred == y).mean()),
                      "top1_disagreements": int((pred != c_pred).sum()),
                      "max_abs_prob_diff": float(np.abs(probs - c_probs).max())}))


if __name__ == "__main__":
    main()
