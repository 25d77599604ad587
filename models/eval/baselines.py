"""Classic codecs as reference points: Opus (libopus via ffmpeg) and Codec2 (Debian's c2enc/c2dec).

Every function takes and returns float mono audio at `rate` (the model's 24 kHz), so all systems are scored
against the same reference by the same code. Each round trip really encodes to the bitstream and decodes it.
"""
import os
import subprocess

import numpy as np

from metrics import resample

OPUS_BITRATES = (6000, 8000, 12000)
CODEC2_MODES = (1200, 1600, 3200)
CODEC2_RATE = 8000


def _run(args):
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')[-500:]}")
    return result.stdout


def _to_s16(audio):
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).round().astype("<i2").tobytes()


def opus_round_trip(audio, rate, bitrate, work_dir, name):
    """libopus, VBR at the nominal bitrate, default 'audio' application and 20 ms frames, in an Ogg file."""
    raw = os.path.join(work_dir, f"{name}.opus{bitrate}.s16")
    ogg = os.path.join(work_dir, f"{name}.opus{bitrate}.ogg")
    with open(raw, "wb") as f:
        f.write(_to_s16(audio))
    _run(["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", raw,
          "-c:a", "libopus", "-b:a", str(bitrate), ogg])
    # ffmpeg honours the Ogg pre-skip, so the decoded signal starts where the input did.
    decoded = _run(["ffmpeg", "-v", "error", "-i", ogg, "-f", "f32le", "-ar", str(rate), "-ac", "1", "-"])
    out = np.frombuffer(decoded, dtype="<f4").astype(np.float64)
    payload_bits = _ogg_payload_bytes(ogg) * 8
    return _fit(out, audio.size), payload_bits


def codec2_round_trip(audio, rate, mode, work_dir, name):
    """Codec2 at `mode` bit/s: 8 kHz s16 raw in and out (its only format), resampled with the same polyphase filter."""
    raw = os.path.join(work_dir, f"{name}.c2in.s16")
    bits = os.path.join(work_dir, f"{name}.c2_{mode}.bit")
    out_raw = os.path.join(work_dir, f"{name}.c2_{mode}.s16")
    with open(raw, "wb") as f:
        f.write(_to_s16(resample(audio, rate, CODEC2_RATE)))
    _run(["c2enc", str(mode), raw, bits])
    _run(["c2dec", str(mode), bits, out_raw])
    out = np.fromfile(out_raw, dtype="<i2").astype(np.float64) / 32768
    return _fit(resample(out, CODEC2_RATE, rate), audio.size), os.path.getsize(bits) * 8


def _fit(x, n):
    """Cut or zero-pad a decoded signal to the input length (codecs round up to whole frames)."""
    return x[:n] if x.size >= n else np.pad(x, (0, n - x.size))


def _ogg_payload_bytes(path):
    """Bytes of Opus packets in an Ogg file (page headers and the two header packets excluded)."""
    with open(path, "rb") as f:
        data = f.read()
    pos, page, payload = 0, 0, 0
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"{path}: bad Ogg page at byte {pos}")
        segments = data[pos + 26]
        lacing = data[pos + 27: pos + 27 + segments]
        body = sum(lacing)
        if page >= 2:  # pages 0 and 1 carry OpusHead and OpusTags
            payload += body
        pos += 27 + segments + body
        page += 1
    return payload
