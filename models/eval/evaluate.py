"""Evaluate a tokstream model against Opus and Codec2 and write its REPORT.md (entirely; no hand edits).

  nice -n 10 /usr/bin/python3 models/eval/evaluate.py [--model models/default] [--heldout models/train/data/heldout]

Every system codes the same 24 kHz clips; decoded audio comes back at 24 kHz (Codec2 and STOI's resampling use
the same polyphase filter) and is aligned to the reference by one constant delay per system (the median of
per-clip cross-correlation peaks), so a codec's fixed latency is not scored as distortion. STOI is computed
from the 24 kHz pair (it resamples to 10 kHz internally, i.e. judges 150 Hz-4.3 kHz, where Codec2 and
narrowband Opus keep their content); log-mel, multi-resolution STFT and SI-SDR are computed at 16 kHz, a rate
at which every system's output is judged against the same wideband reference.
"""
import argparse
import csv
import os
import shlex
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import baselines  # noqa: E402
import clips as clipsets  # noqa: E402
import metrics  # noqa: E402
import model_runner  # noqa: E402
import report  # noqa: E402
import spectrograms  # noqa: E402

CODEBOOKS = (1, 2, 4, 8)
METRIC_RATE = 16000
MAX_DELAY_S = 0.1


def score(reference, decoded, rate, delay):
    ref, est = metrics.align(reference, decoded, delay)
    ref16, est16 = metrics.resample(ref, rate, METRIC_RATE), metrics.resample(est, rate, METRIC_RATE)
    return {
        "stoi": metrics.stoi(ref, est, rate),
        "log_mel": metrics.log_mel_distance(ref16, est16, METRIC_RATE),
        "mrstft": metrics.multi_resolution_stft_distance(ref16, est16, METRIC_RATE),
        "si_sdr": metrics.si_sdr(ref16, est16),
        **metrics.pitch_errors(ref16, est16, METRIC_RATE),
    }


def _stage(name, started):
    print(f"{name}: {time.time() - started:.0f} s", flush=True)


def code_all(clips, model_dir, work_dir, rate, frame_rate, bits_per_code):
    """{system: {"kind", "label", "nominal_bps", "bits": total payload bits, "decoded": {clip: audio}}}, codes."""
    systems = {}
    started = time.time()
    results, prefix_mismatches = model_runner.run_cli(model_dir, clips, CODEBOOKS, os.path.join(work_dir, "model"), rate)
    for k in CODEBOOKS:
        nominal = k * bits_per_code * frame_rate
        systems[f"model-{k}"] = {"kind": "model", "label": f"tokstream, {k} codebook{'s' * (k > 1)}",
                                 "nominal_bps": nominal, "decoded": {}, "bits": 0.0}
        for clip in clips:
            systems[f"model-{k}"]["decoded"][clip.name] = results[clip.name][1][k]
            systems[f"model-{k}"]["bits"] += nominal * clip.audio.size / rate
    codes = {clip.name: results[clip.name][0] for clip in clips}
    _stage("model through the CLI", started)
    started = time.time()
    base_dir = os.path.join(work_dir, "baselines")
    os.makedirs(base_dir, exist_ok=True)
    runs = [("opus", b, f"Opus {b // 1000} kbps", baselines.opus_round_trip) for b in baselines.OPUS_BITRATES]
    runs += [("codec2", m, f"Codec2 {m}", baselines.codec2_round_trip) for m in baselines.CODEC2_MODES]
    for kind, setting, label, round_trip in runs:
        system = systems[f"{kind}-{setting}"] = {"kind": kind, "label": label, "nominal_bps": setting,
                                                 "decoded": {}, "bits": 0.0}
        for clip in clips:
            audio, bits = round_trip(clip.audio, rate, setting, base_dir, clip.name)
            system["decoded"][clip.name] = audio
            system["bits"] += bits
    _stage("Opus and Codec2", started)
    return systems, codes, prefix_mismatches


def score_all(clips, systems, rate):
    rows = []
    max_lag = int(MAX_DELAY_S * rate)
    for name, system in systems.items():
        delays = [metrics.estimate_delay(c.audio, system["decoded"][c.name], max_lag) for c in clips]
        system["delay"] = int(np.median(delays))
        for clip in clips:
            row = {"system": name, "clip": clip.name, "subset": clip.subset, "category": clip.category}
            row.update(score(clip.audio, system["decoded"][clip.name], rate, system["delay"]))
            rows.append(row)
    return rows


