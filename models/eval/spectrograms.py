"""Spectrogram pictures (PNG) of reserved-set speech: the reference and each model's 6 kbps decoding.

  nice -n 10 /usr/bin/python3 models/eval/spectrograms.py models/default-1.0.0 models/default [--out DIR]

Each model folder codes the clips through the shipped CLI (`tokstream encode --codebooks 8`, `tokstream decode`),
the output is aligned to the reference, and each signal becomes one PNG: time left to right (10 ms per pixel
column, 2 px wide), 0-8 kHz bottom to top (where a voice's harmonics are), 80 dB of log magnitude, with a
tick every kHz on the left edge. Smeared harmonics show as a blurred, striation-free band.
PNGs are written by the small encoder below (zlib from the standard library; no plotting library needed).
"""
import argparse
import json
import os
import struct
import sys
import tempfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clips as clipsets  # noqa: E402
import metrics  # noqa: E402
import model_runner  # noqa: E402

CLIPS = ("alsa-voice-0", "klettres-en-0")
CODEBOOKS = 8
NFFT = 1024
HOP_S = 0.010
TOP_HZ = 8000
RANGE_DB = 80.0
COLUMN_PX = 2
LEVELS = 40
# A dark-to-bright map (black, indigo, crimson, orange, pale yellow): loud parts stand out on a dark floor.
STOPS = np.array([[0, 0, 4], [40, 11, 84], [158, 42, 99], [246, 120, 31], [252, 255, 164]], dtype=np.float64)


def write_png(path, rgb):
    """8-bit RGB PNG (colour type 2, no interlace): signature, IHDR, one zlib IDAT, IEND. Every row uses the
    Sub filter (each byte minus the same colour's byte one pixel left), which zlib packs far better here."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    flat = rgb.reshape(height, width * 3)
    sub = flat.copy()
    sub[:, 3:] = flat[:, 3:] - flat[:, :-3]  # uint8 arithmetic wraps modulo 256, as the filter wants

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x01" + sub[y].tobytes() for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def spectrogram_db(x, rate):
    """Log magnitude (dB, peak 0) of a Hann-windowed STFT, [bins up to TOP_HZ, frames]."""
    hop = int(HOP_S * rate)
    window = np.hanning(NFFT + 1)[:-1]
    x = np.pad(np.asarray(x, dtype=np.float64), (NFFT // 2, NFFT))
    frames = np.lib.stride_tricks.sliding_window_view(x, NFFT)[::hop]
    mag = np.abs(np.fft.rfft(frames * window, axis=1)).T
    mag = mag[: int(TOP_HZ * NFFT / rate) + 1]
    if mag.max() < 1e-10:  # digital silence: all floor
        return np.full(mag.shape, -2 * RANGE_DB)
    return 20 * np.log10(np.maximum(mag, 1e-10) / mag.max())


def picture(db, rate):
    """RGB image of a spectrogram in dB: low frequencies at the bottom, kHz ticks on the left."""
    # 40 levels (2 dB steps): invisible banding, and far smaller files than a continuous scale
    level = np.round(np.clip(1 + db / RANGE_DB, 0, 1)[::-1] * LEVELS) / LEVELS  # row 0 = top
    pos = level * (len(STOPS) - 1)
    lo = np.minimum(pos.astype(int), len(STOPS) - 2)
    frac = (pos - lo)[..., None]
    rgb = STOPS[lo] * (1 - frac) + STOPS[lo + 1] * frac
    rgb = np.repeat(rgb, COLUMN_PX, axis=1)
    bins = db.shape[0]
    for khz in range(1, TOP_HZ // 1000):
        row = bins - 1 - int(round(khz * 1000 * NFFT / rate))
        rgb[row, :8] = 255
    return rgb


def model_label(model_dir):
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    return f"{manifest['name']}-{manifest['version']}"


def render(clips, decoded_by_label, rate, out_dir):
    """PNG per clip and signal; returns [(clip, {"reference" | label: file name})]. decoded_by_label: {label:
    {clip: audio}}; each decoding is aligned to its reference first (codec delay is not content)."""
    os.makedirs(out_dir, exist_ok=True)
    max_lag = int(0.1 * rate)
    written = []
    for clip in clips:
        files = {}
        signals = {"reference": clip.audio}
        for label, decoded in decoded_by_label.items():
            audio = decoded[clip.name]
            _, signals[label] = metrics.align(clip.audio, audio, metrics.estimate_delay(clip.audio, audio, max_lag))
        for label, audio in signals.items():
            name = f"{clip.name}-{label}.png"
            write_png(os.path.join(out_dir, name), picture(spectrogram_db(audio, rate), rate))
            files[label] = name
        written.append((clip.name, files))
    return written


def decode_with_models(clips, model_dirs, work_dir, rate):
    """{label: {clip: 6 kbps decoding through the CLI}}, one label per distinct model (name-version)."""
    out = {}
    for model_dir in model_dirs:
        label = model_label(model_dir)
        if label in out:
            continue
        results, _ = model_runner.run_cli(model_dir, clips, (CODEBOOKS,), os.path.join(work_dir, label), rate)
        out[label] = {name: decoded[CODEBOOKS] for name, (_, decoded) in results.items()}
    return out


def pick_clips(all_clips, names=CLIPS):
    by_name = {c.name: c for c in all_clips}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SystemExit(f"clips {missing} not in the reserved set (have: {', '.join(sorted(by_name))})")
    return [by_name[n] for n in names]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="model folders (manifest.json + graphs), e.g. model A and model B")
    ap.add_argument("--out", default=None, help="picture folder (default: <last model>/spectrograms)")
    ap.add_argument("--clips", nargs="+", default=list(CLIPS), help="reserved-set clip names")
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "tokstream-eval"))
    args = ap.parse_args()
    if not clipsets.reserved_available():
        raise SystemExit("reserved set not installed: apt-get install alsa-utils klettres-data asc-music")
    os.makedirs(args.cache_dir, exist_ok=True)
    clips = pick_clips(clipsets.load_reserved(args.cache_dir), args.clips)
    out_dir = args.out or os.path.join(args.models[-1], "spectrograms")
    with tempfile.TemporaryDirectory(dir=args.cache_dir) as work:
        decoded = decode_with_models(clips, args.models, work, clipsets.RATE)
    for clip, files in render(clips, decoded, clipsets.RATE, out_dir):
        print(clip, " ".join(os.path.join(out_dir, f) for f in files.values()))


if __name__ == "__main__":
    main()
