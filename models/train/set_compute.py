#!/usr/bin/python3
"""Opt a model file into reduced-precision arithmetic (or back to FP32): rewrites its
metadata "compute" and nothing else; every tensor keeps its bytes.

    /usr/bin/python3 models/train/set_compute.py models/envnet-esc50.safetensors --compute bf16 \\
        --out /tmp/envnet-esc50-bf16.safetensors

bf16: where the CPU has AVX-512 BF16, the engine rounds the convolutions' weights and inputs
to bfloat16 and sums in FP32. int8: where it has AVX-512 VNNI, linear layers stored in I8 run
on inputs quantized to 8 bits. bf16+int8: both. Elsewhere the same file runs in FP32
(FORMAT.md, "compute").
Measure what it changes before shipping it: `audioclass classify --list` on held-out clips
with both files (models/README or bench/README.md show how).
"""
import argparse
import json
import struct
import sys


def write(src, dst, compute):
    """Copies model file src to dst with metadata "compute" set. -> bytes of tensors kept."""
    with open(src, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"{src}: not a safetensors file (too short)")
    n = struct.unpack("<Q", raw[:8])[0]
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        sys.exit(f"{src}: not a safetensors file ({e})")
    meta = header.get("__metadata__", {})
    if meta.get("format") != "audioclass":
        sys.exit(f"{src}: not an audioclass model file (metadata format)")
    meta["compute"] = compute
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors stay 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    return len(raw) - 8 - n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--compute", required=True, choices=["fp32", "bf16", "int8", "bf16+int8"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    kept = write(args.model, args.out, args.compute)
    print(f"{args.out}: compute {args.compute}; {kept} bytes of tensors unchanged")


if __name__ == "__main__":
    main()
