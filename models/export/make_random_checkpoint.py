"""Write a random-weight WavTokenizer checkpoint + yaml in the released on-disk layout.

Used by the tests and the benchmark in place of the released weights (which are never
downloaded). The layout matches a released PyTorch-Lightning checkpoint: a dict with
`state_dict` (weight-normed `weight_g`/`weight_v` encoder convs, kmeans-style codebook
buffers, backbone, head, plus training-only keys the exporter must ignore) and the usual
Lightning bookkeeping entries.

Random weights are made to behave like a codec where it matters for testing: the codebook
is sampled from encoder embeddings of synthetic audio (as kmeans init does), so real speech
maps to many distinct codes, and the head is scaled to give audio at a realistic level.

    /usr/bin/python3 models/export/make_random_checkpoint.py --hop 320 --out /tmp/wt75
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import types

import numpy as np
import torch
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wavtokenizer_arch.backbone import AdaNorm  # noqa: E402
from wavtokenizer_arch.config import WavTokenizerConfig, seanet_config  # noqa: E402
from wavtokenizer_arch.encoder import ResBlock, SConv  # noqa: E402
from wavtokenizer_arch.model import WavTokenizer  # noqa: E402

RELEASED_DOWNSAMPLES = {320: [8, 5, 4, 2], 600: [6, 5, 5, 4]}
SAMPLE_RATE = 24000


def synthetic_audio(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Varied non-speech material (harmonic tones with formant-like envelopes, filtered noise, silence)."""
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n, dtype=np.float64)
    pos = 0
    t_all = np.arange(n) / SAMPLE_RATE
    while pos < n:
        seg = int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)
        end = min(n, pos + seg)
        t = t_all[pos:end] - t_all[pos]
        kind = rng.integers(0, 3)
        if kind == 0:
            f0 = rng.uniform(80, 350) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(1, 6) * t))
            phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
            formants = rng.uniform(300, 3500, size=3)
            sig = sum(np.exp(-((h * f0 - formants[:, None]) ** 2).min(0) / 2e5) * np.sin(h * phase) / h
                      for h in range(1, 30))
        elif kind == 1:
            noise = rng.standard_normal(end - pos)
            lo, hi = sorted(rng.uniform(100, 11000, size=2))
            spec = np.fft.rfft(noise)
            freqs = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
            spec[(freqs < lo) | (freqs > hi)] = 0
            sig = np.fft.irfft(spec, len(noise))
        else:
            sig = np.zeros(end - pos)
        peak = np.abs(sig).max()
        if peak > 0:
            sig = sig / peak * rng.uniform(0.05, 0.8)
        out[pos:end] = sig * np.hanning(end - pos) ** 0.1 if end - pos > 1 else sig
        pos = end
    return out.astype(np.float32)


def build_config(args) -> WavTokenizerConfig:
    ratios = args.downsamples or RELEASED_DOWNSAMPLES[args.hop]
    hop = int(np.prod(ratios))
    return WavTokenizerConfig(
        sample_rate=SAMPLE_RATE,
        encoder_layers=seanet_config(ratios, args.n_filters, args.dimension),
        weight_norm=True, codebook_size=args.codebook_size, codebook_dim=args.dimension,
        backbone_in=args.dimension, dim=args.dim, intermediate_dim=args.intermediate_dim,
        num_layers=args.layers, adanorm_rows=4, layer_scale=True, pos_net=["res", "res", "attn", "res", "res", "norm"],
        n_fft=4 * hop, hop_length=hop,
    )


def _normalise_conv(sconv: SConv, x: torch.Tensor) -> torch.Tensor:
    """Rescale a weight-normed conv so its output has zero mean, unit variance per channel on x."""
    conv = sconv.conv.conv
    y = sconv(x)
    mean, std = y.mean(dim=(0, 2)), y.std(dim=(0, 2)).clamp(min=1e-8)
    conv.weight_g.div_(std[:, None, None])
    conv.bias.sub_(mean).div_(std)
    return sconv(x)


def normalise_encoder(encoder: torch.nn.Sequential, audio: torch.Tensor) -> None:
    """Data-dependent init: a default-initialised SEANet shrinks the signal until every frame embeds
    to nearly the same vector (codes would be decided by rounding noise); renormalising each conv
    keeps the embeddings varied, as in a trained encoder."""
    x = audio.unsqueeze(1)
    for layer in encoder:
        if isinstance(layer, SConv):
            x = _normalise_conv(layer, x)
        elif isinstance(layer, ResBlock):
            h = _normalise_conv(layer.block[1], layer.block[0](x))
            _normalise_conv(layer.block[3], layer.block[2](h))
            if isinstance(layer.shortcut, SConv):
                _normalise_conv(layer.shortcut, x)
            x = layer(x)
        else:
            x = layer(x)


