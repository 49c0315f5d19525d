"""The control file: change hyperparameters of a running training by editing ``control.yaml``.

The runner writes ``control.yaml`` at start with every mutable hyperparameter's specification,
checks it at every iteration boundary (a cheap ``stat``), and applies edited values through
``agent.set_hparam(name, value, "control")``. An edit that fails validation is refused with a
message naming the field and the reason; the old value stays. ``command:`` takes ``checkpoint``,
``evaluate`` or ``stop``. See docs/guide/control-file.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlcore.hparams import HParamError, HParamSpec, check_value
from rlcore.io import atomic_write_text

__all__ = ["COMMANDS", "ControlFile", "ControlUpdate", "edit_control"]

COMMANDS = ("checkpoint", "evaluate", "stop")

_HEADER = """\
# Live control of run {run}. Edit and save: the runner checks this file at every iteration
# boundary. hparams take a number or a schedule ("lin:A->B", "exp:A->B", "cos:A->B",
# "pw:step=value,..."; add "@N" for a duration in steps). Applied changes are logged in
# changes.jsonl; refused ones (with the reason) in rejections.jsonl, and the old value stays.
# command: checkpoint | evaluate | stop   (reset to null once done)
"""


@dataclass
class ControlUpdate:
    """What changed in the control file since the runner last read it."""

    hparams: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(field, reason) pairs for parts of the file that could not be read."""


class ControlFile:
    """Reader/writer of one run's ``control.yaml``."""

    def __init__(self, path: str | os.PathLike, run_name: str = ""):
        self.path = Path(path)
        self.run_name = run_name
        self._seen: tuple[int, int] | None = None

    def write(self, hparams: dict[str, Any], command: str | None = None) -> None:
        """Atomically write the current specifications (and a pending command)."""
        body = yaml.safe_dump({"hparams": dict(hparams), "command": command}, sort_keys=False)
        atomic_write_text(self.path, _HEADER.format(run=self.run_name) + body)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self) -> ControlUpdate | None:
        """Read the file if it changed since the last read or write; None if unchanged."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        upd = ControlUpdate()
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            upd.errors.append(("control.yaml", f"{self.path}: invalid YAML: {e}"))
            return upd
        if not isinstance(data, dict):
            upd.errors.append(("control.yaml", f"{self.path}: expected a mapping with 'hparams' "
                                               f"and 'command', got {type(data).__name__}"))
            return upd
        for key in data:
            if key not in ("hparams", "command"):
                upd.errors.append((str(key), f"unknown top-level key {key!r}; "
                                             "expected 'hparams' and 'command'"))
        hp = data.get("hparams") or {}
        if not isinstance(hp, dict):
            upd.errors.append(("hparams", "expected a mapping of name: value"))
        else:
            upd.hparams = hp
        cmd = data.get("command")
        if cmd is not None:
            if cmd not in COMMANDS:
                upd.errors.append(("command", f"{cmd!r} is not one of {', '.join(COMMANDS)}"))
            else:
                upd.command = cmd
        return upd


def edit_control(path: str | os.PathLike, specs: list[HParamSpec],
                 sets: dict[str, Any], command: str | None = None) -> dict[str, Any]:
    """Validate ``sets`` against ``specs`` and write them (and ``command``) into ``path``.

    Used by ``python cli.py control``. Raises HParamError (naming the field) before touching the
    file if any value is invalid, so a bad edit never reaches the runner.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no control file (is this a run folder?)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    current = dict(data.get("hparams") or {})
    by_name = {s.name: s for s in specs}
    for name, value in sets.items():
        if name not in by_name:
            raise HParamError(f"{name}: unknown hyperparameter; mutable ones are "
                              f"{', '.join(sorted(by_name))}")
        check_value(by_name[name], value)
        current[name] = value
    if command is not None and command not in COMMANDS:
        raise ValueError(f"command {command!r}: expected one of {', '.join(COMMANDS)}")
    ControlFile(path, path.parent.name).write(current, command if command else data.get("command"))
    return current
