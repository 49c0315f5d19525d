"""Run configuration, the algorithm registry, and resolving ``--set``/``--config`` values.

A run is described by a frozen :class:`RunConfig` (what the runner does) and the algorithm's own
frozen config dataclass (e.g. :class:`rlcore.ppo.PPOConfig`). ``--set key=value`` and ``--config
FILE`` keys are routed to whichever of the two has the field; an unknown key is an error that
lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["RunConfig", "ALGOS", "default_torch_threads", "resolved_env_kwargs", "agent_class",
           "config_class", "parse_value", "parse_assignments", "resolve_configs", "config_to_dict",
           "configs_from_dict"]

ALGOS: dict[str, str] = {
    "ppo": "rlcore.ppo:PPO",
    "a2c": "rlcore.a2c:A2C",
    "sac": "rlcore.sac:SAC",
    "dqn": "rlcore.dqn:DQN",
}
"""Algorithm name -> ``module:Class``; the config class is ``<Class>Config`` in the same module."""


# --8<-- [start:default-torch-threads]
def default_torch_threads(closed_form: bool = False) -> int:
    """Half the cores this process may use, at least 1 and at most 4; 1 for an agent whose
    gradients are the NumPy closed form on small matrices (``closed_form``: PPO, A2C and DQN
    with the plain MLP on the CPU, ``rlcore/handgrad.py``; SAC's closed form keeps this default
    and runs its products on that many BLAS threads).

    The networks here are small: a PPO minibatch is too small for a second thread to pay, while
    SAC's 256-wide critics are bound by matrix products that do scale with threads. Half the
    cores leaves the other half to the environments, the Python loop and other runs on the
    machine; more threads than free cores collapse (on a loaded 2-core machine one SAC gradient
    step took 72-480 ms on 2 threads against 29-60 ms on 1, alternating in one process). The
    closed form runs its products in NumPy on one BLAS thread, so torch's threads only spin: on a
    16-core host PPO on the futures market with 256 environments ran at 18,938 steps/s on 4
    threads and 24,086 on 1 (docs/guide/performance.md). Override with ``--set torch_threads=N``.
    """
    if closed_form:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))
# --8<-- [end:default-torch-threads]


@dataclass(frozen=True)
class RunConfig:
    """What the runner does; the algorithm's hyperparameters live in its own config."""

    algo: str = "ppo"
    """Algorithm: one of ``ALGOS``."""
    env: str = "CartPole-v1"
    """gymnasium id (``module:EnvId`` imports the module first; ``ns/Name`` imports ``ns``).
    ``python cli.py train`` defaults to ``marketsim/CryptoFutures-v0`` instead."""
    steps: int = 100_000
    """Total environment steps (summed over environments)."""
    seed: int = 0
    """Seed of torch, numpy and the environments."""
    n_envs: int = 8
    """Number of environments stepped together."""
    vec: str = "sync"
    """``sync`` (one process) or ``async`` (subprocesses); natively batched envs ignore it."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment's constructor (``--env-arg key=value``)."""
    frame_stack: int = 1
    """Stack this many consecutive observations."""
    normalize_obs: bool = False
    """Running mean/std observation normalisation (gymnasium's NormalizeObservation)."""
    normalize_reward: bool = False
    """Reward scaling by the running std of the discounted return (gymnasium's NormalizeReward)."""
    eval_every: int = 0
    """Evaluate every this many steps (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation (deterministic actions)."""
    eval_envs: int = 4
    """Environments used for evaluation."""
    checkpoint_every: int = 50_000
    """Checkpoint every this many steps, at the next iteration boundary (0: never by steps).
    With ``checkpoint_minutes``, a kill loses at most the smaller of the two intervals."""
    checkpoint_minutes: float = 5.0
    """Also checkpoint every this many minutes of wall time (0: never by time)."""
    keep_checkpoints: int = 3
    """Keep the newest this many checkpoints; older ones are deleted."""
    control_settle_s: float = 1.0
    """Read a ``control.yaml`` edit once the file has been unchanged this many seconds, so a
    file still being written is never read half-done (0: at the next boundary)."""
    log_every: int = 1000
    """Steps between writes of the update metrics and the progress bar (every algorithm); for
    off-policy agents also the iteration length (control file, schedules)."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    torch_threads: int = field(default_factory=default_torch_threads)
    """torch intra-op threads; default half the usable cores, at most 4, and 1 where the agent's
    gradients are the NumPy closed form (the number is written to ``config.yaml``). See
    :func:`default_torch_threads`."""
    runs_dir: str = "runs"
    """Folder that holds run folders."""
    run_id: str | None = None
    """Name of the run folder (default: time-algo-env-seed)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        """Refuse impossible counts (``--steps 0``, ``--n-envs -1``) with the field's name."""
        for name, low in _MIN_INT.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected a whole number >= {low}, got {v!r}")
        for name in ("checkpoint_minutes", "control_settle_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1e9:
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")


_MIN_INT = {"steps": 1, "seed": 0, "n_envs": 1, "frame_stack": 1, "eval_every": 0,
            "eval_episodes": 1, "eval_envs": 1, "checkpoint_every": 0, "keep_checkpoints": 1,
            "log_every": 1, "torch_threads": 1}


def resolved_env_kwargs(run: RunConfig) -> dict[str, Any]:
    """The environment's keyword arguments with the algorithm-driven defaults filled in.

    The one rule is :func:`rlcore.envs.env_kwargs_for`: an environment that declares
    ``action_type`` gets the algorithm's first action type unless the user chose one. The runner
    writes the resolved values into ``config.yaml``.
    """
    from rlcore.envs import env_kwargs_for

    return env_kwargs_for(run.env, run.env_kwargs, agent_class(run.algo).action_types)


def _load(target: str) -> Any:
    mod, _, name = target.partition(":")
    return getattr(importlib.import_module(mod), name)


def agent_class(algo: str) -> type:
    """The agent class of ``algo``; ValueError listing the known algorithms otherwise."""
    if algo not in ALGOS:
        raise ValueError(f"--algo {algo!r}: expected one of {', '.join(ALGOS)}")
    try:
        return _load(ALGOS[algo])
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--algo {algo!r} is not available in this install: {e}") from None


def config_class(algo: str) -> type:
    """The frozen config dataclass of ``algo`` (``<AgentClass>Config``)."""
    cls = agent_class(algo)
    return getattr(importlib.import_module(cls.__module__), cls.__name__ + "Config")


def parse_value(text: str) -> Any:
    """Parse a ``--set``/``--env-arg`` value as YAML (numbers, bools, lists), else keep the string."""
    if not isinstance(text, str):
        return text
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if v is None and text.strip() not in ("null", "~", "") else v


def parse_assignments(items: tuple[str, ...] | list[str], what: str = "--set") -> dict[str, Any]:
    """``["a=1", "b=lin:1->0"]`` -> ``{"a": 1, "b": "lin:1->0"}``; error on items without ``=``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{what} {item!r}: expected key=value")
        k, _, v = item.partition("=")
        out[k.strip()] = parse_value(v.strip())
    return out


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _integer(key: str, value: Any) -> int:
    """``value`` as an int: ints, integral floats and numeric strings (YAML 1.1 reads ``1e5``
    as a string); ValueError naming ``key`` otherwise."""
    if not isinstance(value, bool):
        try:
            x = float(value) if isinstance(value, str) else value
            if isinstance(x, (int, float)) and float(x).is_integer():
                return int(x)
        except (ValueError, OverflowError):
            pass
    raise ValueError(f"{key}: expected an integer, got {value!r}")


def _number(key: str, value: Any) -> float:
    """``value`` as a float (numbers and numeric strings); ValueError naming ``key`` otherwise."""
    if not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{key}: expected a number, got {value!r}")


def _widths(key: str, value: Any) -> tuple[int, ...]:
    """Layer widths from a list, a tuple, ``"256,256"`` or one number; each a positive int."""
    expected = "a list of positive integers such as [256, 256]"
    if isinstance(value, str):
        items: list[Any] = [v for v in value.strip("[]() ").split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    try:
        widths = tuple(_integer(key, v.strip() if isinstance(v, str) else v) for v in items)
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise ValueError(f"{key}: expected {expected}, got {value!r}")
    return widths


# --8<-- [start:coerce]
def _coerce(cls: type, key: str, value: Any) -> Any:
    """Check one setting against its field's type and convert it: ``int``, ``float``,
    ``bool``, ``str``, layer widths (``tuple[int, ...]``) and mappings (``dict``); ValueError
    naming the setting, the value and what was expected. Fields that take schedules
    (``float | str``) are checked by their hyperparameter spec (``rlcore/hparams.py``)."""
    kind = str({x.name: x for x in dataclasses.fields(cls)}[key].type)
    if value is None and kind.endswith("| None"):
        return None
    if kind == "bool":
        word = _BOOL_WORDS.get(value.lower()) if isinstance(value, str) else None
        if isinstance(value, bool) or word is not None:
            return value if word is None else word
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if kind == "int":
        return _integer(key, value)
    if kind == "float":
        return _number(key, value)
    if kind.startswith("tuple[int, ...]"):
        return _widths(key, value)
    if kind.startswith("dict") and not isinstance(value, dict):
        raise ValueError(f"{key}: expected a mapping such as {{name: value}}, got {value!r}")
    if kind in ("str", "str | None"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
    return value
# --8<-- [end:coerce]


def resolve_configs(overrides: dict[str, Any]) -> tuple[RunConfig, Any]:
    """Build (RunConfig, algo config) from a flat mapping of overrides.

    Keys may also be nested under ``run:`` and ``algo_config:`` (the layout of a run's
    ``config.yaml``). Unknown keys raise ValueError naming the key and the valid ones.
    """
    flat = dict(overrides)
    nested_run = flat.pop("run", None) or {}
    nested_algo = flat.pop("algo_config", None) or {}
    flat = {**nested_run, **nested_algo, **flat}
    run_fields = {f.name for f in dataclasses.fields(RunConfig)}
    run_kw = {k: _coerce(RunConfig, k, v) for k, v in flat.items() if k in run_fields}
    run = RunConfig(**run_kw)
    acls = config_class(run.algo)
    algo_fields = {f.name for f in dataclasses.fields(acls)}
    clash = algo_fields & run_fields
    if clash:  # a shared name would be routed to the run config only: refuse, do not guess
        raise ValueError(f"{acls.__name__} fields {', '.join(sorted(clash))} collide with RunConfig "
                         "fields; rename them in the algorithm's config")
    unknown = [k for k in flat if k not in run_fields and k not in algo_fields]
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(sorted(unknown))} for --algo {run.algo}; "
            f"valid: {', '.join(sorted(algo_fields | run_fields))}")
    algo_kw = {k: _coerce(acls, k, v) for k, v in flat.items() if k in algo_fields}
    algo_cfg = acls(**algo_kw)
    if "torch_threads" not in run_kw and _closed_form(run, algo_cfg):
        run = dataclasses.replace(run, torch_threads=default_torch_threads(closed_form=True))
    return run, algo_cfg


def _closed_form(run: RunConfig, algo_cfg: Any) -> bool:
    """Whether the agent of ``run`` computes its gradients in closed form (its class's
    ``closed_form(config, device)``; False for agents without one, and for SAC, whose closed
    form runs its 256-wide products on the run's threads: ``SAC.hand_form``)."""
    rule = getattr(agent_class(run.algo), "closed_form", None)
    if rule is None or run.device not in ("cpu", "auto"):
        return False
    from rlcore.runner import resolve_device  # here: the runner imports this module

    return bool(rule(algo_cfg, resolve_device(run.device)))


def config_to_dict(run: RunConfig, algo_cfg: Any) -> dict[str, Any]:
    """The resolved config as written to ``config.yaml``."""
    def plain(d):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
    return {"run": plain(dataclasses.asdict(run)), "algo_config": plain(dataclasses.asdict(algo_cfg))}


def configs_from_dict(d: dict[str, Any]) -> tuple[RunConfig, Any]:
    """Inverse of :func:`config_to_dict`."""
    return resolve_configs({"run": d.get("run", {}), "algo_config": d.get("algo_config", {})})
