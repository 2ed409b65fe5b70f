#!/usr/bin/python3
"""Train M5 (Dai et al. 2016) for the 12-class Speech Commands task from a prep.py cache (8 kHz).

Augmentation, all on the cached 8 kHz arrays (numpy): speed/pitch perturbation (resampling
by x0.85..1.15), time shift (+-125 ms), gain (-15..+6 dB), background noise from
_background_noise_ mixed at 0..25 dB SNR, extra _silence_ examples cut from the background
noise at random levels, optional between-class mixing (--mix). Adam + weight decay,
one-cycle-like schedule (linear warm-up, cosine decay), label smoothing; optionally
synthetic espeak-ng words in the training split (a cache made with prep.py --synth) and an
exponential moving average of the weights (--weight-average), which is what gets evaluated
and exported (the raw weights' accuracy is logged beside it).
Validation is speaker-disjoint (prep.py's split); the headline number is on the v0.02 clips.

    nohup nice -n 10 /usr/bin/python3 models/train/train_m5.py \
        --cache models/train/runs/cache/speech8k --out models/train/runs/m5 \
        > models/train/runs/m5.log 2>&1 &
    (--resume continues from the last checkpoint; --train-on-all trains on train+val)
"""
import argparse
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

WIN = nets.M5.input_length


def noise_segment(noise, n, rng):
    z = noise[rng.randint(len(noise))]
    s = rng.randint(0, len(z) - n)
    return z[s:s + n]


def centred(x, rng, args, win):
    """The clip centred in the window like the serving policy, then shifted by up to
    +-args.shift samples."""
    out = np.zeros(win, np.float32)
    start = (win - len(x)) // 2 + rng.randint(-args.shift, args.shift + 1)
    a, b = max(start, 0), min(start + len(x), win)
    if b > a:
        out[a:b] = x[a - start:b - start]
    return out


def augment(clip, is_silence, noise, rng, args, win=WIN, place=centred):
    """One training example of `win` samples: speed perturbation, place(x, rng, args, win)
    puts the clip in the window, then gain and background noise (train_kws.py places it
    at the window's end)."""
    if is_silence and (len(clip) == 0 or rng.rand() < 0.5):
        # a fresh silence example: background noise at a random level (sometimes near zero)
        x = noise_segment(noise, win, rng) * rng.uniform(0, 1) ** 2
        return x.astype(np.float32)
    x = clip
    if not is_silence and args.speed > 0:
        f = float(np.exp(rng.uniform(-args.speed, args.speed)))
        n = max(int(len(x) / f), 16)
        x = np.interp(np.arange(n) * f, np.arange(len(x)), x).astype(np.float32)
    out = place(x, rng, args, win)
    out *= 10 ** (rng.uniform(-15, 6) / 20)
    if rng.rand() < args.noise_prob:
        z = noise_segment(noise, win, rng)
        if is_silence:
            out += z * rng.uniform(0, 0.5)
        else:
            ps = max(float((out ** 2).mean()), 1e-8)
            pn = max(float((z ** 2).mean()), 1e-8)
            snr = rng.uniform(args.snr_min, args.snr_min + 25)
            out += z * np.sqrt(ps / pn / 10 ** (snr / 10))
    return np.clip(out, -1, 1)


def make_batch(clips, targets, idx, n_classes, sil, noise, rng, args):
    xs = np.stack([augment(clips[i], targets[i] == sil, noise, rng, args) for i in idx])
    ys = np.full((len(idx), n_classes), args.smooth / n_classes, np.float32)
    ys[np.arange(len(idx)), targets[idx]] += 1 - args.smooth
    if args.mix > 0:
        # between-class learning: mix pairs within the batch with ratio r
        perm = rng.permutation(len(idx))
        r = rng.uniform(0, 1, len(idx)).astype(np.float32)
        use = rng.rand(len(idx)) < args.mix
        r[~use] = 1.0
        x2 = xs[perm]
        xs = (r[:, None] * xs + (1 - r[:, None]) * x2) / np.sqrt(r ** 2 + (1 - r) ** 2)[:, None]
        ys = r[:, None] * ys + (1 - r[:, None]) * ys[perm]
    return torch.from_numpy(xs.astype(np.float32)).unsqueeze(1), torch.from_numpy(ys)


def load(args):
    index, data = prep.open_cache(args.cache, args.allow_dev_cache)
    labels = index["labels"]

    def arr(it):
        return np.array(data[it["offset"]:it["offset"] + it["frames"]], np.float32)
    splits = ("train", "val") if args.train_on_all else ("train",)
    tr = [it for it in index["items"] if it["split"] in splits]
    va = [it for it in index["items"] if it["split"] == "val"]
    noise = [arr(it) for it in index["items"] if it["split"] == "noise"]
    tr_x, va_x = [arr(it) for it in tr], [arr(it) for it in va]
    if not any(it["label"] == "_silence_" for it in tr):
        # official layout: no _silence_ clips; as the dataset's authors do, make them from
        # the background noise (train: fresh every time in augment(); val: fixed cuts)
        n_tr, n_va = len(tr) // 11, len(va) // 11
        tr_x += [np.zeros(0, np.float32)] * n_tr
        tr += [{"label": "_silence_"}] * n_tr
        rng = np.random.RandomState(12345)
        va_x += [(noise_segment(noise, WIN, rng) * rng.uniform(0, 1) ** 2).astype(np.float32)
                 for _ in range(n_va)]
        va += [{"label": "_silence_", "source": "generated"}] * n_va
    return (index, labels, tr_x, np.array([labels.index(it["label"]) for it in tr]),
            va_x, np.array([labels.index(it["label"]) for it in va]), va, noise)


