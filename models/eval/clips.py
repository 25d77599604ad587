"""Evaluation clips: the held-out set written by models/train/prepare_data.py and the reserved set.

Held-out set (allowed sources; voices, words and tunes whose names hash into prepare_data.py's held-out bucket,
so never trained on): <heldout>/list.tsv with tts, words and music rows. Single ktuberling words (0.3-2 s)
are too short for STOI's 384 ms segments after silence removal, so consecutive words are joined by 0.15 s
pauses into items of at least WORD_ITEM_S before coding; every other row is one item as written.

Reserved set (Debian packages reserved for evaluation, never for training; used when installed):
  speech  alsa-utils channel announcements (8 recordings; Noise.wav left out), klettres-data letters and
          syllables of six languages, joined like the words;
  music   asc-music tracks, three excerpts each.
sound-theme-freedesktop's only voice clips (audio-channel-*.oga) are Vorbis copies of the alsa-utils recordings
(SI-SDR 20-30 dB against them), so they are left out rather than counted twice.

Every clip is mono float64 at 24 kHz on the 16-bit grid. Reserved clips are peak-normalised to -1 dBFS.
"""
import csv
import glob
import json
import os
import subprocess
from dataclasses import dataclass

import numpy as np

RATE = 24000
WORD_ITEM_S = 3.0
WORD_GAP_S = 0.15

RESERVED_ALSA = "/usr/share/sounds/alsa"
RESERVED_KLETTRES = "/usr/share/klettres"
RESERVED_KLETTRES_LANGUAGES = ("en", "de", "fr", "it", "nl", "cs")
RESERVED_KLETTRES_PER_LANGUAGE = 8
RESERVED_ASC = "/usr/share/games/asc/music"
RESERVED_MUSIC_EXCERPT_S = 8.0
RESERVED_MUSIC_STARTS_S = (30.0, 90.0, 150.0)


@dataclass
class Clip:
    name: str
    category: str  # "speech" | "music"
    subset: str  # "held-out" | "reserved"
    source: str
    audio: np.ndarray


def decode(path):
    """Any audio file ffmpeg reads -> mono float64 at RATE."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if out.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path}: {out.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(out.stdout, dtype="<f4").astype(np.float64)


def _join(parts):
    gap = np.zeros(int(WORD_GAP_S * RATE))
    out = []
    for part in parts:
        out += [part, gap]
    return np.concatenate(out[:-1])


def _word_items(words, prefix, subset):
    """Join consecutive (source, audio) words into items of at least WORD_ITEM_S (a short tail joins the last)."""
    groups, current = [], []
    for word in words:
        current.append(word)
        if sum(a.size for _, a in current) >= WORD_ITEM_S * RATE:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    return [Clip(f"{prefix}-{i}", "speech", subset, " + ".join(s for s, _ in group), _join([a for _, a in group]))
            for i, group in enumerate(groups)]


def load_heldout(heldout_dir):
    list_path = os.path.join(heldout_dir, "list.tsv")
    if not os.path.exists(list_path):
        raise FileNotFoundError(f"{list_path} missing: build the held-out set with "
                                "`/usr/bin/python3 models/train/prepare_data.py` first")
    with open(list_path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips, words = [], []
    for row in rows:
        audio = decode(os.path.join(heldout_dir, row["file"]))
        stem = os.path.splitext(row["file"])[0]
        if row["category"] == "words":
            words.append((row["source"], audio))
        elif row["category"] in ("tts", "speech"):
            clips.append(Clip(stem, "speech", "held-out", row["source"], audio))
        elif row["category"] == "music":
            clips.append(Clip(stem, "music", "held-out", row["source"], audio))
        else:
            raise ValueError(f"{list_path}: unknown category {row['category']!r}")
    return clips + _word_items(words, "words", "held-out")


def reserved_available():
    return all(os.path.isdir(d) for d in (RESERVED_ALSA, RESERVED_KLETTRES, RESERVED_ASC))


def _peak_normalise(x, peak_db=-1.0):
    peak = np.abs(x).max()
    return x if peak == 0 else x * (10 ** (peak_db / 20) / peak)


def _trim(x, threshold_db=-50.0, margin_s=0.05):
    """Cut leading/trailing near-silence (relative to the peak), keeping a short margin."""
    above = np.nonzero(np.abs(x) > np.abs(x).max() * 10 ** (threshold_db / 20))[0]
    if above.size == 0:
        return x
    margin = int(margin_s * RATE)
    return x[max(0, above[0] - margin): above[-1] + margin]


def _load_reserved():
    alsa = sorted(f for f in glob.glob(os.path.join(RESERVED_ALSA, "*.wav")) if not f.endswith("Noise.wav"))
    clips = _word_items([(os.path.basename(f), _trim(decode(f))) for f in alsa], "alsa-voice", "reserved")
    for lang in RESERVED_KLETTRES_LANGUAGES:
        files = sorted(glob.glob(os.path.join(RESERVED_KLETTRES, lang, "syllab", "*.ogg")))
        files += sorted(glob.glob(os.path.join(RESERVED_KLETTRES, lang, "alpha", "*.ogg")))
        # Spread the picks over letters and syllables.
        picked = files[:: max(1, len(files) // RESERVED_KLETTRES_PER_LANGUAGE)][:RESERVED_KLETTRES_PER_LANGUAGE]
        words = [(f"{lang}/{os.path.basename(f)}", _trim(decode(f))) for f in picked]
        clips += _word_items(words, f"klettres-{lang}", "reserved")
    n = int(RESERVED_MUSIC_EXCERPT_S * RATE)
    for track in sorted(glob.glob(os.path.join(RESERVED_ASC, "*.mp3"))):
        name = os.path.splitext(os.path.basename(track))[0]
        full = decode(track)
        for i, start_s in enumerate(RESERVED_MUSIC_STARTS_S):
            start = int(start_s * RATE)
            if start + n <= full.size:
                clips.append(Clip(f"asc-{name}-{i}", "music", "reserved", f"asc-music {name} @{start_s:.0f}s",
                                  full[start: start + n]))
    for clip in clips:
        # On the 16-bit grid, like the held-out WAVs: every system then codes exactly the reference.
        clip.audio = np.round(_peak_normalise(clip.audio) * 32768) / 32768
    return clips


def load_reserved(cache_dir):
    """Reserved clips, cached as float32 (decoding the mp3 tracks is the slow part)."""
    cache = os.path.join(cache_dir, "reserved-v2")
    index_path = os.path.join(cache, "index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        return [Clip(c["name"], c["category"], c["subset"], c["source"],
                     np.fromfile(os.path.join(cache, c["name"] + ".f32"), dtype="<f4").astype(np.float64))
                for c in index]
    clips = _load_reserved()
    os.makedirs(cache, exist_ok=True)
    for clip in clips:
        clip.audio = clip.audio.astype("<f4").astype(np.float64)
        clip.audio.astype("<f4").tofile(os.path.join(cache, clip.name + ".f32"))
    with open(index_path, "w") as f:
        json.dump([{"name": c.name, "category": c.category, "subset": c.subset, "source": c.source}
                   for c in clips], f, indent=1)
    return clips
