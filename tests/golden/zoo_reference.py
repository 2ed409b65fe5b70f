"""Blocks as their reference code writes them (locuslab TCN, torchvision ResNet, ConvNeXt with
its own LayerNorm, a WaveNet with chunk and stack-sum, CRNN with bidirectional h_n, LSTM h_n)
and two networks of odd corners, exported with export_module and checked against the C
engine (parity). Run by tests/integration/test_export.sh; no fixtures are stored.

    /usr/bin/python3 tests/golden/zoo_reference.py [--bin build/audioclass]
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm


# locuslab/TCN
class Chomp1d(nn.Module):
    def __init__(self, chomp_size):
        super(Chomp1d, self).__init__()
        self.chomp_size = chomp_size
    def forward(self, x):
        return x[:, :, :-self.chomp_size].contiguous()

class TemporalBlock(nn.Module):
    def __init__(self, n_inputs, n_outputs, kernel_size, stride, dilation, padding, dropout=0.2):
        super(TemporalBlock, self).__init__()
        self.conv1 = weight_norm(nn.Conv1d(n_inputs, n_outputs, kernel_size, stride=stride, padding=padding, dilation=dilation))
        self.chomp1 = Chomp1d(padding)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = weight_norm(nn.Conv1d(n_outputs, n_outputs, kernel_size, stride=stride, padding=padding, dilation=dilation))
        self.chomp2 = Chomp1d(padding)
        self.relu2 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)
        self.net = nn.Sequential(self.conv1, self.chomp1, self.relu1, self.dropout1,
                                 self.conv2, self.chomp2, self.relu2, self.dropout2)
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()
        self.init_weights()
    def init_weights(self):
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)
        if self.downsample is not None:
            self.downsample.weight.data.normal_(0, 0.01)
    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)

class TemporalConvNet(nn.Module):
    def __init__(self, num_inputs, num_channels, kernel_size=2, dropout=0.2):
        super(TemporalConvNet, self).__init__()
        layers = []
        for i in range(len(num_channels)):
            dilation_size = 2 ** i
            in_channels = num_inputs if i == 0 else num_channels[i-1]
            out_channels = num_channels[i]
            layers += [TemporalBlock(in_channels, out_channels, kernel_size, stride=1, dilation=dilation_size,
                                     padding=(kernel_size-1) * dilation_size, dropout=dropout)]
        self.network = nn.Sequential(*layers)
    def forward(self, x):
        return self.network(x)

class TCN(nn.Module):
    def __init__(self, input_size=1, output_size=5, num_channels=(8, 8, 8), kernel_size=3, dropout=0.1):
        super(TCN, self).__init__()
        self.front = nn.Conv1d(1, input_size, 16, stride=16)
        self.tcn = TemporalConvNet(input_size, list(num_channels), kernel_size=kernel_size, dropout=dropout)
        self.linear = nn.Linear(num_channels[-1], output_size)
    def forward(self, inputs):
        y1 = self.tcn(self.front(inputs))
        o = self.linear(y1[:, :, -1])
        return F.log_softmax(o, dim=1)


# torchvision-style ResNet (tiny)
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

class BasicBlock(nn.Module):
    expansion = 1
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
    def forward(self, x):
        identity = x
        out = self.conv1(x); out = self.bn1(out); out = self.relu(out)
        out = self.conv2(out); out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out

class ResNetTiny(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.inplanes = 8
        self.conv1 = nn.Conv2d(1, 8, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(8, 1)
        self.layer2 = self._make_layer(16, 1, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)
    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)
    def forward(self, x):  # [1, 16, 40]: a spectrogram-like input
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


# ConvNeXt official (tiny)
class LayerNorm(nn.Module):
    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_last"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.data_format = data_format
        if self.data_format not in ["channels_last", "channels_first"]:
            raise NotImplementedError
        self.normalized_shape = (normalized_shape, )
    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        elif self.data_format == "channels_first":
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.eps)
            x = self.weight[:, None, None] * x + self.bias[:, None, None]
            return x

class Block(nn.Module):
    def __init__(self, dim, drop_path=0., layer_scale_init_value=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones((dim)), requires_grad=True) if layer_scale_init_value > 0 else None
        self.drop_path = nn.Identity()
    def forward(self, x):
        input = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)
        x = input + self.drop_path(x)
        return x

class ConvNeXtTiny(nn.Module):
    def __init__(self, in_chans=1, num_classes=5, dims=(8, 16)):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
                                                    LayerNorm(dims[0], eps=1e-6, data_format="channels_first")))
        self.downsample_layers.append(nn.Sequential(LayerNorm(dims[0], eps=1e-6, data_format="channels_first"),
                                                    nn.Conv2d(dims[0], dims[1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList([nn.Sequential(Block(dims[0], layer_scale_init_value=0.5)),
                                     nn.Sequential(Block(dims[1], layer_scale_init_value=0.5))])
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
    def forward(self, x):
        for i in range(2):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
        return self.head(self.norm(x.mean([-2, -1])))


# WaveNet-ish with single conv + chunk, stack-sum
class WaveNetRef(nn.Module):
    def __init__(self, c=8, n=5):
        super().__init__()
        self.start = nn.Conv1d(1, c, 16, stride=16)
        self.dil = nn.ModuleList([nn.Conv1d(c, 2 * c, 2, dilation=2 ** i, padding=2 ** i) for i in range(3)])
        self.res = nn.ModuleList([nn.Conv1d(c, c, 1) for _ in range(3)])
        self.skip = nn.ModuleList([nn.Conv1d(c, c, 1) for _ in range(3)])
        self.end1 = nn.Conv1d(c, c, 1); self.end2 = nn.Conv1d(c, n, 1)
    def forward(self, x):
        x = self.start(x)
        skips = []
        for i in range(3):
            h = self.dil[i](x)[..., :-(2 ** i)]
            a, b = torch.chunk(h, 2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)
            skips.append(self.skip[i](z))
            x = (x + self.res[i](z)) * math.sqrt(0.5)
        out = F.relu(torch.sum(torch.stack(skips), dim=0))
        out = self.end2(F.relu(self.end1(out)))
        return F.adaptive_avg_pool1d(out, 1).squeeze(-1)


# CRNN with bidirectional GRU final states
class CRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv1d(1, 8, 16, stride=8), nn.BatchNorm1d(8), nn.ReLU(),
                                 nn.MaxPool1d(2), nn.Conv1d(8, 8, 3, padding=1), nn.ReLU())
        self.gru = nn.GRU(8, 6, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)
        self.fc = nn.Linear(12, 5)
    def forward(self, x):
        x = self.cnn(x).permute(0, 2, 1)
        self.gru.flatten_parameters()
        _, hidden = self.gru(x)
        h = torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)
        return self.fc(h)


class LSTMHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 16, stride=16)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 5)
    def forward(self, x):
        x = F.relu(self.conv(x)).transpose(1, 2)
        out, (h, c) = self.lstm(x)
        return F.softmax(self.fc(h[-1]), dim=-1)


# Odd corners in one network each: "same"/"valid" padding, groups, numbers as operands,
# division, 1 - sigmoid, strided channel slices, channels-last LayerNorm + Linear, BatchNorm
# on features; 2-D: asymmetric stride/dilation/padding, ZeroPad2d, depthwise "same" with a
# residual and squeeze-excitation, padded max pool, adaptive max + avg, view/flatten/amax/mean
# concatenated.
class Sink1d(nn.Module):
    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv1d(1, 8, 9, stride=8, padding=4)
        s.c2 = nn.Conv1d(8, 8, 4, padding="same", dilation=2)
        s.c3 = nn.Conv1d(8, 8, 3, padding="valid", groups=2, bias=False)
        s.ln = nn.LayerNorm(8)
        s.lin = nn.Linear(8, 6)
        s.bnf = nn.BatchNorm1d(12)
        s.fc = nn.Linear(12, 5)
    def forward(s, x):
        x = F.silu(s.c1(x))
        x = x * 0.5 + 1.0
        y = s.c2(x) / 3
        y = 1 - torch.sigmoid(-y)
        x = torch.cat([x, y], dim=1)[:, ::2]
        x = s.c3(x)
        x = F.avg_pool1d(x, 3, stride=2, padding=1)
        t = s.lin(s.ln(x.transpose(1, 2)))      # [T, 6]
        t = F.gelu(t, approximate="tanh")
        g = F.adaptive_avg_pool1d(x, 1).squeeze(2)   # [8]
        h = t.mean(dim=1, keepdim=True).squeeze(1)             # [6]
        z = torch.cat([g[:, :6], h], 1)
        return F.softmax(s.fc(F.relu(s.bnf(z))), dim=1)
class SqueezeExcitation(nn.Module):
    """As torchvision.ops.SqueezeExcitation: 1x1 convolutions on the pooled [C, 1, 1]."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = nn.ReLU(), nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class Sink2d(nn.Module):
    def __init__(s):
        super().__init__()
        s.front = nn.Conv2d(1, 16, (1, 16), stride=(1, 16))
        s.c = nn.Conv2d(1, 6, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2))
        s.bn = nn.BatchNorm2d(6)
        s.p = nn.ZeroPad2d((1, 1, 0, 1))
        s.c2 = nn.Conv2d(6, 6, 3, padding="same", groups=6)
        s.se = SqueezeExcitation(6, 3)
        s.fc = nn.Linear(6 * 4, 5)
    def forward(s, x):
        x = s.front(x).transpose(1, 2)   # [1, 16, 25]
        x = F.relu(s.bn(s.c(x)))         # [6, 8, 21]
        x = s.p(x)
        x = s.se(s.c2(x)) + x
        x = F.max_pool2d(x, (2, 3), stride=(2, 3), padding=(0, 1))
        x = F.adaptive_max_pool2d(x, 1) + F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.cat([x.view(x.size(0), -1), x.flatten(1) * 2, torch.amax(x, -1).squeeze(-1), x.mean((2, 3))], 1)
        return F.log_softmax(s.fc(x), -1)


