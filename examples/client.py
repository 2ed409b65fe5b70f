#!/usr/bin/env python3
"""A client for the audioclass HTTP API, standard library only.

    python3 examples/client.py classify examples/yes.flac --model m5-speech --top-k 3
    python3 examples/client.py models
    python3 examples/client.py filters envnet-esc50 envnet.svg --layer conv2 --mode probe

The server is $AUDIOCLASS_URL (default http://localhost:8080); --url overrides it. With
$AUDIOCLASS_API_KEY set, it is sent as `Authorization: Bearer KEY`. Exits 1 with the
server's error message when a request fails.
"""
import argparse
import json
import os
import sys
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
    args = ap.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
