"""Which torch device a command runs on (`runtime.device`): speed only, never part of a result.

    device = resolve_device("auto")     # cuda when a GPU is visible, else cpu
    with autocast(device): ...          # bf16 autocast on CUDA, nothing on CPU
"""
from __future__ import annotations

import contextlib

import torch

from pipeline.core.errors import UserError


def resolve_device(device: str) -> torch.device:
    """`auto` is cuda when present, else cpu; an explicit cuda without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"runtime.device = {device} but no CUDA GPU is visible; use auto or cpu.")
    return torch.device(device)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (training and inference of the head); a no-op context on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
