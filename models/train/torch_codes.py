"""PyTorch reference codes and audio for a wav, for the ONNX-vs-PyTorch parity check.

  /usr/bin/python3 models/train/torch_codes.py IN.wav OUT_DIR [--checkpoint models/train/weights/default] [-k 8]

Writes to OUT_DIR (NumPy .npy, little-endian, C order):
  input.npy  float32 [samples]       the exact encoder input (wav as float, zero-padded to a multiple of 320)
  codes.npy  int64   [8, frames]     encoder output
  audio.npy  float32 [frames * 320]  decoder output for the first K codebooks of codes.npy
The wav must be mono 16-bit PCM at 24 kHz (the held-out set written by prepare_data.py is).
"""
import argparse
import json
import os
import sys

import numpy as np
import scipy.io.wavfile as wavfile
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import load_codec  # noqa: E402
from model import HOP, SAMPLE_RATE  # noqa: E402

DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "default")


def read_input(path):
    sr, x = wavfile.read(path)
    if sr != SAMPLE_RATE or x.ndim != 1 or x.dtype != np.int16:
        raise SystemExit(f"{path}: need mono int16 at {SAMPLE_RATE} Hz, got {sr} Hz {x.dtype} shape {x.shape}")
    x = x.astype(np.float32) / 32768.0
    return np.concatenate([x, np.zeros((-len(x)) % HOP, np.float32)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wav")
    ap.add_argument("out_dir")
    ap.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="weights prefix (<prefix>.enc.npz/.dec.npz)")
    ap.add_argument("-k", type=int, default=8, help="codebooks to decode")
    args = ap.parse_args()
    torch.set_num_threads(1)
    codec = load_codec(args.checkpoint)
    x = read_input(args.wav)
    codes = codec.encode(torch.from_numpy(x)[None])
    audio = codec.decode(codes[:, : args.k])
    os.makedirs(args.out_dir, exist_ok=True)
    np.save(os.path.join(args.out_dir, "input.npy"), x)
    np.save(os.path.join(args.out_dir, "codes.npy"), codes[0].numpy().astype(np.int64))
    np.save(os.path.join(args.out_dir, "audio.npy"), audio[0].numpy().astype(np.float32))
    print(json.dumps({"wav": args.wav, "frames": int(codes.shape[-1]), "k": args.k,
                      "first_codes": codes[0, :, 0].tolist()}))


if __name__ == "__main__":
    main()
