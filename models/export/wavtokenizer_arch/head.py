"""The iSTFT head: frame features [B, T, dim] -> magnitude and phase -> audio [B, T * hop]."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .config import WavTokenizerConfig
from .modes import Exportable


def inverse_dft_basis(n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """[n_fft + 2, n_fft] matrix: [Re | Im] half spectrum -> windowed irfft frame (imag of DC/Nyquist ignored)."""
    bins = n_fft // 2 + 1
    k = np.arange(bins)[:, None]
    n = np.arange(n_fft)[None, :]
    weight = np.where((k == 0) | (k == n_fft // 2), 1.0, 2.0) / n_fft
    angle = 2 * np.pi * ((k * n) % n_fft) / n_fft  # reduce before scaling so large k*n keeps precision
    basis = np.concatenate([weight * np.cos(angle), -weight * np.sin(angle)], axis=0)
    return torch.from_numpy(basis * window.double().numpy()[None, :]).float()


class ISTFT(Exportable):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.pad = (n_fft - hop) // 2
        self.register_buffer("window", torch.hann_window(n_fft))

    def set_exportable(self, on: bool) -> None:
        super().set_exportable(on)
        if on:  # built once from the loaded window, a constant of the graph
            self.basis = inverse_dft_basis(self.n_fft, self.window).unsqueeze(1)  # [n_fft + 2, 1, n_fft]

    def forward(self, mag: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:  # [B, bins, T] each
        if self.exportable:
            return self._traceable(mag, phase)
        spec = mag * (torch.cos(phase) + 1j * torch.sin(phase))
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        t = spec.shape[-1]
        size = (t - 1) * self.hop + self.n_fft
        y = F.fold(frames, (1, size), (1, self.n_fft), stride=(1, self.hop))[:, 0, 0, self.pad:-self.pad]
        env = self.window.square().expand(1, t, -1).transpose(1, 2)
        env = F.fold(env, (1, size), (1, self.n_fft), stride=(1, self.hop)).squeeze()[self.pad:-self.pad]
        return y / env

    def _traceable(self, mag, phase):
        spec = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)  # [B, n_fft + 2, T]
        y = F.conv_transpose1d(spec, self.basis, stride=self.hop)[:, 0, self.pad:-self.pad]
        ones = torch.ones_like(spec[:1, :1, :])
        env = F.conv_transpose1d(ones, self.window.square().reshape(1, 1, -1), stride=self.hop)
        return y / env[:, 0, self.pad:-self.pad]


class Head(nn.Module):
    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.out = nn.Linear(cfg.dim, cfg.n_fft + 2)
        self.istft = ISTFT(cfg.n_fft, cfg.hop_length)

    def forward(self, x):  # [B, T, dim] -> [B, T * hop]
        logmag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        return self.istft(torch.clip(torch.exp(logmag), max=1e2), phase)
