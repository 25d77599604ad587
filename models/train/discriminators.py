"""Slim adversarial critics for the codec: multi-period (HiFi-GAN) and multi-resolution STFT (Vocos/UnivNet)
discriminators with feature matching. Slim on purpose (a few hundred thousand parameters): training runs on
two CPU cores most of the time, and the critics only have to tell harmonics and transients apart, which narrow
convolutions already do. Used only in training; never exported.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # torch >= 2.1
    from torch.nn.utils.parametrizations import weight_norm
except ImportError:  # Debian's torch 1.13
    from torch.nn.utils import weight_norm


def _score(convs, out, x):
    """Leaky-ReLU conv stack, then the score map; every layer's activations for feature matching."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        feats.append(x)
    x = out(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodCritic(nn.Module):
    """Folds the waveform into [T/p, p] and runs 2-D convolutions along time only: sees periodic structure
    (pitch harmonics) at period p."""

    def __init__(self, period, channels=(16, 32, 64, 128)):
        super().__init__()
        self.period = period
        convs, cin = [], 1
        for cout in channels:
            convs.append(weight_norm(nn.Conv2d(cin, cout, (5, 1), (3, 1), padding=(2, 0))))
            cin = cout
        convs.append(weight_norm(nn.Conv2d(cin, cin, (5, 1), 1, padding=(2, 0))))
        self.convs = nn.ModuleList(convs)
        self.out = weight_norm(nn.Conv2d(cin, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):  # [B, S] -> score map, features
        b, s = x.shape
        pad = (-s) % self.period
        x = F.pad(x, (0, pad), mode="reflect").view(b, 1, -1, self.period)
        return _score(self.convs, self.out, x)


class SpectrogramCritic(nn.Module):
    """2-D convolutions over one STFT resolution's log magnitude: sees harmonic ridges, noise floors and onsets."""

    def __init__(self, n_fft, hop, channels=32):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))
        c = channels
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, c, (7, 5), padding=(3, 2))),
            weight_norm(nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(c, c, (5, 3), stride=(2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
        ])
        self.out = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, x):
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, return_complex=True).abs()
        x = torch.log(spec.clamp(min=1e-5)).unsqueeze(1)  # [B, 1, F, T]
        return _score(self.convs, self.out, x)


class Critics(nn.Module):
    PERIODS = (2, 3, 5, 7, 11)
    RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))

    def __init__(self):
        super().__init__()
        self.critics = nn.ModuleList([PeriodCritic(p) for p in self.PERIODS]
                                     + [SpectrogramCritic(n, h) for n, h in self.RESOLUTIONS])

    def forward(self, x):
        return [c(x) for c in self.critics]


def critic_loss(critics, real, fake):
    """Least-squares GAN loss for the critics (HiFi-GAN): real -> 1, fake -> 0."""
    loss = real.new_zeros(())
    for (r, _), (f, _) in zip(critics(real), critics(fake.detach())):
        loss = loss + ((1 - r) ** 2).mean() + (f ** 2).mean()
    return loss / len(critics.critics)


def generator_losses(critics, real, fake):
    """Adversarial (fake -> 1) and feature-matching (L1 between critic activations, each layer normalised by
    the real activations' mean magnitude so every layer weighs alike) losses for the codec."""
    adv = real.new_zeros(())
    fm = real.new_zeros(())
    with torch.no_grad():
        real_out = critics(real)
    n_layers = 0
    for (f_score, f_feats), (_, r_feats) in zip(critics(fake), real_out):
        adv = adv + ((1 - f_score) ** 2).mean()
        for a, b in zip(f_feats, r_feats):
            fm = fm + (a - b).abs().mean() / b.abs().mean().clamp(min=1e-3)
            n_layers += 1
    return adv / len(critics.critics), fm / n_layers
