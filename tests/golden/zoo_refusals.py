#!/usr/bin/python3
"""What the exporter refuses, and how it says so: each case is a small module that format 2
cannot express exactly; fx_export.trace_module must raise ExportError naming the module path
and the op (no engine needed). Also checks a few accepted forms that are easy to get wrong.
Run by tests/integration/test_export.sh; prints one line per case, exits 1 on any failure.

    /usr/bin/python3 tests/golden/zoo_refusals.py
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "train"))
import fx_export  # noqa: E402
from fx_export import ExportError  # noqa: E402


class Net(nn.Module):
    """front conv [1, 64] -> [4, 16], then `body` (a function of self and x)."""

    def __init__(self, body, **mods):
        super().__init__()
        self.front = nn.Conv1d(1, 4, 4, stride=4)
        for k, v in mods.items():
            setattr(self, k, v)
        self.body = body

    def forward(self, x):
        return self.body(self, self.front(x))


class Wrap(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


class ConvNeXtLayerNorm(nn.Module):
    """As in facebookresearch/ConvNeXt (models/convnext.py)."""

    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_last"):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(normalized_shape) + 0.5)
        self.bias = nn.Parameter(torch.rand(normalized_shape) - 0.5)
        self.eps, self.data_format = eps, data_format
        self.normalized_shape = (normalized_shape, )

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None] * x + self.bias[:, None]


class AbsBlock(nn.Module):
    def forward(self, x):
        return torch.abs(x)


REFUSED = [
    ("function inside a submodule", lambda s, x: s.body2.inner(x).mean(-1), {"body2": Wrap(AbsBlock())},
     "body2.inner: torch.abs is not supported"),
    ("abs", lambda s, x: x.abs().mean(-1), {}, "(top level): Tensor.abs is not supported"),
    ("max of a vector", lambda s, x: torch.amax(x.mean(-1), 1, keepdim=True), {},
     "torch.amax (a max over axis 1 of items [4]"),
    ("indices of a max", lambda s, x: x.max(-1)[1].float(), {}, "the indices of a max are not supported"),
    ("stack indexed", lambda s, x: torch.stack([x, x])[0].mean(-1), {}, "stack is only supported summed"),
    ("nested module path", lambda s, x: s.enc.inner(x).flatten(1), {"enc": Wrap(nn.ELU())},
     "enc.inner: nn.ELU is not supported"),
    ("reflect padding", lambda s, x: s.c(x).mean(-1),
     {"c": nn.Conv1d(4, 4, 3, padding=1, padding_mode="reflect")}, "c: nn.Conv1d (padding_mode='reflect'"),
    ("dropout in training mode", lambda s, x: F.dropout(x, 0.5).mean(-1), {},
     "F.dropout (training=True drops values at inference too"),
    ("softmax over channels", lambda s, x: F.softmax(x, dim=1).mean(-1), {},
     "softmax over dim 1: only the last axis"),
    ("module called twice", lambda s, x: s.c(s.c(x)).mean(-1), {"c": nn.Conv1d(4, 4, 1)},
     "c: nn.Conv1d (is called more than once"),
    ("unflatten view", lambda s, x: x.view(x.size(0), 2, 2, 16).mean(-1).flatten(1), {},
     "Tensor.view (from [4, 16] to [2, 2, 16] is not a flatten"),
    ("batch mixed into items", lambda s, x: x.reshape(-1, 16).mean(-1), {},
     "mixes the batch axis into the item"),
    ("h_n of the first layer", lambda s, x: s.g(x.transpose(1, 2))[1][0],
     {"g": nn.GRU(4, 5, num_layers=2, batch_first=True)}, "g: h_n[0] (layer 0) (is not in the output sequence"),
    ("LSTM cell state", lambda s, x: s.l(x.transpose(1, 2))[1][1][-1],
     {"l": nn.LSTM(4, 5, batch_first=True)}, "the LSTM cell state c_n (is not in the output sequence"),
    ("time-first RNN", lambda s, x: s.g(x.transpose(1, 2))[0][:, -1], {"g": nn.GRU(4, 5)},
     "g: nn.GRU (needs batch_first=True"),
    ("ceil_mode pool", lambda s, x: F.max_pool1d(x, 3, ceil_mode=True).mean(-1), {},
     "ceil_mode=True is not supported"),
    ("output not flat", lambda s, x: x, {}, "the network's output (must be flat per item"),
    ("unsqueeze", lambda s, x: x.unsqueeze(1).mean(-1).flatten(1), {}, "Tensor.unsqueeze is not supported"),
    ("a size where a number is needed", lambda s, x: F.avg_pool1d(x, x.size(-1)).flatten(1), {},
     "was passed where PyTorch needs a plain number"),
    ("data-dependent control flow", lambda s, x: x.mean(-1) if x.sum() > 0 else x.mean(-1), {},
     "torch.fx cannot trace Net"),
]

ACCEPTED = [
    ("h_n[-1] of a bidirectional GRU", lambda s, x: s.g(x.transpose(1, 2))[1][-1],
     {"g": nn.GRU(4, 5, num_layers=2, batch_first=True, bidirectional=True)}),
    ("h_n.squeeze(0)", lambda s, x: s.g(x.transpose(1, 2))[1].squeeze(0),
     {"g": nn.GRU(4, 5, batch_first=True)}),
    ("x / 2, 1 + x, x.view(N, -1)", lambda s, x: (1 + x / 2).view(x.size(0), -1), {}),
    ("strided slices and Ellipsis", lambda s, x: x[..., 1::3][:, 1:3].flatten(1), {}),
    ("squeeze after adaptive pool", lambda s, x: F.adaptive_avg_pool1d(x, 1).squeeze(-1), {}),
    ("x - mean, 1 - x, -x, x - gamma", lambda s, x: (-(1 - (x - x.mean(-1, keepdim=True))) - s.g).mean(-1),
     {"g": nn.Parameter(torch.rand(4, 1))}),
    ("gamma.view(1, -1, 1) * x", lambda s, x: (s.g.view(1, -1, 1) * x).mean(-1),
     {"g": nn.Parameter(torch.rand(4))}),
    ("x.shape[-1] // 2 in a slice", lambda s, x: x[:, :, : x.shape[-1] // 2].mean(-1), {}),
    ("chunk gate and split", lambda s, x: (torch.tanh(x.chunk(2, 1)[0]) * torch.sigmoid(
        torch.split(x, [2, 2], dim=1)[1])).mean(-1), {}),
    ("sum of torch.stack, mean of torch.stack", lambda s, x: torch.stack([x, x * 2]).sum(0).mean(-1)
     + torch.stack([x, -x], dim=1).mean(1).sum(-1), {}),
    ("max over time: x.max(-1)[0], .values, amax, adaptive", lambda s, x: x.max(-1)[0]
     + x.max(dim=2).values + torch.amax(x, -1) + F.adaptive_max_pool1d(x, 1).flatten(1)
     + x.transpose(1, 2).max(1)[0], {}),
    ("clamp(min=0), softmax without dim", lambda s, x: F.softmax(x.clamp(min=0).mean(-1)), {}),
    ("ConvNeXt's channels_first LayerNorm and F.layer_norm", lambda s, x: F.layer_norm(
        s.ln(x).transpose(1, 2), (4,), s.ln2.weight, s.ln2.bias).mean(1),
     {"ln": ConvNeXtLayerNorm(4, data_format="channels_first"), "ln2": ConvNeXtLayerNorm(4)}),
    ("cat on the last axis", lambda s, x: torch.cat([x, torch.relu(x)], -1).mean(1), {}),
]


def main():
    failed = 0
    for name, body, mods, want in REFUSED:
        try:
            fx_export.trace_module(Net(body, **mods).eval(), [1, 64])
            got = "accepted"
        except ExportError as e:
            got = str(e)
        ok = want in got
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} - refused: {name}" + ("" if ok else f"\n       want: {want}\n       got:  {got}"))
    for name, body, mods in ACCEPTED:
        try:
            fx_export.trace_module(Net(body, **mods).eval(), [1, 64])
            got = None
        except ExportError as e:
            got = str(e)
        failed += got is not None
        print(f"{'ok  ' if got is None else 'FAIL'} - accepted: {name}" + (f"\n       {got}" if got else ""))
    print(f"{len(REFUSED) + len(ACCEPTED) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
