"""PyTorch definitions of the networks audioclass serves, and their test-time policies.

Each network is a plain nn.Module whose state_dict names are the tensor names in the model
file; export.export_model traces its forward() into the file's graph (fx_export.py), so the
forward pass is the whole contract: the C engine has no model-specific code.
"""
import torch.nn as nn
import torch.nn.functional as F


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


class CausalTCN(nn.Module):
    """A streaming keyword spotter: a causal, dilated temporal convolution network on raw 8 kHz
    audio. Every convolution is padded on the left only, so the frame at time t depends on
    samples <= t, and the engine can run it over a stream incrementally (engine/stream.c).

    x: [N, 1, L] -> pad 64 left, front 48x80 /16 -> [N, 48, L/16] -> pool 5 -> [N, 48, L/80]
    (one frame per 10 ms) -> proj 1x1 -> [N, C, T] -> 5 residual blocks, dilation 1..16, two
    k=3 convs each (receptive field 125 frames = 1.25 s) -> head 1x1 -> [N, classes, T].
    forward() answers for the last frame (x[..., -1], "what was just said"), so the answer for
    a stream after n samples is the offline answer for those n samples.
    """
    sample_rate = 8000
    input_length = 10000
    input_shape = [1, 10000]
    frame = 80  # samples per output frame

    def __init__(self, n_classes, channels=64, dilations=(1, 2, 4, 8, 16)):
        super().__init__()
        self.front = nn.Conv1d(1, 48, 80, stride=16, bias=False)
        self.bn0 = nn.BatchNorm1d(48)
        self.proj = nn.Conv1d(48, channels, 1)
        self.dilations = list(dilations)
        self.convs_a = nn.ModuleList(nn.Conv1d(channels, channels, 3, dilation=d, bias=False) for d in dilations)
        self.bns_a = nn.ModuleList(nn.BatchNorm1d(channels) for _ in dilations)
        self.convs_b = nn.ModuleList(nn.Conv1d(channels, channels, 3, dilation=d, bias=False) for d in dilations)
        self.bns_b = nn.ModuleList(nn.BatchNorm1d(channels) for _ in dilations)
        self.head = nn.Conv1d(channels, n_classes, 1)

    def frames(self, x):  # x: [N, 1, L] -> per-frame logits [N, classes, L // 80]
        x = F.relu(self.bn0(self.front(F.pad(x, (64, 0)))))
        x = F.max_pool1d(x, 5)
        x = self.proj(x)
        for d, ca, ba, cb, bb in zip(self.dilations, self.convs_a, self.bns_a, self.convs_b, self.bns_b):
            y = F.relu(ba(ca(F.pad(x, (2 * d, 0)))))
            y = bb(cb(F.pad(y, (2 * d, 0))))
            x = F.relu(x + y)
        return self.head(x)

    def forward(self, x):  # x: [N, 1, L] -> [N, classes] log-probabilities of the last frame
        return F.log_softmax(self.frames(x)[:, :, -1], dim=-1)


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
    # The spotter answers for the end of its window; trained with the clip's end 0..250 ms
    # before it, so a 1 s clip is read once with its end 125 ms before the window's.
    "tcn": {"window": 10000, "hop": 1000, "pad": 1000},
}

ARCHS = {"m5": M5, "envnet": EnvNet, "tcn": CausalTCN}


def arch_kwargs(arch, state):
    """Constructor arguments that a state dict implies (M5's width is conv1's channel count)."""
    if arch == "tcn":
        return {"channels": int(state["proj.weight"].shape[0])}
    return {"n_channel": int(state["conv1.weight"].shape[0])} if arch == "m5" else {}


def build(arch, n_classes, state=None, **kwargs):
    """The network for `arch`, sized to `state` when given (a state dict or tensor dict)."""
    if state is not None:
        kwargs = {**arch_kwargs(arch, state), **kwargs}
    return ARCHS[arch](n_classes, **kwargs)
