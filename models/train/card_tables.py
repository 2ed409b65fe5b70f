#!/usr/bin/python3
"""Print the model-card tables (markdown) from finalize.py results JSON files.

    /usr/bin/python3 models/train/card_tables.py models/train/runs/m5/results.json
"""
import json
import sys


def main():
    r = json.load(open(sys.argv[1]))
    q = "per_class_quant" in r
    print(f"Validation accuracy: **{100 * r['val_acc']:.1f}%** on {r['val_clips']} clips"
          + (f"; with {r['quant']}: **{100 * r['val_acc_quant']:.1f}%** "
             f"({r['quant_pred_changed']} predictions changed)" if q else "") + "\n")
    cm = r["confusion"]
    labels = list(r["per_class"])
    print("| class | clips | accuracy |" + (" accuracy, quantized |" if q else ""))
    print("|---|---:|---:|" + ("---:|" if q else ""))
    for i, l in enumerate(labels):
        row = f"| {l} | {sum(cm[i])} | {100 * r['per_class'][l]:.1f}% |"
        if q:
            row += f" {100 * r['per_class_quant'][l]:.1f}% |"
        print(row)
    h = r["history"]
    print(f"\nEpochs: {r['epoch']}; training time {r['train_time_s'] / 60:.1f} min "
          f"(2-core CPU shared with other jobs, nice 10)")
    v = [e for e in h if e.get("val_acc") is not None]
    if v:
        b = max(v, key=lambda e: e["val_acc"])
        print(f"During training: best validation {100 * b['val_acc']:.1f}% (epoch {b['epoch']}), "
              f"last {100 * v[-1]['val_acc']:.1f}% (epoch {v[-1]['epoch']}); the last epoch is shipped")

if __name__ == "__main__":
    main()