def main():
    malloc_env.ensure()  # re-executes with glibc's allocator set up for PyTorch (malloc_env.py)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=2, help="passes over the training set per epoch")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--wd", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--speed", type=float, default=0.15, help="log speed range")
    ap.add_argument("--shift", type=int, default=1000, help="samples")
    ap.add_argument("--noise-prob", type=float, default=0.8)
    ap.add_argument("--snr-min", type=float, default=0.0, help="noise mixing SNR range: min..min+25 dB")
    ap.add_argument("--mix", type=float, default=0.0, help="fraction of between-class mixed examples")
    ap.add_argument("--smooth", type=float, default=0.1)
    ap.add_argument("--train-on-all", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", help="start from this model file's weights")
    ap.add_argument("--channels", type=int, default=32, help="M5 width (conv1 channels; the paper's M5 has 128)")
    ap.add_argument("--weight-average", type=float, default=0.0, metavar="DECAY",
                    help="evaluate and export an exponential moving average of the weights "
                         "(per step, e.g. 0.999); 0 = off")
    ap.add_argument("--allow-dev-cache", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    index, labels, tr_x, tr_y, va_x, va_y, va_items, noise = load(args)
    main_val = np.array([it.get("source") != "speech_commands_v0.01_sample" for it in va_items])
    sil = labels.index("_silence_")
    n_synth = sum(it.get("source") == "synthetic" for it in index["items"] if it["split"] == "train")
    print(f"cache {args.cache} ({index['backend']}): train {len(tr_x)} (synthetic {n_synth}) "
          f"val {len(va_x)} (v0.02 {main_val.sum()}) noise files {len(noise)}", file=sys.stderr)
    torch.manual_seed(args.seed)
    net = nets.M5(len(labels), n_channel=args.channels)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.wd)
    average = common.WeightAverage(net, args.weight_average) if args.weight_average > 0 else None
    ck_path, start, history, commands = common.resume_or_start(args.out, net, opt, args.resume,
                                                               args.init, average)
    command = commands[-1]
    steps_per_epoch = int(np.ceil(len(tr_x) * args.repeat / args.batch))
    total = args.epochs * steps_per_epoch
    for epoch in range(start, args.epochs + 1):
        t0 = time.time()
        rng = np.random.RandomState(args.seed * 100003 + epoch)
        order = np.concatenate([rng.permutation(len(tr_x)) for _ in range(args.repeat)])
        net.train()
        bar = common.Progress(steps_per_epoch, f"epoch {epoch}/{args.epochs}")
        tl = ta = seen = 0
        for b in range(steps_per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x, y = make_batch(tr_x, tr_y, idx, len(labels), sil, noise, rng, args)
            step = (epoch - 1) * steps_per_epoch + b
            lr = common.set_lr(opt, args, step, steps_per_epoch, total)
            out = net(x)  # log-probabilities
            loss = -(y * out).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if average is not None:
                average.update(net)
            tl += loss.item() * len(x)
            ta += (out.argmax(1) == y.argmax(1)).sum().item()
            seen += len(x)
            bar.update(b + 1, loss=tl / seen, acc=ta / seen)
        bar.close()
        pred, _ = export.evaluate_policy(average.net if average else net, "m5", va_x, batch=256)
        ok = pred == va_y
        rec = {"epoch": epoch, "train_loss": tl / seen, "train_acc": ta / seen, "lr": lr,
               "val_acc": float(ok[main_val].mean()), "val_acc_all": float(ok.mean()),
               "time_s": time.time() - t0, "cache_backend": index["backend"]}
        raw = ""
        if average is not None:
            pred_raw, _ = export.evaluate_policy(net, "m5", va_x, batch=256)
            rec["val_acc_raw"] = float((pred_raw == va_y)[main_val].mean())
            raw = f" raw weights {rec['val_acc_raw']:.4f}"
        history.append(rec)
        print(f"epoch {epoch} loss {rec['train_loss']:.4f} train_acc {rec['train_acc']:.3f} "
              f"val_acc {rec['val_acc']:.4f} (with v0.01 {rec['val_acc_all']:.4f}){raw} lr {lr:.5f} "
              f"time {rec['time_s']:.0f}s", flush=True)
        common.save_checkpoint(ck_path, {
            "arch": "m5", "labels": labels, **common.model_states(net, average),
            "optimizer": opt.state_dict(),
            "epoch": epoch, "history": history, "args": vars(args), "seed": args.seed,
            "commands": commands,
            "cache": {"prefix": args.cache, "backend": index["backend"],
                      "decode_command": index["decode_command"], "prep_command": index["prep_command"]},
            "metadata": {"training": f"M5 on Speech Commands (CC BY 4.0): {command}"}})
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
