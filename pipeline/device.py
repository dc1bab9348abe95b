"""Which torch device a command runs on (`runtime.device`): speed only, never part of a result.

    device = resolve_device("auto")     # cuda when a GPU is visible, else cpu
"""
from __future__ import annotations

import torch

from pipeline.errors import UserError


def resolve_device(device: str) -> torch.device:
    """`auto` is cuda when present, else cpu; an explicit cuda without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"runtime.device = {device} but no CUDA GPU is visible; use auto or cpu.")
    return torch.device(device)
