"""Search spaces: one :class:`Param` per setting, the default spaces per algorithm, user YAML
spaces validated with one-line errors, and :func:`suggest` (docs/guide/tuning.md, "Search
spaces").

A YAML space maps a setting (a field of ``RunConfig`` or of the algorithm's config) to its
distribution::

    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    n_steps: {type: int, low: 512, high: 4096, log: true}
    activation: {type: categorical, choices: [tanh, relu]}
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Param", "SpaceError", "DEFAULT_SPACES", "default_space", "parse_space", "load_space",
           "suggest", "space_to_dict"]


class SpaceError(ValueError):
    """A search space that cannot be used; the message names the file, setting and field."""


@dataclass(frozen=True)
class Param:
    """One dimension of a search space."""

    name: str
    """The setting it sets (a ``RunConfig`` or algorithm-config field)."""
    type: str
    """``float``, ``int`` or ``categorical``."""
    low: float | None = None
    """Lower bound, inclusive (float and int)."""
    high: float | None = None
    """Upper bound, inclusive (float and int)."""
    log: bool = False
    """Sample uniformly in log space (bounds must be > 0)."""
    choices: tuple[Any, ...] = ()
    """The values of a categorical setting."""

    def clip(self, value: float) -> float | int:
        """``value`` inside the bounds, an int for an int setting (PBT's explore step)."""
        v = min(max(value, self.low), self.high)
        return int(round(v)) if self.type == "int" else float(v)


# --8<-- [start:default-spaces]
_PPO = {  # the source document's space
    "learning_rate": Param("learning_rate", "float", 1e-5, 1e-3, log=True),
    "gamma": Param("gamma", "float", 0.9, 0.9999),
    "clip_range": Param("clip_range", "float", 0.1, 0.3),
    "gae_lambda": Param("gae_lambda", "float", 0.85, 0.99),
    "n_steps": Param("n_steps", "int", 512, 4096, log=True),
}
DEFAULT_SPACES: dict[str, dict[str, Param]] = {
    "ppo": _PPO,
    "a2c": {
        "learning_rate": Param("learning_rate", "float", 1e-5, 3e-3, log=True),
        "gamma": Param("gamma", "float", 0.9, 0.9999),
        "gae_lambda": Param("gae_lambda", "float", 0.85, 1.0),
        "ent_coef": Param("ent_coef", "float", 1e-8, 0.1, log=True),
        "n_steps": Param("n_steps", "int", 5, 128, log=True),
    },
    "sac": {
        "learning_rate": Param("learning_rate", "float", 1e-5, 1e-3, log=True),
        "gamma": Param("gamma", "float", 0.9, 0.9999),
        "tau": Param("tau", "float", 0.001, 0.05, log=True),
        "batch_size": Param("batch_size", "categorical", choices=(64, 128, 256, 512)),
        "learning_starts": Param("learning_starts", "int", 100, 10_000, log=True),
    },
    "dqn": {
        "learning_rate": Param("learning_rate", "float", 1e-5, 1e-3, log=True),
        "gamma": Param("gamma", "float", 0.9, 0.9999),
        "exploration_fraction": Param("exploration_fraction", "float", 0.05, 0.5),
        "exploration_final_eps": Param("exploration_final_eps", "float", 0.01, 0.2),
        "target_update_interval": Param("target_update_interval", "int", 100, 20_000, log=True),
        "batch_size": Param("batch_size", "categorical", choices=(32, 64, 128, 256)),
    },
}
"""Algorithm -> its default space. PPO's is the source document's; the others follow rl-zoo3's
ranges, narrowed to what a few dozen trials can cover."""
# --8<-- [end:default-spaces]


def default_space(algo: str) -> dict[str, Param]:
    """The default space of ``algo``; SpaceError naming the algorithms that have one."""
    if algo not in DEFAULT_SPACES:
        raise SpaceError(f"--algo {algo!r}: no default search space; expected one of "
                         f"{', '.join(DEFAULT_SPACES)} or a --space FILE")
    return dict(DEFAULT_SPACES[algo])


def _num(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpaceError(f"{where}.{key}: expected a finite number, got {v!r}")
    return float(v)


def parse_space(data: Any, algo: str, source: str = "space") -> dict[str, Param]:
    """Validate a mapping ``{setting: {type, low, high, log | choices}}`` for ``algo``.

    Every error is one line naming ``source``, the setting and the field: an unknown setting
    (with the valid ones), an unknown type, a missing or inverted bound, a log range through 0,
    a fractional int bound, an empty list of choices.
    """
    from rlcore.config import RunConfig, config_class

    if not isinstance(data, dict) or not data:
        raise SpaceError(f"{source}: expected a mapping of settings to distributions, "
                         f"got {type(data).__name__}")
    valid = ({f.name for f in dataclasses.fields(RunConfig)}
             | {f.name for f in dataclasses.fields(config_class(algo))})
    valid -= {"algo", "env", "steps", "seed", "run_id", "runs_dir", "progress", "device"}
    out: dict[str, Param] = {}
    for name, d in data.items():
        where = f"{source}: {name}"
        if name not in valid:
            raise SpaceError(f"{where}: not a setting of --algo {algo} that can be tuned; "
                             f"valid: {', '.join(sorted(valid))}")
        if not isinstance(d, dict):
            raise SpaceError(f"{where}: expected a mapping such as {{type: float, low: 0.1, "
                             f"high: 0.3}}, got {d!r}")
        extra = set(d) - {"type", "low", "high", "log", "choices"}
        if extra:
            raise SpaceError(f"{where}: unknown field(s) {', '.join(sorted(map(str, extra)))}; "
                             "expected type, low, high, log or choices")
        kind = d.get("type")
        if kind not in ("float", "int", "categorical"):
            raise SpaceError(f"{where}.type: expected float, int or categorical, got {kind!r}")
        if kind == "categorical":
            choices = d.get("choices")
            if not isinstance(choices, list) or not choices:
                raise SpaceError(f"{where}.choices: expected a non-empty list, got {choices!r}")
            if set(d) - {"type", "choices"}:
                raise SpaceError(f"{where}: a categorical setting takes only choices")
            out[name] = Param(name, kind, choices=tuple(choices))
            continue
        for key in ("low", "high"):
            if key not in d:
                raise SpaceError(f"{where}.{key}: missing (a {kind} setting needs low and high)")
        low, high = _num(where, "low", d["low"]), _num(where, "high", d["high"])
        log = d.get("log", False)
        if not isinstance(log, bool):
            raise SpaceError(f"{where}.log: expected true or false, got {log!r}")
        if "choices" in d:
            raise SpaceError(f"{where}.choices: only a categorical setting has choices")
        if kind == "int" and (low != int(low) or high != int(high)):
            raise SpaceError(f"{where}: an int setting needs whole bounds, got {d['low']!r}, "
                             f"{d['high']!r}")
        if not low < high:
            raise SpaceError(f"{where}: expected low < high, got low={d['low']!r}, "
                             f"high={d['high']!r}")
        if log and low <= 0:
            raise SpaceError(f"{where}.low: a log range needs low > 0, got {d['low']!r}")
        if kind == "int":
            low, high = int(low), int(high)
        out[name] = Param(name, kind, low, high, log)
    return out


def load_space(path: str | Path, algo: str) -> dict[str, Param]:
    """Read and validate a YAML space file (see :func:`parse_space`)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise SpaceError(f"--space {p}: no such file") from None
    except (OSError, yaml.YAMLError) as e:
        raise SpaceError(f"--space {p}: not readable YAML ({' '.join(str(e).split())})") from None
    return parse_space(data, algo, str(p))


def suggest(trial: Any, space: dict[str, Param]) -> dict[str, Any]:
    """Ask an Optuna trial for one value per setting of ``space``."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "float":
            out[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif p.type == "int":
            out[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
        else:
            out[name] = trial.suggest_categorical(name, list(p.choices))
    return out


def space_to_dict(space: dict[str, Param]) -> dict[str, dict[str, Any]]:
    """The YAML form of a space (what :func:`parse_space` reads back)."""
    out: dict[str, dict[str, Any]] = {}
    for name, p in space.items():
        if p.type == "categorical":
            out[name] = {"type": p.type, "choices": list(p.choices)}
        else:
            out[name] = {"type": p.type, "low": p.low, "high": p.high, "log": p.log}
    return out
