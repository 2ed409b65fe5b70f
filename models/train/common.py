"""Shared training helpers: progress line, checkpoints, weight averaging, metrics, SVG pictures (no matplotlib)."""
import copy
import html
import json
import os
import sys
import time

import numpy as np
import torch


class Progress:
    """One stderr line updated in place (\\r); at most ~2 updates a second."""

    def __init__(self, total, prefix):
        self.total, self.prefix, self.t0, self.last = total, prefix, time.time(), 0

    def update(self, done, **info):
        now = time.time()
        if now - self.last < 0.5 and done < self.total:
            return
        self.last = now
        el = now - self.t0
        eta = el / max(done, 1) * (self.total - done)
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        sys.stderr.write(f"\r{self.prefix} {done}/{self.total} {el:.0f}s eta {eta:.0f}s {extra}   ")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


class WeightAverage:
    """Exponential moving average of a network's weights and batch-norm statistics, kept in
    a second copy of the network that is evaluated and shipped; the raw network keeps
    training. Checkpoints store both (see model_states()). Per optimiser step the average
    keeps min(decay, (1 + n) / (10 + n)) of itself after n updates, so the first epochs are
    not dominated by the random initial weights (as tf.train.ExponentialMovingAverage)."""

    def __init__(self, net, decay):
        self.decay, self.net, self.updates = decay, copy.deepcopy(net), 0

    @torch.no_grad()
    def update(self, net):
        keep = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for avg, cur in zip(self.net.state_dict().values(), net.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.mul_(keep).add_(cur, alpha=1 - keep)
            else:
                avg.copy_(cur)


def model_states(net, average):
    """Checkpoint entries: "model" is what finalize.py exports (the average when there is
    one), "model_raw" the network being trained (needed to resume)."""
    if average is None:
        return {"model": net.state_dict()}
    return {"model": average.net.state_dict(), "model_raw": net.state_dict(),
            "weight_average_decay": average.decay, "weight_average_updates": average.updates}


def resume_or_start(out_dir, net, opt, resume, init=None, average=None):
    """Loads out_dir/last.pt into net and opt (and the weight average) when resuming;
    otherwise, with `init` (a model file), starts from that file's weights (fine-tuning a
    shipped model). Returns (checkpoint path, first epoch, history, commands so far with
    this run's command line appended)."""
    ck_path = os.path.join(out_dir, "last.pt")
    start, history, commands = 1, [], []
    if init and not (resume and os.path.exists(ck_path)):
        import export  # export imports nets and torch; only needed here
        src, _, _, md = export.load_model_file(init)
        net.load_state_dict(src.state_dict())
        if average is not None:
            average.net.load_state_dict(src.state_dict())
        commands.append(f"# initialised from {init}: {md.get('training', '')}")
        print(f"initialised from {init}", file=sys.stderr)
    if resume and os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location="cpu")
        net.load_state_dict(ck.get("model_raw", ck["model"]))
        if average is not None:
            average.net.load_state_dict(ck["model"])
            average.updates = ck.get("weight_average_updates", 0)
        opt.load_state_dict(ck["optimizer"])
        start, history, commands = ck["epoch"] + 1, ck["history"], ck.get("commands", [])
        print(f"resumed from {ck_path} at epoch {ck['epoch']}", file=sys.stderr)
    commands.append(" ".join([sys.executable] + sys.argv))
    return ck_path, start, history, commands


def set_lr(opt, args, step, steps_per_epoch, total):
    """The trainers' schedule: linear warm-up over args.warmup epochs to args.lr, then a
    cosine to 0 at step `total`. Sets it on every parameter group; returns it."""
    warm = args.warmup * steps_per_epoch
    lr = args.lr * (step + 1) / warm if step < warm else \
        args.lr * 0.5 * (1 + np.cos(np.pi * (step - warm) / max(total - warm, 1)))
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


def confusion(y_true, y_pred, n):
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def per_class(cm, labels):
    acc = {}
    for i, l in enumerate(labels):
        tot = cm[i].sum()
        acc[l] = float(cm[i, i] / tot) if tot else float("nan")
    return acc


