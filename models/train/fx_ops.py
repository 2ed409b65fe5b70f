"""How each PyTorch module, function and method becomes format-2 graph nodes (models/FORMAT.md):
one handler per operation, called by fx_export._Translator as handler(translator, fx node[, module]).
Each returns the value it produces (a Val, or a tuple-like value) and refuses, through
translator.fail, whatever it cannot express exactly."""
import operator

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from fx_values import Const, Multi, Parts, Rnn, Stack, Static, Val, _bind, _mod_desc, _pair


# ---------------------------------------------------------------- module handlers

def _conv(t, n, m):
    x = t.tensor(n, n.args[0])
    t.use_module(n, m)
    two = isinstance(m, nn.Conv2d)
    if m.padding_mode != "zeros":
        t.fail(n, _mod_desc(m), f"padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
    if len(x.shape) != (3 if two else 2):
        t.fail(n, _mod_desc(m), f"input item {list(x.shape)} has the wrong rank")
    k, d = list(m.kernel_size), list(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [0, 0] * len(k)
        else:  # same: total d*(k-1), the extra one on the right, as PyTorch
            pads = []
            for kk, dd in zip(k, d):
                tot = dd * (kk - 1)
                pads += [tot // 2, tot - tot // 2]
    else:
        pads = []
        for p in m.padding:
            pads += [p, p]
    f = {"name": n.target, "in_channels": m.in_channels, "out_channels": m.out_channels,
         "groups": m.groups, "bias": m.bias is not None}
    if two:
        f.update(kernel_size=k, stride=list(m.stride), dilation=d, padding=pads)
    else:
        f.update(kernel_size=k[0], stride=m.stride[0], dilation=d[0], padding=pads)
    t.add_tensor(n.target + ".weight", _weight(m))
    if m.bias is not None:
        t.add_tensor(n.target + ".bias", m.bias)
    return t.emit(n, "conv2d" if two else "conv1d", [x], t.shape_of(n), **f)


def _weight(m):
    """A module's effective weight: weight norm (old hook or parametrization) evaluated."""
    for hook in m._forward_pre_hooks.values():
        if type(hook).__name__ == "WeightNorm" and getattr(hook, "name", None) == "weight":
            return hook.compute_weight(m)
    return m.weight  # a parametrization computes on access


def _bn(t, n, m):
    x = t.tensor(n, n.args[0])
    t.use_module(n, m)
    if not m.track_running_stats or m.running_mean is None:
        t.fail(n, _mod_desc(m), "track_running_stats=False normalises with batch statistics")
    if x.shape[0] != m.num_features:
        t.fail(n, _mod_desc(m), f"{m.num_features} features, input item {list(x.shape)}")
    c = m.num_features
    t.add_tensor(n.target + ".weight", m.weight if m.affine else torch.ones(c))
    t.add_tensor(n.target + ".bias", m.bias if m.affine else torch.zeros(c))
    t.add_tensor(n.target + ".running_mean", m.running_mean)
    t.add_tensor(n.target + ".running_var", m.running_var)
    return t.emit(n, "batchnorm", [x], x.shape, name=n.target, num_features=c, eps=m.eps)


def _linear(t, n, m):
    x = t.tensor(n, n.args[0])
    t.use_module(n, m)
    t.add_tensor(n.target + ".weight", _weight(m))
    if m.bias is not None:
        t.add_tensor(n.target + ".bias", m.bias)
    return t.emit(n, "linear", [x], t.shape_of(n), name=n.target, in_features=m.in_features,
                  out_features=m.out_features, bias=m.bias is not None)


def _layernorm(t, n, m):
    x = t.tensor(n, n.args[0])
    t.use_module(n, m)
    if len(m.normalized_shape) != 1:
        t.fail(n, _mod_desc(m), f"normalized_shape {list(m.normalized_shape)}: only one axis "
               "(the last) is supported")
    if m.elementwise_affine:
        t.add_tensor(n.target + ".weight", m.weight)
        t.add_tensor(n.target + ".bias", m.bias)
    return t.emit(n, "layernorm", [x], x.shape, name=n.target,
                  normalized_shape=[m.normalized_shape[0]], eps=m.eps,
                  elementwise_affine=bool(m.elementwise_affine), dim=-1)


def _custom_layernorm(t, n, m):
    x = t.tensor(n, n.args[0])
    t.use_module(n, m)
    first = m.data_format == "channels_first"
    d = m.weight.shape[0]
    if (x.shape[0] if first else x.shape[-1]) != d or (first and len(x.shape) < 2):
        t.fail(n, type(m).__name__, f"{m.data_format} over {d} features, input item {list(x.shape)}")
    t.add_tensor(n.target + ".weight", m.weight)
    t.add_tensor(n.target + ".bias", m.bias)
    return t.emit(n, "layernorm", [x], x.shape, name=n.target, normalized_shape=[d],
                  eps=float(m.eps), elementwise_affine=True, dim=1 if first else -1)


def _layernorm_fn(t, n):
    b = _bind(n, ["input", "normalized_shape", ("weight", None), ("bias", None), ("eps", 1e-5)])
    x = t.tensor(n, b["input"])
    shape = t.lit(b["normalized_shape"])
    shape = [shape] if isinstance(shape, int) else list(shape)
    if len(shape) != 1 or shape[0] != x.shape[-1]:
        t.fail(n, "F.layer_norm", f"normalized_shape {shape}: only the last axis is supported")
    w, bias = (t.env[a.name] if isinstance(a, fx.Node) else None for a in (b["weight"], b["bias"]))
    if (w is None) != (bias is None) or any(v is not None and not isinstance(v, Const) for v in (w, bias)):
        t.fail(n, "F.layer_norm", "weight and bias must both be parameters, or both None")
    f = {"normalized_shape": shape, "eps": float(t.lit(b["eps"])), "elementwise_affine": w is not None,
         "dim": -1}
    if w is not None:
        prefix = w.source[:-len(".weight")] if w.source.endswith(".weight") else None
        if not (prefix and w.same_data and bias.same_data and bias.source == prefix + ".bias"
                and prefix + ".weight" not in t.tensors):
            prefix = n.name  # tensors of its own, named after the node
        t.add_tensor(prefix + ".weight", w.value.reshape(-1))
        t.add_tensor(prefix + ".bias", bias.value.reshape(-1))
        f["name"] = prefix
    return t.emit(n, "layernorm", [x], x.shape, **f)


def _rnn(t, n, m):
    x = t.tensor(n, n.args[0])
    if len(n.args) > 1 or n.kwargs:
        t.fail(n, _mod_desc(m), "an initial state argument is not supported (it starts at zero)")
    t.use_module(n, m)
    if not m.batch_first:
        t.fail(n, _mod_desc(m), "needs batch_first=True (items are [time, features])")
    if getattr(m, "proj_size", 0):
        t.fail(n, _mod_desc(m), "proj_size is not supported")
    if len(x.shape) != 2 or x.shape[1] != m.input_size:
        t.fail(n, _mod_desc(m), f"input item {list(x.shape)}, expected [time, {m.input_size}]")
    for name, p in m.named_parameters():
        t.add_tensor(f"{n.target}.{name}", p)
    dirs = 2 if m.bidirectional else 1
    op = "lstm" if isinstance(m, nn.LSTM) else "gru"
    v = t.emit(n, op, [x], (x.shape[0], m.hidden_size * dirs), name=n.target,
               input_size=m.input_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
               bidirectional=bool(m.bidirectional), bias=bool(m.bias))
    return Rnn(v, m, n.target)


def _pool(t, n, m):
    x = t.tensor(n, n.args[0])
    two = isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))
    kind = ("max" if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) else "avg")
    return _pool_common(t, n, x, kind, two, m.kernel_size, m.stride, m.padding,
                        getattr(m, "dilation", 1), m.ceil_mode, getattr(m, "return_indices", False),
                        getattr(m, "count_include_pad", True), getattr(m, "divisor_override", None))


