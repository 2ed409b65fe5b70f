#!/usr/bin/python3
"""The engine, ONNX Runtime and PyTorch side by side, in one run, on the cases of issue 19:
M5 batch 1 on 1 thread, M5 batch 64 on 2 threads, EnvNet batch 10 (one 5 s clip) on 2.

    /usr/bin/python3 bench/compare_onnx.py [--seconds 3] [--rounds 3] [--json OUT]

Each shipped model file is exported to ONNX (torch.onnx from Debian's python3-torch, opset
13; python3-onnx checks the file) from the model file's own weights, dequantized, so all
three compute the same function; ONNX Runtime's output on a fixed batch is compared with
the engine's (`audioclass forward`) before anything is timed. ONNX Runtime is
onnxruntime-node from npm (bench/ort, its CPU library ships inside the package; installed with
`npm ci --ignore-scripts`, which skips the install script that would fetch GPU libraries),
with intra-op threads set to the case's thread count and the whole graph optimised. The
three run in alternation, every round; ratios come from the same round, ranges over rounds.

The engine runs each file in FP32 (a copy with metadata compute=fp32), the same arithmetic as
the other two; a shipped file that asks for reduced precision (EnvNet: bf16+int8) is timed as
shipped too, in a column of its own.

    /usr/bin/python3 bench/compare_onnx.py --export-onnx DIR   # only write DIR/NAME.onnx (bench/server.sh)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import compare_pytorch  # noqa: E402
import export  # noqa: E402
import malloc_env  # noqa: E402
import set_compute  # noqa: E402

CASES = [("m5-speech", 1, 1), ("m5-speech", 64, 2), ("envnet-esc50", 10, 2)]
ORT = os.path.join(ROOT, "bench", "ort")


def setup_ort():
    if not os.path.isdir(os.path.join(ORT, "node_modules", "onnxruntime-node")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=ORT, check=True)


def export_onnx(name, out_dir):
    import onnx
    path = os.path.join(ROOT, "models", f"{name}.safetensors")
    net, _, _, _ = export.load_model_file(path)
    net.eval()
    x = torch.zeros([1] + list(net.input_shape))
    out = os.path.join(out_dir, f"{name}.onnx")
    torch.onnx.export(net, x, out, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=13)
    onnx.checker.check_model(out)
    return net, path, out


def parity(name, model_path, onnx_path, shape, work):
    """max |engine - ONNX Runtime| over the raw outputs of 4 items of noise."""
    x = np.random.default_rng(1).uniform(-1, 1, [4] + shape).astype(np.float32)
    xin = os.path.join(work, f"{name}.in.f32")
    x.tofile(xin)
    eng = os.path.join(work, f"{name}.engine.safetensors")
    subprocess.run([os.path.join(ROOT, "build", "audioclass"), "forward", "--model", model_path, "--input", xin,
                    "--out", eng], check=True, capture_output=True)
    tensors, _ = export.read_safetensors(eng)
    e = np.asarray(tensors["output"], np.float32).reshape(4, -1)
    out = subprocess.run(["node", os.path.join(ORT, "run_ort.mjs"), onnx_path, "4", "1", "0", json.dumps(shape),
                          "--dump", xin], check=True, capture_output=True, text=True).stdout
    o = np.array(json.loads(out.strip().splitlines()[-1])["output"], np.float32).reshape(4, -1)
    return float(np.abs(e - o).max())


def time_ort(onnx_path, batch, threads, seconds, shape):
    out = subprocess.run(["node", os.path.join(ORT, "run_ort.mjs"), onnx_path, str(batch), str(threads),
                          str(seconds), json.dumps(shape)], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def span(v):
    return f"{min(v):.2f}-{max(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"


def main():
    malloc_env.ensure()  # PyTorch with glibc's allocator set up (models/train/malloc_env.py): fair to it
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write every measurement here")
    ap.add_argument("--export-onnx", metavar="DIR", help="only export the shipped models to DIR/NAME.onnx")
    args = ap.parse_args()
    if args.export_onnx:
        os.makedirs(args.export_onnx, exist_ok=True)
        for name in sorted({c[0] for c in CASES}):
            print(export_onnx(name, args.export_onnx)[2])
        return
    setup_ort()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        models = {}
        for name in sorted({c[0] for c in CASES}):
            net, shipped, onnx_path = export_onnx(name, work)
            path = os.path.join(work, f"{name}.fp32.safetensors")
            set_compute.write(shipped, path, "fp32")
            compute = export.read_safetensors(shipped)[1].get("compute", "fp32")
            shape = list(net.input_shape)
            d = parity(name, path, onnx_path, shape, work)
            print(f"{name}: exported to ONNX; max |engine - ONNX Runtime| on 4 items {d:.2g}", flush=True)
            models[name] = (net, path, onnx_path, shape, shipped if compute != "fp32" else None, compute)
        for r in range(args.rounds):
            for name, batch, threads in CASES:
                net, path, onnx_path, shape, shipped, compute = models[name]
                e = compare_pytorch.time_engine(path, batch, threads, args.seconds)
                o = time_ort(onnx_path, batch, threads, args.seconds, shape)
                t = compare_pytorch.time_torch(net, batch, threads, args.seconds)
                red = compare_pytorch.time_engine(shipped, batch, threads, args.seconds) if shipped else None
                rows.append({"round": r, "model": name, "batch": batch, "threads": threads, "engine": e, "ort": o,
                             "torch": t, "engine_shipped": red, "compute": compute})
                print(f"round {r + 1} {name} batch {batch} threads {threads}: engine {e['items_per_s']:.0f}/s "
                      f"p50 {e['latency_ms_p50']:.3f} ms | ORT {o['items_per_s']:.0f}/s p50 {o['p50_ms']:.3f} ms | "
                      f"torch {t['items_per_s']:.0f}/s p50 {t['latency_ms_p50']:.3f} ms"
                      + (f" | engine as shipped ({compute}) {red['items_per_s']:.0f}/s" if red else ""), flush=True)
    print("\n| model | batch | threads | engine items/s | ONNX Runtime items/s | PyTorch items/s | engine / ORT "
          "| engine / PyTorch | p50 ms engine / ORT / PyTorch | engine as shipped / ORT |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, batch, threads in CASES:
        rs = [x for x in rows if (x["model"], x["batch"], x["threads"]) == (name, batch, threads)]
        e = [x["engine"]["items_per_s"] for x in rs]
        o = [x["ort"]["items_per_s"] for x in rs]
        t = [x["torch"]["items_per_s"] for x in rs]
        print(f"| {name} | {batch} | {threads} | {min(e):,.0f}-{max(e):,.0f} | {min(o):,.0f}-{max(o):,.0f} | "
              f"{min(t):,.0f}-{max(t):,.0f} | {span([a / b for a, b in zip(e, o)])}x | "
              f"{span([a / b for a, b in zip(e, t)])}x | "
              f"{np.median([x['engine']['latency_ms_p50'] for x in rs]):.3f} / "
              f"{np.median([x['ort']['p50_ms'] for x in rs]):.3f} / "
              f"{np.median([x['torch']['latency_ms_p50'] for x in rs]):.3f} | "
              + (f"{span([x['engine_shipped']['items_per_s'] / x['ort']['items_per_s'] for x in rs])}x "
                 f"({rs[0]['compute']}) |" if rs[0]["engine_shipped"] else "same (fp32) |"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
