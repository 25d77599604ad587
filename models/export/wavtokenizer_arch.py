"""WavTokenizer in plain PyTorch, shaped after the released checkpoints.

Module paths mirror the keys of the released PyTorch-Lightning checkpoints
(`feature_extractor.encodec.encoder.model.N...`, `backbone...`, `head...`), so a
released `state_dict` loads with `load_state_dict(strict=True)` and a random
model saves in the same layout. Every size comes from the checkpoint's tensor
shapes (and is cross-checked against the yaml config), so all released sizes
and both frame rates build from the same code.

Two execution modes:
  * reference (default): the operations the official code runs (reflect padding
    sized with Python integer maths, complex spectrum, irfft + fold overlap-add).
  * exportable (`set_exportable(model, True)`): ONNX-friendly equivalents whose
    padding follows the input length at run time and whose iSTFT is a
    ConvTranspose1d over an inverse-DFT basis.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import math
import re
import sys
import types
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ENCODER_PREFIX = "feature_extractor.encodec.encoder.model."
CODEBOOK_PREFIX = "feature_extractor.encodec.quantizer.vq.layers."
KEPT_PREFIXES = ("feature_extractor.encodec.encoder.", "feature_extractor.encodec.quantizer.", "backbone.", "head.")
GROUP_NORM_GROUPS = 32  # fixed in the official backbone (`Normalize`), not visible in any shape
NORM_EPS = 1e-6
BANDWIDTH_ROW = 0  # released models are always run with bandwidth_id = 0


class ArchitectureError(ValueError):
    """The checkpoint or config does not describe a WavTokenizer this code supports."""


# ----------------------------------------------------------------------------- config


@dataclass
class EncoderLayer:
    kind: str  # "conv" | "res" | "lstm" | "elu"
    in_ch: int = 0
    out_ch: int = 0
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    hidden: int = 0
    shortcut: bool = True
    lstm_layers: int = 0


@dataclass
class WavTokenizerConfig:
    sample_rate: int
    encoder_layers: list[EncoderLayer]
    weight_norm: bool
    codebook_size: int
    codebook_dim: int
    backbone_in: int
    dim: int
    intermediate_dim: int
    num_layers: int
    adanorm_rows: int  # 0 = plain LayerNorm
    layer_scale: bool
    pos_net: list[str]  # "res" | "attn" | "norm" per pos_net index
    n_fft: int
    hop_length: int

    @property
    def ratios(self) -> list[int]:
        return [l.stride for l in self.encoder_layers if l.kind == "conv" and l.stride > 1]


def _sub_keys(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _indices(keys, prefix: str = "") -> list[int]:
    out = set()
    for k in keys:
        m = re.match(re.escape(prefix) + r"(\d+)\.", k)
        if m:
            out.add(int(m.group(1)))
    return sorted(out)


def _conv_shape(sub: dict[str, torch.Tensor], stem: str) -> tuple[int, int, int] | None:
    w = sub.get(stem + ".weight_v", sub.get(stem + ".weight"))
    if w is None:
        return None
    return int(w.shape[1]), int(w.shape[0]), int(w.shape[2])


def _model_init_args(yaml_cfg: dict) -> dict:
    """The released yaml nests components under model.init_args; older ones put them at top level."""
    if "model" in yaml_cfg and isinstance(yaml_cfg["model"], dict):
        return yaml_cfg["model"].get("init_args", {})
    return yaml_cfg


def _component_args(args: dict, name: str) -> dict:
    comp = args.get(name) or {}
    return comp.get("init_args", {}) if isinstance(comp, dict) else {}


def config_from_checkpoint(state: dict[str, torch.Tensor], yaml_cfg: dict | None) -> WavTokenizerConfig:
    """Derive every size from tensor shapes; use the yaml only for what shapes cannot tell, and cross-check."""
    args = _model_init_args(yaml_cfg or {})
    fe_args, bb_args, head_args = (_component_args(args, n) for n in ("feature_extractor", "backbone", "head"))

    enc = _sub_keys(state, ENCODER_PREFIX)
    if not enc:
        raise ArchitectureError(f"no encoder weights under '{ENCODER_PREFIX}'")
    weight_norm = any(k.endswith("weight_g") for k in enc)
    layers: list[EncoderLayer] = []
    for i in range(max(_indices(enc)) + 1):
        sub = _sub_keys(enc, f"{i}.")
        if "lstm.weight_ih_l0" in sub:
            n = len([k for k in sub if re.fullmatch(r"lstm\.weight_ih_l\d+", k)])
            hidden = int(sub["lstm.weight_hh_l0"].shape[1])
            layers.append(EncoderLayer("lstm", hidden, hidden, lstm_layers=n))
        elif (shape := _conv_shape(sub, "conv.conv")) is not None:
            layers.append(EncoderLayer("conv", *shape))
        elif (shape := _conv_shape(sub, "block.1.conv.conv")) is not None:
            dim, hidden, k = shape
            layers.append(EncoderLayer("res", dim, dim, kernel=k, hidden=hidden,
                                       shortcut=_conv_shape(sub, "shortcut.conv.conv") is not None))
        elif not sub:
            layers.append(EncoderLayer("elu"))
        else:
            raise ArchitectureError(f"unrecognised encoder layer {i}: {sorted(sub)[:4]}")

    convs = [l for l in layers if l.kind == "conv"]
    if len(convs) < 3:
        raise ArchitectureError("encoder needs a first conv, downsampling convs and a last conv")
    for c in convs[1:-1]:  # SEANet: downsampling conv kernel = 2 * stride
        if c.kernel % 2:
            raise ArchitectureError(f"downsampling conv with odd kernel {c.kernel}")
        c.stride = c.kernel // 2
    ratios = [c.stride for c in convs[1:-1]]
    if "dowmsamples" in fe_args and list(reversed(fe_args["dowmsamples"])) != ratios:
        raise ArchitectureError(f"config dowmsamples {fe_args['dowmsamples']} disagree with kernels (strides {ratios})")
    # residual dilation is dilation_base ** j for the j-th residual block of a level (dilation_base = 2)
    j = 0
    for l in layers:
        if l.kind == "res":
            l.dilation = 2 ** j
            j += 1
        elif l.kind == "conv":
            j = 0

    cb_layers = _indices(state, CODEBOOK_PREFIX)
    if cb_layers != [0]:
        raise ArchitectureError(f"expected exactly one codebook layer, found {cb_layers}")
    embed = state.get(CODEBOOK_PREFIX + "0._codebook.embed")
    if embed is None:
        raise ArchitectureError("codebook buffer '..._codebook.embed' missing")
    inited = state.get(CODEBOOK_PREFIX + "0._codebook.inited")
    if inited is not None and not bool(inited.reshape(-1)[0]):
        raise ArchitectureError("codebook was never initialised (inited == 0)")
    codebook_size, codebook_dim = (int(s) for s in embed.shape)
    if "vq_bins" in fe_args and int(fe_args["vq_bins"]) != codebook_size:
        raise ArchitectureError(f"config vq_bins {fe_args['vq_bins']} != codebook rows {codebook_size}")
    if convs[-1].out_ch != codebook_dim:
        raise ArchitectureError(f"encoder output {convs[-1].out_ch} != codebook dim {codebook_dim}")

    bb = _sub_keys(state, "backbone.")
    embed_w = bb.get("embed.weight")
    if embed_w is None:
        raise ArchitectureError("backbone.embed.weight missing")
    dim, backbone_in = int(embed_w.shape[0]), int(embed_w.shape[1])
    if backbone_in != codebook_dim:
        raise ArchitectureError(f"backbone input {backbone_in} != codebook dim {codebook_dim}")
    blocks = _indices(bb, "convnext.")
    if not blocks:
        raise ArchitectureError("no backbone.convnext blocks")
    intermediate = int(bb["convnext.0.pwconv1.weight"].shape[0])
    adanorm_rows = int(bb["norm.scale.weight"].shape[0]) if "norm.scale.weight" in bb else 0
    pos_net = []
    for i in _indices(bb, "pos_net."):
        sub = _sub_keys(bb, f"pos_net.{i}.")
        pos_net.append("res" if "conv1.weight" in sub else "attn" if "q.weight" in sub else "norm")
    if dim % GROUP_NORM_GROUPS:
        raise ArchitectureError(f"backbone dim {dim} is not a multiple of {GROUP_NORM_GROUPS} (GroupNorm groups)")
    for key, val in (("input_channels", backbone_in), ("dim", dim), ("intermediate_dim", intermediate),
                     ("num_layers", len(blocks))):
        if key in bb_args and int(bb_args[key]) != val:
            raise ArchitectureError(f"config backbone.{key} {bb_args[key]} != checkpoint {val}")

    head_w = state.get("head.out.weight")
    if head_w is None:
        raise ArchitectureError("head.out.weight missing")
    n_fft = int(head_w.shape[0]) - 2
    window = state.get("head.istft.window")
    if window is not None and int(window.shape[0]) != n_fft:
        raise ArchitectureError(f"iSTFT window length {window.shape[0]} != n_fft {n_fft} (win_length must equal n_fft)")
    hop = int(np.prod(ratios))
    if "hop_length" in head_args and int(head_args["hop_length"]) != hop:
        raise ArchitectureError(f"head hop_length {head_args['hop_length']} != encoder hop {hop}")
    if "n_fft" in head_args and int(head_args["n_fft"]) != n_fft:
        raise ArchitectureError(f"head n_fft {head_args['n_fft']} != checkpoint {n_fft}")
    if head_args.get("padding", "same") != "same":
        raise ArchitectureError(f"only iSTFT padding 'same' is supported, config has '{head_args['padding']}'")
    if (n_fft - hop) % 2:
        raise ArchitectureError(f"n_fft - hop must be even for 'same' padding (n_fft {n_fft}, hop {hop})")

    return WavTokenizerConfig(
        sample_rate=int(args.get("sample_rate", 24000)), encoder_layers=layers, weight_norm=weight_norm,
        codebook_size=codebook_size, codebook_dim=codebook_dim, backbone_in=backbone_in, dim=dim,
        intermediate_dim=intermediate, num_layers=len(blocks), adanorm_rows=adanorm_rows,
        layer_scale="convnext.0.gamma" in bb, pos_net=pos_net, n_fft=n_fft, hop_length=hop,
    )


def seanet_config(ratios_decoder_order: list[int], n_filters: int, dimension: int, lstm_layers: int = 2,
                  n_residual_layers: int = 1) -> list[EncoderLayer]:
    """The encoder layer list the official EncodecFeatures builds (used to make random checkpoints)."""
    layers = [EncoderLayer("conv", 1, n_filters, kernel=7)]
    ch = n_filters
    for ratio in reversed(ratios_decoder_order):
        for j in range(n_residual_layers):
            layers.append(EncoderLayer("res", ch, ch, kernel=3, hidden=ch // 2, dilation=2 ** j))
        layers += [EncoderLayer("elu"), EncoderLayer("conv", ch, ch * 2, kernel=ratio * 2, stride=ratio)]
        ch *= 2
    layers += [EncoderLayer("lstm", ch, ch, lstm_layers=lstm_layers), EncoderLayer("elu"),
               EncoderLayer("conv", ch, dimension, kernel=7)]
    return layers


# ----------------------------------------------------------------------------- encoder


class _Mode(nn.Module):
    """A module with a reference and an export-friendly path (see set_exportable)."""

    exportable = False


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


class ELU(_Mode):
    """ELU; exported as max(x, exp(min(x, 0)) - 1), equal to it on both branches (exp(x) - 1 >= x).

    onnxruntime's Elu kernel is slow (21% of encoder time; 14.6 ms on 7.7 M values where Exp alone
    takes 5.4 ms): Min, Exp, Sub and Max together take about 0.7 of its time, within 1 ulp of it.
    """

    def forward(self, x):
        if self.exportable:
            return torch.maximum(x, torch.exp(torch.clamp(x, max=0.0)) - 1.0)
        return F.elu(x)


class SConv(_Mode):
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


class Codebook(nn.Module):
    """Euclidean codebook buffers as the released checkpoints store them."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed", torch.zeros(size, dim))
        self.register_buffer("embed_avg", torch.zeros(size, dim))

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, D] -> index of the nearest entry, with the distance written as the official code writes it."""
        embed = self.embed.t()
        dist = -(x.pow(2).sum(-1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))
        return dist.argmax(dim=-1)


# ----------------------------------------------------------------------------- backbone


class FrameConv(_Mode, nn.Conv1d):
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


class AdaNorm(_Mode):
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


# ----------------------------------------------------------------------------- head


def inverse_dft_basis(n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """[n_fft + 2, n_fft] matrix: [Re | Im] half spectrum -> windowed irfft frame (imag of DC/Nyquist ignored)."""
    bins = n_fft // 2 + 1
    k = np.arange(bins)[:, None]
    n = np.arange(n_fft)[None, :]
    weight = np.where((k == 0) | (k == n_fft // 2), 1.0, 2.0) / n_fft
    angle = 2 * np.pi * ((k * n) % n_fft) / n_fft  # reduce before scaling so large k*n keeps precision
    basis = np.concatenate([weight * np.cos(angle), -weight * np.sin(angle)], axis=0)
    return torch.from_numpy(basis * window.double().numpy()[None, :]).float()


class ISTFT(_Mode):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.pad = (n_fft - hop) // 2
        self.register_buffer("window", torch.hann_window(n_fft))

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


# ----------------------------------------------------------------------------- model


class WavTokenizer(nn.Module):
    def __init__(self, cfg: WavTokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = nn.Module()
        encodec = self.feature_extractor.encodec = nn.Module()
        encodec.encoder = nn.Module()
        encodec.encoder.model = build_encoder(cfg)
        encodec.quantizer = nn.Module()
        encodec.quantizer.vq = nn.Module()
        layer = nn.Module()
        layer._codebook = Codebook(cfg.codebook_size, cfg.codebook_dim)
        encodec.quantizer.vq.layers = nn.ModuleList([layer])
        self.backbone = Backbone(cfg)
        self.head = Head(cfg)

    @property
    def codebook(self) -> Codebook:
        return self.feature_extractor.encodec.quantizer.vq.layers[0]._codebook

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [B, samples] -> pre-quantisation embeddings [B, T, D]."""
        return self.feature_extractor.encodec.encoder.model(audio.unsqueeze(1)).transpose(1, 2)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio [B, samples] -> codes int64 [B, 1, frames]."""
        return self.codebook.nearest(self.embed(audio)).unsqueeze(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes int64 [B, K, frames] (first codebook used) -> audio [B, frames * hop]."""
        feats = F.embedding(codes[:, 0, :], self.codebook.embed).transpose(1, 2)
        return self.head(self.backbone(feats))


