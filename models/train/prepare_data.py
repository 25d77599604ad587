"""Build the training array and the held-out evaluation set from Debian packages only (seeded, deterministic).

  /usr/bin/python3 models/train/prepare_data.py [--train-seconds 620] [--out .traindata] [--heldout models/train/data/heldout]

Sources: espeak-ng speech over many voices/languages/variants, real recorded words from ktuberling-data,
music rendered by fluidsynth (FluidR3_GM) from openttd-openmsx MIDI files, real recorded running speech from
Asterisk's IVR prompts (asterisk-core-sounds-{en,es,fr}-g722: three speakers, 16 kHz G.722) and festival's
diphone voices (festvox-kallpc16k, festvox-kdlpc16k: real male voices, joined diphones, 16 kHz). Noise and silence are
synthesised on the fly by train.py (they cost nothing to carry). Held out from training: every voice,
word and tune whose name hashes into the held-out bucket; those go to <heldout>/*.wav with list.tsv.
Never uses the reserved evaluation sets (alsa-utils, sound-theme-freedesktop, klettres-data, asc-music).

Output: <out>/train.npz with `audio` (int16, 24 kHz mono, clips separated by 0.1 s of silence),
`category_names` (tts, words, music, ivr, diphone) and `category_bounds` ([start, end) sample ranges of each).
"""
import argparse
import glob
import os
import random
import re
import subprocess
import tempfile
import zlib

import numpy as np

SR = 24000
KTUBERLING = "/usr/share/ktuberling/sounds"
MIDI_DIR = "/usr/share/games/openttd/baseset/openmsx"
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
ASTERISK = "/usr/share/asterisk/sounds"
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone")
TEXT_SOURCES = ["/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0",
                "/usr/share/common-licenses/MPL-2.0", "/usr/share/common-licenses/Artistic"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "klatt4", "Alex", "Annie", "john", "linda", "max", "steph", "paul", "quincy", "zac",
            "Andy", "belinda", "benjamin", "caleb", "david", "ed", "grandma", "grandpa", "whisperf", "norbert"]
GAP = np.zeros(int(0.1 * SR), np.int16)


def heldout(name, buckets):
    """Stable split by name: about 1/buckets of voices, words and tunes are never trained on."""
    return zlib.crc32(name.encode()) % buckets == 0


def to_24k_mono(src, dst, extra=()):
    # -D: no dither, whose noise is random; keeps the output bit-reproducible
    subprocess.run(["sox", "-V1", "-D", src, "-r", str(SR), "-c", "1", "-b", "16", dst, *extra], check=True)


def read_wav(path):
    import scipy.io.wavfile as wavfile
    sr, x = wavfile.read(path)
    assert sr == SR and x.dtype == np.int16, (path, sr, x.dtype)
    return x


def normalise(x, peak_db=-1.0):
    x = x.astype(np.float32)
    peak = np.abs(x).max()
    if peak == 0:
        return x.astype(np.int16)
    return np.round(x * (32767 * 10 ** (peak_db / 20) / peak)).astype(np.int16)


def trim_silence(x, thresh=200):
    idx = np.nonzero(np.abs(x) > thresh)[0]
    return x[max(0, idx[0] - 1200): idx[-1] + 1200] if len(idx) else x[:0]


def sentences():
    text = " ".join(open(p, encoding="utf-8", errors="ignore").read() for p in TEXT_SOURCES)
    text = re.sub(r"\s+", " ", re.sub(r"[^A-Za-z0-9,.;:!?' ]", " ", text))
    return [s.strip() for s in re.split(r"(?<=[.;!?])\s", text) if 20 <= len(s.strip()) <= 90]


def espeak_voices():
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    return sorted({line.split()[1] for line in out.splitlines()[1:] if line.strip()})


