"""What a format-2 graph (models/FORMAT.md) computes, written with PyTorch ops: a reference
for the exporter's self-check and for the values of helper nodes in golden fixtures.

    values = run(graph, tensors, x)   # {id: tensor [n, ...]} for every node, x [n, *input_shape]

tensors: name -> float tensor (dequantized). Not the serving path; clarity over speed.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _order(graph):
    nodes = {nd["id"]: nd for nd in graph["nodes"]}
    done, order = {"input"}, []

    def visit(i, stack=()):
        if i in done:
            return
        if i in stack:
            raise ValueError(f"cycle through {i}")
        for j in nodes[i]["inputs"]:
            visit(j, stack + (i,))
        done.add(i)
        order.append(nodes[i])
    for i in nodes:
        visit(i)
    return order


def _rnn(nd, w, x):
    cls = nn.GRU if nd["op"] == "gru" else nn.LSTM
    m = cls(nd["input_size"], nd["hidden_size"], nd["num_layers"], bias=nd["bias"],
            batch_first=True, bidirectional=nd["bidirectional"]).to(x.dtype)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(w(name))
    return m(x)[0]


def run(graph, tensors, x, known=None):
    """Every node's value. known: {id: value} to take as given instead of computing."""
    vals = {"input": x}
    for nd in _order(graph):
        i, op = nd["id"], nd["op"]
        if known and i in known:
            vals[i] = known[i]
            continue
        xs = [vals[j] for j in nd["inputs"]]
        a = xs[0] if xs else None

        def w(suffix, nd=nd):
            return tensors[nd["name"] + "." + suffix].to(x.dtype)

        if op in ("conv1d", "conv2d"):
            p = nd["padding"]
            a = F.pad(a, p if op == "conv1d" else [p[2], p[3], p[0], p[1]])
            conv = F.conv1d if op == "conv1d" else F.conv2d
            y = conv(a, w("weight"), w("bias") if nd["bias"] else None, nd["stride"],
                     0, nd["dilation"], nd["groups"])
        elif op == "batchnorm":
            y = F.batch_norm(a, w("running_mean"), w("running_var"), w("weight"), w("bias"),
                             False, 0.0, nd["eps"])
        elif op in ("relu", "tanh", "sigmoid"):
            y = getattr(torch, op)(a)
        elif op in ("identity", "dropout"):
            y = a
        elif op == "gelu":
            y = F.gelu(a, approximate=nd.get("approximate", "none"))
        elif op in ("maxpool1d", "avgpool1d", "maxpool2d", "avgpool2d"):
            fn = getattr(F, op[:3] + "_pool" + op[-2:])
            y = fn(a, nd["kernel_size"], nd.get("stride") or nd["kernel_size"], nd.get("padding", 0))
        elif op == "linear":
            y = F.linear(a, w("weight"), w("bias") if nd["bias"] else None)
        elif op in ("softmax", "log_softmax"):
            y = getattr(torch, op)(a, dim=-1)
        elif op in ("add", "mul"):
            y = a + xs[1] if op == "add" else a * xs[1]
        elif op == "const":
            y = tensors[nd["name"]].to(x.dtype)
        elif op == "concat":
            y = torch.cat(xs, nd["dim"])
        elif op == "slice":
            idx = [slice(None)] * a.dim()
            idx[nd["dim"]] = slice(nd["start"], nd["end"], nd.get("step", 1))
            y = a[tuple(idx)]
        elif op == "select":
            y = a.select(nd["dim"], nd["index"])
        elif op == "pad":
            y = F.pad(a, nd["pads"], value=nd.get("value", 0.0))
        elif op == "permute":
            y = a.permute(nd["dims"])
        elif op == "flatten":
            y = a.flatten(nd.get("start_dim", 1), nd.get("end_dim", -1))
        elif op == "mean":
            y = a.mean(nd["dim"], keepdim=nd.get("keepdim", False))
        elif op == "layernorm":
            g = w("weight") if nd["elementwise_affine"] else None
            b = w("bias") if nd["elementwise_affine"] else None
            if nd.get("dim", -1) == -1:
                y = F.layer_norm(a, nd["normalized_shape"], g, b, nd["eps"])
            else:
                y = F.layer_norm(a.movedim(1, -1), nd["normalized_shape"], g, b, nd["eps"]).movedim(-1, 1)
        elif op in ("gru", "lstm"):
            y = _rnn(nd, lambda name: w(name), a)
        else:
            raise ValueError(f"graph_ref: op {op!r} of node {i}")
        vals[i] = y
    return vals
