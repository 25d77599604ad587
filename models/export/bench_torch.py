"""PyTorch side of bench/wavtokenizer.ts: times the PyTorch WavTokenizer on request.

    /usr/bin/python3 models/export/bench_torch.py --checkpoint m.ckpt --config m.yaml --audio a.f32 --threads 2

Loads the model (reference mode, weight norm folded as a deployment would), warms up, prints
`ready`, then answers each stdin line `encode` or `decode` with one timed run as JSON
({"op", "seconds"}), so the caller can interleave PyTorch and onnxruntime runs under the same
machine load. `dump DIR` writes the codes and decoded audio it computed (raw int64 / float32 LE).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavtokenizer_arch import fold_weight_norm, load_wavtokenizer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--audio", required=True, help="raw float32 LE mono at the model rate")
    p.add_argument("--threads", type=int, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    with open(args.config) as f:
        model = load_wavtokenizer(args.checkpoint, yaml.safe_load(f))
    fold_weight_norm(model)  # what a deployment would do: never slower than recomputing it per call
    audio = torch.from_numpy(np.fromfile(args.audio, dtype="<f4").copy())[None]
    with torch.inference_mode():
        codes = model.encode(audio)
        decoded = model.decode(codes)
        print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
        ops = {"encode": lambda: model.encode(audio), "decode": lambda: model.decode(codes)}
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd in ops:
                t0 = time.perf_counter()
                ops[cmd]()
                print(json.dumps({"op": cmd, "seconds": time.perf_counter() - t0}), flush=True)
            elif cmd == "dump":
                codes[0, 0].numpy().astype("<i8").tofile(os.path.join(arg, "torch.codes.i64"))
                decoded[0].numpy().astype("<f4").tofile(os.path.join(arg, "torch.audio.f32"))
                print(json.dumps({"op": "dump"}), flush=True)
            elif cmd == "quit":
                break


if __name__ == "__main__":
    main()