def _pool_common(t, n, x, kind, two, k, s, p, dil, ceil, ret_idx, incl_pad, div):
    what = t.op_desc(n)
    if ceil:
        t.fail(n, what, "ceil_mode=True is not supported")
    if ret_idx:
        t.fail(n, what, "return_indices=True is not supported")
    if kind == "avg" and (not incl_pad or div is not None):
        t.fail(n, what, "only count_include_pad=True without divisor_override is supported")
    if kind == "max" and any(d != 1 for d in _pair(dil)):
        t.fail(n, what, "dilation is not supported")
    if len(x.shape) != (3 if two else 2):
        t.fail(n, what, f"input item {list(x.shape)} has the wrong rank")
    s = k if s is None or s == [] or s == () else s
    if two:
        f = {"kernel_size": _pair(k), "stride": _pair(s), "padding": _pair(p)}
    else:
        f = {"kernel_size": _pair(k)[0], "stride": _pair(s)[0], "padding": _pair(p)[0]}
    return t.emit(n, f"{kind}pool{'2d' if two else '1d'}", [x], t.shape_of(n), **f)


def _adaptive(t, n, m):
    return _adaptive_common(t, n, t.tensor(n, n.args[0]), m.output_size)


def _adaptive_common(t, n, x, size):
    sizes = [size] * (len(x.shape) - 1) if isinstance(size, int) or size is None else list(size)
    if list(x.shape[1:]) == [s if s is not None else x.shape[1 + i] for i, s in enumerate(sizes)]:
        return x
    if any(s != 1 for s in sizes):
        t.fail(n, t.op_desc(n), f"output size {size}: only 1 (a mean) is supported")
    return _means(t, n, x, list(range(2, x.nd)), True)


def _means(t, n, x, dims, keepdim, sub_last=None):
    """Means over several axes, last axis first; the last node gets sub_last (None: n's id)."""
    dims = sorted(set(dims), reverse=True)
    shape = list(x.shape)
    for i, d in enumerate(dims):
        if keepdim:
            shape[d - 1] = 1
        else:
            del shape[d - 1]
        last = i == len(dims) - 1
        x = t.emit(n, "mean", [x], shape, sub=sub_last if last else f"m{i}", dim=d,
                   keepdim=bool(keepdim))
    return x


def _unary(op, **fields):
    def handler(t, n, m=None):
        return t.emit(n, op, [t.tensor(n, n.args[0])], t.shape_of(n), **fields)
    return handler


def _gelu_mod(t, n, m):
    return _gelu_common(t, n, t.tensor(n, n.args[0]), m.approximate)


def _gelu_common(t, n, x, approx):
    if approx not in ("none", "tanh"):
        t.fail(n, "GELU", f"approximate={approx!r}")
    return t.emit(n, "gelu", [x], x.shape, approximate=approx)


def _silu_common(t, n, x):
    s = t.emit(n, "sigmoid", [x], x.shape, sub=0)
    return t.emit(n, "mul", [x, s], x.shape)


