"""Quick quality check of training checkpoints in PyTorch (no ONNX export): held-out speech STOI, pitch
voicing-decision and gross pitch errors, log-mel distance, at 2 and 8 codebooks. For following a run and for
the ablation table; the figures of record come from evaluate.py on the exported graphs.

  /usr/bin/python3 models/eval/checkpoint_eval.py models/train/weights/default models/train/checkpoints/v2/weights
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, HERE)
from checkpoint import load_codec  # noqa: E402
from clips import RATE, load_heldout  # noqa: E402
from metrics import log_mel_distance, multi_resolution_stft_distance, pitch_errors, pooled_pitch_errors, stoi  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+", help="weights prefixes (<prefix>.enc.npz / .dec.npz)")
    ap.add_argument("--heldout", default=os.path.join(HERE, "..", "train", "data", "heldout"))
    ap.add_argument("--codebooks", default="2,8")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    everything = load_heldout(args.heldout)
    clips = [c for c in everything if c.category == "speech"]
    music = [c for c in everything if c.category == "music"]
    ks = [int(k) for k in args.codebooks.split(",")]
    print(f"{len(clips)} held-out speech clips, {len(music)} music clips")
    print("| checkpoint | codebooks | STOI | VDE % | GPE % | log-mel | music log-mel | music MR-STFT |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for prefix in args.checkpoints:
        codec = load_codec(prefix)
        rows = {k: {"stoi": [], "mel": [], "pitch": [], "music_mel": [], "music_stft": []} for k in ks}
        for clip in music:
            n = len(clip.audio) // 320 * 320
            with torch.no_grad():
                codes = codec.encode(torch.from_numpy(clip.audio[:n].astype(np.float32))[None])
                for k in ks:
                    y = codec.decode(codes[:, :k])[0].numpy().astype(np.float64)[:n]
                    rows[k]["music_mel"].append(log_mel_distance(clip.audio[:n], y, RATE))
                    rows[k]["music_stft"].append(multi_resolution_stft_distance(clip.audio[:n], y, RATE))
        for clip in clips:
            x = clip.audio.astype(np.float32)
            n = len(x) // 320 * 320
            with torch.no_grad():
                codes = codec.encode(torch.from_numpy(x[:n])[None])
                for k in ks:
                    y = codec.decode(codes[:, :k])[0].numpy().astype(np.float64)[:n]
                    ref = clip.audio[:n]
                    rows[k]["stoi"].append(stoi(ref, y, RATE))
                    rows[k]["mel"].append(log_mel_distance(ref, y, RATE))
                    rows[k]["pitch"].append(pitch_errors(ref, y, RATE))
        for k in ks:
            p = pooled_pitch_errors(rows[k]["pitch"])
            print(f"| {prefix} | {k} | {np.mean(rows[k]['stoi']):.3f} | {100 * p['vde']:.1f} | {100 * p['gpe']:.1f} | "
                  f"{np.mean(rows[k]['mel']):.3f} | {np.mean(rows[k]['music_mel']):.3f} | {np.mean(rows[k]['music_stft']):.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
