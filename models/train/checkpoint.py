"""Weights as plain float32 .npz files, portable between Debian's torch 1.13 and the GPU box's newer torch.

Only parameters are stored (buffers such as the iSTFT basis are rebuilt by model.py), split in two files
(encoder+quantizer, decoder) so each stays small. A checkpoint is named by its common prefix:
`<prefix>.enc.npz` + `<prefix>.dec.npz`.
"""
import numpy as np
import torch

from model import build_codec

PARTS = {"enc": ("encoder.", "quantizer."), "dec": ("decoder.",)}


def save_weights(codec, prefix):
    params = {k: v.detach().cpu().float().numpy() for k, v in codec.named_parameters()}
    for part, heads in PARTS.items():
        np.savez(f"{prefix}.{part}.npz", **{k: v for k, v in params.items() if k.startswith(heads)})


def load_weights(codec, prefix):
    state = {}
    for part in PARTS:
        with np.load(f"{prefix}.{part}.npz") as data:
            state.update({k: torch.from_numpy(data[k]) for k in data.files})
    missing, unexpected = codec.load_state_dict(state, strict=False)
    buffers = {k for k, _ in codec.named_buffers()}
    if unexpected or set(missing) - buffers:
        raise ValueError(f"checkpoint {prefix} does not match the model: missing {missing}, unexpected {unexpected}")
    return codec


def load_codec(prefix):
    return load_weights(build_codec(0), prefix).eval()
