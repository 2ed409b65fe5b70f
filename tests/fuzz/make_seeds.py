#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of fuzz_http and fuzz_params
(tests/fuzz/corpus/http, tests/fuzz/corpus/params) from the audio seeds. Run from anywhere;
the layouts are described at the top of fuzz_http.c and fuzz_params.c."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
AUDIO = os.path.join(HERE, "corpus", "audio")
METHODS = ["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"]
CL, KEY, CHUNKED = 0x08, 0x10, 0x20


def audio(name):
    with open(os.path.join(AUDIO, name), "rb") as f:
        return f.read()


def req(method, target, headers=(), body=b"", flags=CL | KEY):
    m = 7 if method == "RAW" else METHODS.index(method)
    out = bytes([m | flags]) + target.encode() + b"\n"
    for h in headers:
        out += h.encode() + b"\n"
    return out + b"\n" + body


def multipart(fields, boundary="XyZzy"):
    out = b""
    for name, filename, data in fields:
        out += b"--" + boundary.encode() + b"\r\n"
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        out += ("Content-Disposition: %s\r\n" % disp).encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


seeds = {}
for a in ["seed.wav16", "seed.flac", "seed.ogg", "seed.mp3", "seed.opus", "seed.wav8", "empty.wav16"]:
    seeds["classify_" + a] = req("POST", "/classify?model=zoo1d&top_k=3", ["Content-Type: audio/wav"], audio(a))
seeds["classify_zoo2d_windows"] = req("POST", "/classify?model=zoo2d&windows=1",
                                      ["Content-Type: application/octet-stream"], audio("seed.wav16"))
seeds["classify_chunked"] = req("POST", "/classify?model=zoo1d", ["Content-Type: audio/flac"],
                                audio("seed.flac"), flags=KEY | CHUNKED)
seeds["classify_nokey"] = req("POST", "/classify?model=zoo1d", ["Content-Type: audio/wav"], audio("seed.wav16"), flags=CL)
seeds["classify_bearer"] = req("POST", "/classify?model=zoo1d", ["Authorization: Bearer fuzz-key-1",
                               "Content-Type: audio/wav", "X-Request-Id: abc-1"], audio("seed.wav16"), flags=CL)
seeds["multipart"] = req("POST", "/classify?model=zoo1d",
                         ["Content-Type: multipart/form-data; boundary=XyZzy"],
                         multipart([("note", None, b"hello"), ("file", "a.wav", audio("seed.wav16"))]))
seeds["multipart_two_files"] = req("POST", "/classify?model=zoo1d",
                                   ["Content-Type: multipart/form-data; boundary=XyZzy"],
                                   multipart([("file", "a.flac", audio("seed.flac")), ("file", "b.wav", audio("seed.wav8"))]))
seeds["multipart_urlencoded"] = req("POST", "/classify?model=zoo1d",
                                    ["Content-Type: application/x-www-form-urlencoded"], b"file=abc&x=%41")
seeds["classify_bad_params"] = req("POST", "/classify?model=zoo9&top_k=-1&windows=2", ["Content-Type: text/plain"], b"x")
for path in ["/healthz", "/readyz", "/models", "/models/zoo2d", "/metrics", "/openapi.json",
             "/filters?model=zoo1d", "/filters?model=zoo1d&mode=probe&format=svg&n=16", "/nope"]:
    seeds["get" + path.replace("/", "_").replace("?", "_").replace("&", "_").replace("=", "")] = req("GET", path)
seeds["head_models"] = req("HEAD", "/models")
seeds["options_classify"] = req("OPTIONS", "/classify", ["Origin: http://x", "Access-Control-Request-Method: POST"])
seeds["delete_models"] = req("DELETE", "/models/zoo1d")
seeds["raw_pipelined"] = req("RAW", "", body=b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /models HTTP/1.1\r\nHost: x\r\nX-API-Key: fuzz-key-1\r\n\r\n")[0:1] + \
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /models HTTP/1.1\r\nHost: x\r\nX-API-Key: fuzz-key-1\r\n\r\n"
seeds["raw_http10"] = bytes([7]) + b"GET /readyz HTTP/1.0\r\n\r\n"
seeds["raw_expect"] = bytes([7]) + (b"POST /classify?model=zoo1d HTTP/1.1\r\nHost: x\r\nX-API-Key: fuzz-key-1\r\n"
                                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(audio("seed.wav8"))) + audio("seed.wav8")

out = os.path.join(HERE, "corpus", "http")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

params = {
    "ints": b"5\x00audio/wav\x00req-1\x00Bearer s3cret-key",
    "neg": b"-3\x00multipart/form-data; boundary=x\x00\x00other-key",
    "spaces": b" 7\x00 Audio/X-Wav ; rate=8000\x00a b\x00bearer   s3cret-key",
    "plus": b"+12\x00application/octet-stream\x00" + b"x" * 65 + b"\x00Basic abc",
    "big": b"99999999999999999999\x00text/plain\x00id:1.2-3\x00s3cret-ke",
}
out = os.path.join(HERE, "corpus", "params")
os.makedirs(out, exist_ok=True)
for name, data in params.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
