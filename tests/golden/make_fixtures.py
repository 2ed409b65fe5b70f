#!/usr/bin/python3
"""Writes the format-1 op-zoo golden fixtures: two small random networks that use every op
and option of format version 1 (models/FORMAT.md: causal padding, dilation, groups, stride,
pool padding, average pools, swapaxes on 1-D and 2-D tensors, softmax, F16 and I8 weights),
with PyTorch's outputs on a few clips of each length regime (shorter than a window, exactly
one, several). They are written as version 1 layer lists, by hand, on purpose: they pin that
version 1 files keep loading and computing the same. The shipped models' fixtures come from
the training scripts; the format-2 block zoo from zoo_make.py.

    /usr/bin/python3 tests/golden/make_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
import export  # noqa: E402


def _conv1d(name, c: nn.Conv1d, padding=(0, 0)):
    return {"op": "conv1d", "name": name, "in_channels": c.in_channels,
            "out_channels": c.out_channels, "kernel_size": c.kernel_size[0],
            "stride": c.stride[0], "dilation": c.dilation[0], "padding": list(padding),
            "groups": c.groups, "bias": c.bias is not None}


def _conv2d(name, c: nn.Conv2d, padding=(0, 0, 0, 0)):
    return {"op": "conv2d", "name": name, "in_channels": c.in_channels,
            "out_channels": c.out_channels, "kernel_size": list(c.kernel_size),
            "stride": list(c.stride), "dilation": list(c.dilation), "padding": list(padding),
            "groups": c.groups, "bias": c.bias is not None}


def _bn(name, b):
    return {"op": "batchnorm", "name": name, "num_features": b.num_features, "eps": b.eps}


def _linear(name, l: nn.Linear):
    return {"op": "linear", "name": name, "in_features": l.in_features,
            "out_features": l.out_features, "bias": l.bias is not None}


def export_v1(net, arch, labels, path, name, quant):
    """net as a version 1 file (its hand-written layer list). Returns the effective weights."""
    tensors, effective = export.quantized_state(net.eval(), quant)
    md = {"format": "audioclass", "format_version": "1", "name": name, "arch": arch,
          "sample_rate": str(net.sample_rate), "input_shape": json.dumps(net.input_shape),
          "labels": json.dumps(list(labels)), "graph": json.dumps(net.graph()),
          "policy": json.dumps(net.policy)}
    export.write_safetensors(path, tensors, md)
    return effective


class Zoo1d(nn.Module):
    """[1, 1000] at 8 kHz. Causal dilated conv, grouped conv, avg pool with padding, swapaxes."""
    sample_rate, input_length, input_shape = 8000, 1000, [1, 1000]
    policy = {"window": 1000, "hop": 300, "pad": 100}

    def __init__(self, n_classes=6):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 9, stride=2, dilation=2)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 8, 5, groups=4, bias=False)
        self.bn2 = nn.BatchNorm1d(8)
        self.conv3 = nn.Conv1d(12, 6, 3, stride=3)  # after swapaxes, channels = length 12
        self.fc1 = nn.Linear(6 * 2, n_classes)

    def forward(self, x):
        x = F.pad(x, (16, 0))  # causal: (k-1)*dilation zeros on the left
        x = F.relu(self.bn1(self.conv1(x)))                      # [8, 496]
        x = F.pad(x, (2, 2))
        x = F.relu(self.bn2(self.conv2(x)))                      # [8, 496]
        x = F.avg_pool1d(x, 8, stride=8, padding=4)              # [8, 63]
        x = F.max_pool1d(x, 5)                                   # [8, 12]
        x = x.transpose(1, 2)                                    # [12, 8]
        x = self.conv3(x)                                        # [6, 2]
        x = x.flatten(1)
        return F.log_softmax(self.fc1(x), dim=-1)

    def graph(self):
        return [_conv1d("conv1", self.conv1, padding=(16, 0)), _bn("bn1", self.bn1), {"op": "relu"},
                _conv1d("conv2", self.conv2, padding=(2, 2)), _bn("bn2", self.bn2), {"op": "relu"},
                {"op": "avgpool1d", "kernel_size": 8, "stride": 8, "padding": 4},
                {"op": "maxpool1d", "kernel_size": 5},
                {"op": "swapaxes", "dims": [1, 2]},
                _conv1d("conv3", self.conv3), {"op": "flatten"}, _linear("fc1", self.fc1),
                {"op": "log_softmax"}]


class Zoo2d(nn.Module):
    """[1, 1, 800] at 16 kHz. Strided/dilated/padded conv2d, pools with padding, softmax."""
    sample_rate, input_length, input_shape = 16000, 800, [1, 1, 800]
    policy = {"window": 800, "hop": 800, "pad": 0}

    def __init__(self, n_classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, (1, 5), stride=(1, 2), padding=(0, 2))
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(1, 6, (3, 3), stride=2, dilation=(1, 2), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.conv3 = nn.Conv2d(6, 6, 1, groups=3)
        self.fc1 = nn.Linear(6, 10)
        self.fc2 = nn.Linear(10, n_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))                      # [4, 1, 400]
        x = F.max_pool2d(x, (1, 4), padding=(0, 1))              # [4, 1, 100]
        x = x.transpose(1, 2)                                    # [1, 4, 100]
        x = F.relu(self.bn2(self.conv2(x)))                      # [6, 2, 49]
        x = F.avg_pool2d(x, 2, padding=1)                        # [6, 2, 25]
        x = self.conv3(x)
        x = x.mean(dim=(2, 3))
        x = F.relu(self.fc1(x))
        return F.softmax(self.fc2(x), dim=-1)

    def graph(self):
        return [_conv2d("conv1", self.conv1, padding=(0, 0, 2, 2)), _bn("bn1", self.bn1),
                {"op": "relu"},
                {"op": "maxpool2d", "kernel_size": [1, 4], "padding": [0, 1]},
                {"op": "swapaxes", "dims": [1, 2]},
                _conv2d("conv2", self.conv2, padding=(1, 1, 1, 1)), _bn("bn2", self.bn2),
                {"op": "relu"},
                {"op": "avgpool2d", "kernel_size": [2, 2], "padding": [1, 1]},
                _conv2d("conv3", self.conv3),
                {"op": "global_avgpool"}, {"op": "flatten"},
                _linear("fc1", self.fc1), {"op": "relu"}, _linear("fc2", self.fc2),
                {"op": "softmax"}]


def make(net, name, arch, quant, lengths, seed):
    torch.manual_seed(seed)
    export.randomize_bn(net)
    labels = [f"{name}-{i}" for i in range(len(net.fc1.bias) if name == "zoo1d" else len(net.fc2.bias))]
    model_rel = f"tests/golden/{name}.safetensors"
    eff = export_v1(net, arch, labels, os.path.join(ROOT, model_rel), name, quant)
    rng = np.random.default_rng(seed)
    clips = [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    export.write_golden(net, arch, os.path.join(HERE, f"{name}.golden.safetensors"), clips, eff,
                        model_file=model_rel, policy=net.policy)
    print("wrote", model_rel)


if __name__ == "__main__":
    make(Zoo1d(), "zoo1d", "zoo1d", {"conv3": "i8", "fc1": "f16"}, [500, 800, 1000, 3333], 1)
    make(Zoo2d(), "zoo2d", "zoo2d", {"conv2": "f16", "fc1": "i8", "fc2": "i8"}, [100, 800, 2500], 2)
