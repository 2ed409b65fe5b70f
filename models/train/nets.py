"""PyTorch definitions of the networks audioclass serves, and their graph descriptions.

Each network is a plain nn.Module whose state_dict names are the tensor names in the model
file, plus a `graph()` that lists its layers in the JSON form the C engine reads
(models/FORMAT.md). The C engine has no model-specific code: these two functions are the
whole contract, so a change here is a change of the file format's content, not of C.
"""
import torch.nn as nn
import torch.nn.functional as F


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


class M5(nn.Module):
    """M5 (Dai et al. 2016) as in its seed code: 8 kHz, 8000 samples in.

    x: [N, 1, 8000] -> conv1 80 taps /16 -> [N, 32, 496] -> pool4 -> [N, 32, 124]
    -> conv2 3 -> [N, 32, 122] -> pool4 -> [N, 32, 30] -> conv3 -> [N, 64, 28] -> pool4
    -> [N, 64, 7] -> conv4 -> [N, 64, 5] -> pool4 -> [N, 64, 1] -> mean -> [N, 64]
    -> fc1 -> [N, classes] -> log_softmax.
    """
    sample_rate = 8000
    input_length = 8000

    def __init__(self, n_classes, n_channel=32, stride=16):
        super().__init__()
        c = n_channel
        self.conv1 = nn.Conv1d(1, c, kernel_size=80, stride=stride)
        self.bn1 = nn.BatchNorm1d(c)
        self.conv2 = nn.Conv1d(c, c, kernel_size=3)
        self.bn2 = nn.BatchNorm1d(c)
        self.conv3 = nn.Conv1d(c, 2 * c, kernel_size=3)
        self.bn3 = nn.BatchNorm1d(2 * c)
        self.conv4 = nn.Conv1d(2 * c, 2 * c, kernel_size=3)
        self.bn4 = nn.BatchNorm1d(2 * c)
        self.fc1 = nn.Linear(2 * c, n_classes)

    def forward(self, x):  # x: [N, 1, 8000]
        for i in range(1, 5):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"bn{i}")
            x = F.max_pool1d(F.relu(bn(conv(x))), 4)
        x = x.mean(dim=-1)  # global average pool: [N, 64]
        return F.log_softmax(self.fc1(x), dim=-1)

    def graph(self):
        layers = []
        for i in range(1, 5):
            layers += [_conv1d(f"conv{i}", getattr(self, f"conv{i}")),
                       _bn(f"bn{i}", getattr(self, f"bn{i}")),
                       {"op": "relu"},
                       {"op": "maxpool1d", "kernel_size": 4, "stride": 4}]
        layers += [{"op": "global_avgpool"}, {"op": "flatten"},
                   _linear("fc1", self.fc1), {"op": "log_softmax"}]
        return layers

    input_shape = [1, 8000]  # per item, PyTorch layout without the batch dimension


