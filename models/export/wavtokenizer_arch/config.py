"""Every size of a WavTokenizer, inferred from a checkpoint's tensor shapes and cross-checked against its yaml."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

ENCODER_PREFIX = "feature_extractor.encodec.encoder.model."
CODEBOOK_PREFIX = "feature_extractor.encodec.quantizer.vq.layers."
GROUP_NORM_GROUPS = 32  # fixed in the official backbone (`Normalize`), not visible in any shape


class ArchitectureError(ValueError):
    """The checkpoint or config does not describe a WavTokenizer this code supports."""


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
