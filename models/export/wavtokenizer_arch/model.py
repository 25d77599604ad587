"""WavTokenizer assembled from its parts, under the module paths of the released checkpoints."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .backbone import Backbone
from .config import WavTokenizerConfig
from .encoder import build_encoder
from .head import Head
from .quantizer import Codebook


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