def tts_clips(rng, tmp, seconds, held):
    """Alternate voices; each utterance gets a random sentence, numbers (spoken in the voice's language),
    speed, pitch and variant. Returns clips until `seconds` are collected."""
    voices = [v for v in espeak_voices() if heldout(v, 7) == held]
    texts = sentences()
    clips, total, i = [], 0.0, 0
    while total < seconds:
        voice = voices[i % len(voices)]
        i += 1
        variant = rng.choice(VARIANTS)
        text = rng.choice(texts) + " " + " ".join(str(rng.randint(0, 9999)) for _ in range(rng.randint(0, 2)))
        wav = os.path.join(tmp, "tts.wav")
        speak = subprocess.run(["espeak-ng", "-v", voice + ("+" + variant if variant else ""), "-s",
                                str(rng.randint(120, 210)), "-p", str(rng.randint(25, 75)), "-w", wav, text],
                               capture_output=True)
        if speak.returncode != 0:  # a few voice+variant pairs are refused; the seeded stream just moves on
            continue
        to_24k_mono(wav, wav + ".24k.wav")
        x = trim_silence(read_wav(wav + ".24k.wav"))
        if len(x) < SR // 2:
            continue
        x = x[: 4 * SR]
        clips.append((f"{voice}+{variant or 'default'}", x))
        total += len(x) / SR
    return clips


def word_clips(rng, tmp, seconds, held):
    files = sorted(f for f in glob.glob(os.path.join(KTUBERLING, "*", "*.ogg"))
                   if heldout(os.path.basename(f), 8) == held)
    rng.shuffle(files)
    clips, total = [], 0.0
    for f in files:
        if total >= seconds:
            break
        out = os.path.join(tmp, "word.wav")
        to_24k_mono(f, out)
        x = trim_silence(read_wav(out))
        if len(x) < SR // 4:
            continue
        clips.append((os.path.relpath(f, KTUBERLING), x))
        total += len(x) / SR
    return clips


def music_clips(rng, tmp, excerpts, excerpt_s, held):
    tunes = sorted(f for f in glob.glob(os.path.join(MIDI_DIR, "*.mid")) if heldout(os.path.basename(f), 6) == held)
    clips = []
    for f in tunes:
        out = os.path.join(tmp, "tune.wav")
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(SR), "-F", out + ".st.wav", SOUNDFONT, f],
                       check=True, capture_output=True)
        to_24k_mono(out + ".st.wav", out)
        x = trim_silence(read_wav(out))
        n = int(excerpt_s * SR)
        if len(x) < n:
            continue
        for _ in range(excerpts):
            s = rng.randrange(0, len(x) - n + 1)
            clips.append((os.path.basename(f), x[s:s + n]))
    return clips


def ivr_clips(rng, tmp, seconds, held):
    """Asterisk prompts, split by prompt name so a held-out prompt is never trained on in any language.
    Taken round-robin over the speakers so each gets an equal share."""
    by_speaker = {}
    for f in sorted(glob.glob(os.path.join(ASTERISK, "*", "**", "*.g722"), recursive=True)):
        if heldout(os.path.splitext(os.path.basename(f))[0], 8) == held:
            by_speaker.setdefault(os.path.relpath(f, ASTERISK).split(os.sep)[0], []).append(f)
    for files in by_speaker.values():
        rng.shuffle(files)
    queues = [list(v) for _, v in sorted(by_speaker.items())]
    clips, total, out = [], 0.0, os.path.join(tmp, "ivr.wav")
    while total < seconds and any(queues):
        for q in queues:
            if not q or total >= seconds:
                continue
            f = q.pop()
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "g722", "-i", f, "-ar", str(SR), "-ac", "1",
                            "-c:a", "pcm_s16le", out], check=True)
            x = trim_silence(read_wav(out))
            if len(x) < SR // 2:
                continue
            x = x[: 6 * SR]
            clips.append((os.path.relpath(f, ASTERISK), x))
            total += len(x) / SR
    return clips


