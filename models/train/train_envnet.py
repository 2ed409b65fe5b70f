#!/usr/bin/python3
"""Train EnvNet (Tokozume & Harada 2017) on ESC-50 from a prep.py cache (16 kHz).

Recipe (after the authors' bc_learning code): each training example is a clip padded with
12007 zeros on each side, randomly time-scaled (x0.8..1.25, linear interpolation), randomly
cropped to 24014 samples; with --bc (default) two such crops of different classes are mixed
with the between-class rule (ratio r ~ U(0,1), sound-pressure-aware gain, label r:1-r, KL
loss); then random gain (+-6 dB) and, because clients send clean 16-bit audio while the
data is 8-bit, optional low-level noise (-75..-45 dBFS) so the network does not learn the
8-bit noise floor. SGD nesterov momentum 0.9, weight decay 5e-4, linear warm-up then cosine.
Validation: the serving policy, 10 windows per 5 s clip (export.policy_windows), softmax
averaged.

    nohup nice -n 10 /usr/bin/python3 models/train/train_envnet.py \
        --cache models/train/runs/cache/esc50-16k --out models/train/runs/envnet \
        --epochs 40 > models/train/runs/envnet.log 2>&1 &
    (add --resume to continue a run from its last checkpoint; --train-on-all to train on
     train+val with the same recipe)
"""
import argparse
import concurrent.futures
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import malloc_env  # noqa: E402
import common  # noqa: E402
import export  # noqa: E402
import nets  # noqa: E402
import prep  # noqa: E402

WIN = nets.EnvNet.input_length
PAD = WIN // 2


