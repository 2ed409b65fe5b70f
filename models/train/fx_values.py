"""The values fx_export.py's translation works with (a graph value, a constant, a Python
value, an RNN's tuple, parts of a chunk/split, a stack, a (values, indices) pair), the
refusal exception, and argument binding. No PyTorch tracing here."""
import torch
import torch.nn.functional as F


class ExportError(Exception):
    """The module uses something format 2 cannot express (the message names it)."""


SUPPORTED = (
    "modules: Conv1d, Conv2d (zeros padding), BatchNorm1d/2d, Linear, LayerNorm (one axis), "
    "GRU, LSTM (batch_first), MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d and "
    "AdaptiveMaxPool1d/2d (output 1), "
    "ReLU, Tanh, Sigmoid, GELU, SiLU, Softmax, LogSoftmax (last axis), Flatten, "
    "ConstantPad1d/2d, ZeroPad2d, Dropout*, Identity, Sequential; functions and methods: "
    "relu, tanh, sigmoid, gelu, silu, softmax, log_softmax, dropout (training=False), "
    "max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d (output 1), pad (constant), cat, "
    "+, -, *, / (by a number), sum/mean of torch.stack, chunk, split, max over the last axis "
    "or over time, clamp(min=0), F.layer_norm, ConvNeXt's channels_first LayerNorm, permute, "
    "transpose, flatten, view/reshape (as a flatten), "
    "squeeze, mean over item axes, contiguous, indexing with slices and integers, "
    "parameters and buffers as operands")

# ---------------------------------------------------------------- values during translation

class Val:
    """A tensor value of the graph: id and per-item shape."""

    def __init__(self, id, shape):
        self.id, self.shape = id, tuple(shape)

    @property
    def nd(self):  # rank with the batch axis
        return len(self.shape) + 1


class Const:
    """A tensor that does not depend on the input (parameter, buffer, or derived from them)."""

    def __init__(self, value, source, fx_name, same_data=False):
        self.value, self.source, self.fx_name = value, source, fx_name
        self.same_data = same_data  # the values of parameter/buffer `source`, maybe reshaped


class Static:
    """A Python value known at export time (sizes, numbers); batch: (node, value at batch 2,
    at batch 3) for a value that depends on the batch size (then `value` is unusable)."""

    def __init__(self, value, batch=None):
        self.value, self.batch = value, batch


class Rnn:
    """The (output, state) tuple of an RNN; state = 1 for h_n, 2 for LSTM's (h_n, c_n)."""

    def __init__(self, val, module, path, state=0):
        self.val, self.module, self.path, self.state = val, module, path, state


class Parts:
    """chunk/split of a Val along an axis: a slice node per part, emitted when indexed."""

    def __init__(self, val, dim, bounds):
        self.val, self.dim, self.bounds = val, dim, bounds


class Stack:
    """torch.stack of Vals (usable only summed or averaged over the new axis)."""

    def __init__(self, vals, dim):
        self.vals, self.dim = vals, dim


class Multi:
    """A (values, indices) result: items by index or name; None where unsupported."""

    def __init__(self, items, names, why):
        self.items, self.names, self.why = items, names, why


def _mod_desc(m):
    return f"nn.{type(m).__name__}"


def _fn_desc(t):
    """How the user wrote a call: F.pad, torch.cat, operator sub, Tensor.view."""
    if isinstance(t, str):
        return f"Tensor.{t}"
    name = getattr(t, "__name__", str(t))
    if getattr(t, "__module__", None) == "_operator":
        return f"operator {name}"
    if getattr(F, name, None) is t:
        return f"F.{name}"
    if getattr(torch, name, None) is t:
        return f"torch.{name}"
    return f"{getattr(t, '__module__', None) or '?'}.{name}"


# ---------------------------------------------------------------- argument binding

def _bind(n, names, offset=0):
    """n's args/kwargs by parameter name. names: list of "name" or ("name", default)."""
    out = {}
    args = list(n.args)[offset:]
    for i, spec in enumerate(names):
        name, default = (spec, None) if isinstance(spec, str) else spec
        out[name] = args[i] if i < len(args) else n.kwargs.get(name, default)
    return out


def _pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]
