#!/usr/bin/python3
"""The same networks in PyTorch eager and in the audioclass engine, same inputs and thread
counts, printed side by side as ratios, in one run.

    /usr/bin/python3 bench/compare_pytorch.py [--seconds 3] [--json OUT] [--m5 FILE] [--envnet FILE]

For each case (M5 batch 1 and 64; EnvNet one 5 s clip = 10 crops) it loads the model file
into the PyTorch module from models/train/nets.py (dequantizing I8/F16 weights, so both
compute the same function), times torch's forward with torch.set_num_threads(T), then runs
`build/audioclass bench` with the same batch and threads. PyTorch runs in inference mode
(no autograd), eval(), float32; its best of the thread settings is reported too.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
import export  # noqa: E402

CASES = [  # (model, batch, threads)
    ("m5", 1, 1), ("m5", 1, 2), ("m5", 64, 1), ("m5", 64, 2),
    ("envnet", 10, 1), ("envnet", 10, 2),
]


def time_torch(net, batch, threads, seconds):
    torch.set_num_threads(threads)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(
        [batch] + list(net.input_shape)).astype(np.float32) * 0.3)
    lat = []
    with torch.inference_mode():
        net(x)  # warm-up
        t_end = time.perf_counter() + seconds
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            net(x)
            t1 = time.perf_counter()
            lat.append((t1 - t0) * 1e3)
            if t1 >= t_end:
                break
        total = time.perf_counter() - start
    lat.sort()
    return {"items_per_s": len(lat) * batch / total, "latency_ms_p50": lat[len(lat) // 2],
            "latency_ms_p99": lat[min(len(lat) - 1, int(np.ceil(0.99 * len(lat))) - 1)]}


def time_engine(path, batch, threads, seconds):
    exe = os.path.join(ROOT, "build", "audioclass")
    out = subprocess.run([exe, "bench", "--model", path, "--batch", str(batch), "--threads", str(threads),
                          "--seconds", str(seconds)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--m5", default="models/m5-speech.safetensors", help="M5 model file")
    ap.add_argument("--envnet", default="models/envnet-esc50.safetensors", help="EnvNet model file")
    args = ap.parse_args()
    rows, best_torch = [], {}
    print(f"torch {torch.__version__}, {os.cpu_count()} cores\n")
    print(f"{'model':<14}{'batch':>6}{'thr':>4} | {'engine items/s':>15}{'p50 ms':>9} | "
          f"{'torch items/s':>14}{'p50 ms':>9} | {'speed-up':>8}{'latency ratio':>14}")
    for which, batch, threads in CASES:
        rel = args.m5 if which == "m5" else args.envnet
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            print(f"{rel}: missing, skipped")
            continue
        net, _, _, md = export.load_model_file(path)
        t = time_torch(net, batch, threads, args.seconds)
        e = time_engine(path, batch, threads, args.seconds)
        key = (md["name"], batch)
        best_torch[key] = max(best_torch.get(key, 0), t["items_per_s"])
        row = {"model": md["name"], "batch": batch, "threads": threads, "engine": e, "torch": t,
               "speedup": e["items_per_s"] / t["items_per_s"],
               "latency_ratio": e["latency_ms_p50"] / t["latency_ms_p50"]}
        rows.append(row)
        print(f"{md['name']:<14}{batch:>6}{threads:>4} | {e['items_per_s']:>15.1f}{e['latency_ms_p50']:>9.3f} | "
              f"{t['items_per_s']:>14.1f}{t['latency_ms_p50']:>9.3f} | {row['speedup']:>7.2f}x"
              f"{row['latency_ratio']:>14.3f}")
    print("\nengine at its thread count vs PyTorch's best thread count, same batch:")
    for r in rows:
        if r["threads"] == max(x["threads"] for x in rows if x["model"] == r["model"] and x["batch"] == r["batch"]):
            b = best_torch[(r["model"], r["batch"])]
            print(f"  {r['model']} batch {r['batch']}: {r['engine']['items_per_s'] / b:.2f}x PyTorch's best "
                  f"({r['engine']['gflops']:.1f} GFLOP/s in the engine)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
