"""The control file: change hyperparameters of a running training by editing ``control.yaml``.

The runner writes ``control.yaml`` once, at the start of a run, with every mutable
hyperparameter's specification. From then on the file is the user's: the runner only reads it
(a cheap ``stat`` at every iteration boundary) and never rewrites it. An edit is read once the
file has been unchanged for ``settle_s`` seconds (default 1 s), so a file still being written in
place is never read half-done; every value that changed is applied through
``agent.set_hparam(name, value, "control")``. Anything wrong at this door is a rejection with a
short reason, never an exception: a file that is not a regular file (a directory, a FIFO), larger
than ``max_bytes``, not UTF-8, not YAML, with YAML aliases, or with a bad value. ``command:``
takes ``checkpoint``, ``evaluate`` or ``stop`` and runs once each time it (or ``command_id``)
changes. :func:`edit_control` (``python cli.py control``) validates first, then writes the whole
file atomically under a lock. See docs/guide/control-file.md and docs/guide/reliability.md.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlcore.hparams import HParamError, HParamSpec, check_value
from rlcore.io import atomic_write_text, brief, locked

__all__ = ["COMMANDS", "MAX_BYTES", "SETTLE_S", "ControlFile", "ControlUpdate", "edit_control",
           "read_control_text", "render", "same_value"]

COMMANDS = ("checkpoint", "evaluate", "stop")
MAX_BYTES = 64 * 1024
"""Largest control file read (a full one is about 1 KiB)."""
SETTLE_S = 1.0
"""An edit is read once the file has not changed for this many seconds."""
_KEYS = ("hparams", "command", "command_id")

_HEADER = """\
# Live control of run {run}. Edit and save: the runner reads this file at the iteration boundary
# after it has been unchanged for a second, and never rewrites it. hparams take a number or a
# schedule ("lin:A->B", "exp:A->B", "cos:A->B", "pw:step=value,..."; add "@N" for a duration in
# steps). Applied changes are logged in changes.jsonl; refused ones (with the reason) in
# rejections.jsonl, and the old value stays in force.
# command: checkpoint | evaluate | stop   (runs once each time command or command_id changes)
"""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (``*name``): a few hundred bytes of nested aliases
    expand to gigabytes when the value is printed or logged."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose as SafeLoader does, but raise on an alias."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in a control file",
                event.start_mark)
        return super().compose_node(parent, index)


class _NoAliasDumper(yaml.SafeDumper):
    """SafeDumper that writes a value shared by two fields twice instead of as an alias (which
    the reader refuses)."""

    def ignore_aliases(self, data: Any) -> bool:
        """Never emit an alias."""
        return True


def read_control_text(text: str) -> Any:
    """Parse control-file YAML (no aliases); raise ValueError with a short reason."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise ValueError(f"invalid YAML: {brief(str(e), 300)}") from None
    except RecursionError:
        raise ValueError("invalid YAML: nested too deeply") from None


