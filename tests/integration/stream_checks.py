#!/usr/bin/python3
"""stream_checks.py CASE URL [ARGS] - one group of GET /stream checks against a running
server, with a real WebSocket client (Debian's python3-websocket). Prints one "ok   - ..." or
"FAIL - ..." line per check (test_websocket.sh counts them) and exits 1 on any failure.

Cases:
  protocol URL EXE MODEL PCM     message types, exactness against `audioclass stream`, random
                                 message sizes, fragments, ping, resampling
  bad URL MODEL                  text and NaN messages (close 1003), oversize (close 1009)
  abrupt URL MODEL PCM           clients that vanish mid-stream, and one that never reads
  concurrent URL EXE MODEL PCM N  N streams at once, each answered exactly
  idle URL MODEL                 a silent client is closed with 1008
  hold URL MODEL FILE            opens a stream, writes FILE when open, waits for the close
                                 (the drain test sends SIGTERM meanwhile); prints its close
"""
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import websocket
from websocket import ABNF

FAILED = 0


def check(desc, cond, detail=""):
    global FAILED
    if cond:
        print(f"ok   - {desc}")
    else:
        FAILED += 1
        print(f"FAIL - {desc}{': ' + str(detail) if detail else ''}")
    sys.stdout.flush()


def ws_url(url, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return url.replace("http://", "ws://") + "/stream" + ("?" + q if q else "")


MODEL = {}  # model= for every connection (set by main)


def connect(url, **params):
    """A stream; a 503 too_many_streams is retried after its Retry-After, as a client should
    (streams of clients that just vanished may still be closing)."""
    for _ in range(100):
        try:
            return websocket.create_connection(ws_url(url, **{**MODEL, **params}), timeout=60)
        except websocket.WebSocketBadStatusException as e:
            if e.status_code != 503:
                raise
            time.sleep(0.1)
    raise RuntimeError("the server stayed at --max-streams for 10 s")


def read_all(ws):
    """Messages until the close; -> (list of dicts, close code)."""
    msgs = []
    while True:
        try:
            op, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError, socket.timeout) as e:
            return msgs, f"no close frame ({type(e).__name__})"
        if op == ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            try:
                ws.send_close()
            except Exception:
                pass
            return msgs, code
        if op == ABNF.OPCODE_TEXT:
            msgs.append(json.loads(data))


