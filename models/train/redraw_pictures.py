#!/usr/bin/python3
"""Draw a model card's pictures again with the current common.py, from the pictures themselves.

finalize.py draws NAME-confusion.svg and NAME-training.svg from a checkpoint. When the
drawing code changes and the checkpoint is not at hand, this reads the data back out of the
old pictures (curve points and axis labels; confusion counts from the cell texts, or from
the cell shades and the card's per-class clip counts) and draws them again:

    /usr/bin/python3 models/train/redraw_pictures.py models/m5-speech
    /usr/bin/python3 models/train/redraw_pictures.py models/envnet-esc50

The curves come back to the 0.1 px the old SVG kept; counts come back exactly (a shade has
255 steps, a class has at most a few hundred clips).
"""
import html
import re
import sys

import numpy as np

import common


def attrs(tag):
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


def read_curves(path):
    s = open(path).read()
    title = html.unescape(re.search(r'font-size="16">([^<]*)</text>', s).group(1))
    frame = attrs(re.search(r'<rect x="[^"]*" y="[^"]*" width="[^"]*" height="[^"]*" fill="none"[^>]*>', s).group(0))
    l, t, pw, ph = (float(frame[k]) for k in ("x", "y", "width", "height"))
    lmax = float(re.search(r'text-anchor="end" font-size="11">([\d.]+)</text>', s).group(1))
    ticks = [(float(x), int(k)) for x, k in re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" font-size="11">(\d+)</text>', s)]
    (x0, k0), (x1, k1) = ticks[0], ticks[-1]
    per_epoch = (x1 - x0) / (k1 - k0)
    colours = {c: k for k, c, _ in common.CURVES}
    history = {}
    for m in re.finditer(r'<polyline fill="none" stroke="(#[0-9a-f]+)" stroke-width="2" points="([^"]+)"', s):
        key = colours[m.group(1)]
        for p in m.group(2).split():
            x, y = map(float, p.split(","))
            e = round((x - l) / per_epoch)
            v = 1 - (y - t) / ph
            history.setdefault(e, {"epoch": e})[key] = v * lmax if key == "train_loss" else v
    return title, [history[e] for e in sorted(history)]


def card_clip_counts(card):
    """{label: clips} from the card's per-class table (| class | clips | accuracy |...)."""
    counts = {}
    for line in open(card):
        m = re.match(r"\|\s*([^|]+?)\s*\|\s*(\d+)\s*\|\s*[\d.]+%", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def read_confusion(path, card):
    s = open(path).read()
    title = html.unescape(re.search(r'font-size="16">([^<]*)</text>', s).group(1))
    labels = [html.unescape(x) for x in re.findall(r'text-anchor="end" font-size="[\d.]+">([^<]*)</text>', s)]
    n = len(labels)
    cells = [attrs(m.group(0)) for m in re.finditer(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="rgb[^"]*"/>', s)]
    texts = {(float(a), float(b)): int(v) for a, b, v in
             re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="middle" font-size="\d+" fill="(?:white|black)">(\d+)</text>', s)}
    size = float(cells[0]["width"])
    # the grid origin: the frame rectangle drawn last
    frame = attrs(re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="none" stroke="black"/>', s)[-1])
    left, top = float(frame["x"]), float(frame["y"])
    totals = card_clip_counts(card)
    cm = np.zeros((n, n), dtype=np.int64)
    for c in cells:
        x, y = float(c["x"]), float(c["y"])
        i, j = round((y - top) / size), round((x - left) / size)
        shade = int(re.findall(r"\d+", c["fill"])[0 if i == j else 1])
        counted = [v for (tx, ty), v in texts.items() if abs(tx - (x + size / 2)) < 0.5 and y < ty < y + size]
        cm[i, j] = counted[0] if counted else round((1 - shade / 255) * totals[labels[i]])
    return title, cm, labels


def main():
    base = sys.argv[1]
    title, history = read_curves(base + "-training.svg")
    common.svg_curves(history, base + "-training.svg", title)
    title, cm, labels = read_confusion(base + "-confusion.svg", base + ".md")
    common.svg_confusion(cm, labels, base + "-confusion.svg", title)
    print(f"{base}: {len(history)} epochs, {cm.sum()} clips in the confusion matrix "
          f"(accuracy {np.trace(cm) / cm.sum():.3f})")


if __name__ == "__main__":
    main()
