"""The golden zoo: small classifiers (5 labels, a few thousand weights) built from the blocks
raw-audio networks are made of, written as ordinary PyTorch (no export hints). zoo_make.py
exports each with export_module and stores PyTorch's value of every node.

Each front end is one strided convolution, so that the stored activations stay small.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize, weight_norm

LABELS = 5


class _WeightNorm(nn.Module):
    """torch.nn.utils.parametrizations.weight_norm (torch >= 2.1) for older torch: the same
    parametrization and state_dict layout (original0 = g, original1 = v)."""

    def forward(self, weight_g, weight_v):
        return torch._weight_norm(weight_v, weight_g, 0)

    def right_inverse(self, weight):
        return torch.norm_except_dim(weight, 2, 0), weight


def param_weight_norm(module):
    new = getattr(nn.utils.parametrizations, "weight_norm", None)
    if new is not None:
        return new(module)
    parametrize.register_parametrization(module, "weight", _WeightNorm())
    return module


# ---------------------------------------------------------------- TCN (Bai et al. 2018)

class Chomp1d(nn.Module):
    def __init__(self, chomp):
        super().__init__()
        self.chomp = chomp

    def forward(self, x):
        return x[:, :, :-self.chomp].contiguous()


class TemporalBlock(nn.Module):
    """Two dilated causal convolutions with weight norm, ReLU and dropout; a 1x1 downsample
    on the residual when the width changes. chomp=True pads both sides and trims the right
    (the reference code); chomp=False pads the left only."""

    def __init__(self, n_in, n_out, k, dilation, chomp, new_wn, dropout=0.2):
        super().__init__()
        pad = (k - 1) * dilation
        wn = param_weight_norm if new_wn else weight_norm
        self.pad, self.use_chomp = pad, chomp
        self.conv1 = wn(nn.Conv1d(n_in, n_out, k, padding=pad if chomp else 0, dilation=dilation))
        self.chomp1 = Chomp1d(pad)
        self.relu1, self.dropout1 = nn.ReLU(), nn.Dropout(dropout)
        self.conv2 = wn(nn.Conv1d(n_out, n_out, k, padding=pad if chomp else 0, dilation=dilation))
        self.chomp2 = Chomp1d(pad)
        self.relu2, self.dropout2 = nn.ReLU(), nn.Dropout(dropout)
        self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None
        self.relu = nn.ReLU()

    def forward(self, x):
        if self.use_chomp:
            out = self.dropout1(self.relu1(self.chomp1(self.conv1(x))))
            out = self.dropout2(self.relu2(self.chomp2(self.conv2(out))))
        else:
            out = self.dropout1(self.relu1(self.conv1(F.pad(x, (self.pad, 0)))))
            out = self.dropout2(self.relu2(self.conv2(F.pad(out, (self.pad, 0)))))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TCN(nn.Module):
    input_shape = [1, 400]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 6, 16, stride=16)
        self.block1 = TemporalBlock(6, 8, 3, 1, chomp=True, new_wn=False)
        self.block2 = TemporalBlock(8, 8, 3, 2, chomp=False, new_wn=True)
        self.block3 = TemporalBlock(8, 10, 3, 4, chomp=True, new_wn=True)
        self.fc = nn.Linear(10, LABELS)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.front(x))))
        return self.fc(x[:, :, -1])  # the last (causal) step


# ---------------------------------------------------------------- ResNet (He et al. 2016)

def _conv(two, *a, **k):
    return (nn.Conv2d if two else nn.Conv1d)(*a, **k)


def _bn(two, c):
    return (nn.BatchNorm2d if two else nn.BatchNorm1d)(c)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, two, n_in, width, stride=1):
        super().__init__()
        out = width * self.expansion
        self.conv1 = _conv(two, n_in, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _bn(two, width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(two, width, out, 3, padding=1, bias=False)
        self.bn2 = _bn(two, out)
        self.downsample = None
        if stride != 1 or n_in != out:
            self.downsample = nn.Sequential(_conv(two, n_in, out, 1, stride=stride, bias=False),
                                            _bn(two, out))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, two, n_in, width, stride=1):
        super().__init__()
        out = width * self.expansion
        self.conv1 = _conv(two, n_in, width, 1, bias=False)
        self.bn1 = _bn(two, width)
        self.conv2 = _conv(two, width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _bn(two, width)
        self.conv3 = _conv(two, width, out, 1, bias=False)
        self.bn3 = _bn(two, out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or n_in != out:
            self.downsample = nn.Sequential(_conv(two, n_in, out, 1, stride=stride, bias=False),
                                            _bn(two, out))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet1d(nn.Module):
    """Basic block (identity residual), basic block (strided, 1x1 downsample), bottleneck
    (strided, downsample)."""
    input_shape = [1, 512]

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 16, stride=16, bias=False)
        self.bn = nn.BatchNorm1d(8)
        self.layer1 = BasicBlock(False, 8, 8)
        self.layer2 = BasicBlock(False, 8, 12, stride=2)
        self.layer3 = Bottleneck(False, 12, 4, stride=2)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, LABELS)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.bn(self.stem(x))), 2)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class ResNet2d(nn.Module):
    """The same blocks in 2-D, on [channels of a strided front end, time] as an image."""
    input_shape = [1, 1, 512]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv2d(1, 8, (1, 32), stride=(1, 32))
        self.stem = nn.Conv2d(1, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.layer1 = BasicBlock(True, 6, 6)
        self.layer2 = Bottleneck(True, 6, 2, stride=2)
        self.layer3 = BasicBlock(True, 8, 10, stride=2)
        self.fc = nn.Linear(10, LABELS)

    def forward(self, x):
        x = self.front(x).transpose(1, 2)           # [1, 8, 16]
        x = F.relu(self.bn(self.stem(x)))           # [6, 8, 16]
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).squeeze(-1).squeeze(-1)
        return F.log_softmax(self.fc(x), dim=1)


# ---------------------------------------------------------------- depthwise-separable (MobileNet)

class DepthwiseSeparable(nn.Module):
    def __init__(self, two, n_in, n_out, k, stride=1):
        super().__init__()
        self.depthwise = _conv(two, n_in, n_in, k, stride=stride, padding=k // 2, groups=n_in,
                               bias=False)
        self.bn1 = _bn(two, n_in)
        self.pointwise = _conv(two, n_in, n_out, 1, bias=False)
        self.bn2 = _bn(two, n_out)

    def forward(self, x):
        x = F.relu(self.bn1(self.depthwise(x)))
        return F.relu(self.bn2(self.pointwise(x)))


class DSCNN1d(nn.Module):
    input_shape = [1, 480]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 12, 18, stride=16, padding=1)
        self.ds1 = DepthwiseSeparable(False, 12, 16, 5)
        self.ds2 = DepthwiseSeparable(False, 16, 16, 3, stride=2)
        self.ds3 = DepthwiseSeparable(False, 16, 24, 3)
        self.fc = nn.Linear(24, LABELS)

    def forward(self, x):
        x = self.ds3(self.ds2(self.ds1(F.relu(self.front(x)))))
        return self.fc(x.mean(-1))


class DSCNN2d(nn.Module):
    input_shape = [1, 1, 512]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv2d(1, 8, (1, 32), stride=(1, 32))
        self.conv = nn.Conv2d(1, 8, 3, stride=(1, 2), padding=1)
        self.ds1 = DepthwiseSeparable(True, 8, 12, 3)
        self.ds2 = DepthwiseSeparable(True, 12, 16, 3, stride=2)
        self.fc = nn.Linear(16, LABELS)

    def forward(self, x):
        x = self.front(x).permute(0, 2, 1, 3)       # [1, 8, 16]
        x = F.relu(self.conv(x))                    # [8, 8, 8]
        x = self.ds2(self.ds1(x))
        return self.fc(x.mean(dim=(2, 3)))


# ---------------------------------------------------------------- ConvNeXt (Liu et al. 2022)

class ConvNeXtBlock1d(nn.Module):
    """dwconv 7 -> channels last -> LayerNorm -> Linear 4x -> GELU (erf) -> Linear -> layer
    scale (after moving channels back, as gamma[:, None]) -> residual."""

    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        y = self.dwconv(x).transpose(1, 2)          # [T, C]
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = y.permute(0, 2, 1)                      # [C, T]
        return x + self.gamma[:, None] * y


class ConvNeXtBlock2d(nn.Module):
    """The reference block: dwconv 7x7, permute to [H, W, C], LayerNorm, Linear 4x, GELU
    (tanh form), Linear, gamma * x on channels last, permute back, residual."""

    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)), approximate="tanh"))
        y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt1d(nn.Module):
    input_shape = [1, 512]

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(1, 8, 32, stride=32)
        self.stem_norm = nn.LayerNorm(8, eps=1e-6)
        self.block1 = ConvNeXtBlock1d(8)
        self.block2 = ConvNeXtBlock1d(8)
        self.head_norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, LABELS)

    def forward(self, x):
        x = self.stem(x)
        x = self.stem_norm(x.transpose(1, 2)).transpose(1, 2)
        x = self.block2(self.block1(x))
        return self.head(self.head_norm(x.mean(-1)))


class ConvNeXt2d(nn.Module):
    input_shape = [1, 1, 512]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv2d(1, 6, (1, 32), stride=(1, 32))
        self.stem = nn.Conv2d(1, 8, 2, stride=2)
        self.block1 = ConvNeXtBlock2d(8)
        self.block2 = ConvNeXtBlock2d(8)
        self.head = nn.Linear(8, LABELS)

    def forward(self, x):
        x = self.front(x).transpose(1, 2)           # [1, 6, 16]
        x = self.block2(self.block1(self.stem(x)))  # [8, 3, 8]
        return F.softmax(self.head(x.mean([-2, -1])), dim=-1)


# ---------------------------------------------------------------- WaveNet (van den Oord et al. 2016)

class GatedResidual(nn.Module):
    def __init__(self, channels, skip, dilation, k=2):
        super().__init__()
        self.left = (k - 1) * dilation
        self.filter = nn.Conv1d(channels, channels, k, dilation=dilation)
        self.gate = nn.Conv1d(channels, channels, k, dilation=dilation)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip, 1)

    def forward(self, x):
        h = F.pad(x, (self.left, 0))
        z = torch.tanh(self.filter(h)) * torch.sigmoid(self.gate(h))
        return (x + self.residual(z)) * math.sqrt(0.5), self.skip(z)


class WaveNet(nn.Module):
    input_shape = [1, 400]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 8, 16, stride=16)
        self.layers = nn.ModuleList([GatedResidual(8, 10, d) for d in (1, 2, 4, 8)])
        self.post1 = nn.Conv1d(10, 10, 1)
        self.post2 = nn.Conv1d(10, LABELS, 1)

    def forward(self, x):
        x = self.front(x)
        skips = 0
        for layer in self.layers:
            x, s = layer(x)
            skips = skips + s
        y = self.post2(F.relu(self.post1(F.relu(skips))))
        return y.mean(dim=2)


# ---------------------------------------------------------------- CNN encoders + RNNs

class CausalSkipGRU(nn.Module):
    """Causal CNN with skip connections (every layer's output concatenated) as the encoder
    of a two-layer GRU; the summary is h_n[-1], the last layer's final state."""
    input_shape = [1, 400]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 6, 8, stride=8)
        self.c1 = nn.Conv1d(6, 6, 3, dilation=1)
        self.c2 = nn.Conv1d(6, 6, 3, dilation=2)
        self.c3 = nn.Conv1d(6, 6, 3, dilation=4)
        self.gru = nn.GRU(24, 10, num_layers=2, batch_first=True)
        self.fc = nn.Linear(10, LABELS)

    def forward(self, x):
        x0 = F.relu(self.front(x))
        x1 = F.relu(self.c1(F.pad(x0, (2, 0)))) + x0
        x2 = F.relu(self.c2(F.pad(x1, (4, 0)))) + x1
        x3 = F.relu(self.c3(F.pad(x2, (8, 0)))) + x2
        seq = torch.cat([x0, x1, x2, x3], dim=1).transpose(1, 2)  # [T, 24]
        _, h = self.gru(seq)
        return self.fc(h[-1])