@dataclass
class ControlUpdate:
    """What a newly read control file says."""

    hparams: dict[str, Any] = field(default_factory=dict)
    """Every hyperparameter the file names, with its value as written."""
    changed: list[str] = field(default_factory=list)
    """Names whose value differs from the file read before (all of them on the first read)."""
    command: str | None = None
    """A command to run now (only when ``command`` or ``command_id`` changed)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(field, reason) pairs for parts of the file that could not be read."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


class ControlFile:
    """Reader of one run's ``control.yaml`` (and its writer at the start of a run).

    Args:
        path: the file.
        run_name: shown in the header comment.
        settle_s: read an edit only once the file has been unchanged this long (0: at once).
        max_bytes: larger files are refused unread.
        clock: wall-clock seconds (``time.time``), compared with the file's modification time.
    """

    def __init__(self, path: str | os.PathLike, run_name: str = "", settle_s: float = SETTLE_S,
                 max_bytes: int = MAX_BYTES, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.run_name = run_name
        self.settle_s, self.max_bytes, self.clock = float(settle_s), int(max_bytes), clock
        self.last_command: tuple[Any, str] | None = None
        self._seen: tuple[int, ...] | None = None
        self._pending: tuple[tuple[int, ...], float] | None = None
        self._last_hparams: dict[str, Any] | None = None

    def write(self, hparams: dict[str, Any], command: str | None = None,
              command_id: Any = None) -> None:
        """Atomically write the specifications (and a command); used when a run starts."""
        atomic_write_text(self.path, render(self.run_name, hparams, command, command_id))
        self._seen = self._stamp()
        self._last_hparams = dict(hparams)
        self.last_command = (command, _command_id(command_id))

    def state_dict(self) -> dict[str, Any]:
        """The last command handed on, so that a resumed run does not run it again."""
        return {"last_command": None if self.last_command is None else list(self.last_command)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        last = state.get("last_command")
        self.last_command = None if last is None else (last[0], last[1])

    def _stamp(self) -> tuple[int, ...] | None:
        try:
            st = self.path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            return (-1, -1, -1, -1)
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)

    # --8<-- [start:settled]
    def _settled(self, stamp: tuple[int, ...]) -> bool:
        """True once the file has been unchanged for ``settle_s``: by its modification time, or
        (for a time stamp in the future) by how long this reader has seen it unchanged."""
        if self.settle_s <= 0:
            return True
        now = self.clock()
        if self._pending is None or self._pending[0] != stamp:
            self._pending = (stamp, now)
        return (now - stamp[0] / 1e9 >= self.settle_s
                or now - self._pending[1] >= self.settle_s)
    # --8<-- [end:settled]

    def poll(self) -> ControlUpdate | None:
        """Read the file if it changed since the last read or write and has settled; None if
        there is nothing new. Never raises for what is in (or at) the path."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen or not self._settled(stamp):
            return None
        self._pending = None
        upd = ControlUpdate()
        try:
            text = self._read(stamp)
        except _Moved:
            return None  # written while we read it: read it again once it settles
        except ValueError as e:
            self._seen = stamp
            upd.errors.append(("control.yaml", f"{self.path}: {e}"))
            return upd
        self._seen = stamp
        try:
            data = read_control_text(text)
        except ValueError as e:
            upd.errors.append(("control.yaml", f"{self.path}: {e}"))
            return upd
        if data is None:
            upd.errors.append(("control.yaml", f"{self.path}: the file is empty; expected "
                                               "'hparams' and 'command'"))
            return upd
        if not isinstance(data, dict):
            upd.errors.append(("control.yaml", f"{self.path}: expected a mapping with 'hparams' "
                                               f"and 'command', got {type(data).__name__}"))
            return upd
        for key in data:
            if key not in _KEYS:
                upd.errors.append((brief(key, 60), f"unknown top-level key {brief(key, 60)}; "
                                                   "expected 'hparams', 'command', 'command_id'"))
        hp = data.get("hparams") or {}
        if not isinstance(hp, dict):
            upd.errors.append(("hparams", f"expected a mapping of name: value, got "
                                          f"{brief(hp, 60)}"))
        else:
            upd.hparams = {k if isinstance(k, str) else brief(k, 60): v for k, v in hp.items()}
            last = self._last_hparams
            upd.changed = [k for k, v in upd.hparams.items()
                           if last is None or k not in last or not _same(last[k], v)]
            self._last_hparams = dict(upd.hparams)
        self._command(data, upd)
        return upd

    def _command(self, data: dict[str, Any], upd: ControlUpdate) -> None:
        cmd = data.get("command")
        key = (cmd if isinstance(cmd, str) or cmd is None else brief(cmd, 60),
               _command_id(data.get("command_id")))
        if key == self.last_command:
            return
        self.last_command = key
        if cmd is None:
            return
        if cmd not in COMMANDS:
            upd.errors.append(("command", f"{brief(cmd, 60)} is not one of {', '.join(COMMANDS)}"))
        else:
            upd.command = cmd

    def _read(self, stamp: tuple[int, ...]) -> str:
        """The file's text; ValueError with the reason if it cannot be a control file."""
        mode = stamp[3]
        if stamp[0] < 0:
            raise ValueError("cannot stat the file")
        if not stat.S_ISREG(mode):
            raise ValueError(f"is {_kind(mode)}; expected a regular file")
        if stamp[1] > self.max_bytes:
            raise ValueError(f"is {stamp[1]} bytes; a control file is at most "
                             f"{self.max_bytes} bytes")
        try:  # O_NONBLOCK: a FIFO swapped in after the stat cannot block the open
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise _Moved() from None
        except OSError as e:
            raise ValueError(f"cannot open: {e.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Moved()
            data = os.read(fd, self.max_bytes + 1)
        except OSError as e:
            raise ValueError(f"cannot read: {e.strerror}") from None
        finally:
            os.close(fd)
        if self._stamp() != stamp:
            raise _Moved()
        if len(data) > self.max_bytes:
            raise ValueError(f"is over {self.max_bytes} bytes; a control file is at most "
                             f"{self.max_bytes} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                             f"{e.start}); save it as UTF-8") from None


def _command_id(cid: Any) -> str:
    return "None" if cid is None else brief(cid, 60)


class _Moved(Exception):
    """The file changed while it was being read."""


def same_value(a: Any, b: Any) -> bool:
    """``a == b`` for values of a control file, where ``True`` is not ``1`` and a failing
    comparison is a difference."""
    try:
        return bool(a == b) and isinstance(a, bool) == isinstance(b, bool)
    except Exception:
        return False


def _same(a: Any, b: Any) -> bool:
    return same_value(a, b) and type(a) is type(b)


def render(run_name: str, hparams: dict[str, Any], command: str | None = None,
           command_id: Any = None) -> str:
    """The text of a control file: the header comment and the YAML body."""
    body: dict[str, Any] = {"hparams": dict(hparams), "command": command}
    if command_id is not None:
        body["command_id"] = command_id
    return _HEADER.format(run=run_name) + yaml.dump(body, Dumper=_NoAliasDumper,
                                                    sort_keys=False)


def edit_control(path: str | os.PathLike, specs: list[HParamSpec],
                 sets: dict[str, Any], command: str | None = None) -> dict[str, Any]:
    """Validate ``sets`` against ``specs`` and write them (and ``command``) into ``path``.

    Used by ``python cli.py control``. Raises HParamError (naming the field) before touching the
    file if any value is invalid, so a bad edit never reaches the runner. The read-modify-write
    holds an exclusive lock on the run folder, so two editors at the same instant both land, and
    the file is replaced atomically. A command gets a new ``command_id``, so it runs even if the
    same command was given before.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no control file (is this a run folder?)")
    by_name = {s.name: s for s in specs}
    for name, value in sets.items():
        if name not in by_name:
            raise HParamError(f"{name}: unknown hyperparameter; mutable ones are "
                              f"{', '.join(sorted(by_name))}")
        check_value(by_name[name], value)
    if command is not None and command not in COMMANDS:
        raise ValueError(f"command {command!r}: expected one of {', '.join(COMMANDS)}")
    with locked(path.parent):
        reader = ControlFile(path, settle_s=0)
        upd = reader.poll()
        if upd is None or upd.errors:
            reason = "; ".join(r for _, r in upd.errors) if upd else "cannot be read"
            raise ValueError(f"{path}: {reason}; fix it by hand (or delete it and run "
                             "'python cli.py train --resume' to write it again)")
        data = read_control_text(path.read_text(encoding="utf-8"))
        current = dict(upd.hparams)
        current.update(sets)
        if command is not None:
            cmd, cid = command, time.time_ns()
        else:
            cmd, cid = data.get("command"), data.get("command_id")
        text = render(path.parent.name, current, cmd, cid)
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise ValueError(f"{path}: the edited file would be {len(text.encode())} bytes; "
                             f"a control file is at most {MAX_BYTES} bytes")
        atomic_write_text(path, text)
    return current
