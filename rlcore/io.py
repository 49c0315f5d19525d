"""Atomic file writes and small readers, without torch: safe for every layer to import.

A write goes to a temp file beside the target, is fsynced, then renamed over the target, so a
crash leaves either the old file or the new one, never half a file. ``marketsim.data`` writes its
Parquet files through here, which is why this module must not import torch
(``setup.cfg``'s import-linter contracts check it).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "append_jsonl", "read_yaml", "json_default"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


# --8<-- [start:atomic]
def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
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
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomic write of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomic write of ``obj`` as indented, key-sorted JSON (numpy scalars become numbers)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")
    return Path(path)


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync (a log line is either whole or absent)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_yaml(path: str | os.PathLike) -> Any:
    """Load a YAML file; raise ValueError naming the file and line on a syntax error."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML: {e}") from None


def json_default(o: Any) -> Any:
    """``json.dumps`` fallback: numpy/torch scalars via ``.item()``, tuples and sets as lists,
    anything else as its ``str``."""
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    return str(o)