def _softmax_common(t, n, x, dim, log):
    op = "log_softmax" if log else "softmax"
    if dim is None and x.nd == 2:  # PyTorch's implicit dim for [N, F] is 1, the last
        dim = 1
    if dim is None or dim % x.nd != x.nd - 1:
        t.fail(n, t.op_desc(n), f"{op} over dim {dim}: only the last axis is supported")
    return t.emit(n, op, [x], x.shape)


def _alias(t, n, m=None):
    return t.tensor(n, n.args[0])


def _flatten_mod(t, n, m):
    return _flatten_common(t, n, t.tensor(n, n.args[0]), m.start_dim, m.end_dim)


def _flatten_common(t, n, x, start, end):
    s, e = t.dim(n, x, start, "start_dim"), t.dim(n, x, end, "end_dim")
    if s > e:
        t.fail(n, t.op_desc(n), "start_dim after end_dim")
    if s == e:
        return x
    return t.emit(n, "flatten", [x], t.shape_of(n), start_dim=s, end_dim=e)


def _pad_mod(t, n, m):
    return _pad_common(t, n, t.tensor(n, n.args[0]), list(m.padding), "constant", m.value)


def _pad_common(t, n, x, pads, mode, value):
    pads = [int(p) for p in pads]
    if mode != "constant":
        t.fail(n, t.op_desc(n), f"mode={mode!r}: only constant padding is supported")
    if len(pads) not in (2, 4) or (len(pads) == 4 and len(x.shape) < 2):
        t.fail(n, t.op_desc(n), f"pads {pads}: [left, right] or [left, right, top, bottom]")
    if any(p < 0 for p in pads):
        t.fail(n, t.op_desc(n), f"negative pads {pads} (crops) are not supported; slice instead")
    if not any(pads):
        return x
    return t.emit(n, "pad", [x], t.shape_of(n), pads=pads, value=float(value or 0.0))


_MODULES = [
    ((nn.Conv1d, nn.Conv2d), _conv),
    ((nn.BatchNorm1d, nn.BatchNorm2d), _bn),
    (nn.Linear, _linear),
    (nn.LayerNorm, _layernorm),
    ((nn.GRU, nn.LSTM), _rnn),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d), _pool),
    ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d), _adaptive),
    (nn.ReLU, _unary("relu")),
    (nn.Tanh, _unary("tanh")),
    (nn.Sigmoid, _unary("sigmoid")),
    (nn.GELU, _gelu_mod),
    (nn.SiLU, lambda t, n, m: _silu_common(t, n, t.tensor(n, n.args[0]))),
    (nn.Softmax, lambda t, n, m: _softmax_common(t, n, t.tensor(n, n.args[0]), m.dim, False)),
    (nn.LogSoftmax, lambda t, n, m: _softmax_common(t, n, t.tensor(n, n.args[0]), m.dim, True)),
    ((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity), _alias),
    (nn.Flatten, _flatten_mod),
    ((nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d),
     lambda t, n, m: _adaptive_max(t, n, t.tensor(n, n.args[0]), m.output_size)
     if not m.return_indices else t.fail(n, _mod_desc(m), "return_indices=True is not supported")),
    ((nn.ConstantPad1d, nn.ConstantPad2d, nn.ZeroPad2d), _pad_mod),
]


# ---------------------------------------------------------------- function and method handlers

def _f_act(op, names=(), fields=None):
    def handler(t, n, offset=0):
        b = _bind(n, ["input"] + list(names), offset)
        x = t.tensor(n, n.args[0] if offset else b["input"])
        if op == "gelu":
            return _gelu_common(t, n, x, t.lit(b.get("approximate")) or "none")
        if op == "silu":
            return _silu_common(t, n, x)
        if op in ("softmax", "log_softmax"):
            if t.lit(b.get("dtype")) is not None:
                t.fail(n, t.op_desc(n), "dtype= is not supported")
            return _softmax_common(t, n, x, t.lit(b["dim"]), op == "log_softmax")
        return t.emit(n, op, [x], t.shape_of(n))
    return handler


def _dropout_fn(t, n):
    b = _bind(n, ["input", ("p", 0.5), ("training", True), ("inplace", False)])
    if t.lit(b["training"]) and t.lit(b["p"]):
        t.fail(n, t.op_desc(n), "training=True drops values at inference too; pass "
               "training=self.training")
    return t.tensor(n, b["input"])


def _pool_fn(kind, two):
    def handler(t, n):
        if kind == "max":
            b = _bind(n, ["input", "kernel_size", ("stride", None), ("padding", 0), ("dilation", 1),
                          ("ceil_mode", False), ("return_indices", False)])
            b.update(count_include_pad=True, divisor_override=None)
        else:
            names = ["input", "kernel_size", ("stride", None), ("padding", 0), ("ceil_mode", False),
                     ("count_include_pad", True)] + ([("divisor_override", None)] if two else [])
            b = _bind(n, names)
            b.update(dilation=1, return_indices=False)
        b = {k: t.lit(v) if k != "input" else v for k, v in b.items()}
        return _pool_common(t, n, t.tensor(n, b["input"]), kind, two, b["kernel_size"], b["stride"],
                            b["padding"], b["dilation"], b["ceil_mode"], b["return_indices"],
                            b["count_include_pad"], b.get("divisor_override"))
    return handler


