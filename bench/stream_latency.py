#!/usr/bin/python3
"""Live streams against a running server: N WebSocket streams, each sending a hop of PCM
every hop in real time (as microphones would), and the latency of each result, from the
moment the message that completes its hop was sent to the moment its result arrives.

    /usr/bin/python3 bench/stream_latency.py --url http://127.0.0.1:8080 --model kws-speech \\
        --streams 1,20,50 --seconds 10 [--hop-ms 50] [--input examples/yes.flac]

Prints one JSON line per stream count: results received (every hop of every stream must
come back), latency p50/p99/max in ms as the client sees it, the server's own share (from
its audioclass_stream_piece_seconds histogram: a piece's arrival to its results queued,
as bucket bounds), and the server's CPU seconds per second of audio (process_cpu_seconds_total). The client is Python (one thread per stream,
python3-websocket); on a 2-core machine it shares the cores with the server, so the
figures are an upper bound of what the server alone adds.
"""
import argparse
import json
import subprocess
import tempfile
import threading
import time
import urllib.request

import numpy as np
import websocket


def metric(url, name):
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def histogram(url, name):
    """{le: cumulative count} of a Prometheus histogram on /metrics."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    return out


def quantile_bound(before, after, q):
    """The smallest bucket bound under which a fraction q of the new observations fall."""
    total = after[float("inf")] - before.get(float("inf"), 0)
    for le in sorted(after):
        if total and after[le] - before.get(le, 0) >= q * total:
            return le
    return None


def one_stream(url, model, pcm, hop_bytes, hop_s, start, out):
    ws = websocket.create_connection(url.replace("http://", "ws://") + f"/stream?model={model}&hop_ms={hop_s * 1e3}",
                                     timeout=60)
    start.wait()  # every stream connected: all start together, in step
    t0 = time.monotonic() + 0.2
    sent_at = {}
    lat = []

    def reader():
        while True:
            try:
                op, data = ws.recv_data()
            except Exception:  # noqa: BLE001 - the close ends the reader
                return
            if op == 8:
                return
            m = json.loads(data)
            if m["type"] == "result":
                k = round(m["t_end_s"] / hop_s)
                if k in sent_at:
                    lat.append(time.monotonic() - sent_at[k])
            elif m["type"] == "summary":
                return
    th = threading.Thread(target=reader)
    th.start()
    for k in range(len(pcm) // hop_bytes):
        wait = t0 + k * hop_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sent_at[k + 1] = time.monotonic()
        ws.send_binary(pcm[k * hop_bytes:(k + 1) * hop_bytes])
    ws.send(json.dumps({"type": "end"}))
    th.join()
    ws.close()
    out.append((lat, len(pcm) // hop_bytes))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--streams", default="1,20,50")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--hop-ms", type=float, default=50)
    ap.add_argument("--rate", type=int, default=8000, help="the model's sample rate (PCM is sent at it)")
    ap.add_argument("--input", default="examples/yes.flac")
    ap.add_argument("--bin", default="build/audioclass")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([args.bin, "decode", "--rate", str(args.rate), "--out", d + "/x", args.input], check=True,
                       capture_output=True)
        x = np.fromfile(d + "/x.f32", np.float32)
    n = int(args.seconds * args.rate)
    x = np.resize(x, n)  # the clip looped
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    hop_s = args.hop_ms / 1e3
    hop_bytes = int(args.rate * hop_s) * 2
    for count in (int(c) for c in args.streams.split(",")):
        out = []
        cpu0 = metric(args.url, "process_cpu_seconds_total")
        h0 = histogram(args.url, "audioclass_stream_piece_seconds")
        start = threading.Barrier(count)
        ts = [threading.Thread(target=one_stream, args=(args.url, args.model, pcm, hop_bytes, hop_s, start, out))
              for _ in range(count)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        cpu = metric(args.url, "process_cpu_seconds_total") - cpu0
        h1 = histogram(args.url, "audioclass_stream_piece_seconds")
        server = {f"p{int(q * 100)}_le_ms": (lambda b: b * 1e3 if b is not None else None)(quantile_bound(h0, h1, q))
                  for q in (0.5, 0.99)}
        lat = np.array([v for ls, _ in out for v in ls]) * 1e3
        expected = sum(k for _, k in out)
        print(json.dumps({"streams": count, "hop_ms": args.hop_ms, "seconds": args.seconds,
                          "results": int(len(lat)), "expected": expected,
                          "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                                         "p99": round(float(np.percentile(lat, 99)), 2),
                                         "max": round(float(lat.max()), 2)} if len(lat) else None,
                          "server_piece_latency": server,
                          "server_cpu_s_per_audio_s": round(cpu / (count * args.seconds), 5)}), flush=True)


if __name__ == "__main__":
    main()
