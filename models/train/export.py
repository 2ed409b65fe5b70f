#!/usr/bin/python3
"""Write audioclass model files (models/FORMAT.md, version 2) and golden fixtures from PyTorch.

Any module (traced with torch.fx by fx_export.py, then checked against the C engine):
    export_module(net, "my.safetensors", sample_rate=16000, input_shape=[1, 16000],
                  labels=["a", "b"], quant={"fc": "i8"})
The shipped networks (from the training scripts):
    export_model(net, "m5", labels, "models/m5-speech.safetensors", name="m5-speech")
    write_golden(net, "m5", "tests/golden/m5-speech.golden.safetensors", clips, effective)

Command line (docs/BRING_YOUR_OWN_MODEL.md):
    /usr/bin/python3 models/train/export.py --module net.py:Net [--kwargs JSON] [--weights SD.pt] \
        --input-shape 1,16000 --sample-rate 16000 --labels a,b,c|--labels-file F --out FILE
    /usr/bin/python3 models/train/export.py --checkpoint CKPT --out FILE [--quant fc=i8]
    /usr/bin/python3 models/train/export.py --random ARCH --out FILE   (seeded random weights)
Every export runs the file through `audioclass forward` and refuses it (deletes it, exits 1)
when the probabilities differ from PyTorch's by more than 1e-4.
"""
import argparse
import copy
import importlib.util
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fx_export  # noqa: E402
import nets  # noqa: E402
import parity  # noqa: E402
from fx_export import ExportError, quantize_i8  # noqa: E402,F401 (re-exported)
from parity import ParityError  # noqa: E402,F401 (re-exported)

FORMAT_VERSION = "2"
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


def export_module(module, path, *, sample_rate, input_shape, labels, policy=None, name=None,
                  quant=None, extra=None, arch=None, check=True, bin=None):
    """Writes any nn.Module as a format-2 model file, then checks it against the C engine.

    input_shape: one item without the batch axis ([1, 16000], [1, 1, 24014]). policy: test-time
    windows (default: one window of the input length). quant: {layer: "f16"|"i8"} for conv and
    linear weights. extra: more metadata (description, license, training). check: run the
    parity check (the engine binary: bin, $AUDIOCLASS_BIN or build/audioclass).
    Raises ExportError (unsupported op, named with its module path) or ParityError (the file is
    deleted). Returns the fx_export.Traced (graph, tensors, effective weights) with .parity set.
    """
    shape = [int(s) for s in input_shape]
    if shape[:-1] not in ([1], [1, 1]) or shape[-1] < 1:
        raise ExportError(f"input_shape {list(input_shape)}: the service feeds one mono waveform "
                          "per item, [1, L] (1-D networks) or [1, 1, L] (2-D networks)")
    traced = fx_export.trace_module(module, input_shape, quant)
    labels = [str(x) for x in labels]
    out = next(nd for nd in traced.graph["nodes"] if nd["id"] == traced.graph["output"])
    n_out = traced.output_shape[0]
    if n_out != len(labels):
        raise ExportError(f"the network gives {n_out} outputs (node {out['id']}), but there are "
                          f"{len(labels)} labels")
    length = int(input_shape[-1])
    policy = policy or {"window": length, "hop": length, "pad": 0}
    name = name or os.path.splitext(os.path.basename(path))[0]
    md = {"format": "audioclass", "format_version": FORMAT_VERSION, "name": name,
          "arch": arch or type(module).__name__.lower(), "sample_rate": str(int(sample_rate)),
          "input_shape": json.dumps([int(s) for s in input_shape]), "labels": json.dumps(labels),
          "graph": json.dumps(traced.graph), "policy": json.dumps(policy)}
    for k, v in (extra or {}).items():
        md[k] = v if isinstance(v, str) else json.dumps(v)
    write_safetensors(path, traced.tensors, md)
    traced.parity = None
    if check:
        try:
            traced.parity = parity.check(traced, path, bin=bin)
        except ExportError:
            os.remove(path)
            raise
    return traced


def export_model(net, arch, labels, path, name=None, quant=None, extra=None, check=True, bin=None):
    """A shipped architecture (nets.ARCHS) as a model file, through export_module with its
    test-time policy. Returns the effective float32 weights the engine computes with."""
    policy = getattr(net, "policy", None) or nets.POLICIES[arch]
    traced = export_module(net.eval(), path, sample_rate=net.sample_rate, input_shape=net.input_shape,
                           labels=labels, policy=policy, name=name, quant=quant, extra=extra,
                           arch=arch, check=check, bin=bin)
    return traced.effective


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