def _adaptive_fn(t, n):
    b = _bind(n, ["input", "output_size"])
    return _adaptive_common(t, n, t.tensor(n, b["input"]), t.lit(b["output_size"]))


def _pad_fn(t, n):
    b = _bind(n, ["input", "pad", ("mode", "constant"), ("value", None)])
    return _pad_common(t, n, t.tensor(n, b["input"]), t.lit(b["pad"]), t.lit(b["mode"]),
                       t.lit(b["value"]))


def _cat_fn(t, n):
    b = _bind(n, ["tensors", ("dim", 0)])
    xs = [t.tensor(n, a) for a in b["tensors"]]
    if len(xs) == 1:
        return xs[0]
    if len({x.nd for x in xs}) != 1:
        t.fail(n, t.op_desc(n), "tensors of different ranks")
    d = t.dim(n, xs[0], t.lit(b["dim"]))
    return t.emit(n, "concat", xs, t.shape_of(n), dim=d)


def _operand(t, n, a, rank=None):
    """An operand of add/mul: Val, const node (emitted once), or a number. rank: the item
    rank of the result; a constant's leading size-1 axes beyond it are dropped (they would
    stand for the batch axis: gamma.view(1, -1, 1))."""
    if isinstance(a, (Val, Const)):
        v = a
    elif not isinstance(a, fx.Node):
        return a
    else:
        v = t.env[a.name]
    if isinstance(v, Static):
        return t.lit(a)
    if isinstance(v, Const):
        if v.fx_name not in t.const_ids:
            value = v.value.detach().to(torch.float32)
            while rank is not None and value.dim() > rank and value.shape[0] == 1:
                value = value[0]
            # a parameter used as it is (or reshaped) keeps its state_dict name
            name = v.source if v.same_data and v.source not in t.tensors else f"{v.source}:{v.fx_name}"
            t.add_tensor(name, value)
            nid = t.new_id(v.fx_name)
            t.nodes.append({"id": nid, "op": "const", "inputs": [], "name": name})
            t.const_ids[v.fx_name] = Val(nid, tuple(value.shape))
            t.const_nodes.add(nid)
        return t.const_ids[v.fx_name]
    if not isinstance(v, Val):
        t.fail(n, t.op_desc(n), "expects tensors or numbers")
    return v


def _binary(op, x_arg, y_arg, t, n, alpha=1, sub=None, shape=None):
    if alpha != 1:
        t.fail(n, t.op_desc(n), "alpha != 1 is not supported")
    shape = shape or t.shape_of(n)
    a, b = _operand(t, n, x_arg, len(shape)), _operand(t, n, y_arg, len(shape))
    if not isinstance(a, Val):
        a, b = b, a  # number (op) tensor: commutative
    if not isinstance(b, Val):  # tensor (op) number
        num = float(b)
        if (op == "mul" and num == 1.0) or (op == "add" and num == 0.0):
            return a
        c = t.new_id(f"{n.name}.{sub}.value" if sub is not None else f"{n.name}.value")
        t.add_tensor(c, torch.tensor([num]))  # a tensor of its own, named after its node
        t.nodes.append({"id": c, "op": "const", "inputs": [], "name": c})
        t.const_nodes.add(c)
        b = Val(c, (1,))
    consts = [v for v in (a, b) if v.id in t.const_nodes]
    if not consts and a.nd != b.nd:
        t.fail(n, t.op_desc(n), f"operands of different ranks {list(a.shape)} and {list(b.shape)}"
               "; format 2 broadcasts item axes of tensors of one rank")
    for c in consts:  # a const is shared by the batch: drop leading 1s of its shape
        if len(c.shape) > len(shape):
            t.fail(n, t.op_desc(n), f"constant of shape {list(c.shape)} has a batch axis; give it "
                   "the item's shape")
    return t.emit(n, op, [a, b], shape, sub=sub)


def _sub_fn(t, n, offset=0):
    """a - b as a + (-1 * b): exact (negation is exact); a constant b is negated here."""
    b = _bind(n, ["input", "other", ("alpha", 1)])
    if (t.lit(b["alpha"]) or 1) != 1:
        t.fail(n, t.op_desc(n), "alpha != 1 is not supported")
    x, y = b["input"], b["other"]
    yv = t.env[y.name] if isinstance(y, fx.Node) else Static(y)
    if isinstance(yv, Static):
        return _binary("add", x, -t.lit(y), t, n)
    if isinstance(yv, Const):
        return _binary("add", x, Const(-yv.value, yv.source, yv.fx_name + "_neg"), t, n)
    neg = _binary("mul", yv, -1.0, t, n, sub=0, shape=yv.shape)
    return _binary("add", x, neg, t, n)


def _neg_fn(t, n, offset=0):
    return _binary("mul", n.args[0], -1.0, t, n)


def _binop(op):
    def handler(t, n, offset=0):
        if offset:  # method: x.add(y)
            b = _bind(n, ["input", "other", ("alpha", 1)])
        else:
            b = _bind(n, ["input", "other", ("alpha", 1)]) if n.target in (torch.add, torch.mul) \
                else {"input": n.args[0], "other": n.args[1], "alpha": 1}
        return _binary(op, b["input"], b["other"], t, n, t.lit(b.get("alpha", 1)) or 1)
    return handler


def _div_fn(t, n):
    other = _operand(t, n, n.args[1])
    if isinstance(other, Val):
        t.fail(n, t.op_desc(n), "division by a tensor is not supported (only by a number)")
    return _binary("mul", n.args[0], 1.0 / float(other), t, n)


