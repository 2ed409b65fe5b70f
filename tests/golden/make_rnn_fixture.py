#!/usr/bin/python3
"""Writes tests/golden/rnn_ops.safetensors (not *.golden.safetensors: those are whole-model
fixtures that test_golden runs): random nn.GRU / nn.LSTM layers (batch-first),
random inputs and PyTorch's output sequences, for test_ops_graph's comparison of ac_rnn with
PyTorch. Weights and inputs are drawn in float32 and stored as they are; PyTorch runs in
float64 on exactly those values and its output is rounded to float32 once, so the fixture
holds the true answer, not float32 PyTorch's own rounding.

Tensors per case NAME: NAME.x [n, T, input_size], NAME.y [n, T, hidden * dirs] and the
module's state_dict under NAME. (weight_ih_l0, weight_hh_l0_reverse, bias_ih_l1, ...).
Metadata "cases": a JSON list of {name, cell, input_size, hidden, layers, bidirectional,
bias, n, T}.

    /usr/bin/python3 tests/golden/make_rnn_fixture.py
"""
import json
import os
import struct

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "rnn_ops.safetensors")

# name, cell, input_size, hidden, layers, bidirectional, bias, n, T
CASES = [
    ("gru_2l_bi", "gru", 5, 8, 2, True, True, 3, 7),
    ("lstm_2l_bi", "lstm", 5, 8, 2, True, True, 3, 7),
    ("gru_1l_nobias", "gru", 9, 6, 1, False, False, 2, 11),
    ("lstm_1l_nobias_t1", "lstm", 7, 5, 1, False, False, 4, 1),
    ("gru_3l_uni", "gru", 3, 16, 3, False, True, 2, 13),
    ("lstm_1l_bi_long", "lstm", 12, 20, 1, True, True, 2, 40),
]


def write_safetensors(path, tensors, metadata):
    """The safetensors layout: u64 header length, JSON header, then the data back to back."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(13)
    tensors, meta = {}, []
    for name, cell, inp, hid, layers, bi, bias, n, T in CASES:
        cls = nn.GRU if cell == "gru" else nn.LSTM
        rnn = cls(inp, hid, num_layers=layers, bidirectional=bi, bias=bias, batch_first=True)
        # float32 values (the default init range, a little wider so the gates saturate too)
        with torch.no_grad():
            for p in rnn.parameters():
                p.mul_(2.0)
        x = torch.randn(n, T, inp, dtype=torch.float32)
        ref = rnn.double()
        with torch.no_grad():
            y = ref(x.double())[0].float()
        for k, v in ref.state_dict().items():
            tensors[f"{name}.{k}"] = v.float()
        tensors[f"{name}.x"] = x
        tensors[f"{name}.y"] = y
        meta.append({"name": name, "cell": cell, "input_size": inp, "hidden": hid, "layers": layers,
                     "bidirectional": bi, "bias": bias, "n": n, "T": T})
    write_safetensors(OUT, tensors, {"cases": json.dumps(meta), "made_by": "tests/golden/make_rnn_fixture.py",
                                     "torch": torch.__version__})
    print(f"{OUT}: {os.path.getsize(OUT)} bytes, {len(CASES)} cases")


if __name__ == "__main__":
    main()