output_probs = fx_export.probs_of  # probabilities a raw output stands for, as the engine

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
    last_op = fx_export.last_op(net)
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
    last_op = fx_export.last_op(net)
    tensors = {}
    for i, clip in enumerate(clips):
        win = policy_windows(np.asarray(clip, np.float32), policy)
        x = torch.from_numpy(win.astype(np.float64)).reshape([len(win)] + list(net.input_shape))
        out = ref(x)
        probs = output_probs(out, last_op).mean(0)
        tensors[f"clip{i}.audio"] = np.asarray(clip, np.float32)
        tensors[f"clip{i}.windows"] = win
        tensors[f"clip{i}.output"] = out.numpy().astype(np.float32)
        tensors[f"clip{i}.probs"] = probs.numpy().astype(np.float32)
    if not model_file:
        model_file = "models/" + os.path.basename(path).replace(".golden.safetensors", ".safetensors")
    md = {"arch": arch, "clips": str(len(clips)), "model": model_file}
    write_safetensors(path, tensors, md)


def load_module(spec, kwargs=None, weights=None):
    """"path/to/file.py:ClassName" -> an instance (constructed with kwargs), with a state dict
    file (torch.save(net.state_dict())) loaded when given."""
    path, sep, cls = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not cls:
        raise ExportError(f"--module {spec!r}: expected FILE.py:CLASS")
    if not os.path.isfile(path):
        raise ExportError(f"--module: no such file {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    mod_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    if not hasattr(mod, cls):
        raise ExportError(f"--module: {path} has no {cls}")
    net = getattr(mod, cls)(**(kwargs or {}))
    if weights:
        net.load_state_dict(torch.load(weights, map_location="cpu"))
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--module", help="FILE.py:CLASS, any nn.Module (with --input-shape, --sample-rate, labels)")
    src.add_argument("--checkpoint", help="training checkpoint (.pt) with arch, labels, model")
    src.add_argument("--random", choices=sorted(nets.ARCHS), help="seeded random weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name")
    ap.add_argument("--kwargs", default="{}", help="with --module: constructor arguments as JSON")
    ap.add_argument("--weights", help="with --module: a state dict saved with torch.save")
    ap.add_argument("--input-shape", help="with --module: one item without the batch axis, e.g. 1,16000")
    ap.add_argument("--sample-rate", type=int, help="with --module: Hz")
    ap.add_argument("--labels", help="with --module: comma-separated labels")
    ap.add_argument("--labels-file", help="with --module: one label per line")
    ap.add_argument("--policy", help='test-time windows as JSON, e.g. {"window": 16000, "hop": 8000, '
                    '"pad": 0} (default: one window of the input length)')
    ap.add_argument("--description", help="metadata shown by `info` and GET /models/NAME")
    ap.add_argument("--classes", type=int, default=12, help="with --random")
    ap.add_argument("--quant", action="append", default=[], help="LAYER=f32|f16|i8 (repeat)")
    ap.add_argument("--seed", type=int, default=0, help="with --random or --module without --weights")
    ap.add_argument("--bin", help="audioclass binary for the parity check (default $AUDIOCLASS_BIN "
                    "or build/audioclass)")
    args = ap.parse_args()
    quant = dict(q.split("=", 1) for q in args.quant)
    extra = {"description": args.description} if args.description else {}
    policy = json.loads(args.policy) if args.policy else None
    try:
        if args.module:
            net, out, kw = _module_args(ap, args)
            traced = export_module(net, out, **kw, name=args.name, quant=quant, extra=extra,
                                   policy=policy, bin=args.bin)
            res = traced.parity
            print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, "
                  f"{len(traced.graph['nodes'])} nodes); parity with PyTorch on {res['items']} "
                  f"random inputs: max |probs diff| {res['max_prob_diff']:.2g}")
            return
        if args.checkpoint:
            ck, net = load_checkpoint(args.checkpoint)
            arch, labels, extra = ck["arch"], ck["labels"], {**ck.get("metadata", {}), **extra}
        else:
            torch.manual_seed(args.seed)
            arch, labels = args.random, [f"class{i}" for i in range(args.classes)]
            net = nets.ARCHS[arch](args.classes)
            randomize_bn(net)
        if policy:
            net.policy = policy
        export_model(net, arch, labels, args.out, args.name, quant, extra, bin=args.bin)
        print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    except ExportError as e:
        sys.exit(f"export.py: {e}")


def _module_args(ap, args):
    if not args.input_shape or not args.sample_rate or not (args.labels or args.labels_file):
        ap.error("--module needs --input-shape, --sample-rate and --labels or --labels-file")
    try:
        shape = [int(v) for v in args.input_shape.split(",")]
    except ValueError:
        ap.error(f"--input-shape {args.input_shape!r}: integers separated by commas, e.g. 1,16000")
    if args.labels_file:
        with open(args.labels_file) as f:
            labels = [line.strip() for line in f if line.strip()]
    else:
        labels = [x.strip() for x in args.labels.split(",")]
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as e:
        ap.error(f"--kwargs: not JSON ({e})")
    torch.manual_seed(args.seed)  # the initial weights when --weights is not given
    net = load_module(args.module, kwargs, args.weights)
    return net, args.out, dict(sample_rate=args.sample_rate, input_shape=shape, labels=labels)


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
