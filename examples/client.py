#!/usr/bin/env python3
"""A client for the audioclass HTTP API, standard library only.

    python3 examples/client.py classify examples/yes.flac --model m5-speech --top-k 3
    python3 examples/client.py models
    python3 examples/client.py filters envnet-esc50 envnet.svg --layer conv2 --mode probe
    python3 examples/client.py stream --model kws-speech --rate 16000 < speech.raw

`stream` sends raw PCM (16-bit little-endian mono, or 32-bit floats with --format f32le; a
file or standard input, e.g. a microphone through `arecord -f S16_LE -r 16000 -c 1 -t raw`)
to GET /stream over a
WebSocket and prints each event (a keyword heard, and when) as it comes, then the summary;
--results prints every hop's answer too, --realtime paces a file at 1x.

The server is $AUDIOCLASS_URL (default http://localhost:8080); --url overrides it. With
$AUDIOCLASS_API_KEY set, it is sent as `Authorization: Bearer KEY`. Exits 1 with the
server's error message when a request fails.
"""
import argparse
import base64
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def request(url, path, params=None, body=None, content_type=None):
    """One HTTP request; returns the response body (bytes) or raises SystemExit with the error."""
    full = url.rstrip("/") + path
    if params:
        full += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    key = os.environ.get("AUDIOCLASS_API_KEY")
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(full, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=600) as r:  # a first probe of a big model takes a while
            return r.read()
    except urllib.error.HTTPError as e:
        try:
            err = json.load(e)["error"]
            sys.exit(f"{path}: HTTP {e.code} {err['code']}: {err['message']}")
        except (ValueError, KeyError):
            sys.exit(f"{path}: HTTP {e.code}")
    except urllib.error.URLError as e:
        sys.exit(f"cannot reach {url}: {e.reason} (is `make run` running?)")


def classify(args):
    with open(args.file, "rb") as f:
        audio = f.read()
    # The file is sent as it is: the server reads WAV, FLAC, Ogg, MP3, WebM, M4A ... itself.
    r = json.loads(request(args.url, "/classify", {"model": args.model, "top_k": args.top_k},
                           body=audio, content_type="application/octet-stream"))
    print(f"{args.file}: {r['label']} ({r['score']:.3f})  [{r['model']}, {r['format']}, "
          f"{r['duration_s']} s, {r['windows']} windows]")
    for p in r["predictions"]:
        print(f"  {p['score']:.3f}  {p['label']}")


def models(args):
    for m in json.loads(request(args.url, "/models"))["models"]:
        print(f"{m['name']}: {m['arch']}, {m['n_labels']} labels, {m['sample_rate']} Hz, "
              f"{m['window_s']} s windows, {m['parameters']:,} parameters")


def filters(args):
    svg = request(args.url, "/filters", {"model": args.model, "layer": args.layer, "mode": args.mode,
                                         "format": "svg"})
    with open(args.out, "wb") as f:
        f.write(svg)
    print(f"wrote {args.out} ({len(svg):,} bytes)")


# --- a minimal WebSocket client (RFC 6455), so that this file needs nothing but Python ---

def ws_connect(url, path, params):
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=600)
    key = base64.b64encode(os.urandom(16)).decode()
    target = path + "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    head = [f"GET {target} HTTP/1.1", f"Host: {u.hostname}:{u.port or 80}", "Upgrade: websocket",
            "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if os.environ.get("AUDIOCLASS_API_KEY"):
        head.append("Authorization: Bearer " + os.environ["AUDIOCLASS_API_KEY"])
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit(f"{path}: the server closed the connection during the handshake")
        reply += chunk
    head, rest = reply.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n")[0].decode()
    if " 101 " not in status:  # refused before the upgrade: an ordinary JSON error
        try:
            body = rest + sock.recv(65536)
            err = json.loads(body)["error"]
            sys.exit(f"{path}: {status.split(' ', 1)[1]}: {err['code']}: {err['message']}")
        except (ValueError, KeyError):
            sys.exit(f"{path}: {status}")
    return sock, rest


def ws_send(sock, opcode, payload):
    mask = os.urandom(4)  # clients mask every frame
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                     bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                     bytes([0x80 | 127]) + struct.pack(">Q", n))
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(head + mask + body)