class CNNLSTM(nn.Module):
    """CNN, then a two-layer bidirectional LSTM; mean over time of its output sequence."""
    input_shape = [1, 480]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 12, stride=8, padding=2)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(8)
        self.lstm = nn.LSTM(8, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(12, LABELS)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool1d(F.relu(self.bn2(self.conv2(x))), 2)
        out, (h, c) = self.lstm(x.permute(0, 2, 1))
        return self.fc(self.drop(out.mean(dim=1)))


class CNNGRU(nn.Module):
    """CNN (with SiLU), one-layer GRU, the last step of its output selected; log_softmax."""
    input_shape = [1, 400]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 8, stride=8)
        self.conv2 = nn.Conv1d(8, 12, 3, stride=2)
        self.act = nn.SiLU()
        self.gru = nn.GRU(12, 8, batch_first=True)
        self.fc = nn.Linear(8, LABELS)

    def forward(self, x):
        x = self.act(self.conv2(F.relu(self.conv1(x))))
        out, _ = self.gru(x.transpose(1, 2))
        return F.log_softmax(self.fc(out[:, -1]), dim=-1)


class ChannelsLayerNorm(nn.Module):
    """ConvNeXt's LayerNorm (facebookresearch/ConvNeXt models/convnext.py), channels_first
    branch written out with mean/pow/sqrt as there."""

    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_first"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps, self.data_format = eps, data_format
        self.normalized_shape = (normalized_shape, )

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None] * x + self.bias[:, None]


