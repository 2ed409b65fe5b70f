#!/usr/bin/python3
"""Writes the stream fixtures (tests/golden/stream/): causal networks, each as a model file
and NAME.golden.safetensors holding one random signal (`input` [N]) and PyTorch's float64
answer for every prefix of it that ends on a hop (`output` [K, labels] raw and `probs`, row k
for samples [0, (k + 1) * hop); NaN rows where the prefix is too short to have a frame). The answer
after n samples of a stream must equal the network run offline over those n samples:
tests/unit/test_stream.c feeds the signal to the engine's stream executor in random pieces
and compares every hop with these rows.

    /usr/bin/python3 tests/golden/stream_make.py

The networks: four of the golden zoo (a TCN with chomp and left pads, a causal CNN + GRU
with skips, a CNN + GRU, a WaveNet whose answer is a mean over time), the shipped spotter's
architecture (nets.CausalTCN, small), and `mix`, which puts every other op the executor
streams in one network (strided conv with fused pool, avg pool, a pad with a value,
dilated depthwise conv, concat, gating, a constant, permute, LayerNorm and linear per frame,
a 2-layer LSTM, the last step).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
sys.path.insert(0, HERE)
import export  # noqa: E402
import fx_export  # noqa: E402
import nets  # noqa: E402
import zoo_blocks  # noqa: E402
import zoo_make  # noqa: E402

N_SAMPLES = 6000
HOP = 50


class Mix(nn.Module):
    input_shape = [1, 800]

    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 8, 12, stride=4)
        self.bn = nn.BatchNorm1d(8)
        self.dw = nn.Conv1d(8, 8, 5, dilation=2, groups=8)
        self.gate = nn.Conv1d(16, 16, 1)
        self.offset = nn.Parameter(torch.randn(16, 1) * 0.1)
        self.norm = nn.LayerNorm(16)
        self.proj = nn.Linear(16, 12)
        self.rnn = nn.LSTM(12, 10, num_layers=2, batch_first=True)
        self.fc = nn.Linear(10, zoo_blocks.LABELS)

    def forward(self, x):  # [N, 1, L]
        x = F.max_pool1d(F.relu(self.bn(self.front(F.pad(x, (8, 0))))), 2)  # [N, 8, L/8]
        x = F.avg_pool1d(x, 3, stride=2)
        y = F.gelu(self.dw(F.pad(x, (8, 0), value=0.25)))
        x = torch.cat([x, y], dim=1)  # [N, 16, T]
        x = x * torch.sigmoid(self.gate(x)) + self.offset
        x = x.permute(0, 2, 1)  # [N, T, 16]
        x = torch.tanh(self.proj(self.norm(x)))
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def small_kws():
    return nets.CausalTCN(zoo_blocks.LABELS, channels=8)


NETS = {
    "tcn": (zoo_blocks.TCN, [1, 400]),
    "causal_gru": (zoo_blocks.CausalSkipGRU, zoo_blocks.CausalSkipGRU.input_shape),
    "cnn_gru": (zoo_blocks.CNNGRU, zoo_blocks.CNNGRU.input_shape),
    "wavenet": (zoo_blocks.WaveNet, zoo_blocks.WaveNet.input_shape),
    "kws": (small_kws, [1, 2000]),
    "mix": (Mix, Mix.input_shape),
}


@torch.no_grad()
def make(name, seed):
    ctor, shape = NETS[name]
    torch.manual_seed(seed)
    net = ctor()
    zoo_make.randomize(net)
    net.eval()
    rel = f"tests/golden/stream/{name}.safetensors"
    labels = [f"{name}-{i}" for i in range(zoo_blocks.LABELS)]
    traced = export.export_module(net, os.path.join(ROOT, rel), sample_rate=8000, input_shape=shape,
                                  labels=labels, name=f"stream-{name}",
                                  quant=zoo_blocks.QUANT.get(name) if name == "tcn" else None)
    ref = fx_export._reference_gm(traced)  # float64, the stored (dequantized) weights
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, N_SAMPLES).astype(np.float32)
    rows = []
    for k in range(N_SAMPLES // HOP):
        n = (k + 1) * HOP
        xin = torch.from_numpy(x[:n].astype(np.float64)).reshape([1] * (len(shape)) + [n])
        try:
            out = ref(xin)
            out = out[0] if isinstance(out, tuple) else out
            rows.append(out.reshape(-1).numpy())
        except RuntimeError:  # too short for a frame
            rows.append(np.full(zoo_blocks.LABELS, np.nan))
    golden = np.stack(rows)
    probs = fx_export.probs_of(torch.from_numpy(golden), traced.last_op).numpy()
    export.write_safetensors(os.path.join(HERE, "stream", f"{name}.golden.safetensors"),
                             {"input": x, "output": golden.astype(np.float32),
                              "probs": probs.astype(np.float32)},
                             {"model": rel, "hop": str(HOP), "last_op": traced.last_op or ""})
    print(f"{name:10s} {len(traced.graph['nodes']):3d} nodes, {int(np.isnan(golden[:, 0]).sum())} "
          f"hops without a frame, parity {traced.parity['max_prob_diff']:.2g}")


def main():
    os.makedirs(os.path.join(HERE, "stream"), exist_ok=True)
    for i, name in enumerate(NETS):
        if len(sys.argv) < 2 or name in sys.argv[1:]:
            make(name, 300 + i)


if __name__ == "__main__":
    main()
