"""Reads the training run behind a model (training_log.csv + provenance.json) and summarises its curves."""
import csv
import glob
import json
import os
import re

import numpy as np

ADVERSARIAL_COLUMNS = re.compile(r"adv|disc|gan|feat", re.IGNORECASE)


def _arg(command, flag):
    match = re.search(re.escape(flag) + r"\s+(\S+)", command or "")
    return match.group(1) if match else None


def find_log(model_dir, explicit, provenance_command):
    """The log of the run the model was exported from: next to the model, or by its --checkpoint, else the newest."""
    if explicit:
        return explicit
    candidates = [os.path.join(model_dir, "training_log.csv")]
    checkpoint = _arg(provenance_command, "--checkpoint")
    if checkpoint:
        candidates += [checkpoint + ".training_log.csv", os.path.join(os.path.dirname(checkpoint), "training_log.csv")]
    candidates += sorted(glob.glob("models/train/runs/*/training_log.csv"), key=os.path.getmtime, reverse=True)
    return next((c for c in candidates if os.path.exists(c)), None)


def find_provenance(log_path, provenance_command):
    """train.py's provenance.json for that run: named by --train-provenance, beside the checkpoint or the log."""
    checkpoint = _arg(provenance_command, "--checkpoint")
    candidates = [_arg(provenance_command, "--train-provenance")]
    if checkpoint:
        candidates += [checkpoint + ".provenance.json", os.path.join(os.path.dirname(checkpoint), "provenance.json")]
    candidates.append(os.path.join(os.path.dirname(log_path), "provenance.json"))
    return next((c for c in candidates if c and os.path.exists(c)), None)


class TrainingRun:
    def __init__(self, log_path, provenance_command):
        self.log_path = log_path
        with open(log_path, newline="") as f:
            self.rows = list(csv.DictReader(f))
        self.provenance_path = find_provenance(log_path, provenance_command)
        self.provenance = {}
        if self.provenance_path:
            with open(self.provenance_path) as f:
                self.provenance = json.load(f)
        self.mel = np.array([float(r["mel"]) for r in self.rows]) if self.rows else np.array([])

    def tail_change(self):
        """Relative change of the mean mel loss over the last 10 % of logged points vs the 10 % before."""
        tail = max(1, len(self.rows) // 10)
        if len(self.rows) < 2 * tail:
            return tail, float("nan")
        before, last = self.mel[-2 * tail:-tail].mean(), self.mel[-tail:].mean()
        return tail, (last - before) / before

    def has_adversarial_loss(self):
        return bool(self.rows) and any(ADVERSARIAL_COLUMNS.search(k) for k in self.rows[0])

    def budget_text(self):
        p = self.provenance
        if "train_seconds" not in p:
            return f"for {self.rows[-1]['step']} steps ({float(self.rows[-1]['seconds']) / 60:.1f} min) by its log"
        return (f"for {p['train_seconds'] / 60:.1f} min, {p.get('steps', '?')} steps, {p.get('audio_hours_seen', '?')} "
                f"h of audio seen, on {p.get('device', 'an unrecorded device')}")

    def section(self):
        if not self.rows:
            return [f"`{self.log_path}` is empty."]
        rows = self.rows
        out = [f"From `{self.log_path}` ({len(rows)} logged points; losses are per-batch values at the logged step, "
               "so single rows are noisy)."]
        picks = sorted({round(i) for i in np.linspace(0, len(rows) - 1, min(8, len(rows)))})
        usage_cols = [k for k in rows[0] if k.startswith("usage")]
        perp_cols = [k for k in rows[0] if k.startswith("perplexity")]
        out += ["", "| step | minutes | lr | loss | mel | stft | commit | mean usage | mean perplexity |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for i in picks:
            r = rows[i]
            usage = np.mean([float(r[k]) for k in usage_cols]) if usage_cols else float("nan")
            perp = np.mean([float(r[k]) for k in perp_cols]) if perp_cols else float("nan")
            out.append(f"| {r['step']} | {float(r['seconds']) / 60:.1f} | {r['lr']} | {r['loss']} | {r['mel']} | "
                       f"{r['stft']} | {r['commit']} | {usage:.3f} | {perp:.1f} |")
        tail, change = self.tail_change()
        out += ["", f"Mel loss: first logged {self.mel[0]:.3f}, minimum {self.mel.min():.3f} "
                    f"(step {rows[int(self.mel.argmin())]['step']}); the mean of the last {tail} logged points "
                    f"changed by {100 * change:+.1f} % against the {tail} before them. Usage is the share of a "
                    "codebook's entries used within a logging window, as train.py counts it."]
        if self.provenance_path:
            keep = {k: self.provenance[k] for k in ("device", "torch", "steps", "planned_steps", "train_seconds",
                                                    "batch", "segment_seconds", "audio_hours_seen", "seed")
                    if k in self.provenance}
            out += ["", f"Run provenance (`{self.provenance_path}`): "
                    + ", ".join(f"{k} {v}" for k, v in keep.items()) + "."]
        return out


def gap_advice(run):
    """What would close a target gap, from what this run did and did not do."""
    lines = ["What would close the gap, in the order we expect it to pay:"]
    if run and run.rows:
        tail, change = run.tail_change()
        trend = ("was still falling" if change < -0.01 else
                 "had flattened under the decayed learning rate, so a longer schedule (not only more steps at the "
                 "end) is what would help")
        lines.append(f"- More training: the shipped model trained {run.budget_text()}; its mel loss {trend} "
                     f"({100 * change:+.1f} % over the last {tail} logged points). Neural codecs of this family "
                     "train for days on far more audio.")
    else:
        lines.append("- More training (no training log was found to say how far this run went).")
    if not (run and run.has_adversarial_loss()):
        lines.append("- Adversarial (multi-period / multi-resolution STFT discriminator) and feature-matching losses, "
                     "as WavTokenizer, EnCodec and DAC use: the run logs only reconstruction, codebook and commitment "
                     "terms, and those papers' ablations credit the adversarial terms with much of their quality at "
                     "low bitrates.")
    lines.append("- More speech, and more real recorded speech, in the training mix (much of the training speech is "
                 "espeak-ng synthesis), and a larger model within the issue's limits (graphs ≤ 25 MB, ≥ 50× real time on "
                 "one thread).")
    return "\n".join(lines)
