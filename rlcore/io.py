"""Atomic file writes and small readers, without torch: safe for every layer to import.

A write goes to a temp file beside the target, is fsynced, then renamed over the target, so a
crash leaves either the old file or the new one, never half a file. ``marketsim.data`` writes its
Parquet files through here, which is why this module must not import torch
(``setup.cfg``'s import-linter contracts check it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "append_jsonl", "read_yaml", "json_default", "strict_json", "dumps_strict",
           "fsync_dir", "remove_temp_files", "locked", "brief"]


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
        fsync_dir(path.parent)  # the rename itself survives a power cut
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
# --8<-- [end:atomic]


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that a rename or a new file in it is on disk (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files :func:`atomic_write` leaves behind when killed mid-write
    (``.<name>.<random>.tmp``); returns what was removed. Only call it where no write is running."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def locked(path: str | os.PathLike, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (a file or a folder; it must exist) for the block.

    Locking an existing folder leaves no lock file behind. With ``blocking=False`` a lock held by
    another process raises ``BlockingIOError``.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)  # closing releases the lock


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomic write of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomic write of ``obj`` as indented, key-sorted, strict JSON (numpy scalars become numbers,
    NaN and infinities become null: see :func:`strict_json`)."""
    atomic_write_text(path, dumps_strict(obj, indent=2, sort_keys=True) + "\n")
    return Path(path)


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one strict JSON line and fsync (a log line is either whole or absent)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(dumps_strict(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN or Infinity) and
    numpy/torch scalars turned into Python numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return strict_json(obj.item())
        except (TypeError, ValueError):
            return str(obj)
    return obj


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes ``NaN`` or ``Infinity`` (they become null)."""
    return json.dumps(strict_json(obj), allow_nan=False, default=json_default, **kwargs)


def brief(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters (with the full length), for messages and logs:
    a 10 MB value in a control file must not become a 10 MB log line."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deeply to print>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


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
