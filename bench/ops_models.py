#!/usr/bin/python3
"""Model files at realistic sizes for the blocks beyond M5 and EnvNet, to time each op
against its roofline bound with `audioclass bench --profile` (issue 19: depthwise and 1x1
convolutions, LayerNorm, GELU, GRU/LSTM, residual adds, gated activations).

    /usr/bin/python3 bench/ops_models.py OUT_DIR
    build/audioclass bench --model OUT_DIR/convnext.safetensors --batch 8 --threads 2 --profile

The blocks are the zoo's (tests/golden/zoo_blocks.py, the reference implementations' own
code) with 64-128 channels over 1 s of 16 kHz audio; weights are seeded random (speed does not
depend on them), and each file passes the export's parity check against PyTorch.
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import export  # noqa: E402
import zoo_blocks as zb  # noqa: E402

CLASSES = 12


class ConvNeXt(nn.Module):
    """stem (stride 8) -> LayerNorm -> 2 ConvNeXt blocks (dwconv 7, LayerNorm, Linear 4x, GELU,
    Linear, layer scale, residual add) of 128 channels over 2,000 steps -> mean -> Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(1, 128, 16, stride=8)
        self.norm = nn.LayerNorm(128, eps=1e-6)
        self.blocks = nn.Sequential(zb.ConvNeXtBlock1d(128), zb.ConvNeXtBlock1d(128))
        self.fc = nn.Linear(128, CLASSES)

    def forward(self, x):
        x = self.norm(self.stem(x).transpose(1, 2)).transpose(1, 2)
        return self.fc(self.blocks(x).mean(-1))


class DSCNN(nn.Module):
    """stem (stride 8) -> 3 depthwise-separable blocks (dwconv 9 + BN + ReLU, 1x1 + BN + ReLU)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(1, 64, 16, stride=8)
        self.ds1 = zb.DepthwiseSeparable(False, 64, 128, 9)
        self.ds2 = zb.DepthwiseSeparable(False, 128, 128, 9)
        self.ds3 = zb.DepthwiseSeparable(False, 128, 128, 9)
        self.fc = nn.Linear(128, CLASSES)

    def forward(self, x):
        x = self.ds3(self.ds2(self.ds1(F.relu(self.stem(x)))))
        return self.fc(x.mean(-1))


class WaveNet(nn.Module):
    """stem (stride 8) -> 4 gated residual layers of 64 channels (tanh x sigmoid, 1x1 residual
    and skip convolutions, residual and skip adds) -> ReLU, 1x1, mean."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(1, 64, 16, stride=8)
        self.layers = nn.ModuleList([zb.GatedResidual(64, 64, d, k=3) for d in (1, 2, 4, 8)])
        self.post = nn.Conv1d(64, CLASSES, 1)

    def forward(self, x):
        x = self.stem(x)
        skips = 0
        for layer in self.layers:
            x, s = layer(x)
            skips = skips + s
        return self.post(F.relu(skips)).mean(dim=2)


class CRNN(nn.Module):
    """stem (stride 16) -> 1,000 steps of 64 features -> GRU or LSTM of 128 -> last step -> Linear."""

    def __init__(self, cell):
        super().__init__()
        self.stem = nn.Conv1d(1, 64, 16, stride=16)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(64, 128, batch_first=True)
        self.fc = nn.Linear(128, CLASSES)

    def forward(self, x):
        out, _ = self.rnn(F.relu(self.stem(x)).transpose(1, 2))
        return self.fc(out[:, -1])


MODELS = {"convnext": ConvNeXt, "dscnn": DSCNN, "wavenet": WaveNet,
          "crnn-gru": lambda: CRNN("gru"), "crnn-lstm": lambda: CRNN("lstm")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("names", nargs="*", default=sorted(MODELS))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.names:
        torch.manual_seed(0)
        net = MODELS[name]().eval()
        path = os.path.join(args.out_dir, f"{name}.safetensors")
        traced = export.export_module(net, path, sample_rate=16000, input_shape=[1, 16000],
                                      labels=[f"c{i}" for i in range(CLASSES)], name=name)
        print(f"{path}: parity with PyTorch, max |probs diff| {traced.parity['max_prob_diff']:.2g}")


if __name__ == "__main__":
    main()
