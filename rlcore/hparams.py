"""Mutable hyperparameters: one validated door for every change.

Every agent holds an :class:`HParams` built from a list of :class:`HParamSpec`. Schedules, the
control file, tuning trials and continual learning all change a value through
``agent.set_hparam(name, value, source)``, which validates it here (type, range, schedule syntax)
and then lets the agent react (PPO recomputes advantages when gamma changes).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

from rlcore.io import brief
from rlcore.schedules import Schedule, ScheduleError, parse_schedule

__all__ = ["HParamError", "HParamSpec", "HParams", "Change", "check_value", "make_hparams"]


class HParamError(ValueError):
    """An invalid hyperparameter change; the message names the field and the reason."""


@dataclass(frozen=True)
class HParamSpec:
    """Declaration of one mutable hyperparameter.

    Attributes:
        name: field name, as in the config and the control file.
        kind: ``float``, ``int`` or ``bool``.
        low, high: inclusive bounds (None: unbounded).
        doc: one line for ``--help`` and the control file.
        schedulable: whether a schedule (not just a constant) is accepted.
        low_open: the lower bound is exclusive (e.g. learning rate > 0).
    """

    name: str
    kind: type = float
    low: float | None = None
    high: float | None = None
    doc: str = ""
    schedulable: bool = True
    low_open: bool = False


@dataclass(frozen=True)
class Change:
    """A change of one hyperparameter: the event written to ``changes.jsonl``."""

    step: int
    field: str
    old: Any
    new: Any
    source: str

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-ready dict with keys step, field, old, new, source."""
        return {"step": self.step, "field": self.field, "old": self.old, "new": self.new,
                "source": self.source}


