"""Multi-resolution log-mel and STFT reconstruction losses (written for torch 1.13 and newer alike)."""
import math

import torch
import torch.nn as nn


def mel_filterbank(n_fft, n_mels, sr, fmin=0.0, fmax=None):
    """Slaney-style triangular filters on the HTK mel scale, [n_mels, n_fft//2+1]."""
    fmax = fmax or sr / 2

    def hz_to_mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    mels = torch.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower = (freqs.view(1, -1) - hz[:-2].view(-1, 1)) / (hz[1:-1] - hz[:-2]).view(-1, 1)
    upper = (hz[2:].view(-1, 1) - freqs.view(1, -1)) / (hz[2:] - hz[1:-1]).view(-1, 1)
    fb = torch.clamp(torch.minimum(lower, upper), min=0.0)
    fb = fb * (2.0 / (hz[2:] - hz[:-2])).view(-1, 1)  # equal-area filters
    return fb.float()


class MultiResolutionLoss(nn.Module):
    MEL_SCALES = ((256, 64, 32), (512, 128, 64), (1024, 256, 80), (2048, 512, 128))
    STFT_SCALES = ((128, 32), (512, 128), (2048, 512))

    def __init__(self, sr=24000):
        super().__init__()
        for n_fft, _, n_mels in self.MEL_SCALES:
            self.register_buffer(f"fb_{n_fft}", mel_filterbank(n_fft, n_mels, sr))
        for n_fft in {s[0] for s in self.MEL_SCALES + self.STFT_SCALES}:
            self.register_buffer(f"win_{n_fft}", torch.hann_window(n_fft))

    def _mag(self, x, n_fft, hop):
        spec = torch.stft(x, n_fft, hop, window=getattr(self, f"win_{n_fft}"), center=True, return_complex=True)
        return spec.abs()

    def forward(self, y, x):
        """y: reconstruction, x: target, both [B, S]. Returns (mel loss, stft loss)."""
        mel = y.new_zeros(())
        for n_fft, hop, _ in self.MEL_SCALES:
            fb = getattr(self, f"fb_{n_fft}")
            my = torch.matmul(fb, self._mag(y, n_fft, hop))
            mx = torch.matmul(fb, self._mag(x, n_fft, hop))
            mel = mel + (torch.log10(my.clamp(min=1e-5)) - torch.log10(mx.clamp(min=1e-5))).abs().mean()
        stft = y.new_zeros(())
        for n_fft, hop in self.STFT_SCALES:
            sy, sx = self._mag(y, n_fft, hop), self._mag(x, n_fft, hop)
            sc = torch.linalg.norm(sy - sx) / torch.linalg.norm(sx).clamp(min=1e-5)
            stft = stft + sc + (torch.log(sy.clamp(min=1e-5)) - torch.log(sx.clamp(min=1e-5))).abs().mean()
        return mel / len(self.MEL_SCALES), stft / len(self.STFT_SCALES)