@torch.no_grad()
def randomise(model: WavTokenizer, rng: np.random.Generator, calib_seconds: float) -> None:
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    # Backbone conv/linear init as the official backbone does before pos_net is added.
    bb = model.backbone
    for m in [bb.embed, *bb.convnext.modules()]:
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)):
            torch.nn.init.trunc_normal_(m.weight, std=0.02)
            torch.nn.init.constant_(m.bias, 0)
    # Distinct bandwidth rows, so using any row but 0 would show in the output.
    for m in model.modules():
        if isinstance(m, AdaNorm):
            m.scale.weight.copy_(1 + 0.1 * torch.randn(m.scale.weight.shape, generator=gen))
            m.shift.weight.copy_(0.1 * torch.randn(m.shift.weight.shape, generator=gen))
    for block in bb.convnext:
        block.gamma.mul_(1 + 0.2 * torch.randn(block.gamma.shape, generator=gen))

    audio = torch.from_numpy(synthetic_audio(calib_seconds, rng))[None]
    normalise_encoder(model.feature_extractor.encodec.encoder.model, audio)
    # Codebook: sampled encoder embeddings (kmeans-init style) from synthetic audio.
    emb = model.embed(audio)[0]
    size = model.cfg.codebook_size
    pick = torch.from_numpy(rng.choice(emb.shape[0], size=size, replace=emb.shape[0] < size))
    spread = emb.std(0, keepdim=True)
    codebook = model.codebook
    codebook.embed.copy_(emb[pick] + 0.05 * spread * torch.randn(size, emb.shape[1], generator=gen))
    codebook.embed_avg.copy_(codebook.embed)
    codebook.cluster_size.copy_(torch.from_numpy(rng.uniform(1, 50, size=size)).float())
    codebook.inited.fill_(1)

    # Head: shift log-magnitudes so decoded audio has an RMS around 0.1.
    codes = model.encode(audio)
    rms = model.decode(codes).pow(2).mean().sqrt().item()
    bins = model.cfg.n_fft // 2 + 1
    model.head.out.bias[:bins] += math.log(0.1 / max(rms, 1e-8))


