"""PyTorch side of bench/wavtokenizer.ts: times the PyTorch WavTokenizer on request.

    /usr/bin/python3 models/export/bench_torch.py --checkpoint m.ckpt --config m.yaml --audio a.f32 --threads 2

Loads the model (reference mode, weight norm folded as a deployment would), warms up, picks
per op the fastest split of the thread budget (OpenBLAS pool = threads, torch intra-op threads
1..threads; reported in `ready` as torchThreads), prints `ready`, then answers each stdin line
`encode` or `decode` with one timed run as JSON ({"op", "seconds"}), so the caller can
interleave PyTorch and onnxruntime runs under the same machine load. `dump DIR` writes the
codes and decoded audio it computed (raw int64 / float32 LE).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _threads_from_argv() -> int:
    return int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1


# Debian's torch does its matrix products in OpenBLAS (pthread build), whose own pool defaults to
# every core and ignores torch.set_num_threads: fix it to the same count before torch loads it.
os.environ["OPENBLAS_NUM_THREADS"] = str(_threads_from_argv())

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavtokenizer_arch.checkpoint import load_wavtokenizer  # noqa: E402
from wavtokenizer_arch.modes import fold_weight_norm  # noqa: E402


def _fastest_split(op, threads: int) -> int:
    times = {}
    for n in range(1, threads + 1):
        torch.set_num_threads(n)
        op()
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            op()
            runs.append(time.perf_counter() - t0)
        times[n] = min(runs)
    return min(times, key=times.get)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--audio", required=True, help="raw float32 LE mono at the model rate")
    p.add_argument("--threads", type=int, required=True)
    args = p.parse_args()
    torch.set_num_interop_threads(1)

    with open(args.config) as f:
        model = load_wavtokenizer(args.checkpoint, yaml.safe_load(f))
    fold_weight_norm(model)  # what a deployment would do: never slower than recomputing it per call
    audio = torch.from_numpy(np.fromfile(args.audio, dtype="<f4").copy())[None]
    with torch.inference_mode():
        codes = model.encode(audio)
        decoded = model.decode(codes)
        ops = {"encode": lambda: model.encode(audio), "decode": lambda: model.decode(codes)}
        # Not handicapping PyTorch: each op runs with the torch intra-op thread count (1..threads,
        # BLAS pool fixed at threads) that was fastest for it in warm-up. With OpenBLAS busy in
        # the products, torch's own 2 threads make decode slower than 1.
        best = {name: _fastest_split(op, args.threads) for name, op in ops.items()}
        print(json.dumps({"ready": True, "threads": args.threads, "torchThreads": best,
                          "torch": torch.__version__}), flush=True)
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd in ops:
                torch.set_num_threads(best[cmd])
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
