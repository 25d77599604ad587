"""Shrink the training array to what may travel to the accelerator machine (all carried files <= 64 MiB).

  /usr/bin/python3 models/train/pack_for_device.py [--data .traindata/train.npz] [--out .devicepack/train.npz] [--mib 40]

Keeps the same leading share of every category (compressed int16), so the mix the run was planned with is
unchanged; the run's weights travel beside it (models/train/checkpoints/<run>, about 20 MiB).
"""
import argparse
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=".traindata/train.npz")
    ap.add_argument("--out", default=".devicepack/train.npz")
    ap.add_argument("--mib", type=float, default=40.0)
    args = ap.parse_args()
    data = np.load(args.data)
    audio, bounds, names = data["audio"], data["category_bounds"], data["category_names"]
    share = 1.0
    while True:
        parts, new_bounds, pos = [], [], 0
        for lo, hi in bounds:
            n = max(1, int((hi - lo) * share))
            parts.append(audio[lo:lo + n])
            new_bounds.append((pos, pos + n))
            pos += n
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        np.savez_compressed(args.out, audio=np.concatenate(parts), category_bounds=np.array(new_bounds, np.int64),
                            category_names=names)
        size = os.path.getsize(args.out) / 2 ** 20
        if size <= args.mib:
            break
        share *= 0.97 * args.mib / size
    print(f"{args.out}: {size:.1f} MiB, {pos / 24000:.0f} s of audio ({share:.0%} of each category)")


if __name__ == "__main__":
    main()
