"""Any nn.Module -> a format-2 graph (models/FORMAT.md) by tracing it with torch.fx.

    traced = trace_module(module, input_shape=[1, 16000], quant={"fc": "i8"})
    traced.graph     # {"output": id, "nodes": [...]}: the file's `graph` metadata
    traced.tensors   # file tensors (numpy, state_dict names; weight norm folded)
    reference(traced, x)  # PyTorch float64: raw output, probabilities, every node's value

Each fx node becomes at most a few graph nodes; a node keeps its fx name as id (helper
nodes of an expansion get `ID.k`). Whatever format 2 cannot express exactly is refused
with ExportError naming the module path and the op. Shapes come from running the traced
module (ShapeProp) on items of `input_shape` with batch 2 and again with batch 3, which
tells the batch axis apart from the others. After the translation the graph is run by
graph_ref.py (the format's semantics in PyTorch) and compared with the module itself, so a
translation error is caught here, before the C engine sees the file.

Files: fx_trace.py (tracing), fx_values.py (the translation's values, ExportError),
fx_ops.py (one handler per PyTorch operation), this file (the translation loop, weights,
quantization, the float64 reference and the self-check).
"""
import copy

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

import graph_ref
from fx_ops import _FUNCTIONS, _METHODS, _MODULES, _custom_layernorm
from fx_trace import _is_format_layernorm, record, trace
from fx_values import (SUPPORTED, Const, ExportError, Rnn, Static, Val, _fn_desc,  # noqa: F401
                       _mod_desc)


# ---------------------------------------------------------------- the translator