def other_versions(model_dir):
    """Folders beside model_dir holding other versions of the same model (e.g. models/default-1.0.0), oldest first."""
    parent, here = os.path.split(os.path.abspath(model_dir))
    name = report.read_json(os.path.join(model_dir, "manifest.json"))["name"]
    found = []
    for entry in sorted(os.listdir(parent)):
        path = os.path.join(parent, entry)
        manifest_path = os.path.join(path, "manifest.json")
        if entry == here or not os.path.isfile(manifest_path):
            continue
        manifest = report.read_json(manifest_path)
        if manifest.get("name") == name:
            found.append((tuple(int(p) if p.isdigit() else 0 for p in str(manifest.get("version", "")).split(".")), path))
    return [path for _, path in sorted(found)]


def draw_spectrograms(clips, systems, model_dir, compare_dirs, work_dir, rate, out_dir):
    """Reference / other models / this model spectrograms of two reserved speech clips (6 kbps)."""
    picked = spectrograms.pick_clips([c for c in clips if c.subset == "reserved"])
    decoded = spectrograms.decode_with_models(picked, compare_dirs, work_dir, rate)
    decoded[spectrograms.model_label(model_dir)] = {c.name: systems[f"model-{spectrograms.CODEBOOKS}"]["decoded"][c.name]
                                                    for c in picked}
    os.makedirs(out_dir, exist_ok=True)
    for old in os.listdir(out_dir):
        if old.endswith(".png"):
            os.remove(os.path.join(out_dir, old))
    return spectrograms.render(picked, decoded, rate, out_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/default", help="model folder (manifest.json + graphs)")
    ap.add_argument("--heldout", default="models/train/data/heldout", help="held-out set (list.tsv + wav)")
    ap.add_argument("--out", default=None, help="report path (default: <model>/REPORT.md)")
    ap.add_argument("--training-log", default=None, help="training_log.csv (default: next to the model, in "
                                                         "the exported checkpoint's run folder, or the newest run's)")
    ap.add_argument("--no-reserved", action="store_true", help="skip the reserved set even when installed")
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "tokstream-eval"),
                    help="cache for decoded reserved clips and scratch files")
    ap.add_argument("--compare-models", nargs="*", default=None,
                    help="model folders drawn beside this one in the spectrograms (default: other versions of the "
                         "same model next to it, e.g. models/default-1.0.0)")
    ap.add_argument("--per-clip-csv", default=None, help="also write every per-clip score here")
    args = ap.parse_args()
    started = time.time()
    out_path = args.out or os.path.join(args.model, "REPORT.md")
    manifest = report.read_json(os.path.join(args.model, "manifest.json"))
    rate = manifest["sampleRate"]
    if rate != clipsets.RATE:
        raise SystemExit(f"model rate {rate} Hz: the evaluation sets are built at {clipsets.RATE} Hz")

    clips = clipsets.load_heldout(args.heldout)
    reserved_used = not args.no_reserved and clipsets.reserved_available()
    if reserved_used:
        clips += clipsets.load_reserved(args.cache_dir)
    _stage(f"{len(clips)} clips loaded", started)
    with tempfile.TemporaryDirectory(dir=args.cache_dir if os.path.isdir(args.cache_dir) else None) as work:
        systems, codes, prefix_mismatches = code_all(clips, args.model, work, rate, rate / manifest["hopLength"],
                                                     np.log2(manifest["codebookSize"]))
        scoring_started = time.time()
        rows = score_all(clips, systems, rate)
        _stage("metrics", scoring_started)
        pictures = None
        if reserved_used:
            compare = other_versions(args.model) if args.compare_models is None else args.compare_models
            picture_dir = os.path.join(os.path.dirname(out_path), "spectrograms")
            pictures = (os.path.relpath(picture_dir, os.path.dirname(out_path) or "."),
                        draw_spectrograms(clips, systems, args.model, compare, os.path.join(work, "pictures"), rate,
                                          picture_dir))
    if args.per_clip_csv:
        with open(args.per_clip_csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    command = "nice -n 10 /usr/bin/python3 models/eval/evaluate.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = report.render(
        manifest=manifest, model_dir=args.model, clips=clips, systems=systems, rows=rows, codes=codes,
        prefix_mismatches=prefix_mismatches, spectrograms=pictures,
        reserved_used=reserved_used, heldout_dir=args.heldout, training_log=args.training_log,
        command=command.strip(), runtime_s=time.time() - started)
    with open(out_path, "w") as f:
        f.write(text)
    print(f"wrote {out_path} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