def rms_gain_db(x, frame=1024):
    """bc_learning's compute_gain, 'RMSE' mode: loudest frame's mean square in dB."""
    if len(x) < frame:
        return 10 * np.log10(max(np.mean(x ** 2), 1e-8))
    f = np.lib.stride_tricks.sliding_window_view(x, frame)[:: frame // 2]
    return 10 * np.log10(max(float((f ** 2).mean(1).max()), 1e-8))


def bc_mix(s1, s2, r):
    g1, g2 = rms_gain_db(s1), rms_gain_db(s2)
    p = 1.0 / (1 + 10 ** ((g1 - g2) / 20.0) * (1 - r) / r)
    return ((s1 * p + s2 * (1 - p)) / np.sqrt(p ** 2 + (1 - p) ** 2)).astype(np.float32)


def train_crop(clip, rng, scale=1.25):
    x = np.concatenate([np.zeros(PAD, np.float32), clip, np.zeros(PAD, np.float32)])
    f = float(np.exp(rng.uniform(-np.log(scale), np.log(scale))))
    n = int(len(x) * f)
    x = np.interp(np.arange(n) / f, np.arange(len(x)), x).astype(np.float32)
    if len(x) < WIN:
        x = np.pad(x, (0, WIN - len(x)))
    s = rng.randint(0, len(x) - WIN + 1)
    return x[s:s + WIN]


def make_batch(clips, targets, idx, n_classes, rng, args):
    xs, ys = [], []
    for i in idx:
        x = train_crop(clips[i], rng)
        y = np.zeros(n_classes, np.float32)
        if args.bc:
            j = rng.randint(len(clips))
            while targets[j] == targets[i]:
                j = rng.randint(len(clips))
            r = float(rng.uniform(0.001, 0.999))
            x = bc_mix(x, train_crop(clips[j], rng), r)
            y[targets[i]] += r
            y[targets[j]] += 1 - r
        else:
            y[targets[i]] = 1
        x = x * 10 ** (rng.uniform(-6, 6) / 20)
        if rng.rand() < args.noise_prob:
            x = x + rng.randn(WIN).astype(np.float32) * 10 ** (rng.uniform(-75, -45) / 20)
        xs.append(np.clip(x, -1, 1))
        ys.append(y)
    return (torch.from_numpy(np.stack(xs)).reshape(-1, 1, 1, WIN), torch.from_numpy(np.stack(ys)))


def load_split(args):
    index, data = prep.open_cache(args.cache, args.allow_dev_cache)
    labels = index["labels"]

    def get(split):
        its = [it for it in index["items"] if it["split"] in split]
        return ([np.array(data[it["offset"]:it["offset"] + it["frames"]], np.float32) for it in its],
                np.array([labels.index(it["label"]) for it in its]), its)
    train_splits = ("train", "val") if args.train_on_all else ("train",)
    return index, labels, get(train_splits), get(("val",))


def main():
    malloc_env.ensure()  # re-executes with glibc's allocator set up for PyTorch (malloc_env.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--warmup", type=float, default=1.0, help="epochs of linear warm-up")
    ap.add_argument("--bc", type=int, default=1, help="between-class mixing (1/0)")
    ap.add_argument("--noise-prob", type=float, default=0.5)
    ap.add_argument("--val-every", type=int, default=5)
    ap.add_argument("--train-on-all", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from this model file's weights (e.g. the shipped one)")
    ap.add_argument("--allow-dev-cache", action="store_true")
    ap.add_argument("--max-batches", type=int, default=0, help="debug: stop epochs early")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="end this invocation after that epoch (the schedule still spans --epochs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    index, labels, (tr_x, tr_y, _), (va_x, va_y, va_items) = load_split(args)
    print(f"cache {args.cache} ({index['backend']}): train {len(tr_x)} val {len(va_x)}", file=sys.stderr)
    torch.manual_seed(args.seed)
    net = nets.EnvNet(len(labels))
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.wd)
    ck_path, start, history, commands = common.resume_or_start(args.out, net, opt, args.resume, args.init)
    command = commands[-1]
    steps_per_epoch = int(np.ceil(len(tr_x) / args.batch))
    total_steps = args.epochs * steps_per_epoch
    pool = concurrent.futures.ThreadPoolExecutor(1)
    last = min(args.epochs, args.stop_after) if args.stop_after else args.epochs
    for epoch in range(start, last + 1):
        t0 = time.time()
        rng = np.random.RandomState(args.seed * 100003 + epoch)
        order = rng.permutation(len(tr_x))
        batches = [order[s:s + args.batch] for s in range(0, len(order), args.batch)]
        if args.max_batches:
            batches = batches[:args.max_batches]
        net.train()
        bar = common.Progress(len(batches), f"epoch {epoch}/{args.epochs}")
        tot_loss = tot_acc = seen = 0
        fut = pool.submit(make_batch, tr_x, tr_y, batches[0], len(labels), rng, args)
        for b in range(len(batches)):
            x, y = fut.result()
            if b + 1 < len(batches):
                fut = pool.submit(make_batch, tr_x, tr_y, batches[b + 1], len(labels), rng, args)
            step = (epoch - 1) * steps_per_epoch + b
            lr = common.set_lr(opt, args, step, steps_per_epoch, total_steps)
            out = net(x)
            loss = common.soft_cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = len(x)
            tot_loss += loss.item() * n
            tot_acc += (out.argmax(1) == y.argmax(1)).sum().item()
            seen += n
            bar.update(b + 1, loss=tot_loss / seen, acc=tot_acc / seen, lr=lr)
        bar.close()
        rec = {"epoch": epoch, "train_loss": tot_loss / seen, "train_acc": tot_acc / seen,
               "lr": lr, "train_s": time.time() - t0, "cache_backend": index["backend"]}
        if not args.train_on_all and (epoch % args.val_every == 0 or epoch == args.epochs):
            t1 = time.time()
            pred, _ = export.evaluate_policy(net, "envnet", va_x, batch=64, progress="val")
            rec["val_acc"] = float((pred == va_y).mean())
            rec["val_s"] = time.time() - t1
        history.append(rec)
        print(f"epoch {epoch} loss {rec['train_loss']:.4f} train_acc {rec['train_acc']:.3f} "
              f"val_acc {rec.get('val_acc', float('nan')):.3f} lr {lr:.5f} "
              f"time {time.time() - t0:.0f}s", flush=True)
        common.save_checkpoint(ck_path, {
            "arch": "envnet", "labels": labels, "model": net.state_dict(),
            "optimizer": opt.state_dict(), "epoch": epoch, "history": history,
            "args": vars(args), "seed": args.seed, "commands": commands,
            "cache": {"prefix": args.cache, "backend": index["backend"],
                      "decode_command": index["decode_command"], "prep_command": index["prep_command"]},
            "metadata": {"training": f"EnvNet on ESC-50 (CC BY-NC 3.0): {command}"}})
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
