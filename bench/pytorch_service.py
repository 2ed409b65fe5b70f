#!/usr/bin/python3
"""The typical alternative to audioclass, for the server benchmark: a minimal Python HTTP
service around PyTorch. Same models (read from the same .safetensors files), same
test-time windows, same JSON answer shape; torchaudio decodes and resamples.

    /usr/bin/python3 bench/pytorch_service.py --port 8090 --threads 2 \\
        models/m5-speech.safetensors models/envnet-esc50.safetensors

POST /classify?model=NAME with the audio as the body. A ThreadingHTTPServer handles each
connection in a thread; the forward pass holds the GIL only between torch ops, as in
typical Flask/FastAPI deployments without a batching layer.
"""
import argparse
import io
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import torch
import torchaudio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models", "train"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import export  # noqa: E402

MODELS = {}


def classify(name, body):
    net, md = MODELS[name]
    wav, rate = torchaudio.load(io.BytesIO(body))
    mono = wav.mean(0)
    target = int(md["sample_rate"])
    if rate != target:
        mono = torchaudio.functional.resample(mono, rate, target)
    windows = export.policy_windows(mono.numpy(), json.loads(md["policy"]))
    x = torch.from_numpy(windows).reshape([len(windows)] + list(net.input_shape))
    with torch.inference_mode():
        out = net(x)
    probs = export.output_probs(out, net.graph()[-1]["op"]).mean(0)
    labels = json.loads(md["labels"])
    top = torch.topk(probs, 5)
    return {"model": name, "label": labels[int(top.indices[0])],
            "predictions": [{"label": labels[int(i)], "score": float(s)} for s, i in zip(top.values, top.indices)],
            "duration_s": mono.numel() / target}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if url.path != "/classify":
            return self.reply(404, {"error": "not found"})
        name = parse_qs(url.query).get("model", [next(iter(MODELS))])[0]
        if name not in MODELS:
            return self.reply(404, {"error": "unknown model"})
        try:
            t0 = time.perf_counter()
            res = classify(name, body)
            res["timing_ms"] = {"total": (time.perf_counter() - t0) * 1e3}
            self.reply(200, res)
        except Exception as e:  # a bad upload must not kill the service
            self.reply(400, {"error": str(e)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.models:
        net, _, _, md = export.load_model_file(path)
        MODELS[md["name"]] = (net, md)
    print(f"serving {', '.join(MODELS)} on :{args.port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