class Front2d(nn.Module):
    """A waveform [1, 1, L] to a [1, 32, L/32] map for the 2-D networks."""

    def __init__(self, inner):
        super().__init__()
        self.front = nn.Conv2d(1, 32, (1, 32), stride=(1, 32))
        self.inner = inner

    def forward(self, x):
        return self.inner(self.front(x).transpose(1, 2))


CASES = [("TCN", TCN, [1, 400]), ("ResNetTiny", lambda: Front2d(ResNetTiny()), [1, 1, 1280]),
         ("ConvNeXtTiny", lambda: Front2d(ConvNeXtTiny()), [1, 1, 1280]),
         ("WaveNetRef", WaveNetRef, [1, 400]), ("CRNN", CRNN, [1, 400]), ("LSTMHead", LSTMHead, [1, 400]),
         ("Sink1d", Sink1d, [1, 400]), ("Sink2d", Sink2d, [1, 1, 400])]


def main():
    import argparse
    import os
    import sys
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(here)), "models", "train"))
    import export
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin")
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, ctor, shape) in enumerate(CASES):
            torch.manual_seed(i)
            net = ctor()
            export.randomize_bn(net)
            try:
                t = export.export_module(net, os.path.join(tmp, name + ".safetensors"), sample_rate=8000,
                                         input_shape=shape, labels=list("abcde"), bin=args.bin)
                print(f"ok   - {name}: {len(t.graph['nodes'])} nodes, max |probs diff| "
                      f"{t.parity['max_prob_diff']:.2g} on {t.parity['items']} inputs")
            except export.ExportError as e:
                failed += 1
                print(f"FAIL - {name}: {e}")
    print(f"{len(CASES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