class HParams:
    """The current specifications and values of an agent's mutable hyperparameters."""

    def __init__(self, specs: list[HParamSpec], initial: dict[str, Any], total_steps: int = 0):
        self.specs = {s.name: s for s in specs}
        self.total_steps = total_steps
        self.step = 0
        self._sched: dict[str, Schedule] = {}
        self._value: dict[str, Any] = {}
        for s in specs:
            if s.name not in initial:
                raise HParamError(f"{s.name}: no initial value")
            self._sched[s.name] = self._parse(s, initial[s.name], 0)
            self._value[s.name] = self._eval(s, self._sched[s.name], 0)

    def __contains__(self, name: str) -> bool:
        return name in self.specs

    def __getitem__(self, name: str) -> Any:
        return self._value[name]

    def names(self) -> list[str]:
        """Names of the mutable hyperparameters."""
        return list(self.specs)

    def spec(self, name: str) -> Any:
        """The specification of ``name`` as written (number, schedule string or mapping)."""
        return self._sched[name].describe()

    def specs_dict(self) -> dict[str, Any]:
        """Every hyperparameter's specification as written (what ``control.yaml`` shows)."""
        return {n: self.spec(n) for n in self.specs}

    def values(self) -> dict[str, Any]:
        """Every hyperparameter's current value."""
        return dict(self._value)

    def validate(self, name: str, value: Any) -> Schedule:
        """Parse and check ``value`` for ``name`` without applying it; raise HParamError."""
        if name not in self.specs:
            raise HParamError(
                f"{name}: unknown hyperparameter; mutable ones are {', '.join(sorted(self.specs))}"
            )
        return self._parse(self.specs[name], value, self.step)

    def set(self, name: str, value: Any) -> tuple[Any, Any, Any, Any]:
        """Apply a new specification; returns (old spec, new spec, old value, new value)."""
        sched = self.validate(name, value)
        s = self.specs[name]
        old_spec, old_val = self.spec(name), self._value[name]
        self._sched[name] = sched
        self._value[name] = self._eval(s, sched, self.step)
        return old_spec, self.spec(name), old_val, self._value[name]

    def snapshot(self, name: str) -> tuple[Schedule, Any]:
        """The schedule and value of ``name`` in force, for :meth:`restore`."""
        return self._sched[name], self._value[name]

    def restore(self, name: str, saved: tuple[Schedule, Any]) -> None:
        """Put back what :meth:`snapshot` returned (a change the agent could not apply)."""
        self._sched[name], self._value[name] = saved

    def advance(self, step: int) -> dict[str, tuple[Any, Any]]:
        """Move to ``step``: evaluate every schedule; returns {name: (old, new)} for changed values."""
        self.step = step
        changed = {}
        for n, s in self.specs.items():
            v = self._eval(s, self._sched[n], step)
            if v != self._value[n]:
                changed[n] = (self._value[n], v)
                self._value[n] = v
        return changed

    def state_dict(self) -> dict[str, Any]:
        """Specifications, origins and step, for checkpoints."""
        return {"step": self.step, "total_steps": self.total_steps,
                "specs": {n: self.spec(n) for n in self.specs},
                "origins": {n: self._sched[n].origin for n in self.specs}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (schedules keep their origins)."""
        self.step = state["step"]
        self.total_steps = state.get("total_steps", self.total_steps)
        for n, spec in state["specs"].items():
            if n in self.specs:
                self._sched[n] = self._parse(self.specs[n], spec, state["origins"].get(n, 0))
                self._value[n] = self._eval(self.specs[n], self._sched[n], self.step)

    # -- internals ---------------------------------------------------------------------------
    def _parse(self, s: HParamSpec, value: Any, origin: int) -> Schedule:
        return check_value(s, value, origin)

    def _eval(self, s: HParamSpec, sched: Schedule, step: int) -> Any:
        v = sched.at(step, self.total_steps)
        if s.kind is bool:
            return bool(v)
        # every knot is in range, so the schedule is too, up to rounding (exp's a * (b/a)**1 may
        # land one ulp past b): clamp, so the value in force always meets the declaration
        if s.high is not None:
            v = min(v, s.high)
        if s.low is not None:
            v = max(v, s.low)
            if s.low_open and v <= s.low:
                v = math.nextafter(s.low, math.inf)
        if s.kind is int:
            return int(round(v))
        return float(v)


def check_value(s: HParamSpec, value: Any, origin: int = 0) -> Schedule:
    """Parse and validate ``value`` for ``s`` (type, range, schedule syntax); raise HParamError."""
    if s.kind is bool:
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            value = value.strip().lower() in ("true", "1")
        if not isinstance(value, bool):
            raise HParamError(f"{s.name}: expected true or false, got {brief(value)}")
        return parse_schedule(value, origin)
    if isinstance(value, bool):
        raise HParamError(f"{s.name}: expected a {s.kind.__name__}, got {brief(value)}")
    try:
        sched = parse_schedule(value, origin)
    except ScheduleError as e:
        raise HParamError(f"{s.name}: {e}") from None
    except (TypeError, ValueError, OverflowError, RecursionError) as e:  # belt and braces
        raise HParamError(f"{s.name}: cannot read {brief(value)} "
                          f"({type(e).__name__}); expected a number or a schedule") from None
    if sched.kind != "const" and not s.schedulable:
        raise HParamError(f"{s.name}: takes a constant, not a schedule ({brief(value)})")
    for v in sched.values():
        if not math.isfinite(v):
            raise HParamError(f"{s.name}: value {v!r} is not finite")
        if s.kind is int and sched.kind == "const" and v != int(v):
            raise HParamError(f"{s.name}: expected an integer, got {brief(value)}")
        if s.low is not None and (v < s.low or (s.low_open and v <= s.low)):
            op = ">" if s.low_open else ">="
            raise HParamError(f"{s.name}: {v!r} out of range; expected {op} {s.low}")
        if s.high is not None and v > s.high:
            raise HParamError(f"{s.name}: {v!r} out of range; expected <= {s.high}")
    return sched


def make_hparams(specs: list[HParamSpec], config: Any, total_steps: int) -> HParams:
    """Build :class:`HParams` with initial values read from the config dataclass's fields."""
    return HParams(specs, {s.name: getattr(config, s.name) for s in specs}, total_steps)



class LiveHParams:
    """The Agent protocol's four hyperparameter methods, over ``self.hp`` (an :class:`HParams`).

    An agent mixes this in and overrides :meth:`_on_value` with what a changed value means for it
    (PPO: recompute advantages; SAC/DQN: optimiser learning rates, PER exponents). It is the one
    piece every agent shares; no algorithm inherits from another.
    """

    hp: HParams

    def _on_value(self, name: str, old: Any, new: Any) -> None:
        """Side effects of a changed value (none by default)."""

    def hparam_schedules(self) -> dict[str, Any]:
        """Specification (number or schedule) of every mutable hyperparameter."""
        return self.hp.specs_dict()

    def hparam_values(self) -> dict[str, Any]:
        """Current value of every mutable hyperparameter."""
        return self.hp.values()

    # --8<-- [start:set-hparam]
    def set_hparam(self, name: str, value: Any, source: str = "user") -> Change:
        """Validate and apply a change now (HParamError leaves the old value in force)."""
        saved = self.hp.snapshot(name) if name in self.hp else None
        old_spec, new_spec, old_v, new_v = self.hp.set(name, value)
        try:
            self._on_value(name, old_v, new_v)
        except Exception as e:  # the agent could not take it: put the old value back
            self.hp.restore(name, saved)
            with contextlib.suppress(Exception):
                self._on_value(name, new_v, old_v)
            raise HParamError(f"{name}: {brief(value)} could not be applied "
                              f"({type(e).__name__}: {brief(str(e))}); the old value stays") from e
        return Change(self.hp.step, name, old_spec, new_spec, source)

    def advance(self, step: int) -> dict[str, tuple[Any, Any]]:
        """Evaluate schedules at ``step``; apply side effects; return {name: (old, new)}."""
        changed = self.hp.advance(step)
        for name, (old, new) in changed.items():
            self._on_value(name, old, new)
        return changed
    # --8<-- [end:set-hparam]
