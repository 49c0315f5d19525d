"""Run folders: ``runs/<run-id>/`` and their checkpoints (atomic writes: :mod:`rlcore.io`).

Layout: ``config.yaml`` (resolved config), ``control.yaml`` (live hyperparameters and commands),
``changes.jsonl`` (applied changes), ``rejections.jsonl`` (refused control edits), ``tb/``
(TensorBoard), ``checkpoints/`` (``step_<N>.pt`` and ``latest``), ``summary.json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from rlcore.io import atomic_write, atomic_write_json, atomic_write_text

__all__ = ["atomic_torch_save", "RunDir", "new_run_id"]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temp file, fsync and rename, so a crash never leaves half a file."""
    atomic_write(path, lambda f: torch.save(obj, f))


def new_run_id(algo: str, env: str, seed: int) -> str:
    """``<utc time>-<algo>-<env>-s<seed>`` with the env id made path-safe."""
    env_safe = env.replace("/", "-").replace(":", "-")
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{algo}-{env_safe}-s{seed}"


class RunDir:
    """Paths of one run folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config = property(lambda self: self.path / "config.yaml")
    control = property(lambda self: self.path / "control.yaml")
    changes = property(lambda self: self.path / "changes.jsonl")
    rejections = property(lambda self: self.path / "rejections.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    tb = property(lambda self: self.path / "tb")
    checkpoints = property(lambda self: self.path / "checkpoints")

    def create(self) -> RunDir:
        """Make the folder (and ``checkpoints/``); refuse to reuse an existing run folder."""
        if self.path.exists() and any(self.path.iterdir()):
            raise FileExistsError(f"run folder {self.path} exists and is not empty; "
                                  "use --resume to continue it or choose another --run-id")
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self

    def write_json(self, path: Path, obj: Any) -> Path:
        """Atomically write ``obj`` as indented JSON."""
        return atomic_write_json(path, obj)

    def save_checkpoint(self, obj: dict[str, Any], step: int, keep: int = 3) -> Path:
        """Write ``checkpoints/step_<step>.pt`` and point ``latest`` at it; keep the newest ``keep``."""
        path = self.checkpoints / f"step_{step:012d}.pt"
        atomic_torch_save(obj, path)
        atomic_write_text(self.checkpoints / "latest", path.name + "\n")
        olds = sorted(self.checkpoints.glob("step_*.pt"))[:-keep]
        for p in olds:
            p.unlink(missing_ok=True)
        return path

    def latest_checkpoint(self) -> Path:
        """The checkpoint ``latest`` names; FileNotFoundError with the run folder if none."""
        pointer = self.checkpoints / "latest"
        if not pointer.exists():
            raise FileNotFoundError(f"{self.path}: no checkpoint (missing {pointer})")
        path = self.checkpoints / pointer.read_text().strip()
        if not path.exists():
            raise FileNotFoundError(f"{pointer} names {path.name}, which does not exist")
        return path