def cli_messages(exe, model, pcm_path, *args):
    out = subprocess.run([exe, "stream", "--model", model, *args, pcm_path], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def stream_pcm(url, pcm, sizes, fragment=False, **params):
    ws = connect(url, **params)
    at = 0
    while at < len(pcm):
        n = sizes()
        part = pcm[at:at + n]
        if fragment and len(part) >= 3:  # one message in three frames
            a, b = len(part) // 3, 2 * len(part) // 3
            ws.send_frame(ABNF.create_frame(part[:a], ABNF.OPCODE_BINARY, fin=0))
            ws.send_frame(ABNF.create_frame(part[a:b], ABNF.OPCODE_CONT, fin=0))
            ws.send_frame(ABNF.create_frame(part[b:], ABNF.OPCODE_CONT, fin=1))
        else:
            ws.send_binary(part)
        at += n
    ws.send(json.dumps({"type": "end"}))
    return read_all(ws)


def protocol(url, exe, model, pcm_path):
    pcm = open(pcm_path, "rb").read()
    want = cli_messages(exe, model, pcm_path)
    types = [m["type"] for m in want]
    check("the CLI's messages: start, results, summary", types[0] == "start" and types[-1] == "summary"
          and "result" in types, types[:3])
    rng = random.Random(1)
    got, code = stream_pcm(url, pcm, lambda: len(pcm))
    check("one message: close 1000 after the summary", code == 1000, code)
    check("one message: the same messages as `audioclass stream`", got == want,
          f"{len(got)} vs {len(want)} messages")
    start = got[0] if got else {}
    check("start names the model, mode, rates and hop", all(k in start for k in
          ("model", "mode", "rate", "sample_rate", "hop_s", "threshold")), start)
    res = [m for m in got if m["type"] == "result"]
    check("results carry t_start_s, t_end_s, label, score, predictions",
          res and all(set(m) >= {"t_start_s", "t_end_s", "label", "score", "predictions"} for m in res))
    check("results come every hop, in order", all(abs(b["t_end_s"] - a["t_end_s"] - start.get("hop_s", 0)) < 1e-3
                                                  for a, b in zip(res, res[1:])))
    got, code = stream_pcm(url, pcm, lambda: rng.choice([1, 2, 3, 17, 160, 999, 4096, 20000]))
    check("random message sizes (1 byte to 20 kB, odd splits of samples): identical messages",
          got == want and code == 1000, f"{len(got)} vs {len(want)}, close {code}")
    got, code = stream_pcm(url, pcm, lambda: 3001, fragment=True)
    check("fragmented messages (three frames each): identical messages", got == want and code == 1000)
    # ping mid-stream: answered with the same payload
    ws = connect(url)
    ws.send_binary(pcm[:1000])
    ws.ping(b"are-you-there")
    pong = None
    deadline = time.time() + 30
    while time.time() < deadline:
        op, data = ws.recv_data(control_frame=True)
        if op == ABNF.OPCODE_PONG:
            pong = data
            break
    check("ping is answered with a pong carrying its payload", pong == b"are-you-there", pong)
    ws.send(json.dumps({"type": "end"}))
    msgs, code = read_all(ws)
    check("the stream goes on after a ping", code == 1000 and msgs[-1]["type"] == "summary")
    # resampling: 16 kHz input, state kept across messages
    x = np.frombuffer(pcm, "<i2").astype(np.float32)
    up = np.repeat(x, 2).astype("<i2").tobytes()  # any 16 kHz signal will do
    p16 = pcm_path + ".16k"
    with open(p16, "wb") as f:
        f.write(up)
    want16 = cli_messages(exe, model, p16, "--rate", "16000")
    got, code = stream_pcm(url, up, lambda: rng.choice([7, 640, 3333]), rate=16000)
    check("rate=16000: resampled with state kept across messages, same as the CLI", got == want16 and code == 1000)
    # an event where there is a word, with the params of the query
    got, code = stream_pcm(url, pcm, lambda: 4000, hop_ms=50, top_k=1, threshold=0.5)
    res = [m for m in got if m["type"] == "result"]
    check("hop_ms and top_k are honoured", res and abs(res[1]["t_end_s"] - res[0]["t_end_s"] - 0.05) < 1e-3
          and all(len(m["predictions"]) == 1 for m in res))
    ev = [m for m in got if m["type"] == "event"]
    summ = got[-1] if got else {}
    check("events are reported, and listed again in the summary", ev and summ.get("events") == ev, ev)
    check("an event has label, t_start_s, t_end_s, score", ev and set(ev[0]) >= {"label", "t_start_s", "t_end_s",
                                                                                "score"})


def bad(url, model):
    ws = connect(url, model=model)
    ws.send("hello")
    msgs, code = read_all(ws)
    errs = [m for m in msgs if m["type"] == "error"]
    check("a text message other than end: an error message, then close 1003",
          code == 1003 and errs and errs[0]["error"]["code"], (code, msgs[-1:]))
    ws = connect(url, model=model, format="f32le")
    ws.send_binary(np.array([0.1, float("nan"), 0.2], "<f4").tobytes())
    msgs, code = read_all(ws)
    errs = [m for m in msgs if m["type"] == "error"]
    check("a NaN sample (f32le): error naming the sample, close 1003",
          code == 1003 and errs and "sample 1" in errs[0]["error"]["message"], (code, errs))
    ws = connect(url, model=model)
    ws.send_binary(b"\0" * 8192)  # the server runs with --max-stream-message-bytes 4096
    msgs, code = read_all(ws)
    check("a message over the size limit: close 1009", code == 1009, code)
    ws = connect(url, model=model)
    ws.send(json.dumps({"type": "end"}))
    msgs, code = read_all(ws)
    check("end with no audio: a summary of 0 samples, close 1000",
          code == 1000 and msgs[-1]["type"] == "summary" and msgs[-1]["samples"] == 0, msgs[-1:])


def abrupt(url, model, pcm_path):
    pcm = open(pcm_path, "rb").read()
    for i in range(20):  # gone mid-stream, with jobs queued or running
        ws = connect(url, model=model, hop_ms=10)
        ws.send_binary(pcm)
        if i % 2:
            ws.send(json.dumps({"type": "end"}))
        ws.sock.shutdown(socket.SHUT_RDWR)
        ws.sock.close()
    for _ in range(5):  # a client that closes (a close frame) without {"type":"end"}
        ws = connect(url, model=model)
        ws.send_binary(pcm)
        ws.close()
    # a client that sends much and never reads: its replies pile up until it is dropped
    ws = connect(url, model=model, hop_ms=1)
    dropped = False
    try:
        for _ in range(200):
            ws.send_binary(pcm)
    except (ConnectionError, BrokenPipeError, websocket.WebSocketException, socket.timeout):
        dropped = True
    if not dropped:  # everything went out: the server must now drop it rather than buffer
        ws.sock.settimeout(60)
        try:
            time.sleep(2)
            while ws.sock.recv(1 << 20):
                pass
            dropped = True  # EOF: the server closed it
        except (ConnectionError, socket.timeout):
            dropped = True
    check("a client that never reads its replies is dropped", dropped)


def concurrent(url, exe, model, pcm_path, n):
    pcm = open(pcm_path, "rb").read()
    want = cli_messages(exe, model, pcm_path)
    results = [None] * n

    def one(i):
        rng = random.Random(i)
        try:
            results[i] = stream_pcm(url, pcm, lambda: rng.choice([256, 1000, 3000]))
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = ([], repr(e))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    exact = sum(1 for msgs, code in results if msgs == want and code == 1000)
    check(f"{n} concurrent streams: every one closed 1000 with exactly the CLI's messages", exact == n,
          f"{exact}/{n}; first failure: {next((r[1] for r in results if r[1] != 1000), '')}")


def idle(url, model):
    ws = connect(url, model=model)
    t0 = time.time()
    msgs, code = read_all(ws)
    check("a stream that sends nothing is closed with 1008 after the idle timeout", code == 1008,
          (code, round(time.time() - t0, 1)))


def hold(url, model, flag):
    ws = connect(url, model=model)
    ws.send_binary(b"\0" * 16000)
    with open(flag, "w") as f:
        f.write("open\n")
    msgs, code = read_all(ws)
    print(json.dumps({"close": code, "last": msgs[-1]["type"] if msgs else None}))


def main():
    case, args = sys.argv[1], sys.argv[2:]
    if os.environ.get("STREAM_MODEL"):
        MODEL["model"] = os.environ["STREAM_MODEL"]
    if case == "protocol":
        protocol(*args)
    elif case == "bad":
        bad(*args)
    elif case == "abrupt":
        abrupt(*args)
    elif case == "concurrent":
        concurrent(args[0], args[1], args[2], args[3], int(args[4]))
    elif case == "idle":
        idle(*args)
    elif case == "hold":
        hold(*args)
        return 0
    else:
        print(f"unknown case {case}", file=sys.stderr)
        return 2
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
