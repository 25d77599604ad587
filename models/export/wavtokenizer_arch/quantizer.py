"""The single-codebook vector quantiser: embeddings -> index of the nearest entry (decoding reads entries back)."""
from __future__ import annotations

import torch
from torch import nn


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
