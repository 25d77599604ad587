"""Runs a model through the shipped product: `tokstream encode` to a .tok file, `tokstream decode` back to WAV.

For each clip and each K: `encode --codebooks K` then `decode`, so every bitrate is what a user gets from the CLI
(streaming windowed encoder and decoder included). Codes for the usage statistics come from the K = max file,
read with the repository's Python .tok reader.
"""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.io.wavfile as wavfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO, "bin", "tokstream.js")
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from tokstream_reader import read_tok  # noqa: E402


def _cli(*args):
    result = subprocess.run(["node", CLI, *args, "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"tokstream {' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace')[-1500:]}")


def _code_clip(clip, model_dir, codebooks, work_dir, rate):
    models_dir, name = os.path.split(os.path.abspath(model_dir))
    base = os.path.join(work_dir, clip.name)
    wav_in = base + ".in.wav"
    wavfile.write(wav_in, rate, np.round(clip.audio * 32768).clip(-32768, 32767).astype(np.int16))
    decoded, codes = {}, {}
    for k in codebooks:
        tok, wav_out = f"{base}.k{k}.tok", f"{base}.k{k}.wav"
        _cli("encode", wav_in, "-o", tok, "--codebooks", str(k), "--models-dir", models_dir, "--model", name)
        _cli("decode", tok, "-o", wav_out, "--models-dir", models_dir, "--model", name)
        out_rate, pcm = wavfile.read(wav_out)
        if out_rate != rate or pcm.dtype != np.int16 or pcm.ndim != 1:
            raise RuntimeError(f"{wav_out}: expected mono s16 at {rate} Hz, got {pcm.dtype} {pcm.shape} at {out_rate}")
        decoded[k] = pcm.astype(np.float64) / 32768
        codes[k] = read_tok(tok)[1]
    return decoded, codes


def run_cli(model_dir, clips, codebooks, work_dir, rate, workers=2):
    """{clip name: (codes int64 [max K, frames], {k: decoded float64 audio})} and the number of clips whose
    K-codebook files did not hold exactly the first K codebooks of the largest-K file (0 when consistent)."""
    if not os.path.exists(os.path.join(REPO, "dist", "cli", "main.js")):
        raise SystemExit("tokstream CLI not built: run `npm run build` first")
    os.makedirs(work_dir, exist_ok=True)
    manifest_path = os.path.join(model_dir, "manifest.json")
    with open(manifest_path) as f:
        manifest_before = f.read()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        coded = list(pool.map(lambda c: _code_clip(c, model_dir, codebooks, work_dir, rate), clips))
    with open(manifest_path) as f:
        if f.read() != manifest_before:
            raise SystemExit(f"{manifest_path} changed while the clips were coded (model re-exported?): run again")
    out, prefix_mismatches = {}, 0
    top = max(codebooks)
    for clip, (decoded, codes) in zip(clips, coded):
        if any(not np.array_equal(codes[k], codes[top][:k]) for k in codebooks):
            prefix_mismatches += 1
        out[clip.name] = (codes[top], decoded)
    return out, prefix_mismatches
