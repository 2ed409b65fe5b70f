"""Parity of a written model file: the C engine (`audioclass forward`) against PyTorch in float64.

    check(traced, "model.safetensors")  # raises ParityError above 1e-4 on the probabilities

The engine binary: the `bin` argument, else $AUDIOCLASS_BIN, else build/audioclass under the
repository root.
"""
import os
import subprocess
import tempfile

import numpy as np

import fx_export
from fx_export import ExportError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-4


class ParityError(ExportError):
    """The C engine's answer differs from PyTorch's (the message says by how much, where)."""


def engine_bin(bin=None):
    path = bin or os.environ.get("AUDIOCLASS_BIN") or os.path.join(ROOT, "build", "audioclass")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ExportError(f"the parity check needs the C engine, and {path} is not an executable: "
                          "build it (cmake -S . -B build && cmake --build build) or set "
                          "AUDIOCLASS_BIN")
    return path


def run_engine(model, x, nodes=False, bin=None):
    """x [n, *input_shape] float32 -> the tensors of `audioclass forward` (output, probs and,
    with nodes, node/<id>) as numpy arrays. Raises ExportError if the engine refuses."""
    import export  # safetensors reader
    exe = engine_bin(bin)
    with tempfile.TemporaryDirectory(prefix="ac-parity-") as tmp:
        inp, out = os.path.join(tmp, "in.f32"), os.path.join(tmp, "out.safetensors")
        np.ascontiguousarray(x, dtype="<f4").tofile(inp)
        cmd = [exe, "forward", "--model", model, "--input", inp, "--out", out]
        if nodes:
            cmd.append("--nodes")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise ExportError(f"the C engine refused {model}: {(r.stderr or r.stdout).strip()}")
        tensors, _ = export.read_safetensors(out)
        return {k: np.array(v, np.float64) for k, v in tensors.items()}


def _topo(graph):
    import graph_ref
    return [nd["id"] for nd in graph_ref._order(graph)]


def check(traced, model, items=4, seed=1, tol=TOLERANCE, bin=None):
    """Runs `items` seeded random inputs (uniform in [-1, 1)) through the file and through
    PyTorch; returns {"items", "max_prob_diff", "max_output_diff"}; raises ParityError."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, [items] + list(traced.input_shape)).astype(np.float32)
    ref_out, ref_probs, ref_nodes = fx_export.reference(traced, x)
    got = run_engine(model, x, bin=bin)
    for key, ref in (("output", ref_out), ("probs", ref_probs)):
        if key not in got or got[key].shape != tuple(ref.shape):
            raise ParityError(f"{model}: the engine's {key} has shape "
                              f"{list(got[key].shape) if key in got else None}, PyTorch's {list(ref.shape)}")
    dp = float(np.abs(got["probs"] - ref_probs.numpy()).max())
    do = float(np.abs(got["output"] - ref_out.numpy()).max())
    res = {"items": items, "max_prob_diff": dp, "max_output_diff": do}
    if dp <= tol:
        return res
    where = first_divergence(traced, model, x, ref_nodes, tol, bin)
    raise ParityError(f"{model}: the C engine differs from PyTorch (float64) on {items} random "
                      f"inputs of shape {traced.input_shape}: max |probs diff| {dp:.3g} > {tol:g} "
                      f"(raw output {do:.3g}); {where}")


def first_divergence(traced, model, x, ref_nodes, tol=TOLERANCE, bin=None):
    """Names the first node (in execution order) whose engine value differs from PyTorch's."""
    try:
        got = run_engine(model, x, nodes=True, bin=bin)
    except ExportError as e:
        return f"per-node values unavailable ({e})"
    for nid in _topo(traced.graph):
        key = "node/" + nid
        if key not in got or nid not in ref_nodes:
            continue
        ref = ref_nodes[nid].numpy()
        if got[key].shape != ref.shape:
            return f"first divergence at node {nid}: shape {list(got[key].shape)} vs PyTorch {list(ref.shape)}"
        d = float(np.abs(got[key] - ref).max())
        if d > tol * max(1.0, float(np.abs(ref).max())):
            op = next(nd["op"] for nd in traced.graph["nodes"] if nd["id"] == nid)
            return f"first divergence at node {nid} ({op}): max diff {d:.3g}"
    return "no single node differs beyond the tolerance (the differences accumulate)"