def _flatten_fn(t, n, offset=0):
    b = _bind(n, ["input", ("start_dim", 0), ("end_dim", -1)])
    x = t.tensor(n, n.args[0])
    start = t.lit(b["start_dim"])
    if start == 0 and offset == 0 and not n.args[1:] and "start_dim" not in n.kwargs:
        t.fail(n, t.op_desc(n), "torch.flatten(x) also flattens the batch axis; use "
               "torch.flatten(x, 1)")
    return _flatten_common(t, n, x, start, t.lit(b["end_dim"]))


def _transpose_fn(t, n, offset=0):
    b = _bind(n, ["input", "dim0", "dim1"])
    x = t.tensor(n, n.args[0])
    a, c = t.dim(n, x, t.lit(b["dim0"])), t.dim(n, x, t.lit(b["dim1"]))
    perm = list(range(x.nd))
    perm[a], perm[c] = perm[c], perm[a]
    return _permute_common(t, n, x, perm)


def _permute_fn(t, n, offset=0):
    x = t.tensor(n, n.args[0])
    rest = [t.lit(a) for a in n.args[1:]] or list(t.lit(n.kwargs.get("dims", [])))
    if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
        rest = list(rest[0])
    if sorted(d % x.nd for d in rest) != list(range(x.nd)):
        t.fail(n, t.op_desc(n), f"dims {rest} is not a permutation of {x.nd} axes")
    perm = [d % x.nd for d in rest]
    if perm[0] != 0:
        t.fail(n, t.op_desc(n), f"dims {rest} move the batch axis")
    return _permute_common(t, n, x, perm)


def _permute_common(t, n, x, perm):
    if perm == list(range(x.nd)):
        return x
    return t.emit(n, "permute", [x], t.shape_of(n), dims=perm)


def _mean_fn(t, n, offset=0):
    b = _bind(n, ["input", ("dim", None), ("keepdim", False)])
    dim = t.lit(b["dim"])
    v = t.env[b["input"].name]
    if isinstance(v, Stack) and dim is not None:
        dims = [dim] if isinstance(dim, int) else list(dim)
        return _reduce_stack(t, n, v, [d % (v.vals[0].nd + 1) for d in dims], True)
    x = t.tensor(n, n.args[0])
    if dim is None or dim == [] or dim == ():
        t.fail(n, t.op_desc(n), "a mean over every axis includes the batch; name the dims")
    dims = [dim] if isinstance(dim, int) else list(dim)
    if t.lit(n.kwargs.get("dtype")) is not None:
        t.fail(n, t.op_desc(n), "dtype= is not supported")
    return _means(t, n, x, [t.dim(n, x, d) for d in dims], bool(t.lit(b["keepdim"])))


def _reshape_fn(t, n, offset=0):
    """view/reshape: accepted where it merges neighbouring axes (a flatten) or drops size-1
    axes; the target shape is read from the traced run, not from the arguments."""
    x = t.tensor(n, n.args[0])
    return _as_flatten(t, n, x, t.shape_of(n))


def _as_flatten(t, n, x, out):
    src = list(x.shape)
    out = list(out)
    if src == out:
        return x
    if len(out) < len(src):
        for a in range(len(out)):
            b = a + len(src) - len(out)
            if src[:a] == out[:a] and src[b + 1:] == out[a + 1:] and \
                    int(np.prod(src[a:b + 1])) == out[a]:
                return t.emit(n, "flatten", [x], out, start_dim=a + 1, end_dim=b + 1)
    t.fail(n, t.op_desc(n), f"from {src} to {out} is not a flatten of neighbouring item axes "
           "(adding or splitting axes is not supported)")


def _squeeze_fn(t, n, offset=0):
    x = t.tensor(n, n.args[0])
    dim = t.lit(n.args[1]) if len(n.args) > 1 else t.lit(n.kwargs.get("dim"))
    if dim is not None:
        t.dim(n, x, dim)
    return _as_flatten(t, n, x, t.shape_of(n))


def _size_like(t, n, offset=0):
    if n.target is getattr and isinstance(t.env.get(getattr(n.args[0], "name", None)), Multi):
        return _part(t, n, t.env[n.args[0].name], n.args[1])
    return t.static(n)


def _getitem(t, n):
    base, idx = n.args
    v = t.env[base.name]
    if isinstance(v, Rnn):
        return _rnn_item(t, n, v, t.lit(idx))
    if isinstance(v, (Parts, Multi, Stack)):
        return _part(t, n, v, t.lit(idx))
    if not isinstance(v, Val):
        t.fail(n, "indexing", "of this value")
    return _index(t, n, v, t.lit(idx))


def _part(t, n, v, idx):
    if isinstance(v, Stack):
        t.fail(n, "indexing the result of torch.stack", "stack is only supported summed or "
               "averaged over its new axis")
    if isinstance(idx, str):
        idx = v.names.get(idx) if isinstance(v, Multi) else None
    items = v.bounds if isinstance(v, Parts) else v.items
    if not isinstance(idx, int) or not -len(items) <= idx < len(items):
        t.fail(n, "indexing", f"with {idx!r}")
    if isinstance(v, Multi):
        if v.items[idx] is None:
            t.fail(n, t.op_desc(n), v.why)
        return v.items[idx]
    start, end = v.bounds[idx]
    if (start, end) == (0, v.val.shape[v.dim - 1]):
        return v.val
    shape = list(v.val.shape)
    shape[v.dim - 1] = end - start
    return t.emit(n, "slice", [v.val], shape, dim=v.dim, start=start, end=end, step=1)


