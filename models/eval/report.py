"""Markdown for REPORT.md: results tables, targets, method, training curves and reproduction commands."""
import json
import os
import subprocess
import time

import numpy as np

import metrics
import training_summary

METRICS = (("stoi", "STOI ↑", "{:.3f}"), ("log_mel", "log-mel dist ↓", "{:.3f}"),
           ("mrstft", "MR-STFT dist ↓", "{:.3f}"), ("si_sdr", "SI-SDR dB ↑", "{:.1f}"))
KIND_ORDER = {"model": 0, "opus": 1, "codec2": 2}
TARGETS = (  # (model system, baseline system, what the issue asks)
    ("model-8", "opus-6000", "6 kbps (8 codebooks): STOI at or above Opus 6 kbps"),
    ("model-2", "codec2-1600", "1.5 kbps (2 codebooks): STOI at or above Codec2 1600"),
)

PITCH_TARGET = ("model-8", "opus-6000", "6 kbps pitch: VDE and GPE within 2 points of Opus 6 kbps")
PITCH_TARGET_MARGIN = 0.02


def read_json(path):
    with open(path) as f:
        return json.load(f)


def _mean(rows, key):
    return float(np.mean([r[key] for r in rows]))


def _system_order(systems):
    return sorted(systems, key=lambda s: (KIND_ORDER[systems[s]["kind"]], systems[s]["nominal_bps"]))


def _pitch(rows, system):
    return metrics.pooled_pitch_errors([r for r in rows if r["system"] == system])


