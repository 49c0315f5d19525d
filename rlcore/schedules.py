"""Schedules: hyperparameter values as pure functions of the training step.

A schedule is written in config, on the command line or in the control file as

* a number: ``0.2`` (constant);
* ``"lin:0.2->0.05"``: linear from 0.2 to 0.05 (docs/guide/control-file.md, eq. (1));
* ``"exp:1e-3->1e-5"``: geometric interpolation (eq. (2));
* ``"cos:1e-3->0"``: half-cosine annealing (eq. (3));
* ``"pw:0=1e-3,50000=5e-4,100000=1e-4"``: piecewise linear in absolute steps, flat outside;
* a mapping, e.g. ``{type: lin, start: 0.2, end: 0.05, steps: 50000}``.

``lin``, ``exp`` and ``cos`` run from the step at which the schedule was set (``origin``) to the end
of the run, or over ``steps`` steps when given (``"lin:0.2->0.05@50000"``), then stay at the end
value. Setting a schedule mid-run therefore starts it where the run is, instead of jumping into its
middle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rlcore.io import brief

__all__ = ["Schedule", "ScheduleError", "parse_schedule", "MAX_STEP"]

_KINDS = ("const", "lin", "exp", "cos", "pw")
MAX_STEP = 1e15
"""Largest step a schedule may name (knots and durations): far beyond any run, still exact."""


class ScheduleError(ValueError):
    """A schedule specification that cannot be parsed."""


@dataclass(frozen=True)
class Schedule:
    """A value as a function of the step.

    Attributes:
        kind: one of ``const``, ``lin``, ``exp``, ``cos``, ``pw``.
        points: for ``pw`` the ``(step, value)`` knots; otherwise ``((0, start), (0, end))``.
        steps: duration for ``lin``/``exp``/``cos`` (None: until the end of the run).
        origin: the step at which the schedule was set.
    """

    kind: str
    points: tuple[tuple[float, float], ...]
    steps: int | None = None
    origin: int = 0
    spec: Any = field(default=None, compare=False)

    @property
    def start(self) -> float:
        """Value at the schedule's first step."""
        return self.points[0][1]

    @property
    def end(self) -> float:
        """Value at (and after) the schedule's last step."""
        return self.points[-1][1]

    def values(self) -> list[float]:
        """Every value the schedule passes through at a knot (for range checks)."""
        return [v for _, v in self.points]

    # --8<-- [start:at]
    def at(self, step: int, total_steps: int | None = None) -> float:
        """The value at ``step`` of a run of ``total_steps`` steps."""
        if self.kind == "const":
            return self.start
        if self.kind == "pw":
            xs = [p[0] for p in self.points]
            if step <= xs[0]:
                return self.points[0][1]
            for (x0, y0), (x1, y1) in zip(self.points, self.points[1:]):
                if step <= x1:
                    return y0 + (y1 - y0) * (step - x0) / (x1 - x0)
            return self.points[-1][1]
        horizon = self.steps if self.steps is not None else (total_steps or 0) - self.origin
        frac = 1.0 if horizon <= 0 else min(max((step - self.origin) / horizon, 0.0), 1.0)
        a, b = self.start, self.end
        if self.kind == "lin":  # eq. (1)
            return a + (b - a) * frac
        if self.kind == "exp":  # eq. (2)
            if a <= 0 or b <= 0:
                return a + (b - a) * frac
    # --8<-- [end:at]
            return a * (b / a) ** frac
        return b + 0.5 * (a - b) * (1.0 + math.cos(math.pi * frac))  # eq. (3)

    def rebased(self, origin: int) -> Schedule:
        """The same schedule, started at ``origin``."""
        return Schedule(self.kind, self.points, self.steps, origin, self.spec)

    def describe(self) -> Any:
        """The specification as the user wrote it (a number, string or mapping)."""
        return self.spec


def _num(text: Any, spec: Any) -> float:
    """``text`` as a finite float; ScheduleError naming the schedule otherwise."""
    where = "" if text is spec else f"schedule {brief(spec)}: "  # a bare value: name it once
    if isinstance(text, bool):
        raise ScheduleError(f"{where}{brief(text)} is not a number")
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ScheduleError(f"{where}{brief(text)} is not a number") from None
    except OverflowError:  # an integer too large for a float (10**400)
        raise ScheduleError(f"{where}{brief(text)} is too large; expected a finite "
                            "number") from None
    if not math.isfinite(v):
        raise ScheduleError(f"{where}{brief(text)} is not finite; expected a finite number")
    return v


