"""Multi-process runs under torchrun: rank and world size, and starting torchrun on the user's behalf.

    rank, world = init_distributed()                 # (0, 1) in a plain process
    relaunch_under_torchrun(["embed-images", "--params", "params.yaml"], nproc=4)   # runtime.launcher: torchrun

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; with more than one process a process group is started (nccl on GPUs,
gloo on CPUs). Only `embed_images` runs sharded; every other stage is a single process.
"""
from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    """True inside a process that torchrun started."""
    return "LOCAL_RANK" in os.environ


def init_distributed() -> tuple[int, int]:
    """(rank, world size); starts a process group when launched by torchrun with more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def rank_device(device: str, world: int) -> str:
    """This rank's own GPU when several processes share a node's GPUs; `device` otherwise."""
    if world > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def barrier(world: int) -> None:
    """Wait for every rank (no-op in a single process)."""
    if world > 1:
        dist.barrier()


def finish(world: int) -> None:
    """Last barrier and process-group teardown (no-op in a single process)."""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def relaunch_under_torchrun(command_args: list[str], nproc: int) -> None:
    """Run `mdpr <command_args>` as `torchrun --standalone --nproc_per_node nproc -m stages.cli ...`; exit status
    of a failed run is passed on."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "stages.cli", *command_args]
    code = subprocess.call(command)
    if code:
        raise SystemExit(code)