def _results_table(systems, rows, pitch=False):
    head = "| system | kbps | " + " | ".join(m[1] for m in METRICS) + (" | VDE % ↓ | GPE % ↓" if pitch else "") + " |"
    lines = [head, "|" + " --- |" * (2 + len(METRICS) + 2 * pitch)]
    for name in _system_order(systems):
        sel = [r for r in rows if r["system"] == name]
        cells = [fmt.format(_mean(sel, key)) for key, _, fmt in METRICS]
        if pitch:
            cells += [f"{100 * v:.1f}" for v in _pitch(sel, name).values()]
        lines.append(f"| {systems[name]['label']} | {systems[name]['nominal_bps'] / 1000:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _target_lines(systems, rows):
    lines, short = [], []
    speech = [r for r in rows if r["subset"] == "held-out" and r["category"] == "speech"]
    for model, base, text in TARGETS:
        ours = {r["clip"]: r["stoi"] for r in speech if r["system"] == model}
        theirs = {r["clip"]: r["stoi"] for r in speech if r["system"] == base}
        diff = np.array([ours[c] - theirs[c] for c in ours])
        wins = int((diff >= 0).sum())
        # Paired bootstrap of the mean STOI difference (fixed seed: the report is reproducible).
        rng = np.random.default_rng(0)
        boot = diff[rng.integers(0, diff.size, (2000, diff.size))].mean(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        met = diff.mean() >= 0
        verdict = "**met**" if met else "**not met**"
        lines.append(f"- {text}: {verdict}. Held-out speech STOI {np.mean(list(ours.values())):.3f} vs "
                     f"{np.mean(list(theirs.values())):.3f} ({systems[base]['label']}); mean paired difference "
                     f"{diff.mean():+.3f} (95 % bootstrap interval {lo:+.3f} to {hi:+.3f}); "
                     f"at or above on {wins} of {diff.size} clips.")
        if not met:
            short.append(text)
    for subset in ("held-out", "reserved"):
        sel = [r for r in rows if r["subset"] == subset and r["category"] == "speech"]
        if not sel:
            continue
        ours, theirs = _pitch(sel, PITCH_TARGET[0]), _pitch(sel, PITCH_TARGET[1])
        met = all(ours[k] <= theirs[k] + PITCH_TARGET_MARGIN for k in ("vde", "gpe"))
        lines.append(f"- {PITCH_TARGET[2]}, {subset} speech: {'**met**' if met else '**not met**'}. VDE "
                     f"{100 * ours['vde']:.1f} % vs {100 * theirs['vde']:.1f} %, GPE {100 * ours['gpe']:.1f} % vs "
                     f"{100 * theirs['gpe']:.1f} % ({systems[PITCH_TARGET[1]]['label']}).")
        if not met:
            short.append(PITCH_TARGET[2])
    return lines, short


def _stoi_by_kind(systems, rows):
    """Held-out speech STOI split by item kind (clip name prefix), for the systems the targets compare."""
    speech = [r for r in rows if r["subset"] == "held-out" and r["category"] == "speech"]
    kinds = sorted({r["clip"].split("_")[0].split("-")[0] for r in speech})
    names = [n for pair in TARGETS for n in pair[:2]]
    lines = ["| held-out speech items | clips | " + " | ".join(systems[n]["label"] for n in names) + " |",
             "|" + " --- |" * (2 + len(names))]
    for kind in kinds:
        sel = [r for r in speech if r["clip"].split("_")[0].split("-")[0] == kind]
        cells = [f"{_mean([r for r in sel if r['system'] == n], 'stoi'):.3f}" for n in names]
        lines.append(f"| {kind} | {len(sel) // len(systems)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _usage_table(codes_by_clip, clips, codebook_size):
    held = [codes_by_clip[c.name] for c in clips if c.subset == "held-out"]
    stacked = np.concatenate(held, axis=1)
    lines = ["| codebook | entries used | of | perplexity | log2 perplexity (bits) |", "| --- | --- | --- | --- | --- |"]
    for q in range(stacked.shape[0]):
        used, perplexity = metrics.codebook_usage(stacked[q], codebook_size)
        lines.append(f"| {q + 1} | {used} | {codebook_size} | {perplexity:.1f} | {np.log2(perplexity):.2f} |")
    return stacked.shape[1], "\n".join(lines)


def _bitrate_table(systems, clips, rate):
    seconds = sum(c.audio.size for c in clips) / rate
    lines = ["| system | nominal bit/s | measured payload bit/s | delay removed (ms) |", "| --- | --- | --- | --- |"]
    for name in _system_order(systems):
        s = systems[name]
        lines.append(f"| {s['label']} | {s['nominal_bps']:.0f} | {s['bits'] / seconds:.0f} | "
                     f"{1000 * s['delay'] / rate:.1f} |")
    return "\n".join(lines)


def _set_table(clips, rate):
    lines = ["| subset | category | clips | seconds | sources |", "| --- | --- | --- | --- | --- |"]
    for subset in ("held-out", "reserved"):
        for category in ("speech", "music"):
            sel = [c for c in clips if c.subset == subset and c.category == category]
            if not sel:
                continue
            sources = sorted({part.split("/")[0].split(" @")[0] for c in sel for part in c.source.split(" + ")})
            shown = ", ".join(sources[:12]) + (f", … ({len(sources)} in all)" if len(sources) > 12 else "")
            lines.append(f"| {subset} | {category} | {len(sel)} | {sum(c.audio.size for c in sel) / rate:.1f} | {shown} |")
    return "\n".join(lines)


def _versions():
    query = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", "codec2", "libopus0", "ffmpeg",
                            "espeak-ng", "fluidsynth"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return ", ".join(query.stdout.split("\n")[:-1]).strip() or "unknown"


def _spectrogram_section(pictures):
    folder, drawn = pictures
    labels = list(drawn[0][1])
    lines = ["| clip | " + " | ".join(labels) + " |", "|" + " --- |" * (1 + len(labels))]
    for clip, files in drawn:
        lines.append(f"| {clip} | " + " | ".join(f"![{clip} {label}]({folder}/{files[label]})" for label in labels) + " |")
    return ["", "## Spectrograms (reserved speech, 6 kbps)", "",
            "Reference and each model version's 8-codebook decoding, aligned (`models/eval/spectrograms.py`): "
            "0-8 kHz bottom to top with a tick per kHz on the left, 10 ms per 2 px column, 80 dB range. Voiced speech "
            "shows as stacked harmonic stripes in the reference; a decoder that smears them leaves a blurred band.",
            "", "\n".join(lines)]


def render(manifest, model_dir, clips, systems, rows, codes, prefix_mismatches, reserved_used, heldout_dir, training_log, command,
           runtime_s, spectrograms=None):
    rate = manifest["sampleRate"]
    untrained = os.path.exists(os.path.join(model_dir, ".untrained"))
    out = [f"# {manifest['name']} model: evaluation report", "",
           f"Written by `models/eval/evaluate.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
           f"in {runtime_s:.0f} s; do not edit by hand, re-run the command at the end.", "",
           f"Model `{manifest['name']}` version `{manifest['version']}`: {manifest['sampleRate']} Hz, hop "
           f"{manifest['hopLength']} ({manifest['sampleRate'] / manifest['hopLength']:g} frames/s), "
           f"{manifest['numCodebooks']} × {manifest['codebookSize']} codebooks, encoder sha256 "
           f"`{manifest['encoder']['sha256'][:12]}…`, decoder sha256 `{manifest['decoder']['sha256'][:12]}…`."]
    if untrained:
        out += ["", "> **This is the UNTRAINED random-initialisation export** (`.untrained` marker present): the "
                    "numbers below test the evaluation pipeline, not the codec."]
    provenance = manifest.get("provenance", {})
    log_path = training_summary.find_log(model_dir, training_log, provenance.get("command"))
    run = training_summary.TrainingRun(log_path, provenance.get("command")) if log_path else None
    target_lines, short = _target_lines(systems, rows)
    out += ["", "## Targets (held-out speech)", ""] + target_lines
    out += ["", "STOI by kind of held-out speech (tts: espeak-ng voices; words: ktuberling-data recordings):", "",
            _stoi_by_kind(systems, rows)]
    if short:
        out += ["", training_summary.gap_advice(run)]
    for subset in ("held-out", "reserved"):
        for category in ("speech", "music"):
            sel = [r for r in rows if r["subset"] == subset and r["category"] == category]
            if not sel:
                continue
            n = len({r["clip"] for r in sel})
            title = f"{'Held-out' if subset == 'held-out' else 'Reserved'} set, {category} ({n} clips)"
            out += ["", f"## {title}", "", _results_table(systems, sel, pitch=category == "speech")]
            if category == "music":
                out += ["", "STOI is a speech-intelligibility measure; on music it only says how well band "
                            "envelopes survive."]
    if not reserved_used:
        out += ["", "## Reserved set", "", "Not evaluated: alsa-utils, klettres-data or asc-music is not installed "
                                           "(`apt-get install alsa-utils klettres-data asc-music`)."]
    if spectrograms:
        out += _spectrogram_section(spectrograms)
    frames, usage = _usage_table(codes, clips, manifest["codebookSize"])
    out += ["", "## Codebook usage (held-out set)", "",
            f"Over all {frames} token frames the encoder emitted for the held-out clips (speech and music). "
            "Perplexity is exp(entropy) of the code histogram; log2 of it is the information the codebook "
            f"really carries per frame, out of {np.log2(manifest['codebookSize']):g} bits.", "", usage]
    out += ["", "## Bitrates and delays", "", _bitrate_table(systems, clips, rate), "",
            "Model bit/s are exact (K codebooks × 10 bits × 75 frames/s, before any container). Opus payload "
            "excludes Ogg framing and headers; Codec2 is its raw bit file."]
    out += ["", "## Method", "", "Evaluation sets:", "", _set_table(clips, rate), "",
            f"- Held-out set: `{heldout_dir}/list.tsv`, written by `models/train/prepare_data.py`: voices, words and "
            "tunes whose names hash into its held-out bucket, never in the training array. Consecutive single words "
            "are joined (0.15 s pauses) into ≥ 3 s items before coding, because one word is too short for STOI.",
            "- Reserved set (Debian packages kept for evaluation only, never used in training): alsa-utils voice "
            "recordings, klettres-data letters and syllables, asc-music excerpts. sound-theme-freedesktop's voice "
            "clips are Vorbis copies of the alsa-utils ones and are left out.",
            "- Every system gets the same 24 kHz 16-bit clip. The model runs through the shipped CLI, one thread: "
            "`tokstream encode clip.wav -o clip.tok --codebooks K` then `tokstream decode clip.tok -o out.wav` "
            "for each K (the windowed streaming encoder and decoder; 16-bit WAV out). The K-codebook token files "
            f"held exactly the first K codebooks of the 8-codebook file for {len(clips) - prefix_mismatches} of "
            f"{len(clips)} clips. Opus: "
            "ffmpeg libopus, VBR at the nominal bitrate, default `audio` application and 20 ms frames, decoded by "
            "ffmpeg to 24 kHz; at 6 and 8 kbps libopus codes narrowband (4 kHz audio band), at 12 kbps wideband "
            "(8 kHz). Codec2: `c2enc`/`c2dec` on 8 kHz s16 (its only format), resampled 24→8→24 kHz with the "
            "same polyphase filter the metrics use.",
            "- Alignment: each system's output is shifted by one constant delay (median over clips of the "
            "cross-correlation peak within ±100 ms), shown above, so fixed latency is not scored as distortion.",
            "- Comparison rates (fairness): STOI from the aligned 24 kHz pair; it resamples to 10 kHz and judges "
            "150 Hz-4.3 kHz, which Codec2 (4 kHz band) and narrowband Opus keep, so on the headline metric the "
            "narrowband codecs lose nothing by design. Log-mel distance, multi-resolution STFT distance and SI-SDR "
            "are computed at 16 kHz against the same reference for every system: there the narrowband codecs are "
            "charged for the 4-8 kHz band they drop, a real loss a listener hears; the model's content above 8 kHz "
            "is not scored at all.",
            "- Metrics (`models/eval/metrics.py`, tested by `test/integration/eval-metrics-python.test.ts`): STOI after Taal et al. 2011 "
            "(10 kHz, 384 ms segments, 15 third-octave bands from 150 Hz, −15 dB SDR clipping bound, 40 dB "
            "silent-frame removal); log-mel distance = mean |Δ log10| of 80-band mel magnitudes (64 ms window, "
            "16 ms hop, floor 1e-5); multi-resolution STFT distance = mean over three resolutions (Parallel WaveGAN's, "
            "scaled to the rate) of spectral convergence + mean |Δ ln magnitude|; SI-SDR after Le Roux et al. 2019. "
            "Table values are means over clips.",
            "- Pitch (speech tables): F0 per 10 ms frame by YIN (de Cheveigné & Kawahara 2002; 25 ms window, 60-500 Hz, "
            "absolute threshold 0.15) on the aligned 16 kHz pair, a frame voiced when its normalised dip is under "
            "0.35 and it is within 40 dB of the signal's loudest frame. VDE = share of all frames where reference and "
            "decoded disagree on voicing; GPE = share of the frames voiced in both where the decoded F0 is more than "
            "20 % off. Both are pooled over the frames of all clips in the table. A decoder that smears harmonics into "
            "a buzzy envelope loses its periodicity (VDE) or its F0 (GPE) even where STOI stays high.",
            "- SI-SDR rewards waveform matching. Parametric Codec2 does not preserve phase, and neither need a "
            "decoder trained only on magnitude (mel / STFT) losses, so their SI-SDR is strongly negative even when "
            "the speech is intelligible; read it for Opus and as a sanity check, not as the model's quality.",
            f"- Tools: {_versions()}."]
    out += ["", "## Training curves", ""]
    out += run.section() if run else ["No training log was found (looked for training_log.csv next to the model, "
                                      "in the exported checkpoint's folder and under models/train/runs/)."]
    out += ["", "## Reproduce", "",
            f"Model ({provenance.get('source', 'no provenance source in manifest')}), from manifest.json "
            "`provenance.command`:", "", "```", provenance.get("command", "(manifest.json has no provenance.command)"),
            "```", ""]
    out += [f"- `provenance.{key}`: {value}" for key, value in provenance.items()
            if key not in ("source", "command") and isinstance(value, str)]
    out += ["",
            "This report (from the repository root; needs the held-out set above and, for the reserved set, "
            "`apt-get install alsa-utils klettres-data asc-music`):", "", "```", command, "```", ""]
    return "\n".join(out)
