"""Train the default codec. Seeded; resumable from <run-dir>/state.pt; stops at --steps or --max-minutes.

  CPU:  nice -n 10 /usr/bin/python3 models/train/train.py --run-dir models/train/runs/cpu --threads 2 \
            --batch 8 --max-minutes 100 --steps 6000
  GPU:  python3 models/train/train.py --run-dir $OUT/run --device cuda --batch 96 --max-minutes 7 --calibrate

With --calibrate the planned step count is set from the measured speed after a short warm-up so the run
(and its learning-rate schedule) fits --max-minutes; the chosen number is logged and written to
provenance.json, so `--steps N` without --calibrate replays the same schedule.
"""
import argparse
import csv
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint import load_weights, save_weights  # noqa: E402
from discriminators import Critics, critic_loss, generator_losses  # noqa: E402
from losses import MultiResolutionLoss  # noqa: E402
from model import CODEBOOK_SIZE, HOP, NUM_CODEBOOKS, SAMPLE_RATE, build_codec  # noqa: E402

DEFAULT_CATEGORY_WEIGHTS = {"tts": 0.14, "words": 0.14, "music": 0.22, "ivr": 0.32, "diphone": 0.12, "noise": 0.06}


class Batches:
    """Random crops from the carried int16 array, on the training device, with gain, speed and noise
    augmentation. Noise (coloured, random tilt) is synthesised here instead of being stored."""

    def __init__(self, path, device, seg, batch, weights, gen):
        data = np.load(path)
        self.audio = torch.from_numpy(data["audio"].astype(np.float32) / 32768.0).to(device)
        self.bounds = [tuple(int(v) for v in b) for b in data["category_bounds"]]
        # Data written before the real-speech sources came has three unnamed categories.
        names = [str(n) for n in data["category_names"]] if "category_names" in data.files else ["tts", "words", "music"]
        self.categories = names + ["noise"]
        self.device, self.seg, self.batch, self.gen = device, seg, batch, gen
        self.weights = torch.tensor([weights.get(c, 0.0) for c in self.categories], dtype=torch.float32, device=device)

    def _rand(self, *shape):
        return torch.rand(*shape, generator=self.gen, device=self.device)

    def _noise(self, n):
        spec = torch.fft.rfft(torch.randn(n, self.seg, generator=self.gen, device=self.device), dim=-1)
        f = torch.arange(spec.shape[-1], device=self.device).clamp(min=1).float()
        tilt = self._rand(n, 1) * 2.0  # 0 white .. 1 pink .. 2 brown
        x = torch.fft.irfft(spec * f.pow(-tilt / 2), n=self.seg, dim=-1)
        return x / x.abs().amax(-1, keepdim=True).clamp(min=1e-8)

    def _crops(self, cat, n):
        lo, hi = self.bounds[cat]
        speed = torch.where(self._rand(n) < 0.5, 0.9 + 0.2 * self._rand(n), torch.ones(n, device=self.device))
        span = (self.seg * speed).ceil().long() + 2
        start = lo + (self._rand(n) * (hi - lo - span).float()).long()
        pos = start.view(-1, 1).float() + speed.view(-1, 1) * torch.arange(self.seg, device=self.device).float()
        i0 = pos.floor().long()
        frac = pos - i0.float()
        return self.audio[i0] * (1 - frac) + self.audio[i0 + 1] * frac

    def next(self):
        cats = torch.multinomial(self.weights, self.batch, replacement=True, generator=self.gen)
        x = torch.zeros(self.batch, self.seg, device=self.device)
        for c, name in enumerate(self.categories):
            idx = torch.nonzero(cats == c).flatten()
            if len(idx):
                x[idx] = self._noise(len(idx)) if name == "noise" else self._crops(c, len(idx))
        # background noise on some items at 5..35 dB below their peak
        mix = (self._rand(self.batch, 1) < 0.15).float() * 10 ** (-(5 + 30 * self._rand(self.batch, 1)) / 20)
        x = x + mix * x.abs().amax(-1, keepdim=True) * self._noise(self.batch)
        # level: peak between -35 and -0.5 dBFS; a few near-silent items
        peak = x.abs().amax(-1, keepdim=True).clamp(min=1e-6)
        level = 10 ** (-(0.5 + 34.5 * self._rand(self.batch, 1)) / 20)
        level = torch.where(self._rand(self.batch, 1) < 0.03, level * 1e-3, level)
        return x / peak * level


