"""The SEANet encoder of EnCodec as WavTokenizer uses it: audio [B, 1, samples] -> embeddings [B, D, frames]."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import EncoderLayer, WavTokenizerConfig
from .modes import Exportable


def _reflect_pad_reference(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding with the official rule for inputs shorter than the padding (zero-extend, reflect, trim)."""
    length = x.shape[-1]
    max_pad = max(left, right)
    extra = max_pad - length + 1 if length <= max_pad else 0
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


def _seanet_pad_traceable(x: torch.Tensor, left: int, right: int, stride: int) -> torch.Tensor:
    """The reference padding written without branches on the length, with one copy of x.

    Under ONNX tracing `x.shape[-1]` is a traced value, so each amount below becomes graph
    arithmetic and the exported model takes any length (Python `math.ceil`/`if` would freeze
    them to the example's length). max(a, b) is spelled (a + b + |a - b|) / 2 to stay traced.
    The reference zero-extends short inputs by `zeros`, reflects, then trims `zeros` again: the
    result is [reflected head, x, right part], and both edges read at most max_pad + 1 samples of
    the zero-extended input, so they are built from small slices and x is copied once (Concat),
    not three times (Pad, Pad, Slice: 13% of encoder time in a profile).
    """
    if left == right == 0 and stride == 1:  # 1x1 convs: nothing to pad at any length
        return x
    length = x.shape[-1]
    total = (-length) % stride + right  # right padding plus the extra that fills the last window
    max_pad = (total + left + abs(total - left)) // 2
    short = max_pad - length + 1
    zeros = (short + abs(short)) // 2  # short-input rule: zero-extend so reflection is defined
    reach = left + right + stride  # > max_pad for every length: both edges lie in the first/last reach + 1 samples
    head = F.pad(x[..., : reach + 1], (0, zeros))  # the zero-extended input's first samples
    tail = F.pad(x[..., -(reach + 1):], (0, zeros))
    tail = tail[..., tail.shape[-1] - max_pad - 1:]  # its last max_pad + 1 samples
    left_part = head[..., 1: left + 1].flip(-1)
    right_part = tail[..., tail.shape[-1] - 1 - total: tail.shape[-1] - 1].flip(-1)
    right_part = F.pad(right_part, (zeros, 0))[..., :total]  # the zeros the reference trims come first
    return torch.cat([left_part, x, right_part], dim=-1)


class ELU(Exportable):
    """ELU; exported as max(x, exp(min(x, 0)) - 1), equal to it on both branches (exp(x) - 1 >= x).

    onnxruntime's Elu kernel is slow (21% of encoder time; 14.6 ms on 7.7 M values where Exp alone
    takes 5.4 ms): Min, Exp, Sub and Max together take about 0.7 of its time, within 1 ulp of it.
    """

    def forward(self, x):
        if self.exportable:
            return torch.maximum(x, torch.exp(torch.clamp(x, max=0.0)) - 1.0)
        return F.elu(x)


class SConv(Exportable):
    """Non-causal SEANet conv: asymmetric reflect padding plus extra right padding so the last window is full."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1, weight_norm=True):
        super().__init__()
        conv = nn.Conv1d(in_ch, out_ch, kernel, stride, dilation=dilation)
        self.conv = nn.Module()
        self.conv.conv = nn.utils.weight_norm(conv) if weight_norm else conv
        eff = (kernel - 1) * dilation + 1
        self.stride = stride
        self.eff_kernel = eff
        pad_total = eff - stride
        self.pad_right = pad_total // 2
        self.pad_left = pad_total - self.pad_right

    def forward(self, x):
        if self.exportable:
            x = _seanet_pad_traceable(x, self.pad_left, self.pad_right, self.stride)
            if self.stride > 1 or self.eff_kernel >= 7:
                return self._as_2d(x)
        else:
            length = x.shape[-1]
            n_frames = (length - self.eff_kernel + self.pad_left + self.pad_right) / self.stride + 1
            ideal = (math.ceil(n_frames) - 1) * self.stride + (self.eff_kernel - self.pad_left - self.pad_right)
            x = _reflect_pad_reference(x, self.pad_left, self.pad_right + ideal - length)
        return self.conv.conv(x)

    def _as_2d(self, x):
        """The same conv over [B, C, 1, T]: onnxruntime then runs it with its blocked-layout (NCHWc)
        kernels, which outweigh the layout reorders around it for the strided and kernel-7 convs
        (encoder 4-5% faster at 1 thread, 2-4% at 2); for the small stride-1 convs they do not.
        Weight norm is folded before export, so `weight` is the plain weight here."""
        conv = self.conv.conv
        y = F.conv2d(x.unsqueeze(2), conv.weight.unsqueeze(2), conv.bias, (1, self.stride),
                     dilation=(1, conv.dilation[0]))
        return y.squeeze(2)


class ResBlock(nn.Module):
    def __init__(self, spec: EncoderLayer, weight_norm: bool):
        super().__init__()
        self.block = nn.Sequential(
            ELU(), SConv(spec.in_ch, spec.hidden, spec.kernel, dilation=spec.dilation, weight_norm=weight_norm),
            ELU(), SConv(spec.hidden, spec.in_ch, 1, weight_norm=weight_norm),
        )
        self.shortcut = SConv(spec.in_ch, spec.in_ch, 1, weight_norm=weight_norm) if spec.shortcut else nn.Identity()

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class SkipLSTM(nn.Module):
    """Unidirectional LSTM over time with a residual connection, in conv layout [B, C, T]."""

    def __init__(self, dim: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)

    def forward(self, x):
        y, _ = self.lstm(x.permute(2, 0, 1))
        return y.permute(1, 2, 0) + x


def build_encoder(cfg: WavTokenizerConfig) -> nn.Sequential:
    mods: list[nn.Module] = []
    for l in cfg.encoder_layers:
        if l.kind == "conv":
            mods.append(SConv(l.in_ch, l.out_ch, l.kernel, l.stride, weight_norm=cfg.weight_norm))
        elif l.kind == "res":
            mods.append(ResBlock(l, cfg.weight_norm))
        elif l.kind == "lstm":
            mods.append(SkipLSTM(l.in_ch, l.lstm_layers))
        else:
            mods.append(ELU())
    return nn.Sequential(*mods)


def receptive_field(cfg: WavTokenizerConfig) -> tuple[int, int]:
    """(left, right) samples outside a frame's own hop that the encoder's convolutions can see.

    The LSTM adds unbounded (decaying) left context on top of the left value.
    """
    left = right = 0
    scale = 1  # input samples per position at the current depth
    for l in cfg.encoder_layers:
        if l.kind == "conv":  # output j reads input [j*s - pad_left, j*s + s - 1 + pad_right]
            pad_total = l.kernel - l.stride
            left += (pad_total - pad_total // 2) * scale
            right += pad_total // 2 * scale
            scale *= l.stride
        elif l.kind == "res":
            pad_total = (l.kernel - 1) * l.dilation
            left += (pad_total - pad_total // 2) * scale
            right += pad_total // 2 * scale
    return left, right
