#!/usr/bin/python3
"""Re-export a shipped model file (any format version) through export_module and prove the
new file computes what the old one did.

    /usr/bin/python3 models/train/reexport.py models/m5-speech.safetensors --out /tmp/m5-speech.safetensors \
        [--golden tests/golden/m5-speech.golden.safetensors] [--no-check]

The network is rebuilt from the old file's weights (nets.py), exported with the same
metadata, policy and per-layer dtypes (I8/F16 as stored), and then checked:
  - every tensor of the old file is in the new one with the same dtype, shape and bytes;
  - the new graph, run by graph_ref.py on the golden fixture's windows, gives the fixture's
    outputs (PyTorch float64), and so does the C engine (`audioclass forward`) unless --no-check
    (the export's own parity check also needs the engine).
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import graph_ref  # noqa: E402
import parity  # noqa: E402

TOL = 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--golden", help="default tests/golden/NAME.golden.safetensors")
    ap.add_argument("--no-check", action="store_true", help="skip everything that needs the C engine")
    ap.add_argument("--bin")
    args = ap.parse_args()
    old, md = export.read_safetensors(args.model)
    net, arch, labels, _ = export.load_model_file(args.model)
    quant = {k[:-len(".weight")]: {np.dtype(np.int8): "i8", np.dtype(np.float16): "f16"}[v.dtype]
             for k, v in old.items() if k.endswith(".weight") and v.dtype != np.float32}
    keep = {k: v for k, v in md.items() if k in ("description", "license", "training")}
    if "training" in keep:  # older files named the build machine's checkout: repository-relative now
        keep["training"] = re.sub(r"(/[^ /]+)+/(build/audioclass|models/)", r"\2", keep["training"])
    net.policy = json.loads(md["policy"])
    export.export_model(net, arch, labels, args.out, md["name"], quant, keep,
                        check=not args.no_check, bin=args.bin)
    new, new_md = export.read_safetensors(args.out)
    for k, v in old.items():
        w = new.get(k)
        if w is None or w.dtype != v.dtype or w.shape != v.shape or w.tobytes() != v.tobytes():
            sys.exit(f"tensor {k} differs between {args.model} and {args.out}")
    extra = sorted(set(new) - set(old))
    print(f"{args.out}: format {new_md['format_version']}, {len(json.loads(new_md['graph'])['nodes'])} "
          f"nodes; all {len(old)} tensors identical to {args.model}" + (f"; new: {extra}" if extra else ""))

    golden = args.golden or os.path.join(parity.ROOT, "tests", "golden",
                                         os.path.basename(args.model).replace(".safetensors", ".golden.safetensors"))
    fx_tensors, fx_md = export.read_safetensors(golden)
    graph = json.loads(new_md["graph"])
    eff = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in _dequant(new).items()}
    shape = json.loads(new_md["input_shape"])
    worst_ref = worst_c = 0.0
    for i in range(int(fx_md["clips"])):
        win = fx_tensors[f"clip{i}.windows"]
        want = fx_tensors[f"clip{i}.output"].astype(np.float64)
        x = win.reshape([len(win)] + shape)
        got = graph_ref.run(graph, eff, torch.from_numpy(x.astype(np.float64)))[graph["output"]]
        worst_ref = max(worst_ref, float(np.abs(got.numpy() - want).max()))
        if not args.no_check:
            c = parity.run_engine(args.out, x, bin=args.bin)["output"]
            worst_c = max(worst_c, float(np.abs(c - want).max()))
    print(f"golden {golden}: {fx_md['clips']} clips; max |output diff| graph_ref {worst_ref:.2g}"
          + ("" if args.no_check else f", C engine {worst_c:.2g}"))
    if worst_ref > TOL or worst_c > TOL:
        sys.exit(f"{args.out} does not reproduce {golden} (tolerance {TOL})")


def _dequant(tensors):
    out = {}
    for k, v in tensors.items():
        if k.endswith("_scale"):
            continue
        if v.dtype == np.int8:
            s = tensors[k + "_scale"]
            v = (v.reshape(v.shape[0], -1).astype(np.float32) * s[:, None]).reshape(v.shape)
        out[k] = np.asarray(v, np.float32)
    return out


if __name__ == "__main__":
    main()
