"""Run the PyTorch WavTokenizer (reference mode: the official operations) and dump its outputs.

For each --audio file (raw float32 little-endian mono at the model rate) writes into --out:
  <stem>.codes.i64   codes [frames] of batch row 0, int64 LE
  <stem>.margin.f32  per frame, (d2 - d1) / |x|^2 with d1 <= d2 the two smallest squared distances
                     (float64) from the embedding x to the codebook: how close the choice was to a tie,
                     relative to the size of the terms float32 cancels when computing a distance
  <stem>.audio.f32   decoder output for those codes, float32 LE
and <out>/summary.json with frame / sample counts.

    /usr/bin/python3 models/export/dump_reference.py --checkpoint m.ckpt --config m.yaml --out dir --audio a.f32
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavtokenizer_arch.checkpoint import load_wavtokenizer  # noqa: E402


def tie_margin(emb: torch.Tensor, codebook: torch.Tensor) -> np.ndarray:
    x, e = emb.double(), codebook.double()
    d = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ e.t() + e.pow(2).sum(-1)[None]).clamp(min=0)
    two = d.topk(2, dim=-1, largest=False).values
    return ((two[:, 1] - two[:, 0]) / x.pow(2).sum(-1).clamp(min=1e-30)).numpy().astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--audio", required=True, nargs="+")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    with open(args.config) as f:
        model = load_wavtokenizer(args.checkpoint, yaml.safe_load(f))
    os.makedirs(args.out, exist_ok=True)
    summary = {}
    with torch.inference_mode():
        for path in args.audio:
            stem = os.path.splitext(os.path.basename(path))[0]
            audio = torch.from_numpy(np.fromfile(path, dtype="<f4").copy())[None]
            emb = model.embed(audio)
            codes = model.codebook.nearest(emb).unsqueeze(1)
            decoded = model.decode(codes)
            codes[0, 0].numpy().astype("<i8").tofile(os.path.join(args.out, f"{stem}.codes.i64"))
            tie_margin(emb[0], model.codebook.embed).astype("<f4").tofile(os.path.join(args.out, f"{stem}.margin.f32"))
            decoded[0].numpy().astype("<f4").tofile(os.path.join(args.out, f"{stem}.audio.f32"))
            summary[stem] = {"samples": int(audio.shape[1]), "frames": int(codes.shape[2]),
                             "decodedSamples": int(decoded.shape[1])}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    main()
