"""The Agent protocol: the one small interface every algorithm implements.

The runner (``rlcore/runner.py``) owns time: it steps the environments and hands each vector
step to the agent as a :class:`Transition`. An agent keeps its own storage (a rollout buffer for
PPO/A2C, a replay buffer for SAC/DQN) because it alone knows what a hyperparameter change means
for that storage (PPO: a new gamma recomputes advantages not yet trained on). On-policy and
off-policy agents differ only in when :meth:`Agent.observe` answers "update now".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rlcore.hparams import Change

__all__ = ["Agent", "ActResult", "Transition"]


@dataclass
class ActResult:
    """What :meth:`Agent.act` returns for a batch of N observations.

    Attributes:
        actions: (N, ...) actions in the environment's action space.
        state: the recurrent state after acting (None for feed-forward networks).
        extras: per-env arrays the agent wants back in the transition (log-probs, values).
    """

    actions: np.ndarray
    state: Any = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Transition:
    """One vector step of N environments, as the runner hands it to the agent.

    With gymnasium's NEXT_STEP autoreset, ``next_obs`` of a terminated or truncated environment
    is its true final observation; the following step of that environment only resets it and is
    marked ``valid = False`` (its action was ignored): agents must not learn from it.

    Attributes:
        obs, actions, rewards, next_obs: arrays with a leading N axis.
        terminated: the episode ended in a terminal state (no bootstrap).
        truncated: the episode was cut (time limit, data end): bootstrap from ``next_obs``.
        valid: False for the reset step that follows an episode end.
        episode_start: True where ``obs`` is the first observation of an episode.
        state: the recurrent state the agent acted with (before the step).
        next_state: the recurrent state after acting (pairs with ``next_obs``).
        extras: the :class:`ActResult` extras of this step.
        step: the runner's clock (environment steps summed over environments) after this step;
            the one step count, which agents read instead of counting steps themselves.
    """

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    episode_start: np.ndarray
    state: Any = None
    next_state: Any = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    step: int = 0


@runtime_checkable
class Agent(Protocol):
    """What the runner, the control file, tuning and continual learning rely on."""

    name: str
    on_policy: bool
    """True: learns from its own fresh rollouts (an update is due when a rollout is full);
    False: learns from a replay buffer (the runner's iteration is ``log_every`` steps)."""
    action_types: tuple[str, ...]
    """Action spaces it can act in, preferred first (``"continuous"``, ``"discrete"``): an
    environment that offers an ``action_type`` choice is built with the first."""
    config: Any
    """The frozen config dataclass the agent was built from."""

    @classmethod
    def hparam_specs(cls, config: Any) -> list:
        """The mutable hyperparameters (:class:`rlcore.hparams.HParamSpec`) an agent built from
        ``config`` has: what the control file and tuning validate against."""
        ...

    def initial_state(self, n_envs: int) -> Any:
        """Recurrent state for ``n_envs`` fresh episodes (None for feed-forward networks)."""
        ...

    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Choose actions for a batch of observations; resets state where ``episode_start``."""
        ...

    def observe(self, transition: Transition) -> bool:
        """Store one vector step; return True when an :meth:`update` is due."""
        ...

    def update(self) -> dict[str, float]:
        """Learn from the agent's stored batch; return named scalar metrics."""
        ...

    def hparam_schedules(self) -> dict[str, Any]:
        """Current schedule as written (a number or a schedule string) of every mutable hyperparameter."""
        ...

    def hparam_values(self) -> dict[str, Any]:
        """Current numeric value of every mutable hyperparameter."""
        ...

    def set_hparam(self, name: str, value: Any, source: str = "user") -> Change:
        """Validate and apply a change (raises HParamError, leaving the old value)."""
        ...

    def advance(self, step: int) -> dict[str, tuple[Any, Any]]:
        """Move schedules to ``step``; returns {name: (old, new)} of changed values."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: networks, optimisers, hyperparameters, buffers' cursors."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        ...