def _chunk_fn(t, n, offset=0):
    b = _bind(n, ["input", "chunks", ("dim", 0)])
    x = t.tensor(n, b["input"])
    d = t.dim(n, x, t.lit(b["dim"]))
    size, k = x.shape[d - 1], t.lit(b["chunks"])
    step = -(-size // k)  # as torch.chunk: ceil, the last part may be shorter
    return Parts(x, d, [(i, min(i + step, size)) for i in range(0, size, step)])


def _split_fn(t, n, offset=0):
    b = _bind(n, ["input", "split_size_or_sections", ("dim", 0)])
    x = t.tensor(n, b["input"])
    d = t.dim(n, x, t.lit(b["dim"]))
    size, sec = x.shape[d - 1], t.lit(b["split_size_or_sections"])
    sizes = [sec] * (-(-size // sec)) if isinstance(sec, int) else list(sec)
    bounds, start = [], 0
    for k in sizes:
        bounds.append((start, min(start + k, size)))
        start += k
    return Parts(x, d, bounds)


def _stack_fn(t, n):
    b = _bind(n, ["tensors", ("dim", 0)])
    xs = [t.tensor(n, a) for a in b["tensors"]]
    if len({x.shape for x in xs}) != 1:
        t.fail(n, "torch.stack", "tensors of different shapes")
    d = t.lit(b["dim"])
    return Stack(xs, d % (xs[0].nd + 1))


def _reduce_stack(t, n, v, dims, mean):
    if dims != [v.dim]:
        t.fail(n, t.op_desc(n), "torch.stack is only supported summed or averaged over its new axis")
    acc = v.vals[0]
    for i, x in enumerate(v.vals[1:]):
        last = i == len(v.vals) - 2 and not mean
        acc = t.emit(n, "add", [acc, x], x.shape, sub=None if last else i)
    if mean and len(v.vals) > 1:
        acc = _binary("mul", acc, 1.0 / len(v.vals), t, n, shape=acc.shape)
    return acc


def _sum_fn(t, n, offset=0):
    b = _bind(n, ["input", ("dim", None), ("keepdim", False)])
    v = t.env[b["input"].name]
    dim = t.lit(b["dim"])
    if dim is None or dim == [] or dim == ():
        t.fail(n, t.op_desc(n), "a sum over every axis includes the batch; name the dims")
    dims = [dim] if isinstance(dim, int) else list(dim)
    if isinstance(v, Stack):
        return _reduce_stack(t, n, v, [d % (v.vals[0].nd + 1) for d in dims], False)
    x = t.tensor(n, b["input"])
    rdims = [t.dim(n, x, d) for d in dims]
    keep = bool(t.lit(b["keepdim"]))
    count = int(np.prod([x.shape[d - 1] for d in rdims]))
    m = _means(t, n, x, rdims, keep, sub_last=0)
    return _binary("mul", m, float(count), t, n, shape=m.shape)


def _max_fn(t, n, offset=0):
    """Max over one item axis (time): max pools over the whole axis, then a flatten."""
    if n.target in ("max", torch.max) and (len(n.args) < 2 and "dim" not in n.kwargs
                                           or isinstance(n.args[1] if len(n.args) > 1 else None, fx.Node)
                                           and isinstance(t.env[n.args[1].name], Val)):
        t.fail(n, t.op_desc(n), "only the max over one axis, x.max(dim), is supported")
    b = _bind(n, ["input", ("dim", None), ("keepdim", False)])
    x = t.tensor(n, b["input"])
    dim = t.lit(b["dim"])
    if isinstance(dim, (list, tuple)):
        if len(dim) != 1:
            t.fail(n, t.op_desc(n), "a max over several axes is not supported")
        dim = dim[0]
    d = t.dim(n, x, dim)
    v = _max_over(t, n, x, d, bool(t.lit(b["keepdim"])))
    if n.target in ("max", torch.max):
        return Multi([v, None], {"values": 0, "indices": 1}, "the indices of a max are not supported")
    return v


def _max_over(t, n, x, d, keepdim):
    r = len(x.shape)
    shape = list(x.shape)
    if r == 2 and d == 1:  # [T, F] over T: to [F, T] first
        x = t.emit(n, "permute", [x], (shape[1], shape[0]), sub="t", dims=[0, 2, 1])
        p = t.emit(n, "maxpool1d", [x], (shape[1], 1), sub="p", kernel_size=shape[0],
                   stride=shape[0], padding=0)
        if keepdim:
            return t.emit(n, "permute", [p], (1, shape[1]), dims=[0, 2, 1])
        return t.emit(n, "flatten", [p], (shape[1],), start_dim=1, end_dim=2)
    if r == 2 and d == 2:
        p = t.emit(n, "maxpool1d", [x], (shape[0], 1), sub=None if keepdim else "p",
                   kernel_size=shape[1], stride=shape[1], padding=0)
        return p if keepdim else t.emit(n, "flatten", [p], (shape[0],), start_dim=1, end_dim=2)
    if r == 3 and d in (2, 3):
        k = [shape[1], 1] if d == 2 else [1, shape[2]]
        out = list(shape)
        out[d - 1] = 1
        p = t.emit(n, "maxpool2d", [x], tuple(out), sub=None if keepdim else "p", kernel_size=k,
                   stride=k, padding=[0, 0])
        if keepdim:
            return p
        del out[d - 1]
        return t.emit(n, "flatten", [p], tuple(out), start_dim=d - 1, end_dim=d)
    t.fail(n, t.op_desc(n), f"a max over axis {d} of items {list(shape)}: only over the last "
           "axis, or over time of [time, features]")


def _adaptive_max(t, n, x, size):
    sizes = [size] * (len(x.shape) - 1) if isinstance(size, int) else list(size)
    if any(s != 1 for s in sizes) or len(x.shape) not in (2, 3):
        t.fail(n, t.op_desc(n), f"output size {size}: only 1 is supported")
    if len(x.shape) == 2:
        return t.emit(n, "maxpool1d", [x], (x.shape[0], 1), kernel_size=x.shape[1],
                      stride=x.shape[1], padding=0)
    k = list(x.shape[1:])
    return t.emit(n, "maxpool2d", [x], (x.shape[0], 1, 1), kernel_size=k, stride=k, padding=[0, 0])


def _adaptive_max_fn(t, n):
    b = _bind(n, ["input", "output_size", ("return_indices", False)])
    if t.lit(b["return_indices"]):
        t.fail(n, t.op_desc(n), "return_indices=True is not supported")
    return _adaptive_max(t, n, t.tensor(n, b["input"]), t.lit(b["output_size"]))


def _clamp_fn(t, n, offset=0):
    b = _bind(n, ["input", ("min", None), ("max", None)])
    lo, hi = t.lit(b["min"]), t.lit(b["max"])
    if lo != 0 or hi is not None:
        t.fail(n, t.op_desc(n), "only clamp(min=0), a ReLU, is supported")
    return t.emit(n, "relu", [t.tensor(n, b["input"])], t.shape_of(n))


def _rnn_item(t, n, v, idx):
    if v.state == 1 and isinstance(idx, tuple) and idx and isinstance(idx[0], int) and \
            all(i == slice(None) for i in idx[1:]):
        idx = idx[0]  # h_n[-1, :, :]
    if not isinstance(idx, int):
        t.fail(n, "indexing an RNN's result", f"with {idx!r}")
    if v.state == 0:
        if idx in (0, -2):
            return v.val
        return Rnn(v.val, v.module, v.path, 2 if isinstance(v.module, nn.LSTM) else 1)
    if v.state == 2:  # LSTM (h_n, c_n)
        if idx in (0, -2):
            return Rnn(v.val, v.module, v.path, 1)
        t.fail(n, f"{v.path}: the LSTM cell state c_n", "is not in the output sequence; use "
               "the output (out[:, -1]) instead")
    # h_n [layers * dirs, N, H]: only the last layer's entries are in the output sequence
    m = v.module
    dirs = 2 if m.bidirectional else 1
    total = m.num_layers * dirs
    if not -total <= idx < total:
        t.fail(n, f"{v.path}: h_n[{idx}]", "out of range")
    k = idx % total
    layer, d = divmod(k, dirs)
    if layer != m.num_layers - 1:
        t.fail(n, f"{v.path}: h_n[{idx}] (layer {layer})", "is not in the output sequence; only "
               "the last layer's final state can be exported (or use the output sequence)")
    return _rnn_last(t, n, v.val, m.hidden_size, dirs, d)


def _rnn_last(t, n, out, hidden, dirs, d):
    step = -1 if d == 0 else 0  # the forward direction's last step, for any length
    if dirs == 1:
        return t.emit(n, "select", [out], (hidden,), dim=1, index=step)
    s = t.emit(n, "select", [out], (2 * hidden,), sub=0, dim=1, index=step)
    return t.emit(n, "slice", [s], (hidden,), dim=1, start=d * hidden, end=(d + 1) * hidden, step=1)


def _hn_method(t, n, offset=0):
    """h_n.squeeze(0) for a one-layer unidirectional RNN."""
    v = t.env[n.args[0].name]
    if isinstance(v, Rnn) and v.state == 1 and n.target == "squeeze":
        m = v.module
        if m.num_layers * (2 if m.bidirectional else 1) == 1 and t.lit(n.args[1]) in (0, -3):
            return _rnn_last(t, n, v.val, m.hidden_size, 1, 0)
    t.fail(n, f"{t.where(n)}: Tensor.{n.target} on an RNN's state", "only h_n[-1] (or "
           "h_n.squeeze(0) for one layer, one direction) is supported; or use out[:, -1]")


def _index(t, n, x, idx):
    idx = list(idx) if isinstance(idx, tuple) else [idx]
    if any(i is Ellipsis for i in idx):
        e = idx.index(Ellipsis)
        fill = x.nd - (len(idx) - 1)
        idx = idx[:e] + [slice(None)] * fill + idx[e + 1:]
    if len(idx) > x.nd or any(i is None for i in idx) or \
            any(not isinstance(i, (int, slice)) for i in idx):
        t.fail(n, "indexing", f"with {idx}: only slices and integers are supported")
    if idx[0] != slice(None):
        t.fail(n, "indexing", "the batch axis (the first index must be `:`)")
    shape = list(x.shape)
    steps = []  # (kind, axis, fields)
    for axis, i in enumerate(idx[1:], start=1):
        size = shape[axis - 1]
        if isinstance(i, slice):
            start, stop, step = i.indices(size)
            if step <= 0:
                t.fail(n, "indexing", "negative steps are not supported")
            count = len(range(start, stop, step))
            if count == 0:
                t.fail(n, "indexing", f"an empty slice of axis {axis}")
            if (start, step, count) != (0, 1, size):
                steps.append(("slice", axis, {"start": start, "end": min(stop, size), "step": step},
                              count))
        else:
            if not -size <= i < size:
                t.fail(n, "indexing", f"index {i} out of range for size {size}")
            steps.append(("select", axis, {"index": i}, None))  # negative: from the end
    # slices first (axes unchanged), then selects from the last axis to the first
    steps = [s for s in steps if s[0] == "slice"] + \
        sorted([s for s in steps if s[0] == "select"], key=lambda s: -s[1])
    for k, (kind, axis, f, count) in enumerate(steps):
        if kind == "slice":
            shape[axis - 1] = count
        else:
            del shape[axis - 1]
        last = k == len(steps) - 1
        x = t.emit(n, kind, [x], tuple(shape), sub=None if last else k, dim=axis, **f)
    return x


def _method_alias(t, n, offset=0):
    return t.tensor(n, n.args[0])


def _m(handler):
    """A function handler used as a method handler (self is the first argument)."""
    return lambda t, n: handler(t, n, 1)


_FUNCTIONS = {
    F.relu: _f_act("relu"), torch.relu: _f_act("relu"), F.relu_: _f_act("relu"),
    torch.tanh: _f_act("tanh"), F.tanh: _f_act("tanh"),
    torch.sigmoid: _f_act("sigmoid"), F.sigmoid: _f_act("sigmoid"),
    F.gelu: _f_act("gelu", [("approximate", "none")]),
    F.silu: _f_act("silu"),
    F.softmax: _f_act("softmax", ["dim", ("_stacklevel", 3), ("dtype", None)]),
    torch.softmax: _f_act("softmax", ["dim", ("dtype", None)]),
    F.log_softmax: _f_act("log_softmax", ["dim", ("_stacklevel", 3), ("dtype", None)]),
    torch.log_softmax: _f_act("log_softmax", ["dim", ("dtype", None)]),
    F.dropout: _dropout_fn, F.dropout1d: _dropout_fn, F.dropout2d: _dropout_fn,
    F.alpha_dropout: _dropout_fn,
    F.max_pool1d: _pool_fn("max", False), F.max_pool2d: _pool_fn("max", True),
    torch.max_pool1d: _pool_fn("max", False), torch.max_pool2d: _pool_fn("max", True),
    F.avg_pool1d: _pool_fn("avg", False), F.avg_pool2d: _pool_fn("avg", True),
    F.adaptive_avg_pool1d: _adaptive_fn, F.adaptive_avg_pool2d: _adaptive_fn,
    F.pad: _pad_fn,
    torch.cat: _cat_fn, torch.concat: _cat_fn,
    operator.add: _binop("add"), operator.iadd: _binop("add"), torch.add: _binop("add"),
    operator.mul: _binop("mul"), operator.imul: _binop("mul"), torch.mul: _binop("mul"),
    operator.truediv: _div_fn,
    operator.sub: _sub_fn, operator.isub: _sub_fn, torch.sub: _sub_fn,
    operator.neg: _neg_fn, torch.neg: _neg_fn,
    torch.flatten: _flatten_fn, torch.transpose: _transpose_fn, torch.swapaxes: _transpose_fn,
    torch.permute: _permute_fn, torch.mean: _mean_fn, torch.squeeze: _squeeze_fn,
    torch.reshape: _reshape_fn,
    F.layer_norm: _layernorm_fn,
    torch.chunk: _chunk_fn, torch.split: _split_fn, torch.stack: _stack_fn,
    torch.sum: _sum_fn, torch.max: _max_fn, torch.amax: _max_fn,
    F.adaptive_max_pool1d: _adaptive_max_fn, F.adaptive_max_pool2d: _adaptive_max_fn,
    torch.clamp: _clamp_fn, torch.clamp_min: _clamp_fn,
    operator.getitem: _getitem, getattr: _size_like,
}

_METHODS = {
    "relu": _m(_f_act("relu")), "relu_": _m(_f_act("relu")), "tanh": _m(_f_act("tanh")),
    "sigmoid": _m(_f_act("sigmoid")),
    "softmax": _m(_f_act("softmax", ["dim", ("dtype", None)])),
    "log_softmax": _m(_f_act("log_softmax", ["dim", ("dtype", None)])),
    "add": _m(_binop("add")), "add_": _m(_binop("add")),
    "mul": _m(_binop("mul")), "mul_": _m(_binop("mul")),
    "sub": _m(_sub_fn), "sub_": _m(_sub_fn), "neg": _m(_neg_fn),
    "flatten": _m(_flatten_fn), "transpose": _m(_transpose_fn), "swapaxes": _m(_transpose_fn),
    "permute": _m(_permute_fn), "mean": _m(_mean_fn), "view": _m(_reshape_fn),
    "reshape": _m(_reshape_fn), "squeeze": lambda t, n: _squeeze_or_hn(t, n),
    "contiguous": _m(_method_alias), "clone": _m(_method_alias),
    "size": _m(_size_like), "dim": _m(_size_like),
    "chunk": _m(_chunk_fn), "split": _m(_split_fn), "sum": _m(_sum_fn), "max": _m(_max_fn),
    "amax": _m(_max_fn), "clamp": _m(_clamp_fn), "clamp_min": _m(_clamp_fn),
}


def _squeeze_or_hn(t, n):
    if isinstance(t.env[n.args[0].name], Rnn):
        return _hn_method(t, n)
    return _squeeze_fn(t, n, 1)
