#!/usr/bin/python3
"""Opt a model file into BF16 convolutions (or back to FP32): rewrites its metadata
"compute" and nothing else; every tensor keeps its bytes.

    /usr/bin/python3 models/train/set_compute.py models/envnet-esc50.safetensors --compute bf16 \\
        --out /tmp/envnet-esc50-bf16.safetensors

Where the CPU has AVX-512 BF16 the engine then rounds the convolutions' weights and inputs to
bfloat16 and sums in FP32 (FORMAT.md, "compute"); elsewhere it runs the same file in FP32.
Measure what it changes before shipping it: `audioclass classify --list` on held-out clips
with both files (models/README or bench/README.md show how).
"""
import argparse
import json
import struct
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--compute", required=True, choices=["fp32", "bf16"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.model, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"{args.model}: not a safetensors file (too short)")
    n = struct.unpack("<Q", raw[:8])[0]
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        sys.exit(f"{args.model}: not a safetensors file ({e})")
    meta = header.get("__metadata__", {})
    if meta.get("format") != "audioclass":
        sys.exit(f"{args.model}: not an audioclass model file (metadata format)")
    meta["compute"] = args.compute
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors stay 8-byte aligned
    with open(args.out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    print(f"{args.out}: compute {args.compute}; {len(raw) - 8 - n} bytes of tensors unchanged")


if __name__ == "__main__":
    main()
