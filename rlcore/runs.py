"""Run folders: ``runs/<run-id>/`` and atomic writes of everything in them.

Layout: ``config.yaml`` (resolved config), ``control.yaml`` (live hyperparameters and commands),
``changes.jsonl`` (applied changes), ``rejections.jsonl`` (refused control edits), ``tb/``
(TensorBoard), ``checkpoints/`` (``step_<N>.pt`` and ``latest``), ``summary.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_torch_save", "RunDir", "new_run_id",
           "append_jsonl", "read_yaml"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


# --8<-- [start:atomic]
def _atomic(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, fsync, then rename it over ``path``.

    The file gets the ordinary permissions (0666 minus the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
# --8<-- [end:atomic]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomic write of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temp file, fsync and rename, so a crash never leaves half a file."""
    _atomic(path, lambda f: torch.save(obj, f))


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync (a log line is either whole or absent)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_yaml(path: str | os.PathLike) -> Any:
    """Load a YAML file; raise ValueError naming the file and line on a syntax error."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML: {e}") from None


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    return str(o)


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
        atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
                          + "\n")
        return path

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