class CodebookStats:
    """Code counts per codebook over a window of steps: usage fraction and perplexity."""

    def __init__(self, device):
        self.counts = torch.zeros(NUM_CODEBOOKS, CODEBOOK_SIZE, device=device)

    def add(self, codes, n_q):
        for i in range(NUM_CODEBOOKS):
            kept = codes[n_q > i, i].flatten()
            self.counts[i] += torch.bincount(kept, minlength=CODEBOOK_SIZE).float()

    def summary(self):
        p = self.counts / self.counts.sum(1, keepdim=True).clamp(min=1)
        perplexity = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum(1))
        usage = (self.counts > 0).float().mean(1)
        return usage.tolist(), perplexity.tolist()

    def reset(self):
        self.counts.zero_()


@torch.no_grad()
def restart_dead_codes(codec, lows, counts, gen, min_count):
    """Replace entries used fewer than min_count times since the last restart by random recent encoder
    outputs (plus a little noise), so every entry keeps competing."""
    restarted = []
    for i, q in enumerate(codec.quantizer.layers):
        dead = torch.nonzero(counts[i] < min_count).flatten()
        restarted.append(len(dead))
        if len(dead) == 0:
            continue
        pool = lows[i].reshape(-1, lows[i].shape[-1])
        pick = torch.randint(0, pool.shape[0], (len(dead),), generator=gen, device=pool.device)
        q.codebook.data[dead] = pool[pick] + 0.01 * pool.std() * torch.randn(
            len(dead), pool.shape[1], generator=gen, device=pool.device)
    return restarted


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=".traindata/train.npz")
    ap.add_argument("--run-dir", default="models/train/runs/main", help="weights, log and provenance")
    ap.add_argument("--state-dir", help="resumable optimizer state (default: run-dir)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--segment-frames", type=int, default=75, help="training crop length in frames (75 = 1 s)")
    ap.add_argument("--steps", type=int, default=6000, help="planned steps (sets the LR schedule)")
    ap.add_argument("--max-minutes", type=float, default=1e9, help="wall-clock budget for this invocation")
    ap.add_argument("--calibrate", action="store_true", help="set --steps from measured speed to fit --max-minutes")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--quantizer-dropout", type=float, default=0.6, help="share of items with random 1..8 codebooks")
    ap.add_argument("--mel-weight", type=float, default=15.0)
    ap.add_argument("--stft-weight", type=float, default=2.0)
    ap.add_argument("--commit-weight", type=float, default=0.25)
    ap.add_argument("--restart-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--category-weights", default=",".join(f"{k}={v}" for k, v in DEFAULT_CATEGORY_WEIGHTS.items()),
                    help="name=weight,... over the data's categories and noise")
    ap.add_argument("--init", help="warm start: weights prefix (<prefix>.enc.npz/.dec.npz) for a new run")
    ap.add_argument("--adversarial", action="store_true", help="multi-period + multi-resolution STFT critics, "
                    "least-squares GAN and feature matching")
    ap.add_argument("--decoder-only", action="store_true", help="freeze encoder and quantizer (codes stay those "
                    "of the --init model; the encoder's backward pass is saved)")
    ap.add_argument("--adv-weight", type=float, default=1.0)
    ap.add_argument("--fm-weight", type=float, default=2.0)
    ap.add_argument("--critic-lr", type=float, default=2e-4)
    ap.add_argument("--critic-warmup", type=int, default=200,
                    help="steps the critics train alone before their losses reach the codec")
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    args.state_dir = args.state_dir or args.run_dir
    os.makedirs(args.run_dir, exist_ok=True)
    os.makedirs(args.state_dir, exist_ok=True)
    codec = build_codec(args.seed).to(device)
    loss_fn = MultiResolutionLoss(SAMPLE_RATE).to(device)
    trained = codec.decoder if args.decoder_only else codec
    opt = torch.optim.AdamW(trained.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.0)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    seg = args.segment_frames * HOP
    weights = {k: float(v) for k, v in (kv.split("=") for kv in args.category_weights.split(","))}
    batches = Batches(args.data, device, seg, args.batch, weights, gen)
    critics = Critics().to(device) if args.adversarial else None
    opt_c = torch.optim.AdamW(critics.parameters(), lr=args.critic_lr, betas=(0.8, 0.99)) if critics else None

    state_path = os.path.join(args.state_dir, "state.pt")
    portable_path = os.path.join(args.run_dir, "progress.json")
    step, spent_s = 0, 0.0
    if os.path.exists(state_path):
        st = torch.load(state_path, map_location=device)
        codec.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"].cpu())
        step, spent_s, args.steps = st["step"], st["spent_s"], st["planned_steps"]
        if critics is not None:
            critics.load_state_dict(st["critics"])
            opt_c.load_state_dict(st["opt_critics"])
        print(f"resumed at step {step} ({spent_s:.0f} s trained before)", flush=True)
    elif os.path.exists(portable_path):
        load_weights(codec, os.path.join(args.run_dir, "weights"))
        if critics is not None and os.path.exists(os.path.join(args.run_dir, "critics.pt")):
            critics.load_state_dict(torch.load(os.path.join(args.run_dir, "critics.pt"), map_location=device))
        with open(portable_path) as f:
            progress = json.load(f)
        step, spent_s, args.steps = progress["step"], progress["spent_s"], progress["planned_steps"]
        gen.manual_seed(args.seed + step)
        print(f"continued at step {step} from the run's committed weights (fresh optimiser state)", flush=True)
    elif args.init:
        load_weights(codec, args.init)
        print(f"warm start from {args.init}", flush=True)

    log_path = os.path.join(args.run_dir, "training_log.csv")
    fields = (["step", "seconds", "lr", "loss", "mel", "stft", "codebook", "commit", "adv", "fm", "critic",
               "audio_s_per_s"]
              + [f"usage{i}" for i in range(NUM_CODEBOOKS)] + [f"perplexity{i}" for i in range(NUM_CODEBOOKS)]
              + ["restarted"])
    new_log = not os.path.exists(log_path)
    log_file = open(log_path, "a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(fields)

    stats = CodebookStats(device)
    restart_counts = torch.zeros(NUM_CODEBOOKS, CODEBOOK_SIZE, device=device)
    restarted_total = 0
    t_calib = time.time()
    t_run = time.time()
    t_window = time.time()
    calibrated = not args.calibrate
    codec.train()
    if args.decoder_only:
        codec.encoder.eval().requires_grad_(False)
        codec.quantizer.eval().requires_grad_(False)

    def save_state():
        save_weights(codec, os.path.join(args.run_dir, "weights"))
        # The portable part (weights above, critics, counters) is small enough to commit, so a run can go on
        # from a fresh clone or on the accelerator; state.pt adds the optimisers for a local resume.
        if critics is not None:
            torch.save(critics.state_dict(), os.path.join(args.run_dir, "critics.pt"))
        with open(portable_path, "w") as f:
            json.dump({"step": step, "spent_s": round(spent_s + time.time() - t_run, 1),
                       "planned_steps": args.steps}, f)
        state = {"model": codec.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "step": step,
                 "spent_s": spent_s + time.time() - t_run, "planned_steps": args.steps}
        if critics is not None:
            state.update(critics=critics.state_dict(), opt_critics=opt_c.state_dict())
        torch.save(state, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)

    while step < args.steps:
        elapsed = time.time() - t_run
        if elapsed > args.max_minutes * 60:
            print(f"wall-clock budget reached at step {step}", flush=True)
            break
        if not calibrated and step == 60:
            if device.type == "cuda":
                torch.cuda.synchronize()
            per_step = (time.time() - t_calib) / 40
            args.steps = step + int((args.max_minutes * 60 - (time.time() - t_run) - 20) / per_step)
            calibrated = True
            print(f"calibrated: {per_step * 1000:.1f} ms/step -> planned steps {args.steps}", flush=True)
        if step == 20:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_calib = time.time()

        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        x = batches.next()
        n_q = torch.where(torch.rand(args.batch, generator=gen, device=device) < args.quantizer_dropout,
                          torch.randint(1, NUM_CODEBOOKS + 1, (args.batch,), generator=gen, device=device),
                          torch.full((args.batch,), NUM_CODEBOOKS, device=device))
        with torch.set_grad_enabled(not args.decoder_only):
            z = codec.encoder(x)
        if step == 0 and not args.init:  # data-dependent codebook init: entries start on real encoder outputs
            with torch.no_grad():
                _, _, _, _, lows = codec.quantizer(z, n_q)
                restart_dead_codes(codec, lows, torch.zeros_like(restart_counts), gen, 1)
        zq, codes, cb_loss, commit_loss, lows = codec.quantizer(z, n_q)
        y = codec.decoder(zq)
        mel, stft = loss_fn(y, x)
        loss = args.mel_weight * mel + args.stft_weight * stft + cb_loss + args.commit_weight * commit_loss
        adv = fm = critic = torch.zeros(())
        if critics is not None:
            critic = critic_loss(critics, x, y)
            opt_c.zero_grad(set_to_none=True)
            critic.backward()
            torch.nn.utils.clip_grad_norm_(critics.parameters(), 10.0)
            opt_c.step()
            if step >= args.critic_warmup:
                adv, fm = generator_losses(critics, x, y)
                loss = loss + args.adv_weight * adv + args.fm_weight * fm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained.parameters(), 10.0)
        opt.step()
        step += 1

        with torch.no_grad():
            stats.add(codes, n_q)
            for i in range(NUM_CODEBOOKS):
                restart_counts[i] += torch.bincount(codes[n_q > i, i].flatten(), minlength=CODEBOOK_SIZE).float()
            if step % args.restart_every == 0 and not args.decoder_only:
                restarted_total += sum(restart_dead_codes(codec, lows, restart_counts, gen, 1))
                restart_counts.zero_()
        if step % args.log_every == 0:
            usage, perplexity = stats.summary()
            now = time.time()
            throughput = args.log_every * args.batch * seg / SAMPLE_RATE / (now - t_window)
            row = [step, round(spent_s + now - t_run, 1), f"{opt.param_groups[0]['lr']:.2e}",
                   f"{loss.item():.4f}", f"{mel.item():.4f}", f"{stft.item():.4f}", f"{cb_loss.item():.4f}",
                   f"{commit_loss.item():.4f}", f"{adv.item():.4f}", f"{fm.item():.4f}", f"{critic.item():.4f}",
                   round(throughput, 1)] \
                + [round(u, 3) for u in usage] + [round(p, 1) for p in perplexity] + [restarted_total]
            log.writerow(row)
            log_file.flush()
            print(" ".join(f"{k}={v}" for k, v in zip(fields, row)), flush=True)
            stats.reset()
            restarted_total = 0
            t_window = now
        if step % args.ckpt_every == 0:
            save_state()
    save_state()
    total_s = spent_s + time.time() - t_run
    prov = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({platform.processor() or 'x86_64'}), "
                                                                               f"{args.threads} threads",
        "torch": torch.__version__,
        "steps": step, "planned_steps": args.steps, "train_seconds": round(total_s, 1),
        "batch": args.batch, "segment_seconds": seg / SAMPLE_RATE,
        "audio_hours_seen": round(step * args.batch * seg / SAMPLE_RATE / 3600, 2),
        "seed": args.seed, "init": args.init, "args": vars(args),
    }
    with open(os.path.join(args.run_dir, "provenance.json"), "w") as f:
        json.dump(prov, f, indent=2)
    print(f"done: {step} steps in {total_s:.0f} s (process {time.time() - t_start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