def seanet_decoder_state(n_filters: int, dimension: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Keys of the SEANet decoder every released checkpoint carries (always ratios 8,5,4,2), unused at inference."""
    r = lambda *s: torch.from_numpy(0.01 * rng.standard_normal(s).astype(np.float32))  # noqa: E731
    out: dict[str, torch.Tensor] = {}
    pre = "feature_extractor.encodec.decoder.model."

    def conv(i: int, stem: str, cin: int, cout: int, k: int, transposed: bool = False) -> None:
        rows = cin if transposed else cout  # weight_norm(dim=0) keeps one gain per first weight axis
        out[f"{pre}{i}.{stem}.weight_g"] = r(rows, 1, 1)
        out[f"{pre}{i}.{stem}.weight_v"] = r(cin, cout, k) if transposed else r(cout, cin, k)
        out[f"{pre}{i}.{stem}.bias"] = r(cout)

    mult = 16
    conv(0, "conv.conv", dimension, mult * n_filters, 7)
    h = mult * n_filters
    for layer in range(2):
        for name, shape in (("weight_ih", (4 * h, h)), ("weight_hh", (4 * h, h)), ("bias_ih", (4 * h,)),
                            ("bias_hh", (4 * h,))):
            out[f"{pre}1.lstm.{name}_l{layer}"] = r(*shape)
    i = 2
    for ratio in (8, 5, 4, 2):
        ch = mult * n_filters // 2
        conv(i + 1, "convtr.convtr", mult * n_filters, ch, 2 * ratio, transposed=True)
        conv(i + 2, "block.1.conv.conv", ch, ch // 2, 3)
        conv(i + 2, "block.3.conv.conv", ch // 2, ch, 1)
        conv(i + 2, "shortcut.conv.conv", ch, ch, 1)
        mult //= 2
        i += 3
    conv(i + 1, "conv.conv", n_filters, 1, 7)
    return out


def training_only_keys(rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """A few of the discriminator / loss keys a released checkpoint carries."""
    r = lambda *s: torch.from_numpy(rng.standard_normal(s).astype(np.float32))  # noqa: E731
    return {
        "multiperioddisc.discriminators.0.convs.0.weight_v": r(32, 1, 5, 1),
        "multiresddisc.discriminators.0.convs.0.weight_g": r(32, 1, 1, 1),
        "dac.discriminators.0.convs.0.weight": r(16, 1, 3),
        "melspec_loss.mel_spec.mel_scale.fb": r(513, 100),
    }


LIGHTNING_PARSING = "pytorch_lightning.utilities.parsing"


class AttributeDict(dict):
    """Pickled under Lightning's module path, as in Lightning checkpoints, so loaders must cope without it."""


AttributeDict.__module__ = LIGHTNING_PARSING


def lightning_attribute_dict(**kwargs) -> AttributeDict:
    return AttributeDict(**kwargs)


@contextlib.contextmanager
def fake_lightning_module():
    """Make the Lightning module path importable while pickling, and only then."""
    names = ["pytorch_lightning", "pytorch_lightning.utilities", LIGHTNING_PARSING]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = types.ModuleType(n)
    sys.modules[LIGHTNING_PARSING].AttributeDict = AttributeDict
    try:
        yield
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


def released_yaml(cfg: WavTokenizerConfig, ratios: list[int]) -> dict:
    return {
        "seed_everything": 3407,
        "model": {
            "class_path": "decoder.experiment.WavTokenizer",
            "init_args": {
                "sample_rate": cfg.sample_rate,
                "feature_extractor": {
                    "class_path": "decoder.feature_extractors.EncodecFeatures",
                    "init_args": {"encodec_model": "encodec_24khz", "bandwidths": [6.6, 6.6, 6.6, 6.6],
                                  "train_codebooks": True, "num_quantizers": 1, "dowmsamples": ratios,
                                  "vq_bins": cfg.codebook_size, "vq_kmeans": 200},
                },
                "backbone": {
                    "class_path": "decoder.models.VocosBackbone",
                    "init_args": {"input_channels": cfg.backbone_in, "dim": cfg.dim,
                                  "intermediate_dim": cfg.intermediate_dim, "num_layers": cfg.num_layers,
                                  "adanorm_num_embeddings": cfg.adanorm_rows},
                },
                "head": {
                    "class_path": "decoder.heads.ISTFTHead",
                    "init_args": {"dim": cfg.dim, "n_fft": cfg.n_fft, "hop_length": cfg.hop_length,
                                  "padding": "same"},
                },
            },
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder to write model.ckpt and config.yaml into")
    p.add_argument("--hop", type=int, choices=sorted(RELEASED_DOWNSAMPLES), default=320)
    p.add_argument("--downsamples", type=int, nargs="+", help="override the decoder-order ratios")
    p.add_argument("--n-filters", type=int, default=32)
    p.add_argument("--dimension", type=int, default=512, help="encoder output / codebook dim")
    p.add_argument("--dim", type=int, default=768, help="backbone width (multiple of 32)")
    p.add_argument("--intermediate-dim", type=int, default=2304)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--codebook-size", type=int, default=4096)
    p.add_argument("--calib-seconds", type=float, default=30.0, help="synthetic audio for the codebook")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    cfg = build_config(args)
    model = WavTokenizer(cfg).eval()
    randomise(model, rng, args.calib_seconds)

    state = {k: v.clone() for k, v in model.state_dict().items()}
    state.update(seanet_decoder_state(args.n_filters, args.dimension, rng))
    state.update(training_only_keys(rng))
    checkpoint = {
        "epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.8.6",
        "state_dict": state, "hyper_parameters": lightning_attribute_dict(sample_rate=cfg.sample_rate, resume=False),
        "optimizer_states": [], "lr_schedulers": [],
    }
    os.makedirs(args.out, exist_ok=True)
    with fake_lightning_module():
        torch.save(checkpoint, os.path.join(args.out, "model.ckpt"))
    with open(os.path.join(args.out, "config.yaml"), "w") as f:
        yaml.safe_dump(released_yaml(cfg, args.downsamples or RELEASED_DOWNSAMPLES[args.hop]), f, sort_keys=False)
    print(f"wrote {args.out}/model.ckpt and config.yaml (hop {cfg.hop_length}, {cfg.codebook_size} codes)")


if __name__ == "__main__":
    main()