class Variants(nn.Module):
    """Other ways of writing the same blocks: a channels_first LayerNorm class, a gated unit
    from one conv split with chunk, skips summed with torch.stack(...).sum(0), a subtraction,
    max and mean over time concatenated."""
    input_shape = [1, 400]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 8, 16, stride=16)
        self.norm = ChannelsLayerNorm(8)
        self.gated = nn.ModuleList([nn.Conv1d(8, 16, 3, dilation=d) for d in (1, 2)])
        self.skip = nn.ModuleList([nn.Conv1d(8, 8, 1) for _ in range(2)])
        self.head_norm = ChannelsLayerNorm(16, data_format="channels_last")
        self.fc = nn.Linear(16, LABELS)

    def forward(self, x):
        x = self.norm(self.front(x))
        skips = []
        for conv, skip in zip(self.gated, self.skip):
            f, g = conv(F.pad(x, (2 * conv.dilation[0], 0))).chunk(2, dim=1)
            z = torch.tanh(f) * torch.sigmoid(g)
            skips.append(skip(z))
            x = x + z - x.mean(-1, keepdim=True)
        s = torch.stack(skips).sum(0)
        h = torch.cat([s.max(dim=-1).values, s.mean(-1)], dim=1)
        return self.fc(self.head_norm(h))


