"""The Vocos backbone: codebook embeddings [B, D, T] -> frame features [B, T, dim]."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import GROUP_NORM_GROUPS, WavTokenizerConfig
from .modes import Exportable

NORM_EPS = 1e-6
BANDWIDTH_ROW = 0  # released models are always run with bandwidth_id = 0


class FrameConv(Exportable, nn.Conv1d):
    """Conv1d over frames (stride 1, zero "same" padding).

    Exported as one MatMul over k shifted copies of the input (im2col in the graph): as fast
    as Conv in onnxruntime at frame rate, and a MatMul is what quantize_int8.py can make int8.
    The copies are built time-major ([B, T, k*C]) so the MatMul reads a plain row-major
    operand: transposed operands (FusedMatMul) ran 30% slower in onnxruntime.
    """

    def forward(self, x):
        if not self.exportable:
            return super().forward(x)
        k, pad = self.kernel_size[0], self.padding[0]
        length = x.shape[-1]
        xp = F.pad(x, (pad, pad)).transpose(1, 2)  # [B, T + 2 pad, C]
        cols = torch.cat([xp[:, i: i + length] for i in range(k)], dim=2) if k > 1 else xp  # [B, T, k*C], (i, c)
        weight = self.weight.permute(2, 1, 0).reshape(k * self.in_channels, self.out_channels)
        return (cols @ weight + self.bias).transpose(1, 2)


class PosResBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUP_NORM_GROUPS, dim, eps=NORM_EPS)
        self.conv1 = FrameConv(dim, dim, 3, padding=1)
        self.norm2 = nn.GroupNorm(GROUP_NORM_GROUPS, dim, eps=NORM_EPS)
        self.conv2 = FrameConv(dim, dim, 3, padding=1)

    def forward(self, x):
        h = self.norm1(x)
        h = self.conv1(h * torch.sigmoid(h))  # swish written as the official code writes it
        h = self.norm2(h)
        h = self.conv2(h * torch.sigmoid(h))
        return x + h


class PosAttention(nn.Module):
    """Single-head self-attention over all frames (1x1 conv projections)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(GROUP_NORM_GROUPS, dim, eps=NORM_EPS)
        self.q, self.k, self.v, self.proj_out = (FrameConv(dim, dim, 1) for _ in range(4))
        self.scale = dim ** -0.5

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * self.scale, dim=2)  # [B, Tq, Tk]
        return x + self.proj_out(torch.bmm(v, w.transpose(1, 2)))


class AdaNorm(Exportable):
    """LayerNorm whose scale and shift are looked up by bandwidth id; row 0 is the one inference uses."""

    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.scale = nn.Embedding(rows, dim)
        self.shift = nn.Embedding(rows, dim)
        self.dim = dim

    def forward(self, x):
        scale, shift = self.scale.weight[BANDWIDTH_ROW], self.shift.weight[BANDWIDTH_ROW]
        if self.exportable:  # one LayerNormalization node with affine weights (opset 17 requires a scale)
            return F.layer_norm(x, (self.dim,), scale, shift, eps=NORM_EPS)
        return F.layer_norm(x, (self.dim,), eps=NORM_EPS) * scale + shift


def _make_norm(cfg: WavTokenizerConfig) -> nn.Module:
    return AdaNorm(cfg.adanorm_rows, cfg.dim) if cfg.adanorm_rows else nn.LayerNorm(cfg.dim, eps=NORM_EPS)


class ConvNeXtBlock(nn.Module):
    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.dwconv = nn.Conv1d(cfg.dim, cfg.dim, 7, padding=3, groups=cfg.dim)
        self.norm = _make_norm(cfg)
        self.pwconv1 = nn.Linear(cfg.dim, cfg.intermediate_dim)
        self.pwconv2 = nn.Linear(cfg.intermediate_dim, cfg.dim)
        self.gamma = nn.Parameter(torch.full((cfg.dim,), 1.0 / cfg.num_layers)) if cfg.layer_scale else None

    def forward(self, x):
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(self.dwconv(x).transpose(1, 2)))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.transpose(1, 2)


class Backbone(nn.Module):
    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.embed = FrameConv(cfg.backbone_in, cfg.dim, 7, padding=3)
        self.pos_net = nn.Sequential(*(
            PosResBlock(cfg.dim) if kind == "res" else PosAttention(cfg.dim) if kind == "attn"
            else nn.GroupNorm(GROUP_NORM_GROUPS, cfg.dim, eps=NORM_EPS) for kind in cfg.pos_net))
        self.norm = _make_norm(cfg)
        self.convnext = nn.ModuleList(ConvNeXtBlock(cfg) for _ in range(cfg.num_layers))
        self.final_layer_norm = nn.LayerNorm(cfg.dim, eps=NORM_EPS)

    def forward(self, feats):  # [B, C, T] -> [B, T, dim]
        x = self.pos_net(self.embed(feats))
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))
