"""Run folders: ``runs/<run-id>/`` and their checkpoints (atomic writes: :mod:`rlcore.io`).

Layout: ``config.yaml`` (resolved config), ``control.yaml`` (live hyperparameters and commands),
``changes.jsonl`` (applied changes), ``rejections.jsonl`` (refused control edits), ``tb/``
(TensorBoard), ``checkpoints/`` (``step_<N>.pt`` and ``latest``), ``summary.json``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from rlcore.io import atomic_write, atomic_write_json, atomic_write_text, remove_temp_files

__all__ = ["atomic_torch_save", "RunDir", "new_run_id", "truncate_jsonl"]

_CKPT = re.compile(r"^step_(\d+)\.pt$")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temp file, fsync and rename, so a crash never leaves half a file."""
    import torch  # here, not at the top: reading a run folder's files needs no torch

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
        """Claim the folder atomically: make it (an existing empty folder is accepted), then make
        ``checkpoints/``, which only one process can do. FileExistsError if it is taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.mkdir()
        except FileExistsError:
            if not self.path.is_dir() or any(p.name != "checkpoints" for p in self.path.iterdir()):
                raise FileExistsError(f"run folder {self.path} exists and is not empty; use "
                                      "--resume to continue it or choose another --run-id") from None
        try:
            self.checkpoints.mkdir()
        except FileExistsError:
            raise FileExistsError(f"run folder {self.path} is already used by another run; use "
                                  "--resume to continue it or choose another --run-id") from None
        return self

    def write_json(self, path: Path, obj: Any) -> Path:
        """Atomically write ``obj`` as indented JSON."""
        return atomic_write_json(path, obj)

    def save_checkpoint(self, obj: dict[str, Any], step: int, keep: int = 3) -> Path:
        """Write ``checkpoints/step_<step>.pt`` and point ``latest`` at it; keep the newest ``keep``
        checkpoints (older ones and stale temp files of killed writes are deleted)."""
        path = self.checkpoint_path(step)
        atomic_torch_save(obj, path)
        atomic_write_text(self.checkpoints / "latest", path.name + "\n")
        for p in self.checkpoint_files()[keep:]:
            p.unlink(missing_ok=True)
        return path

    def checkpoint_path(self, step: int) -> Path:
        """``checkpoints/step_<step>.pt`` (whether or not it exists)."""
        return self.checkpoints / f"step_{step:012d}.pt"

    def roll_back_to(self, step: int) -> None:
        """Undo what a killed process did after its checkpoint of ``step``: its
        ``changes.jsonl`` lines, its newer (unreadable) checkpoints, its half-written temp
        files."""
        truncate_jsonl(self.changes, step)
        for p in self.checkpoint_files():
            if int(_CKPT.match(p.name).group(1)) > step:
                p.unlink(missing_ok=True)
        self.remove_temp_files()

    def checkpoint_files(self) -> list[Path]:
        """The ``step_<N>.pt`` files, newest (highest step) first."""
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir()
                 if (m := _CKPT.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def latest_checkpoint(self) -> Path:
        """The newest ``step_<N>.pt``; FileNotFoundError naming the run folder if there is none.
        The file is not loaded (see :meth:`load_checkpoint`). The ``latest`` pointer is written
        for tools and people but never read here: a kill between a checkpoint's rename and the
        pointer's write leaves it naming the one before, and resuming from that would lose (and
        roll back) the newer file."""
        files = self.checkpoint_files()
        if not files:
            raise FileNotFoundError(f"{self.path}: no checkpoint in {self.checkpoints}")
        return files[0]

    def load_checkpoint(self, map_location: Any = "cpu") -> tuple[dict[str, Any], Path, list[str]]:
        """Load the newest intact checkpoint: the ``step_<N>.pt`` files, newest first. Returns
        (state, path, notes on the files skipped and why); FileNotFoundError naming the folder
        if none loads."""
        import torch

        candidates = self.checkpoint_files()
        notes: list[str] = []
        for path in candidates:
            try:
                state = torch.load(path, map_location=map_location, weights_only=False)
                if not isinstance(state, dict) or "step" not in state or "agent" not in state:
                    raise ValueError("not a run checkpoint (no step or agent)")
                return state, path, notes
            except Exception as e:  # truncated, corrupt, or not ours: try the next older one
                notes.append(f"skipped {path.name}: {type(e).__name__}: {str(e)[:200]}")
        if not candidates:
            raise FileNotFoundError(f"{self.path}: no checkpoint to resume from (the run was "
                                    "stopped before its first checkpoint)")
        raise FileNotFoundError(f"{self.path}: no intact checkpoint; " + "; ".join(notes))

    def remove_temp_files(self) -> list[Path]:
        """Delete temp files left by writes that a kill interrupted (run folder, checkpoints)."""
        return remove_temp_files(self.path) + remove_temp_files(self.checkpoints)


def truncate_jsonl(path: str | os.PathLike, last_step: int, key: str = "step") -> int:
    """Drop the lines of a JSON-lines log whose ``key`` is after ``last_step`` (and torn lines);
    rewrites the file atomically; returns the number of lines dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
            if isinstance(rec, dict) and rec.get(key, 0) <= last_step:
                keep.append(line)
                continue
        except (json.JSONDecodeError, TypeError):
            pass
        dropped += 1
    if dropped:
        atomic_write_text(path, "".join(x + "\n" for x in keep))
    return dropped


def run_status(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """(summary, status) of a run folder for ``python cli.py runs``: ``running`` while a process
    trains it (it holds the lock on ``checkpoints/``), else the summary's status (``completed``,
    ``stopped``, ``interrupted``, ``failed``), else ``killed (resumable)`` when it has
    checkpoints but no summary, ``unfinished (no checkpoint)`` otherwise."""
    rd = RunDir(path)
    summary: dict[str, Any] = {}
    try:
        summary = json.loads(rd.summary.read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            summary = {}
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return {}, "unreadable summary.json"
    if rd.checkpoints.is_dir():
        from rlcore.io import locked

        try:
            with locked(rd.checkpoints, blocking=False):
                pass
        except BlockingIOError:
            return summary, "running"
        except OSError:
            pass
    if summary.get("status"):
        return summary, str(summary["status"])
    if not rd.config.is_file():
        return summary, "not a run folder"
    return summary, "killed (resumable)" if rd.checkpoint_files() else "unfinished (no checkpoint)"
