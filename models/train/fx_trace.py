"""torch.fx tracing for the exporter: every torch.nn module a leaf (so that unsupported ones
are refused by name), module paths recorded on nodes, unpacking of traced tuples that works on
Python 3.11, and a ShapeProp that keeps every node's value."""
import dis
import inspect

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp

from fx_values import ExportError

_LEAVES = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Linear, nn.LayerNorm,
           nn.GRU, nn.LSTM)


# ---------------------------------------------------------------- tracing

def _is_format_layernorm(m):
    """ConvNeXt's own LayerNorm class (data_format "channels_first" or "channels_last",
    weight, bias, eps): exported as one layernorm node instead of its mean/pow/sqrt."""
    w, b = m._parameters.get("weight"), m._parameters.get("bias")  # not proxied while tracing
    return (type(m).__name__.endswith("LayerNorm") and not isinstance(m, nn.LayerNorm)
            and getattr(m, "data_format", None) in ("channels_first", "channels_last")
            and w is not None and b is not None and w.dim() == 1 and hasattr(m, "eps"))


class _Proxy(fx.Proxy):
    """fx.Proxy whose unpacking (`out, h = self.gru(x)`) works on Python 3.11, where the
    bytecode lookup of torch 1.13's Proxy.__iter__ picks the wrong instruction."""

    def __iter__(self):
        frame = inspect.currentframe().f_back
        for ins in dis.get_instructions(frame.f_code):
            if ins.offset == frame.f_lasti and ins.opname == "UNPACK_SEQUENCE":
                return (self[i] for i in range(ins.argval))
        raise ExportError("iterating over a traced value is not supported (only unpacking a "
                          "fixed number of results, as in `out, h = self.gru(x)`)")


class _Tracer(fx.Tracer):
    """Leaf modules: every torch.nn module except containers (unsupported ones too, so that
    they are refused by name). Records the module path each node was created in."""

    def __init__(self):
        super().__init__()
        self.path = [""]

    def is_leaf_module(self, m, qualname):
        if isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            return False
        return isinstance(m, _LEAVES) or type(m).__module__.startswith("torch.nn") or \
            _is_format_layernorm(m)

    def call_module(self, m, forward, args, kwargs):
        self.path.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.path.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["ac_path"] = self.path[-1]
        return node

    def proxy(self, node):
        return _Proxy(node, self)


class _Record(ShapeProp):
    """ShapeProp that also keeps every node's value."""

    def run(self, *args):
        self.values = {}
        return super().run(*args)

    def run_node(self, n):
        r = super().run_node(n)
        # a copy: a later in-place op (ReLU(inplace=True), +=) must not change what we saw
        self.values[n.name] = _clone(r)
        return r


def _clone(v):
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, tuple):
        return tuple(_clone(x) for x in v)
    return v


def trace(module):
    """module -> fx.GraphModule (module in eval mode)."""
    module.eval()
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except ExportError:
        raise
    except Exception as e:  # data-dependent control flow, unsupported Python constructs
        hint = ""
        if "Proxy" in str(e):
            hint = ("; a value read from a traced tensor (x.size(-1), x.shape[2]) was passed "
                    "where PyTorch needs a plain number: use a fixed number, or a form without "
                    "it (nn.AdaptiveAvgPool1d(1), x.mean(-1))")
        raise ExportError(f"torch.fx cannot trace {type(module).__name__}: {e}{hint}") from e
    return fx.GraphModule(tracer.root, graph)


def record(gm, x):
    """Every node's value for input x (a tensor of the module's dtype)."""
    r = _Record(gm)
    with torch.no_grad():
        r.run(x)
    return r.values
