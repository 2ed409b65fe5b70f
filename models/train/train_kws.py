#!/usr/bin/python3
"""Train the streaming keyword spotter (nets.CausalTCN, 12 Speech Commands classes, 8 kHz)
from a prep.py cache.

Each example is a 1.25 s window whose clip ends 0..250 ms before the window's end (the rest
is background noise, or silence), with M5's augmentation (speed, gain, noise; train_m5.py).
The loss is on the last 20 frames (200 ms): the network learns to name a word during the
200 ms after it has ended, anywhere in its 1.25 s receptive field. That is what makes its
streaming events steady for a run of hops (engine/stream.c, server /stream).
Validation is speaker-disjoint (prep.py's split), read with the serving policy.

    nohup nice -n 10 /usr/bin/python3 models/train/train_kws.py \\
        --cache models/train/runs/cache/speech8k --out models/train/runs/kws \\
        > models/train/runs/kws.log 2>&1 &
    (--resume continues from the last checkpoint; --train-on-all trains on train+val)
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import malloc_env  # noqa: E402
import common  # noqa: E402
import export  # noqa: E402
import nets  # noqa: E402
import train_m5  # noqa: E402

WIN = nets.CausalTCN.input_length
LOSS_FRAMES = 20


def at_end(x, rng, args, win):
    """The clip ending 0..args.tail samples before the window's end."""
    out = np.zeros(win, np.float32)
    end = win - rng.randint(0, args.tail + 1)
    start = end - len(x)
    a = max(start, 0)
    out[a:end] = x[a - start:]
    return out


def augment(clip, is_silence, noise, rng, args):
    return train_m5.augment(clip, is_silence, noise, rng, args, win=WIN, place=at_end)


def main():
    malloc_env.ensure()  # re-executes with glibc's allocator set up for PyTorch (malloc_env.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--wd", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--speed", type=float, default=0.15, help="log speed range")
    ap.add_argument("--tail", type=int, default=2000, help="samples after the clip's end, at most")
    ap.add_argument("--noise-prob", type=float, default=0.6)
    ap.add_argument("--snr-min", type=float, default=5.0)
    ap.add_argument("--smooth", type=float, default=0.1)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--train-on-all", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--allow-dev-cache", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    index, labels, tr_x, tr_y, va_x, va_y, va_items, noise = train_m5.load(args)
    # the headline figure: the Speech Commands v0.02 test-set clips of held-out speakers
    main_val = np.array([it.get("source") == "local" for it in va_items])
    # speech_commands_extra/v0.01 holds 3,294 training clips of three non-command words: a
    # fresh quarter of them each epoch keeps _unknown_ from swamping the keywords
    splits = ("train", "val") if args.train_on_all else ("train",)
    tr_src = [it.get("source") for it in index["items"] if it["split"] in splits]
    tr_src += [None] * (len(tr_x) - len(tr_src))  # generated _silence_ entries, if any
    many = np.array([s == "v0.01" for s in tr_src])
    sil = labels.index("_silence_")
    print(f"cache {args.cache}: train {len(tr_x)} val {len(va_x)} (v0.02 test-set clips "
          f"{main_val.sum()}) noise files {len(noise)}", file=sys.stderr)
    torch.manual_seed(args.seed)
    net = nets.CausalTCN(len(labels), channels=args.channels)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.wd)
    ck_path, start, history, commands = common.resume_or_start(args.out, net, opt, args.resume, None)
    per_epoch = int((~many).sum() + many.sum() // 4)
    steps_per_epoch = int(np.ceil(per_epoch / args.batch))
    total = args.epochs * steps_per_epoch
    for epoch in range(start, args.epochs + 1):
        t0 = time.time()
        rng = np.random.RandomState(args.seed * 100003 + epoch)
        few = np.flatnonzero(~many)
        order = rng.permutation(np.concatenate([few, rng.choice(np.flatnonzero(many),
                                                               per_epoch - len(few), replace=False)]))
        net.train()
        bar = common.Progress(steps_per_epoch, f"epoch {epoch}/{args.epochs}")
        tl = ta = seen = 0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = torch.from_numpy(np.stack([augment(tr_x[i], tr_y[i] == sil, noise, rng, args)
                                           for i in idx])).unsqueeze(1)
            y = torch.from_numpy(tr_y[idx]).long()
            step = (epoch - 1) * steps_per_epoch + b
            lr = common.set_lr(opt, args, step, steps_per_epoch, total)
            logits = net.frames(x)[:, :, -LOSS_FRAMES:]  # [N, classes, 20]
            loss = F.cross_entropy(logits, y[:, None].expand(-1, LOSS_FRAMES),
                                   label_smoothing=args.smooth)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tl += loss.item() * len(idx)
            ta += (logits[:, :, -1].argmax(1) == y).sum().item()
            seen += len(idx)
            bar.update(b + 1, loss=tl / seen, acc=ta / seen)
        bar.close()
        pred, _ = export.evaluate_policy(net, "tcn", va_x, batch=256)
        ok = pred == va_y
        rec = {"epoch": epoch, "train_loss": tl / seen, "train_acc": ta / seen, "lr": lr,
               "val_acc": float(ok[main_val].mean()), "val_acc_all": float(ok.mean()),
               "time_s": time.time() - t0}
        history.append(rec)
        print(f"epoch {epoch} loss {rec['train_loss']:.4f} train_acc {rec['train_acc']:.3f} "
              f"val_acc {rec['val_acc']:.4f} (all val {rec['val_acc_all']:.4f}) lr {lr:.5f} "
              f"time {rec['time_s']:.0f}s", flush=True)
        common.save_checkpoint(ck_path, {
            "arch": "tcn", "labels": labels, **common.model_states(net, None),
            "optimizer": opt.state_dict(), "epoch": epoch, "history": history,
            "args": vars(args), "seed": args.seed, "commands": commands,
            "cache": {"prefix": args.cache, "backend": index["backend"],
                      "decode_command": index["decode_command"], "prep_command": index["prep_command"]},
            "metadata": {"training": f"causal TCN keyword spotter on Speech Commands (CC BY 4.0): "
                                     f"{commands[-1]}"}})
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
