#!/usr/bin/python3
"""Validation accuracy of one checkpoint under several test-time policies (pad, hop).

The policy in a model file (models/FORMAT.md) decides how a clip becomes windows; this
measures the choice on the validation split with the checkpoint's weights, as the server
would classify (export.evaluate_policy). The M5 table in models/m5-speech.md:

    /usr/bin/python3 models/train/compare_policies.py --checkpoint models/train/runs/m5w64/last.pt \
        --cache models/train/runs/cache/speech8k --policy 0,4000 --policy 500,500 \
        --policy 1000,1000 --policy 1000,500 --policy 1500,1500
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import malloc_env  # noqa: E402
import export  # noqa: E402
import finalize  # noqa: E402
import nets  # noqa: E402


def main():
    malloc_env.ensure()  # re-executes with glibc's allocator set up for PyTorch (malloc_env.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--policy", action="append", required=True, metavar="PAD,HOP")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--allow-dev-cache", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck, net = export.load_checkpoint(args.checkpoint)
    _, clips, y, _ = finalize.val_data(ck, args.cache, args.allow_dev_cache)
    window = nets.POLICIES[ck["arch"]]["window"]
    print(f"{args.checkpoint}: {len(clips)} validation clips; shipped policy {nets.POLICIES[ck['arch']]}")
    print("| policy (pad, hop) | windows for a full-length clip | accuracy |")
    print("|---|---:|---:|")
    for text in args.policy:
        try:
            pad, hop = (int(v) for v in text.split(","))
        except ValueError:
            sys.exit(f"--policy {text!r}: expected PAD,HOP (two integers, e.g. 1000,1000)")
        if pad < 0 or hop < 1:
            sys.exit(f"--policy {text!r}: PAD must be >= 0 and HOP >= 1")
        policy = {"window": window, "hop": hop, "pad": pad}
        pred, _ = export.evaluate_policy(net, ck["arch"], clips, batch=256, policy=policy)
        n_win = len(export.window_starts(window, policy)[1])
        print(f"| {pad}, {hop} | {n_win} | {100 * (pred == y).mean():.1f}% |", flush=True)


if __name__ == "__main__":
    main()
