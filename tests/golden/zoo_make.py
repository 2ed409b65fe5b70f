#!/usr/bin/python3
"""Writes the golden zoo (tests/golden/zoo/): for every block network of zoo_blocks.py, its
model file (through export_module) and NAME.golden.safetensors with a batch of 3 random
inputs (`input`), PyTorch's float64 value of every graph node (`node/<id>` [3, ...]), the raw
output (`output`) and the probabilities (`probs`). tests/golden/test_zoo.c compares the C
engine with them node by node.

    /usr/bin/python3 tests/golden/zoo_make.py [--no-check] [NAME...]

Weights are seeded random; batch-norm statistics, LayerNorm affines and layer scales are
randomised too, so that folding and every branch matter. A few layers are stored as F16 or
I8 (zoo_blocks.QUANT); the reference uses the stored, dequantized weights. --no-check skips the export's
parity check (for writing fixtures before the engine is built).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
sys.path.insert(0, HERE)
import export  # noqa: E402
import zoo_blocks  # noqa: E402

ITEMS = 3
SAMPLE_RATE = 8000


def randomize(net):
    export.randomize_bn(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.5, 1.5)
        for m in net.modules():
            if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def make(name, seed, check=True):
    ctor, shape, desc = zoo_blocks.ZOO[name]
    torch.manual_seed(seed)
    net = ctor()
    randomize(net)
    net.eval()
    rel = f"tests/golden/zoo/{name}.safetensors"
    labels = [f"{name}-{i}" for i in range(zoo_blocks.LABELS)]
    traced = export.export_module(net, os.path.join(ROOT, rel), sample_rate=SAMPLE_RATE,
                                  input_shape=shape, labels=labels, name=f"zoo-{name}",
                                  extra={"description": desc}, check=check,
                                  quant=zoo_blocks.QUANT.get(name))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, [ITEMS] + shape).astype(np.float32)
    out, probs, nodes = export.fx_export.reference(traced, x)
    consts = {nd["id"] for nd in traced.graph["nodes"] if nd["op"] == "const"}
    tensors = {"input": x, "output": out.numpy().astype(np.float32),
               "probs": probs.numpy().astype(np.float32)}
    for nid, v in nodes.items():
        if nid not in consts:
            tensors["node/" + nid] = v.numpy().astype(np.float32)
    fixture = os.path.join(HERE, "zoo", f"{name}.golden.safetensors")
    export.write_safetensors(fixture, tensors, {"model": rel, "items": str(ITEMS),
                                                "description": desc})
    n_params = sum(p.numel() for p in net.parameters())
    par = traced.parity
    print(f"{name:12s} {len(traced.graph['nodes']):3d} nodes {n_params:6d} params  "
          f"fixture {os.path.getsize(fixture):7d} B"
          + (f"  parity: max |probs diff| {par['max_prob_diff']:.2g}" if par else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"default: all ({', '.join(zoo_blocks.ZOO)})")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    os.makedirs(os.path.join(HERE, "zoo"), exist_ok=True)
    for i, name in enumerate(zoo_blocks.ZOO):
        if not args.names or name in args.names:
            make(name, 100 + i, not args.no_check)


if __name__ == "__main__":
    main()
