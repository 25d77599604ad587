"""The two execution modes of a built model, and weight-norm folding.

  * reference (default): the operations the official code runs (reflect padding
    sized with Python integer maths, complex spectrum, irfft + fold overlap-add).
  * exportable (`set_exportable(model, True)`): ONNX-friendly equivalents whose
    padding follows the input length at run time and whose iSTFT is a
    ConvTranspose1d over an inverse-DFT basis.
"""
from __future__ import annotations

from torch import nn


class Exportable(nn.Module):
    """A module with a reference and an export-friendly path (see set_exportable)."""

    exportable = False

    def set_exportable(self, on: bool) -> None:
        self.exportable = on


def set_exportable(model: nn.Module, on: bool) -> None:
    for m in model.modules():
        if isinstance(m, Exportable):
            m.set_exportable(on)


def fold_weight_norm(model: nn.Module) -> None:
    """Replace weight_g/weight_v by the plain weight they define (what inference computes every call)."""
    for m in model.modules():
        if isinstance(m, nn.Conv1d) and hasattr(m, "weight_g"):
            nn.utils.remove_weight_norm(m)
