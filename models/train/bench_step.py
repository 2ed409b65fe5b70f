#!/usr/bin/python3
"""Seconds per training step (forward, backward, SGD) of M5 or EnvNet on random data, to
measure what the allocator setting (malloc_env.py) does:

    /usr/bin/python3 models/train/bench_step.py envnet --steps 5          # tuned allocator
    AUDIOCLASS_DEFAULT_MALLOC=1 /usr/bin/python3 models/train/bench_step.py envnet --steps 5

Prints one JSON line: arch, batch, threads, allocator, the median and each step's seconds.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import malloc_env  # noqa: E402

malloc_env.ensure()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

import nets  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", choices=sorted(nets.ARCHS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="measured steps (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = nets.build(args.arch, 50 if args.arch == "envnet" else 12).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn([args.batch] + list(net.input_shape))
    y = torch.randint(0, 12, (args.batch,))
    times = []
    for i in range(args.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if i:  # the first step warms caches and the allocator
            times.append(time.perf_counter() - t0)
    tuned = os.environ.get("AUDIOCLASS_DEFAULT_MALLOC") != "1"
    print(json.dumps({"arch": args.arch, "batch": args.batch, "threads": args.threads,
                      "allocator": "tuned" if tuned else "glibc default",
                      "median_s": sorted(times)[len(times) // 2], "steps_s": [round(t, 4) for t in times]}))


if __name__ == "__main__":
    main()