def soft_cross_entropy(logits, target):
    """target: [N, C] probabilities (one-hot or between-class mixtures)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(target * logp).sum(-1).mean()


# ---------------------------------------------------------------- SVG
def _svg(w, h, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" font-family="sans-serif">\n'
            f'<rect width="{w}" height="{h}" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def svg_confusion(cm, labels, path, title):
    """Row-normalised confusion matrix (rows: true label, columns: prediction). Labels are
    drawn at 11-12 px whatever the number of classes (the cells grow to fit them), counts in
    the cells when they are large enough to hold them."""
    n = len(labels)
    cell = max(16, min(36, 720 // n))
    fs = 12 if cell >= 20 else 11                      # label font size
    longest = max(len(l) for l in labels)
    left = 30 + int(longest * fs * 0.6)
    top = 50 + int(longest * fs * 0.6 * 0.87)          # column labels rotated by 60 degrees
    w, h = left + n * cell + 40, top + n * cell + 60
    body = [f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="16">{html.escape(title)}</text>',
            f'<text x="{left + n * cell / 2}" y="{top + n * cell + 40}" text-anchor="middle" font-size="13">predicted</text>',
            f'<text x="16" y="{top + n * cell / 2}" font-size="13" transform="rotate(-90 16 {top + n * cell / 2})" text-anchor="middle">true</text>']
    for i in range(n):
        tot = max(cm[i].sum(), 1)
        y = top + i * cell
        body.append(f'<text x="{left - 4}" y="{y + cell / 2 + fs * 0.35:.1f}" text-anchor="end" font-size="{fs}">{html.escape(labels[i])}</text>')
        cx = left + i * cell + cell / 2 + fs * 0.3
        body.append(f'<text x="{cx:.1f}" y="{top - 4}" font-size="{fs}" '
                    f'transform="rotate(-60 {cx:.1f} {top - 4})">{html.escape(labels[i])}</text>')
        for j in range(n):
            v = cm[i, j] / tot
            if v == 0:
                continue
            shade = int(255 * (1 - v))
            color = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
            x = left + j * cell
            body.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{color}"/>')
            if cell >= 20:
                body.append(f'<text x="{x + cell / 2}" y="{y + cell * 0.62}" text-anchor="middle" '
                            f'font-size="{min(11, cell // 3)}" fill="{"white" if v > 0.6 else "black"}">{cm[i, j]}</text>')
    for k in range(0, n + 1, 5 if n > 20 else n):      # guide lines every 5 classes on big matrices
        body.append(f'<line x1="{left}" y1="{top + k * cell}" x2="{left + n * cell}" y2="{top + k * cell}" stroke="#ccc"/>')
        body.append(f'<line x1="{left + k * cell}" y1="{top}" x2="{left + k * cell}" y2="{top + n * cell}" stroke="#ccc"/>')
    body.append(f'<rect x="{left}" y="{top}" width="{n * cell}" height="{n * cell}" fill="none" stroke="black"/>')
    with open(path, "w") as f:
        f.write(_svg(w, h, body))


CURVES = [("train_loss", "#d62728", "train loss (left axis)"),
          ("train_acc", "#ff7f0e", "train accuracy, augmented (right axis)"),
          ("val_acc", "#1f77b4", "validation accuracy (right axis)"),
          ("val_acc_raw", "#9edae5", "validation, raw weights (averaged above)")]


def svg_curves(history, path, title):
    """history: list of dicts with epoch, train_loss, train_acc, and val_acc where measured.
    The legend sits below the plot, where no curve can run through it."""
    shown = [c for c in CURVES if any(e.get(c[0]) is not None for e in history)]
    rows = (len(shown) + 1) // 2
    w, l, r, t, b = 760, 60, 60, 40, 50
    ph = 330
    h = t + ph + b + 20 * rows + 10
    pw = w - l - r
    ep = [e["epoch"] for e in history]
    emax = max(max(ep), 1)
    lmax = max(max(e["train_loss"] for e in history), 1e-6)

    def X(e):
        return l + pw * e / emax

    body = [f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="16">{html.escape(title)}</text>',
            f'<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="black"/>']
    for k in range(6):
        y = t + ph * k / 5
        body.append(f'<line x1="{l}" y1="{y}" x2="{l + pw}" y2="{y}" stroke="#ddd"/>')
        body.append(f'<text x="{l - 5}" y="{y + 4}" text-anchor="end" font-size="11">{lmax * (1 - k / 5):.2f}</text>')
        body.append(f'<text x="{l + pw + 5}" y="{y + 4}" font-size="11">{100 * (1 - k / 5):.0f}%</text>')
    for k in range(0, emax + 1, max(1, emax // 10)):
        body.append(f'<text x="{X(k)}" y="{t + ph + 18}" text-anchor="middle" font-size="11">{k}</text>')
    body.append(f'<text x="{l + pw / 2}" y="{t + ph + 36}" text-anchor="middle" font-size="12">epoch</text>')
    for n, (key, color, name) in enumerate(shown):
        scale = lmax if key == "train_loss" else 1.0
        pts = [(X(e["epoch"]), t + ph * (1 - e[key] / scale)) for e in history if e.get(key) is not None]
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for x, y in pts if len(pts) < 30 else []:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')
        lx, ly = l + (n % 2) * pw / 2, t + ph + b + 20 * (n // 2) + 4
        body.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{color}" stroke-width="3"/>')
        body.append(f'<text x="{lx + 30}" y="{ly + 4}" font-size="12">{html.escape(name)}</text>')
    with open(path, "w") as f:
        f.write(_svg(w, h, body))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