def ws_messages(sock, buf):
    """Yields (opcode, payload) of each frame from the server (unmasked, unfragmented)."""
    def need(k):
        nonlocal buf
        while len(buf) < k:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        out, buf = buf[:k], buf[k:]
        return out
    while True:
        b0, b1 = need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", need(8))[0]
        yield b0 & 0x0F, need(n)


def stream(args):
    src = open(args.file, "rb") if args.file != "-" else sys.stdin.buffer
    sock, rest = ws_connect(args.url, "/stream", {"model": args.model, "rate": args.rate, "format": args.format,
                                                  "hop_ms": args.hop_ms, "threshold": args.threshold})
    width = 2 if args.format == "s16le" else 4
    chunk = int(args.rate * 0.1) * width  # 100 ms of samples per message
    lock = threading.Lock()

    def send():
        t0, sent = time.time(), 0
        while True:
            data = src.read(chunk)
            if not data:
                break
            if args.realtime:
                time.sleep(max(0.0, t0 + sent / (width * args.rate) - time.time()))
            with lock:
                ws_send(sock, 0x2, data)
            sent += len(data)
        with lock:
            ws_send(sock, 0x1, json.dumps({"type": "end"}).encode())
    threading.Thread(target=send, daemon=True).start()
    code = None
    for op, payload in ws_messages(sock, rest):
        if op == 0x8:  # close: the code, then our close back
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            with lock:
                ws_send(sock, 0x8, payload[:2])
            break
        if op == 0x9:  # ping
            with lock:
                ws_send(sock, 0xA, payload)
            continue
        m = json.loads(payload)
        if m["type"] == "start":
            print(f"streaming to {m['model']} ({m['mode']}, an answer every {m['hop_s']} s, "
                  f"events above {m['threshold']})", flush=True)
        elif m["type"] == "event":
            print(f"EVENT {m['label']:12s} {m['t_start_s']:8.3f}-{m['t_end_s']:.3f} s  score {m['score']:.3f}",
                  flush=True)
        elif m["type"] == "result" and args.results:
            print(f"  {m['t_end_s']:8.3f} s  {m['label']} ({m['score']:.3f})", flush=True)
        elif m["type"] == "summary":
            n = len(m["events"])
            print(f"summary: {m['duration_s']} s of audio, {m['results']} answers, {n} event{'' if n == 1 else 's'}")
        elif m["type"] == "error":
            print(f"error: {m['error']['code']}: {m['error']['message']}", file=sys.stderr)
    if code != 1000:
        sys.exit(f"/stream: closed with code {code}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default=os.environ.get("AUDIOCLASS_URL", "http://localhost:8080"))
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classify", help="classify an audio file")
    c.add_argument("file")
    c.add_argument("--model", help="model name (GET /models); may be left out when one is served")
    c.add_argument("--top-k", type=int, default=3)
    c.set_defaults(run=classify)
    sub.add_parser("models", help="list the served models").set_defaults(run=models)
    f = sub.add_parser("filters", help="save the picture of a layer's learned filters (SVG)")
    f.add_argument("model")
    f.add_argument("out")
    f.add_argument("--layer")
    f.add_argument("--mode", choices=["kernel", "probe"])
    f.set_defaults(run=filters)
    s = sub.add_parser("stream", help="live classification of raw 16-bit PCM over a WebSocket")
    s.add_argument("file", nargs="?", default="-", help="raw mono PCM (default: standard input)")
    s.add_argument("--format", choices=["s16le", "f32le"], default="s16le",
                   help="16-bit integers (default) or 32-bit floats, little-endian")
    s.add_argument("--model", help="model name (GET /models); may be left out when one is served")
    s.add_argument("--rate", type=int, default=16000, help="the PCM's sample rate (default 16000)")
    s.add_argument("--hop-ms", type=float, help="time between answers (default: the model's)")
    s.add_argument("--threshold", type=float, help="event threshold (default: the model's)")
    s.add_argument("--results", action="store_true", help="print every answer, not only events")
    s.add_argument("--realtime", action="store_true", help="send a file at 1x speed")
    s.set_defaults(run=stream)
    args = ap.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