def set_exportable(model: nn.Module, on: bool) -> None:
    for m in model.modules():
        if isinstance(m, _Mode):
            m.exportable = on
        if isinstance(m, ISTFT) and on:  # built once from the loaded window, a constant of the graph
            m.basis = inverse_dft_basis(m.n_fft, m.window).unsqueeze(1)  # [n_fft + 2, 1, n_fft]


def fold_weight_norm(model: nn.Module) -> None:
    """Replace weight_g/weight_v by the plain weight they define (what inference computes every call)."""
    for m in model.modules():
        if isinstance(m, nn.Conv1d) and hasattr(m, "weight_g"):
            nn.utils.remove_weight_norm(m)


def model_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """Keep the inference weights of a Lightning checkpoint; discriminators, losses and the SEANet decoder go."""
    state = checkpoint.get("state_dict", checkpoint)
    return {k: v for k, v in state.items() if k.startswith(KEPT_PREFIXES)}


class _Opaque(dict):
    """Stands in for any pickled class this environment lacks (e.g. Lightning's AttributeDict)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        self.state = state


def _opaque_attribute(name: str):
    if name.startswith("__"):  # module machinery (__path__, __file__, ...) must see plain absence
        raise AttributeError(name)
    return _Opaque


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last-resort importer active only while a checkpoint loads: a module nothing else can find
    (pytorch_lightning, the training code) becomes a stub whose every attribute is _Opaque, so
    checkpoints convert without the training stack installed."""

    def find_spec(self, name, path, target=None):
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__getattr__ = _opaque_attribute
        return module

    def exec_module(self, module):
        pass


def _load_checkpoint(path: str):
    finder = _StubFinder()
    before = set(sys.modules)
    sys.meta_path.append(finder)
    try:
        return torch.load(path, map_location="cpu")
    finally:
        sys.meta_path.remove(finder)
        for name in set(sys.modules) - before:
            if getattr(sys.modules[name].__spec__, "loader", None) is finder:
                del sys.modules[name]


def load_wavtokenizer(ckpt_path: str, yaml_cfg: dict | None) -> WavTokenizer:
    checkpoint = _load_checkpoint(ckpt_path)
    if not isinstance(checkpoint, dict):
        raise ArchitectureError(f"expected a checkpoint dict, found {type(checkpoint).__name__}")
    state = model_state(checkpoint)
    cfg = config_from_checkpoint(state, yaml_cfg)
    model = WavTokenizer(cfg)
    if "head.istft.window" not in state:
        state["head.istft.window"] = model.head.istft.window
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ArchitectureError(f"checkpoint does not match the architecture: missing {missing[:5]}, "
                                f"unexpected {unexpected[:5]}")
    return model.eval()


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