class EnvNet(nn.Module):
    """EnvNet (Tokozume & Harada 2017): 16 kHz, 24014-sample windows.

    x: [N, 1, 1, 24014] -> conv1 40x(1,8) -> [N, 40, 1, 24007] -> conv2 40x(1,8)
    -> [N, 40, 1, 24000] -> maxpool (1,160) -> [N, 40, 1, 150] -> swap axes 1,2
    -> [N, 1, 40, 150] -> conv3 50x(8,13) -> [N, 50, 33, 138] -> maxpool 3 -> [N, 50, 11, 46]
    -> conv4 50x(1,5) -> [N, 50, 11, 42] -> maxpool (1,3) -> [N, 50, 11, 14] -> flatten
    -> [N, 7700] -> fc5 4096 -> fc6 4096 -> fc7 classes (logits).
    Convolutions have no bias (batch norm follows), as in the authors' code.
    """
    sample_rate = 16000
    input_length = 24014
    input_shape = [1, 1, 24014]

    def __init__(self, n_classes, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 40, (1, 8), bias=False)
        self.bn1 = nn.BatchNorm2d(40)
        self.conv2 = nn.Conv2d(40, 40, (1, 8), bias=False)
        self.bn2 = nn.BatchNorm2d(40)
        self.conv3 = nn.Conv2d(1, 50, (8, 13), bias=False)
        self.bn3 = nn.BatchNorm2d(50)
        self.conv4 = nn.Conv2d(50, 50, (1, 5), bias=False)
        self.bn4 = nn.BatchNorm2d(50)
        self.fc5 = nn.Linear(50 * 11 * 14, 4096)
        self.fc6 = nn.Linear(4096, 4096)
        self.fc7 = nn.Linear(4096, n_classes)
        self.dropout = dropout

    def forward(self, x):  # x: [N, 1, 1, 24014]
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.max_pool2d(x, (1, 160))
        x = x.transpose(1, 2)  # [N, 1, 40, 150]: channels become a frequency-like axis
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.max_pool2d(x, 3)
        x = F.relu(self.bn4(self.conv4(x)))
        x = F.max_pool2d(x, (1, 3))
        x = x.flatten(1)
        x = F.dropout(F.relu(self.fc5(x)), self.dropout, self.training)
        x = F.dropout(F.relu(self.fc6(x)), self.dropout, self.training)
        return self.fc7(x)

    def graph(self):
        layers = []
        for i in (1, 2):
            layers += [_conv2d(f"conv{i}", getattr(self, f"conv{i}")),
                       _bn(f"bn{i}", getattr(self, f"bn{i}")), {"op": "relu"}]
        layers += [{"op": "maxpool2d", "kernel_size": [1, 160], "stride": [1, 160]},
                   {"op": "swapaxes", "dims": [1, 2]},
                   _conv2d("conv3", self.conv3), _bn("bn3", self.bn3), {"op": "relu"},
                   {"op": "maxpool2d", "kernel_size": [3, 3], "stride": [3, 3]},
                   _conv2d("conv4", self.conv4), _bn("bn4", self.bn4), {"op": "relu"},
                   {"op": "maxpool2d", "kernel_size": [1, 3], "stride": [1, 3]},
                   {"op": "flatten"},
                   _linear("fc5", self.fc5), {"op": "relu"}, {"op": "dropout"},
                   _linear("fc6", self.fc6), {"op": "relu"}, {"op": "dropout"},
                   _linear("fc7", self.fc7)]
        return layers


# Test-time policy (models/FORMAT.md, "policy"): how a clip of any length becomes windows.
# M5: window = input, 1000 zeros (125 ms, the training time-shift range) on each side and a
# 1000-sample hop, so a 1 s clip is read at -125, 0 and +125 ms and longer audio every 125 ms.
# Averaging those shifted views took the shipped weights from 84.9% (one window, hop 4000, no
# pad) to 86.3% on the speaker-disjoint validation split (models/m5-speech.md).
# EnvNet: as the authors' code, pad input_length//2 zeros on each side, then windows evenly
# spaced so that a 5 s clip gives exactly 10 crops: hop = ceil((80000+2*12007-24014)/9).
POLICIES = {
    "m5": {"window": 8000, "hop": 1000, "pad": 1000},
    "envnet": {"window": 24014, "hop": 8889, "pad": 12007},
}

ARCHS = {"m5": M5, "envnet": EnvNet}


def arch_kwargs(arch, state):
    """Constructor arguments that a state dict implies (M5's width is conv1's channel count)."""
    return {"n_channel": int(state["conv1.weight"].shape[0])} if arch == "m5" else {}


def build(arch, n_classes, state=None, **kwargs):
    """The network for `arch`, sized to `state` when given (a state dict or tensor dict)."""
    if state is not None:
        kwargs = {**arch_kwargs(arch, state), **kwargs}
    return ARCHS[arch](n_classes, **kwargs)