class _Translator:
    def __init__(self, gm, input_shape, rec2, rec3):
        self.gm, self.rec2, self.rec3 = gm, rec2, rec3
        self.modules = dict(gm.named_modules())
        self.nodes, self.env, self.tensors = [], {}, {}
        self.ids = set(["input"])
        self.fx_ids = {}            # fx node name -> graph id holding its value
        self.module_nodes = {}      # module path -> id (weights may not be shared)
        self.const_ids = {}         # fx name of a Const -> its const node (Val)
        self.const_nodes = set()    # ids of const nodes
        self.input_shape = tuple(input_shape)

    # -- helpers
    def where(self, n):
        if n.op == "call_module":
            return n.target
        return n.meta.get("ac_path") or "(top level)"

    def fail(self, n, what, why=None):
        raise ExportError(f"{self.where(n)}: {what} " + (f"({why})" if why else
                                                         f"is not supported (supported: {SUPPORTED})"))

    def new_id(self, base):
        base = "".join(c if c.isalnum() or c in "_.:/-" else "_" for c in base)[:56] or "v"
        i, cand = 0, base
        while cand in self.ids:
            i += 1
            cand = f"{base}_{i}"
        self.ids.add(cand)
        return cand

    def emit(self, n, op, inputs, shape, sub=None, **fields):
        """Appends a graph node for fx node n; sub numbers helper nodes of an expansion."""
        nid = self.new_id(n.name if sub is None else f"{n.name}.{sub}")
        node = {"id": nid, "op": op, "inputs": [v.id if isinstance(v, Val) else v for v in inputs]}
        node.update(fields)
        self.nodes.append(node)
        return Val(nid, shape)

    def shape_of(self, n):
        """Per-item shape of n's value, checking that axis 0 is the batch axis."""
        a, b = self.rec2[n.name], self.rec3[n.name]
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            self.fail(n, f"{n.op} {n.target}", "does not produce a tensor")
        if a.shape[0] != 2 or b.shape[0] != 3 or tuple(a.shape[1:]) != tuple(b.shape[1:]):
            self.fail(n, self.op_desc(n), f"mixes the batch axis into the item: batch 2 gives "
                      f"{list(a.shape)}, batch 3 gives {list(b.shape)}")
        if not 1 <= a.dim() - 1 <= 3:
            self.fail(n, self.op_desc(n), f"gives items of shape {list(a.shape[1:])}; an item "
                      "has 1 to 3 axes")
        return tuple(a.shape[1:])

    def op_desc(self, n):
        if n.op == "call_module":
            return _mod_desc(self.modules[n.target])
        return _fn_desc(n.target)

    def dim(self, n, v, d, what="dim"):
        """Resolves a PyTorch axis of value v (batch included); refuses the batch axis."""
        nd = v.nd
        if not -nd <= d < nd:
            self.fail(n, self.op_desc(n), f"{what} {d} out of range")
        d = d % nd
        if d == 0:
            self.fail(n, self.op_desc(n), f"{what} 0 is the batch axis")
        return d

    def arg(self, n, a):
        """Environment value of an argument (a Node or a literal)."""
        if isinstance(a, fx.Node):
            return self.env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(self.arg(n, x) for x in a)
        return Static(a)

    def tensor(self, n, a):
        v = self.arg(n, a)
        if not isinstance(v, Val):
            self.fail(n, self.op_desc(n), "expects a tensor computed from the input here")
        return v

    def lit(self, a):
        """A literal (possibly a Static node) as a plain Python value."""
        if isinstance(a, fx.Node):
            v = self.env[a.name]
            if isinstance(v, Static) and v.batch:
                n, x2, x3 = v.batch
                self.fail(n, self.op_desc(n), f"a value that depends on the batch size ({x2} vs "
                          f"{x3}); such values are only allowed as arguments of view/reshape")
            return v.value if isinstance(v, Static) else v
        if isinstance(a, (list, tuple)):
            return type(a)(self.lit(x) for x in a)
        if isinstance(a, slice):
            return slice(self.lit(a.start), self.lit(a.stop), self.lit(a.step))
        return a

    def use_module(self, n, m):
        path = n.target
        if path in self.module_nodes:
            self.fail(n, _mod_desc(m), "is called more than once; format 2 gives every node "
                      "its own tensors (use a separate module per call)")
        self.module_nodes[path] = n.name
        return path

    def add_tensor(self, name, t):
        self.tensors[name] = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))

    # -- main loop
    def run(self):
        g = self.gm.graph
        out_node = [n for n in g.nodes if n.op == "output"][0]
        needed = set()
        stack = [out_node]
        while stack:
            n = stack.pop()
            if n.name in needed:
                continue
            needed.add(n.name)
            stack.extend(n.all_input_nodes)
        depends = set()
        for n in g.nodes:
            if n.op == "placeholder":
                depends.add(n.name)
            elif any(a.name in depends for a in n.all_input_nodes):
                depends.add(n.name)
        placeholders = [n for n in g.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ExportError(f"forward takes {len(placeholders)} inputs; a model has exactly one")
        for n in g.nodes:
            if n.name not in needed:
                continue
            if n.op == "placeholder":
                self.env[n.name] = Val("input", self.input_shape)
                self.fx_ids[n.name] = "input"
            elif n.op == "output":
                return self.finish(n)
            elif n.name not in depends:
                self.env[n.name] = self.static(n)
            else:
                v = self.translate(n)
                self.env[n.name] = v
                if isinstance(v, Val):
                    self.fx_ids[n.name] = v.id
                    want = self.shape_of(n)
                    if v.shape != want:
                        raise ExportError(f"{self.where(n)}: internal: {self.op_desc(n)} "
                                          f"translated to shape {list(v.shape)}, PyTorch has {list(want)}")
                elif isinstance(v, Rnn) and v.state == 0:
                    self.fx_ids[n.name] = v.val.id

    def static(self, n):
        a, b = self.rec2.get(n.name), self.rec3.get(n.name)
        if isinstance(a, torch.Tensor):
            if not torch.equal(a, b):
                self.fail(n, self.op_desc(n), "a constant that differs between calls")
            src = n
            while src.op != "get_attr" and src.all_input_nodes:
                src = src.all_input_nodes[0]
            if src.op != "get_attr":
                return Const(a, n.name, n.name)
            p = self.rec2[src.name]
            same = isinstance(p, torch.Tensor) and p.numel() == a.numel() and \
                torch.equal(p.reshape(-1), a.reshape(-1))
            return Const(a, src.target, n.name, same)
        if a != b:  # e.g. x.size(0): fine as an argument of view/reshape, refused elsewhere
            return Static(None, (n, a, b))
        return Static(a)

    def finish(self, n):
        (res,) = n.args
        v = self.arg(n, res)
        if not isinstance(v, Val):
            self.fail(n, "the network's output", "must be one tensor computed from the input")
        if len(v.shape) != 1:
            self.fail(n, "the network's output", f"must be flat per item, [labels]; it is "
                      f"{list(v.shape)}")
        return {"output": v.id, "nodes": self.nodes}, v

    # -- dispatch
    def translate(self, n):
        if n.op == "call_module":
            m = self.modules[n.target]
            for cls, fn in _MODULES:
                if isinstance(m, cls):
                    return fn(self, n, m)
            if _is_format_layernorm(m):
                return _custom_layernorm(self, n, m)
            self.fail(n, _mod_desc(m))
        if n.op in ("call_function", "call_method") and all(
                isinstance(self.env[a.name], Static) for a in n.all_input_nodes):
            return self.static(n)  # arithmetic on sizes: x.shape[-1] // 2
        if n.op == "call_function":
            fn = _FUNCTIONS.get(n.target)
            if fn is None:
                self.fail(n, _fn_desc(n.target))
            return fn(self, n)
        if n.op == "call_method":
            fn = _METHODS.get(n.target)
            if fn is None:
                self.fail(n, f"Tensor.{n.target}")
            return fn(self, n)
        if n.op == "get_attr":  # cannot depend on the input
            return self.static(n)
        self.fail(n, n.op)


# ---------------------------------------------------------------- quantization and results

def quantize_i8(w):
    """Per-output-channel symmetric int8: w ~ q * scale[row]. w: [out, ...]."""
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    scale = np.abs(flat).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(flat / scale[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale.astype(np.float32)


def apply_quant(graph, tensors, quant):
    """quant: {node name (module path): "f32"|"f16"|"i8"} for the weights of named nodes.
    Returns (file tensors, effective float32 tensors the engine computes with)."""
    names = {nd["name"]: nd["op"] for nd in graph["nodes"] if "name" in nd and nd["op"] != "const"}
    file, eff = dict(tensors), dict(tensors)
    for layer, mode in (quant or {}).items():
        if layer not in names or layer + ".weight" not in tensors:
            raise ExportError(f"quant: no layer with weights named {layer!r} (layers: "
                              f"{', '.join(sorted(names))})")
        w = tensors[layer + ".weight"]
        if mode == "i8":
            if names[layer] not in ("conv1d", "conv2d", "linear"):
                raise ExportError(f"quant: {layer} is a {names[layer]}; i8 is for conv and linear weights")
            q, s = quantize_i8(w)
            file[layer + ".weight"], file[layer + ".weight_scale"] = q, s
            eff[layer + ".weight"] = (q.reshape(q.shape[0], -1).astype(np.float32) * s[:, None]).reshape(w.shape)
        elif mode == "f16":
            file[layer + ".weight"] = w.astype(np.float16)
            eff[layer + ".weight"] = file[layer + ".weight"].astype(np.float32)
        elif mode != "f32":
            raise ExportError(f"quant: unknown mode {mode!r} for {layer} (f32, f16, i8)")
    return file, eff


class Traced:
    """A module translated to a format-2 graph."""

    def __init__(self, gm, graph, tensors, effective, fx_ids, input_shape, last_op, output_shape):
        self.gm, self.graph, self.tensors, self.effective = gm, graph, tensors, effective
        self.output_shape = list(output_shape)  # per item: [labels]
        self.fx_ids, self.input_shape, self.last_op = fx_ids, list(input_shape), last_op


def trace_module(module, input_shape, quant=None, seed=0):
    """Translates module (put in eval mode) for items of input_shape. Raises ExportError."""
    if not isinstance(module, nn.Module):
        raise ExportError(f"expected an nn.Module, got {type(module).__name__}")
    input_shape = [int(s) for s in input_shape]
    if not 1 <= len(input_shape) <= 3 or min(input_shape) < 1:
        raise ExportError(f"input_shape {input_shape}: one item without the batch axis, "
                          "e.g. [1, 16000] or [1, 1, 24014]")
    gm = trace(module)
    gen = torch.Generator().manual_seed(seed)
    dtype = next((p.dtype for p in module.parameters()), torch.float32)
    try:
        rec2 = record(gm, torch.randn([2] + input_shape, generator=gen).to(dtype))
        rec3 = record(gm, torch.randn([3] + input_shape, generator=gen).to(dtype))
    except Exception as e:
        raise ExportError(f"{type(module).__name__} does not run on input [N] + {input_shape}: {e}") from e
    tr = _Translator(gm, input_shape, rec2, rec3)
    with torch.no_grad():
        graph, out = tr.run()
    last = next(nd for nd in graph["nodes"] if nd["id"] == graph["output"])["op"]
    file, eff = apply_quant(graph, tr.tensors, quant)
    traced = Traced(gm, graph, file, eff, tr.fx_ids, input_shape, last, out.shape)
    traced.quant = dict(quant or {})
    _self_check(traced, gen)
    return traced


def _reference_gm(traced):
    """The traced module in float64 with the effective (dequantized) weights."""
    ref = copy.deepcopy(traced.gm).double().eval()
    mods = dict(ref.named_modules())
    for nd in traced.graph["nodes"]:
        name = nd.get("name")
        if nd["op"] == "const" or name not in mods:
            continue
        key = name + ".weight"
        if key not in traced.effective:
            continue
        m = mods[name]
        stored = torch.from_numpy(traced.effective[key].astype(np.float64))
        if nn.utils.parametrize.is_parametrized(m, "weight"):
            _replace(ref, name, _unparametrized(m, stored))
        elif _remove_weight_norm(m) or traced.quant.get(name, "f32") != "f32":
            # the numbers in the file: dequantized, or the weight norm product in float32
            m.weight = nn.Parameter(stored)
    return ref


def _remove_weight_norm(m):
    """Removes torch.nn.utils.weight_norm from m; True if there was one."""
    found = False
    for k, hook in list(m._forward_pre_hooks.items()):
        if type(hook).__name__ == "WeightNorm":
            nn.utils.remove_weight_norm(m)
            found = True
    return found


def _unparametrized(m, weight):
    """A plain module of m's original class with `weight` (parametrize.remove_parametrizations
    would delete the property from the class that the original module shares)."""
    cls = type(m).__bases__[0]
    plain = cls.__new__(cls)
    plain.__dict__ = dict(m.__dict__)
    plain._parameters = dict(m._parameters)
    plain._parameters["weight"] = nn.Parameter(weight)
    plain._modules = {k: v for k, v in m._modules.items() if k != "parametrizations"}
    return plain


def _replace(root, path, new):
    parent, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def probs_of(out, last_op):
    """Probabilities a raw output stands for (models/FORMAT.md), as the engine computes them."""
    if last_op == "softmax":
        return out
    if last_op == "log_softmax":
        return out.exp()
    return torch.softmax(out, dim=-1)


@torch.no_grad()
def reference(traced, x):
    """x [n, *input_shape] (float) -> (output [n, labels], probs [n, labels], {id: value})
    in float64: output and every fx node's value from PyTorch, with the stored (dequantized)
    weights; helper nodes of expansions from graph_ref."""
    x64 = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    vals = record(_reference_gm(traced), x64)
    nodes = {}
    for fx_name, nid in traced.fx_ids.items():
        v = vals[fx_name]
        if isinstance(v, tuple):
            v = v[0]
        if nid != "input":
            nodes[nid] = v
    missing = [nd["id"] for nd in traced.graph["nodes"] if nd["id"] not in nodes]
    if missing:
        ref = graph_ref.run(traced.graph, _as_torch(traced.effective), x64, known=nodes)
        for nid in missing:
            nodes[nid] = ref[nid]
    out = nodes[traced.graph["output"]]
    return out, probs_of(out, traced.last_op), nodes


def _as_torch(tensors):
    return {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in tensors.items()
            if v.dtype != np.int8}


def _self_check(traced, gen):
    """graph_ref (the format's meaning) must reproduce the module on random input."""
    x = torch.randn([2] + traced.input_shape, generator=gen, dtype=torch.float64)
    _, _, want = reference(traced, x)
    got = graph_ref.run(traced.graph, _as_torch(traced.effective), x)
    for nd in traced.graph["nodes"]:
        a, b = got[nd["id"]], want[nd["id"]]
        if tuple(a.shape) != tuple(b.shape) or \
                float((a - b).abs().max()) > 1e-6 * max(1.0, float(b.abs().max())):
            raise ExportError(f"internal: node {nd['id']} ({nd['op']}) of the written graph "
                              f"does not reproduce PyTorch (shapes {list(a.shape)} vs {list(b.shape)})")


def last_op(module):
    """The op of the module's final node ("log_softmax", "softmax" or another), by tracing
    only (no shapes): decides how raw outputs become probabilities."""
    gm = trace(module)
    out = [n for n in gm.graph.nodes if n.op == "output"][0]
    n = out.args[0]
    while isinstance(n, fx.Node):
        t = n.target
        m = dict(gm.named_modules()).get(t) if n.op == "call_module" else None
        if isinstance(m, nn.LogSoftmax) or t in (F.log_softmax, torch.log_softmax, "log_softmax"):
            return "log_softmax"
        if isinstance(m, nn.Softmax) or t in (F.softmax, torch.softmax, "softmax"):
            return "softmax"
        if isinstance(m, (nn.Dropout, nn.Identity)) or t in (F.dropout, "contiguous"):
            n = n.args[0]
            continue
        return "other"
    return "other"
