"""Loading a released checkpoint: unpickling without the training stack, keeping the inference weights."""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

import torch

from .config import ArchitectureError, config_from_checkpoint
from .model import WavTokenizer

KEPT_PREFIXES = ("feature_extractor.encodec.encoder.", "feature_extractor.encodec.quantizer.", "backbone.", "head.")


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
