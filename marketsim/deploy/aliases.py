"""Aliases of the model registry: ``champion``, ``challenger`` or any name, pointing at a model id.

All aliases and their histories live in one file, ``aliases.json``, replaced atomically
(:func:`rlcore.io.atomic_write_json`: temp file, fsync, ``os.replace``) under an exclusive lock
on the registry folder. A process killed at any point leaves the old file or the new one, never
a mix: there is no second file to get out of step with. A rollback re-points an alias at the
value it had before its last change (MLflow's aliases, which replaced its registry stages, work
the same way); the history is a stack per alias.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcore.io import append_jsonl, atomic_write_json, locked

__all__ = ["AliasError", "AliasTable", "valid_alias"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class AliasError(ValueError):
    """An unknown or malformed alias (the message names it)."""


def valid_alias(name: str) -> str:
    """``name`` if it is a usable alias (a letter, then letters, digits, ``_.-``), else AliasError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise AliasError(f"alias {name!r}: expected a letter then letters, digits, '_', '.' or "
                         "'-' (at most 64 characters)")
    return name


@dataclass
class AliasState:
    """The content of ``aliases.json``: current targets and, per alias, the earlier targets."""

    aliases: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"aliases": dict(sorted(self.aliases.items())),
                "history": dict(sorted(self.history.items()))}


class AliasTable:
    """The alias file of a registry folder, read and changed atomically.

    Args:
        root: the registry folder (it must exist: its lock is taken on it).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.path = self.root / "aliases.json"
        self.log = self.root / "events.jsonl"

    def read(self) -> AliasState:
        """The current state (empty when the file does not exist yet)."""
        if not self.path.exists():
            return AliasState()
        import json

        data = json.loads(self.path.read_text(encoding="utf-8"))
        return AliasState(dict(data.get("aliases", {})),
                          {k: list(v) for k, v in data.get("history", {}).items()})

    def get(self, alias: str) -> str:
        """The model id of ``alias``; AliasError naming it (and the known ones) if unset."""
        state = self.read()
        if alias not in state.aliases:
            known = ", ".join(sorted(state.aliases)) or "none yet"
            raise AliasError(f"unknown alias {alias!r} (aliases: {known})")
        return state.aliases[alias]

    # --8<-- [start:alias-set]
    def set(self, alias: str, model_id: str | None, reason: str = "") -> str | None:
        """Point ``alias`` at ``model_id`` (None removes it) in one atomic replace of the file;
        the old target is pushed on the alias's history. Returns the old target."""
        valid_alias(alias)
        with locked(self.root):
            state = self.read()
            old = state.aliases.get(alias)
            if old == model_id:
                return old
            state.history.setdefault(alias, []).append(old)
            if model_id is None:
                state.aliases.pop(alias, None)
            else:
                state.aliases[alias] = model_id
            atomic_write_json(self.path, state.to_dict())
        self._event("set", alias, old, model_id, reason)
        return old
    # --8<-- [end:alias-set]

    # --8<-- [start:alias-rollback]
    def rollback(self, alias: str, reason: str = "") -> tuple[str | None, str | None]:
        """Re-point ``alias`` at its target before the last change (removed if it had none);
        returns (old, new). AliasError if the alias has no history to go back to."""
        valid_alias(alias)
        with locked(self.root):
            state = self.read()
            stack = state.history.get(alias) or []
            if alias not in state.aliases and not stack:
                known = ", ".join(sorted(state.aliases)) or "none yet"
                raise AliasError(f"unknown alias {alias!r} (aliases: {known})")
            if not stack:
                raise AliasError(f"alias {alias!r} has no earlier target to roll back to")
            old, new = state.aliases.get(alias), stack.pop()
            if new is None:
                state.aliases.pop(alias, None)
            else:
                state.aliases[alias] = new
            atomic_write_json(self.path, state.to_dict())
        self._event("rollback", alias, old, new, reason)
        return old, new
    # --8<-- [end:alias-rollback]

    def _event(self, action: str, alias: str, old: str | None, new: str | None,
               reason: str) -> None:
        """A line in ``events.jsonl`` for people (``aliases.json`` is the truth)."""
        append_jsonl(self.log, {"time": time.time(), "action": action, "alias": alias,
                                "old": old, "new": new, "reason": reason})
