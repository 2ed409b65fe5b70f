#!/usr/bin/python3
"""Write audioclass model files (models/FORMAT.md) and golden fixtures from PyTorch modules.

Library use (from the training scripts):
    export_model(net, "m5", labels, "models/m5-speech.safetensors", name="m5-speech")
    write_golden(net, "m5", "tests/golden/m5-speech.golden.safetensors", clips, effective)

Command line:
    /usr/bin/python3 models/train/export.py --checkpoint CKPT --out FILE [--quant fc=i8]
    /usr/bin/python3 models/train/export.py --random ARCH --out FILE   (seeded random weights)
"""
import argparse
import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nets  # noqa: E402

FORMAT_VERSION = "1"
_DTYPE_NAME = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
               np.dtype(np.int8): "I8"}
_DTYPE_ORDER = {"F32": 0, "F16": 1, "I8": 2}  # widest first keeps every tensor aligned


def write_safetensors(path, tensors, metadata):
    """tensors: name -> numpy array (float32, float16 or int8); metadata: str -> str."""
    items = sorted(tensors.items(), key=lambda kv: (_DTYPE_ORDER[_DTYPE_NAME[kv[1].dtype]], kv[0]))
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, arr in items:
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPE_NAME[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Returns (tensors as float32/int8/float16 numpy arrays, metadata)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dt = {"F32": np.float32, "F16": np.float16, "I8": np.int8}[info["dtype"]]
            a, b = info["data_offsets"]
            f.seek(base + a)
            out[name] = np.frombuffer(f.read(b - a), dtype=dt).reshape(info["shape"])
    return out, header.get("__metadata__", {})


def load_checkpoint(path):
    """A training checkpoint (.pt: arch, labels, model, ...) -> (checkpoint dict, network
    holding its "model" weights, in eval mode)."""
    ck = torch.load(path, map_location="cpu")
    net = nets.build(ck["arch"], len(ck["labels"]), ck["model"])
    net.load_state_dict(ck["model"])
    return ck, net.eval()


def load_model_file(path):
    """A shipped model file back as a PyTorch network (I8 rows dequantized, F16 widened).
    Returns (net in eval mode, arch, labels, metadata)."""
    tensors, md = read_safetensors(path)
    arch, labels = md["arch"], json.loads(md["labels"])
    net = nets.build(arch, len(labels), tensors)
    sd = net.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        t = tensors[k]
        if t.dtype == np.int8:
            s = tensors[k + "_scale"]
            t = (t.reshape(t.shape[0], -1).astype(np.float32) * s[:, None]).reshape(t.shape)
        sd[k] = torch.from_numpy(np.array(t, np.float32))
    net.load_state_dict(sd)
    return net.eval(), arch, labels, md


def quantize_i8(w):
    """Per-output-channel symmetric int8: w ~ q * scale[row]. w: [out, ...]."""
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    scale = np.abs(flat).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale.astype(np.float32)


def quantized_state(net, quant):
    """quant: {layer name: "f32"|"f16"|"i8"} for weights of conv/linear layers.

    Returns (file tensors, effective float32 state_dict that the engine will compute with),
    so that a reference forward pass in PyTorch uses exactly the stored numbers.
    """
    tensors, effective = {}, {}
    for name, t in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        w = t.detach().cpu().numpy().astype(np.float32)
        layer, _, kind = name.rpartition(".")
        mode = quant.get(layer, "f32") if kind == "weight" else "f32"
        if mode == "i8":
            q, s = quantize_i8(w)
            tensors[name], tensors[name + "_scale"] = q, s
            effective[name] = (q.reshape(q.shape[0], -1).astype(np.float32) * s[:, None]).reshape(w.shape)
        elif mode == "f16":
            tensors[name] = w.astype(np.float16)
            effective[name] = tensors[name].astype(np.float32)
        elif mode == "f32":
            tensors[name] = effective[name] = w
        else:
            raise ValueError(f"unknown quantization {mode!r} for {layer}")
    return tensors, effective


def apply_effective(net, effective):
    """Load the effective (dequantized) weights into net, for reference outputs."""
    sd = net.state_dict()
    for name, w in effective.items():
        sd[name] = torch.from_numpy(np.array(w))
    net.load_state_dict(sd)


def metadata_for(net, arch, labels, name, extra=None):
    md = {"format": "audioclass", "format_version": FORMAT_VERSION, "name": name,
          "arch": arch, "sample_rate": str(net.sample_rate),
          "input_shape": json.dumps(net.input_shape), "labels": json.dumps(list(labels)),
          "graph": json.dumps(net.graph()),
          "policy": json.dumps(getattr(net, "policy", None) or nets.POLICIES[arch])}
    for k, v in (extra or {}).items():
        md[k] = v if isinstance(v, str) else json.dumps(v)
    return md


def export_model(net, arch, labels, path, name=None, quant=None, extra=None):
    """Write net as a model file. Returns the effective float32 weights (see above)."""
    net = net.eval()
    tensors, effective = quantized_state(net, quant or {})
    name = name or os.path.splitext(os.path.basename(path))[0]
    write_safetensors(path, tensors, metadata_for(net, arch, labels, name, extra))
    return effective


def window_starts(n_samples, policy):
    """The test-time policy of models/FORMAT.md; mirrors ac_plan_windows in engine/model.c."""
    w, hop, pad = policy["window"], policy["hop"], policy["pad"]
    length = n_samples + 2 * pad
    if length <= w:
        return length, [0]
    n = math.ceil((length - w) / hop) + 1
    return length, [int(math.floor(i * (length - w) / (n - 1) + 0.5)) for i in range(n)]


def policy_windows(clip, policy):
    """clip: [n] float32 -> [windows, window] float32, as the engine cuts them."""
    w, pad = policy["window"], policy["pad"]
    padded = np.concatenate([np.zeros(pad, np.float32), clip.astype(np.float32),
                             np.zeros(pad, np.float32)])
    length, starts = window_starts(len(clip), policy)
    if length < w:
        left = (w - length) // 2
        out = np.zeros((1, w), np.float32)
        out[0, left:left + length] = padded
        return out
    return np.stack([padded[s:s + w] for s in starts])


def output_probs(out, last_op):
    """Probabilities a raw output stands for (models/FORMAT.md): as the engine does."""
    if last_op == "softmax":
        return out
    if last_op == "log_softmax":
        return out.exp()
    return torch.softmax(out, dim=-1)


@torch.no_grad()
def evaluate_policy(net, arch, clips, batch=64, progress=None, policy=None):
    """Classifies whole clips as the server does: the policy's windows, each window's
    probabilities (output_probs), averaged per clip. -> (predicted labels, probs [clips, C]).
    progress: a label for a progress line (common.Progress), or None. policy: a test-time
    policy to try instead of the architecture's (nets.POLICIES)."""
    net.eval()
    wins, owner = [], []
    for k, c in enumerate(clips):
        w = policy_windows(np.asarray(c, np.float32), policy or nets.POLICIES[arch])
        wins.append(w)
        owner += [k] * len(w)
    wins, owner = np.concatenate(wins), np.asarray(owner)
    last_op = net.graph()[-1]["op"]
    probs = None
    bar = None
    if progress:
        import common  # progress line only
        bar = common.Progress(len(wins), progress)
    for s in range(0, len(wins), batch):
        x = torch.from_numpy(wins[s:s + batch]).reshape([-1] + list(net.input_shape))
        p = output_probs(net(x), last_op).double().numpy()
        if probs is None:
            probs = np.zeros((len(clips), p.shape[1]))
        np.add.at(probs, owner[s:s + batch], p)
        if bar:
            bar.update(min(s + batch, len(wins)))
    if bar:
        bar.close()
    probs /= np.bincount(owner, minlength=len(clips))[:, None]
    return probs.argmax(1), probs


@torch.no_grad()
def write_golden(net, arch, path, clips, effective=None, model_file=None, policy=None):
    """Golden fixture: each clip, its windows, the network's raw outputs and the clip's
    averaged probabilities, computed in float64 by PyTorch from the stored weights.
    model_file: the model's path relative to the repository root (the C test loads it);
    default models/NAME.safetensors for a fixture named NAME.golden.safetensors."""
    ref = copy.deepcopy(net)
    if effective is not None:
        apply_effective(ref, effective)
    ref = ref.double().eval()
    policy = policy or nets.POLICIES[arch]
    tensors = {}
    for i, clip in enumerate(clips):
        win = policy_windows(np.asarray(clip, np.float32), policy)
        x = torch.from_numpy(win.astype(np.float64)).reshape([len(win)] + list(net.input_shape))
        out = ref(x)
        probs = output_probs(out, net.graph()[-1]["op"]).mean(0)
        tensors[f"clip{i}.audio"] = np.asarray(clip, np.float32)
        tensors[f"clip{i}.windows"] = win
        tensors[f"clip{i}.output"] = out.numpy().astype(np.float32)
        tensors[f"clip{i}.probs"] = probs.numpy().astype(np.float32)
    if not model_file:
        model_file = "models/" + os.path.basename(path).replace(".golden.safetensors", ".safetensors")
    md = {"arch": arch, "clips": str(len(clips)), "model": model_file}
    write_safetensors(path, tensors, md)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="training checkpoint (.pt) with arch, labels, model")
    src.add_argument("--random", choices=sorted(nets.ARCHS), help="seeded random weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name")
    ap.add_argument("--classes", type=int, default=12, help="with --random")
    ap.add_argument("--quant", action="append", default=[], help="LAYER=f32|f16|i8 (repeat)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    quant = dict(q.split("=", 1) for q in args.quant)
    if args.checkpoint:
        ck, net = load_checkpoint(args.checkpoint)
        arch, labels, extra = ck["arch"], ck["labels"], ck.get("metadata", {})
    else:
        torch.manual_seed(args.seed)
        arch, labels, extra = args.random, [f"class{i}" for i in range(args.classes)], {}
        net = nets.ARCHS[arch](args.classes)
        randomize_bn(net)
    export_model(net, arch, labels, args.out, args.name, quant, extra)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


def randomize_bn(net):
    """Give batch norm layers non-trivial statistics so folding is really exercised."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


if __name__ == "__main__":
    main()