def _duration(text: Any, spec: Any) -> int:
    """The ``@N`` or ``steps:`` duration as a positive whole number of steps."""
    v = _num(text, spec)
    if v < 1 or v != math.floor(v) or v > MAX_STEP:
        raise ScheduleError(f"schedule {brief(spec)}: duration {brief(text)} must be a whole "
                            f"number of steps in [1, {MAX_STEP:.0e}]")
    return int(v)


def parse_schedule(spec: Any, origin: int = 0) -> Schedule:
    """Parse a schedule specification (number, string or mapping); raise ScheduleError if invalid.

    Every number in it must be finite (values, piecewise steps and durations), so a schedule
    that parses can be evaluated at any step.
    """
    if isinstance(spec, Schedule):
        return spec.rebased(origin)
    if isinstance(spec, bool):
        return Schedule("const", ((0, float(spec)), (0, float(spec))), origin=origin, spec=spec)
    if isinstance(spec, (int, float)):
        v = _num(spec, spec)
        return Schedule("const", ((0, v),) * 2, origin=origin, spec=spec)
    if isinstance(spec, Mapping):
        kind = str(spec.get("type", spec.get("kind", ""))).lower()
        if kind in ("linear",):
            kind = "lin"
        if kind in ("exponential",):
            kind = "exp"
        if kind in ("cosine",):
            kind = "cos"
        if kind in ("piecewise", "pw"):
            pts = spec.get("points")
            if not pts or not isinstance(pts, (list, tuple)) or not all(
                    isinstance(p, (list, tuple)) and len(p) == 2 for p in pts):
                raise ScheduleError(f"schedule {brief(spec)}: piecewise needs 'points', a list "
                                    "of [step, value] pairs")
            knots = [(_num(p[0], spec), _num(p[1], spec)) for p in pts]
            return _with_spec(_piecewise(knots, spec, origin), spec)
        if kind not in ("lin", "exp", "cos"):
            raise ScheduleError(
                f"schedule {brief(spec)}: type must be one of lin, exp, cos, piecewise"
            )
        if "start" not in spec or "end" not in spec:
            raise ScheduleError(f"schedule {brief(spec)}: needs 'start' and 'end'")
        steps = spec.get("steps")
        return Schedule(kind, ((0, _num(spec["start"], spec)), (0, _num(spec["end"], spec))),
                        _duration(steps, spec) if steps is not None else None, origin, spec)
    if not isinstance(spec, str):
        raise ScheduleError(f"schedule {brief(spec)}: expected a number, a string or a mapping")
    text = spec.strip()
    if ":" not in text:
        return _with_spec(parse_schedule(_num(text, spec), origin), spec)
    kind, _, body = text.partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise ScheduleError(f"schedule {brief(spec)}: unknown kind {brief(kind, 40)}; "
                            f"expected one of {_KINDS}")
    if kind == "const":
        return _with_spec(parse_schedule(_num(body, spec), origin), spec)
    if kind == "pw":
        pts = []
        for item in body.split(","):
            if "=" not in item:
                raise ScheduleError(f"schedule {brief(spec)}: piecewise knot {brief(item, 60)} "
                                    "is not step=value")
            s, v = item.split("=", 1)
            pts.append((_num(s, spec), _num(v, spec)))
        return _piecewise(pts, spec, origin)
    steps = None
    if "@" in body:
        body, _, st = body.partition("@")
        steps = _duration(st, spec)
    if "->" not in body:
        raise ScheduleError(f"schedule {brief(spec)}: expected '{kind}:START->END'")
    a, _, b = body.partition("->")
    return Schedule(kind, ((0, _num(a, spec)), (0, _num(b, spec))), steps, origin, spec)


def _piecewise(pts: list[tuple[float, float]], spec: Any, origin: int) -> Schedule:
    """A ``pw`` schedule from finite knots; steps must increase and stay within MAX_STEP."""
    if any(abs(x) > MAX_STEP for x, _ in pts):
        raise ScheduleError(f"schedule {brief(spec)}: piecewise steps must be within "
                            f"+-{MAX_STEP:.0e}")
    if any(b[0] <= a[0] for a, b in zip(pts, pts[1:])):
        raise ScheduleError(f"schedule {brief(spec)}: piecewise steps must increase")
    return Schedule("pw", tuple(pts), origin=origin, spec=spec)


def _with_spec(s: Schedule, spec: Any) -> Schedule:
    return Schedule(s.kind, s.points, s.steps, s.origin, spec)