def diphone_clips(rng, tmp, seconds, held):
    """festival's two diphone voices reading the licence sentences at random speaking rates. Held-out clips use
    the sentences whose text hashes into the held-out bucket."""
    texts = [t for t in sentences() if heldout(t, 9) == held]
    clips, total, i = [], 0.0, 0
    txt, wav = os.path.join(tmp, "say.txt"), os.path.join(tmp, "say.wav")
    while total < seconds:
        voice = FESTIVAL_VOICES[i % len(FESTIVAL_VOICES)]
        i += 1
        with open(txt, "w") as f:
            f.write(rng.choice(texts))
        stretch = rng.uniform(0.85, 1.2)
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-eval",
                        f"(Parameter.set 'Duration_Stretch {stretch:.3f})", txt, "-o", wav],
                       check=True, capture_output=True)
        to_24k_mono(wav, wav + ".24k.wav")
        x = trim_silence(read_wav(wav + ".24k.wav"))
        if len(x) < SR // 2:
            continue
        x = x[: 6 * SR]
        clips.append((voice, x))
        total += len(x) / SR
    return clips


def write_heldout(rng, tmp, out_dir):
    import scipy.io.wavfile as wavfile
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "*.wav")):
        os.remove(old)
    rows = []
    groups = [("tts", tts_clips(rng, tmp, 60, True)), ("words", word_clips(rng, tmp, 30, True)),
              ("music", music_clips(rng, tmp, 2, 8.0, True)),
              ("ivr", ivr_clips(rng, tmp, 45, True)), ("diphone", diphone_clips(rng, tmp, 25, True))]
    for category, clips in groups:
        for i, (source, x) in enumerate(clips):
            name = f"{category}_{i:03d}.wav"
            y = normalise(x, rng.uniform(-12, -1))
            wavfile.write(os.path.join(out_dir, name), SR, y)
            # IVR and diphone clips are running speech: evaluated like the tts rows.
            kind = "speech" if category in ("ivr", "diphone") else category
            rows.append(f"{name}\t{kind}\t{source}\t{len(y) / SR:.3f}")
    with open(os.path.join(out_dir, "list.tsv"), "w") as f:
        f.write("file\tcategory\tsource\tseconds\n" + "\n".join(rows) + "\n")
    return len(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".traindata")
    ap.add_argument("--heldout", default="models/train/data/heldout")
    ap.add_argument("--train-seconds", type=float, default=2400.0, help="stored training audio (int16 at 24 kHz)")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    share = {"tts": 0.12, "words": 0.08, "music": 0.2, "ivr": 0.45, "diphone": 0.15}
    with tempfile.TemporaryDirectory() as tmp:
        n_held = write_heldout(random.Random(args.seed + 1), tmp, args.heldout)
        tts = tts_clips(rng, tmp, share["tts"] * args.train_seconds, False)
        words = word_clips(rng, tmp, share["words"] * args.train_seconds, False)
        n_tunes = len([f for f in glob.glob(os.path.join(MIDI_DIR, "*.mid")) if not heldout(os.path.basename(f), 6)])
        excerpt_s = 4.0
        music = music_clips(rng, tmp, max(1, round(share["music"] * args.train_seconds / excerpt_s / n_tunes)),
                            excerpt_s, False)
        ivr = ivr_clips(rng, tmp, share["ivr"] * args.train_seconds, False)
        diphone = diphone_clips(rng, tmp, share["diphone"] * args.train_seconds, False)
    names = ("tts", "words", "music", "ivr", "diphone")
    parts, bounds, pos = [], [], 0
    for clips in (tts, words, music, ivr, diphone):
        start = pos
        for _, x in clips:
            y = normalise(x)
            parts += [y, GAP]
            pos += len(y) + len(GAP)
        bounds.append((start, pos))
    os.makedirs(args.out, exist_ok=True)
    audio = np.concatenate(parts)
    np.savez(os.path.join(args.out, "train.npz"), audio=audio, category_bounds=np.array(bounds, np.int64),
             category_names=np.array(names))
    print(f"train: {len(audio) / SR:.1f} s ({len(tts)} tts, {len(words)} words, {len(music)} music, {len(ivr)} ivr, "
          f"{len(diphone)} diphone clips), "
          f"bounds {bounds}; heldout: {n_held} files in {args.heldout}")


if __name__ == "__main__":
    main()