def sequential():
    """A plain nn.Sequential."""
    return nn.Sequential(
        nn.Conv1d(1, 8, 9, stride=4, padding=4), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(4),
        nn.Conv1d(8, 12, 5, padding=2), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.1),
        nn.AvgPool1d(2), nn.Conv1d(12, 12, 3), nn.Tanh(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        nn.Linear(12, 16), nn.Sigmoid(), nn.Linear(16, LABELS))


def chains():
    """One-row stride-1 convolutions in a row. The first two (the first fed by the network
    input) run as one pass in the engine (ac_conv2d_chain, conv2 with its pool fused); the
    later pairs may not: a conv already in a chain, and pairs whose output would land in the
    buffer of the first one's input."""
    return nn.Sequential(
        nn.Conv1d(1, 4, 5), nn.ReLU(),
        nn.Conv1d(4, 8, 3), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(8, 8, 3, dilation=2), nn.ReLU(),
        nn.Conv1d(8, 8, 5), nn.ReLU(),
        nn.Conv1d(8, 8, 3), nn.MaxPool1d(4),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, LABELS))


# name -> (constructor, input_shape, description); QUANT: stored dtypes other than F32
QUANT = {"tcn": {"block1.conv1": "f16", "fc": "i8"}, "resnet2d": {"layer2.conv2": "i8"},
         "cnn_lstm": {"fc": "f16"}}
ZOO = {
    "tcn": (TCN, TCN.input_shape, "TCN residual blocks: dilated causal convs with weight norm "
            "(both APIs), chomp and left pad, ReLU, dropout, 1x1 downsample"),
    "resnet1d": (ResNet1d, ResNet1d.input_shape, "ResNet basic and bottleneck blocks, 1-D"),
    "resnet2d": (ResNet2d, ResNet2d.input_shape, "ResNet basic and bottleneck blocks, 2-D"),
    "dscnn1d": (DSCNN1d, DSCNN1d.input_shape, "depthwise-separable blocks, 1-D"),
    "dscnn2d": (DSCNN2d, DSCNN2d.input_shape, "depthwise-separable blocks, 2-D"),
    "convnext1d": (ConvNeXt1d, ConvNeXt1d.input_shape, "ConvNeXt blocks, 1-D, GELU erf"),
    "convnext2d": (ConvNeXt2d, ConvNeXt2d.input_shape, "ConvNeXt blocks, 2-D, GELU tanh"),
    "wavenet": (WaveNet, WaveNet.input_shape, "WaveNet gated residual stack with skips"),
    "causal_gru": (CausalSkipGRU, CausalSkipGRU.input_shape,
                   "causal CNN with skip connections encoding a 2-layer GRU (h_n[-1])"),
    "cnn_lstm": (CNNLSTM, CNNLSTM.input_shape, "CNN + 2-layer bidirectional LSTM, mean over time"),
    "cnn_gru": (CNNGRU, CNNGRU.input_shape, "CNN + GRU, last step selected"),
    "sequential": (sequential, [1, 400], "a plain nn.Sequential"),
    "variants": (Variants, Variants.input_shape, "channels_first LayerNorm class, chunk gate, "
                 "stack-sum of skips, subtraction, max over time"),
    "chains": (chains, [1, 300], "one-row convolutions in a row: a conv1 -> conv2 chain "
               "(ac_conv2d_chain) and the pairs that may not be one"),
}
