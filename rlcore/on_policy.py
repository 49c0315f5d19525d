"""The on-policy core that PPO and A2C are built on: everything but the update rule.

PPO (``rlcore/ppo.py``) and A2C (``rlcore/a2c.py``) act, store rollouts, react to hyperparameter
changes and save themselves in exactly the same way; they differ only in how one rollout becomes
gradient steps. This module holds the shared part once:

* acting through the :class:`rlcore.actor_critic.ActorCritic` network;
* the rollout buffer, its bootstrap and GAE (docs/algorithms/ppo.md, eq. (7)), a mutable rollout
  length ``n_steps`` applied at the next rollout boundary;
* what a change means: ``learning_rate`` is written into the optimiser, ``gamma`` and
  ``gae_lambda`` recompute the advantages of a full rollout not yet trained on (the environment
  side of a gamma change, a reward normaliser, is the runner's business);
* :meth:`OnPolicyCore.minibatch`, the one body that evaluates the network on a minibatch for
  flat and recurrent networks alike;
* persistence.

Why a shared base class and not a held object: the Agent protocol's surface (act, observe,
hyperparameters, state) is identical for both algorithms, so a held core would need the same ten
delegating methods written in each file. PPO and A2C never inherit from each other; each file
holds its config, its mutable fields, its optimiser and its :meth:`update`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlcore.actor_critic import ActorCritic, check_on_policy_spaces
from rlcore.agent import ActResult, Transition
from rlcore.handgrad import HandGradients, HandMLP, OnPolicyLossSpec
from rlcore.hparams import HParamSpec, LiveHParams, make_hparams
from rlcore.losses.a2c import policy_gradient_loss
from rlcore.losses.ppo import clipped_surrogate, entropy_loss, standardise_advantages, value_loss
from rlcore.returns import explained_variance
from rlcore.rollout import RolloutBuffer

__all__ = [
    "OnPolicyCore", "OnPolicyConfig", "ON_POLICY_HPARAMS", "Minibatch", "OnPolicyLossSpec",
]


@dataclass(frozen=True)
class OnPolicyConfig:
    """The settings every on-policy agent has; PPO and A2C add their own fields and defaults.
    Fields listed in ``ON_POLICY_HPARAMS`` are mutable and take schedules."""

    n_steps: int | str = 128
    """Steps per environment in each rollout, rollout size n_steps * n_envs (mutable: applied at
    the next rollout boundary; the rollout being collected keeps its size)."""
    learning_rate: float | str = 3e-4
    """Optimiser step size (mutable; e.g. ``lin:3e-4->0``)."""
    gamma: float | str = 0.99
    """Discount factor (mutable: recomputes unconsumed advantages and the reward normaliser)."""
    gae_lambda: float | str = 0.95
    """GAE lambda; 1.0 gives n-step returns (mutable: recomputes unconsumed advantages)."""
    ent_coef: float | str = 0.0
    """Entropy bonus coefficient (mutable)."""
    vf_coef: float | str = 0.5
    """Value loss coefficient (mutable)."""
    max_grad_norm: float | str = 0.5
    """Global gradient-norm clip (mutable)."""
    normalize_advantage: bool = True
    """Standardise advantages (eq. (11) of the PPO page) in each minibatch."""
    net: str = "mlp"
    """Network: mlp, resmlp or lstm."""
    hidden: tuple[int, ...] | None = None
    """Hidden widths (default 64-64 for mlp, 128-256-256-128 for resmlp)."""
    activation: str = "tanh"
    """Activation of the plain MLP."""
    lstm_hidden: int = 256
    """LSTM hidden size for ``net=lstm``."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    hand_gradients: bool = True
    """Compute the gradients of the plain-MLP network in closed form, in NumPy, instead of with
    autograd, and act through the same NumPy forward (docs/algorithms/hand-gradients.md): the
    same gradients to float rounding, far fewer operations. CPU only; other networks (resmlp,
    lstm, gelu/elu) and other devices always use autograd."""


ON_POLICY_HPARAMS = [
    HParamSpec("learning_rate", float, 0.0, 1.0, "optimiser step size"),
    HParamSpec("gamma", float, 0.0, 1.0, "discount factor"),
    HParamSpec("gae_lambda", float, 0.0, 1.0, "GAE lambda (1: n-step returns)"),
    HParamSpec("ent_coef", float, 0.0, 10.0, "entropy coefficient"),
    HParamSpec("vf_coef", float, 0.0, 100.0, "value loss coefficient"),
    HParamSpec("max_grad_norm", float, 0.0, 1e6, "gradient norm clip", low_open=True),
    HParamSpec("n_steps", int, 1, 1 << 20, "steps per env per rollout (next rollout)"),
]
"""The mutable fields every on-policy agent has."""


@dataclass
class Minibatch:
    """The network evaluated on one minibatch, beside the rollout's stored numbers.

    Attributes:
        log_probs, entropy, values: log pi(a|s), H(pi(.|s)), V(s) under the current parameters.
        old_log_probs, old_values: the same at collection time.
        advantages, returns: GAE advantages and lambda-returns.
        weights: None (flat nets: only valid rows are selected) or the 0/1 validity mask
            (recurrent nets: whole sequences, the reset steps masked out).
    """

    log_probs: torch.Tensor
    entropy: torch.Tensor
    values: torch.Tensor
    old_log_probs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    weights: torch.Tensor | None


class OnPolicyCore(LiveHParams):
    """Acting, rollout storage, hyperparameter side effects and state of an on-policy agent.

    Subclasses set ``name``, ``HPARAMS`` (their mutable fields) and implement ``update``; their
    ``__init__`` calls :meth:`_build` with a factory for their optimiser.
    """

    name: ClassVar[str]
    HPARAMS: ClassVar[list[HParamSpec]]
    on_policy = True
    action_types = ("continuous", "discrete")

    @staticmethod
    def closed_form(config: Any, device: str | torch.device) -> bool:
        """Whether ``config`` on ``device`` takes the closed-form gradients
        (``rlcore/handgrad.py``): ``hand_gradients`` on, the plain MLP, tanh or ReLU, the CPU."""
        return bool(config.hand_gradients) and HandMLP.supports(config.net, config.activation,
                                                                device)

    def _build(self, config: Any, obs_space: gym.Space, action_space: gym.Space, n_envs: int,
               total_steps: int, device: str,
               make_optimizer: Callable[[Any, float], torch.optim.Optimizer]) -> None:
        """Network, optimiser (``make_optimizer(params, lr)``), hyperparameters and buffer."""
        self.check_spaces(obs_space, action_space)
        self.config = config
        self.n_envs = n_envs
        self.device = torch.device(device)
        self.action_space = action_space
        self.obs_dim = int(np.prod(obs_space.shape))
        self.hp = make_hparams(self.HPARAMS, config, total_steps)
        self.policy = ActorCritic(self.obs_dim, action_space, config.net, config.hidden,
                                  config.activation, config.lstm_hidden,
                                  config.log_std_init).to(self.device)
        self.params = list(self.policy.parameters())  # built once: the clip reads it per step
        self.hand = (HandGradients(self.policy, config.activation)
                     if self.closed_form(config, self.device) else None)
        self.optimizer = make_optimizer(self.params, self.hp["learning_rate"])
        self.buffer = self._new_buffer(self.hp["n_steps"])
        self._cols: dict[str, torch.Tensor] | None = None  # the full rollout as tensors
        self.n_updates = 0

    @classmethod
    def hparam_specs(cls, config: Any) -> list[HParamSpec]:
        """The mutable hyperparameters an agent built from ``config`` has (for validation)."""
        return list(cls.HPARAMS)

    @classmethod
    def check_spaces(cls, obs_space: gym.Space, action_space: gym.Space) -> None:
        """Raise ValueError naming the mismatch if the agent cannot act in these spaces."""
        check_on_policy_spaces(cls.name, obs_space, action_space)

    # -- rollout storage -----------------------------------------------------------------------
    def _new_buffer(self, n_steps: int) -> RolloutBuffer:
        discrete = self.policy.discrete
        act_shape = () if discrete else tuple(self.action_space.shape)
        return RolloutBuffer(n_steps, self.n_envs, (self.obs_dim,), act_shape,
                             np.int64 if discrete else np.float32)

    def _resize_if_due(self) -> None:
        """Re-allocate the buffer for a new ``n_steps``; only between rollouts (buffer empty)."""
        if self.buffer.pos == 0 and self.buffer.n_steps != self.hp["n_steps"]:
            self.buffer = self._new_buffer(self.hp["n_steps"])
            self._cols = None

    # -- acting ----------------------------------------------------------------------------------
    def initial_state(self, n_envs: int):
        """LSTM state (h, c) of zeros on the agent's device, or None."""
        return self.policy.initial_state(n_envs)

    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Sample (or take the mode of) pi(.|s); extras carry raw actions, log-probs, values."""
        if self.hand is not None:  # the plain MLP on the CPU: rlcore/handgrad.py
            return self.hand.act(obs, deterministic, self.action_space)
        return self.policy.act_numpy(obs, state, episode_start, deterministic, self.action_space)

    # --8<-- [start:observe]
    def observe(self, tr: Transition) -> bool:
        """Store a step; when the rollout is full, bootstrap and compute advantages (eq. (7))."""
        self._resize_if_due()
        self._cols = None
        e = tr.extras
        self.buffer.add(tr, e["raw_actions"], e["log_probs"], e["values"])
        if not self.buffer.full:
            return False
        last_v = (self.hand.values(tr.next_obs) if self.hand is not None
                  else self.policy.values_numpy(tr.next_obs, tr.next_state))
        self.buffer.finish(last_v, self.hp["gamma"], self.hp["gae_lambda"])
        return True
    # --8<-- [end:observe]

    # -- learning ----------------------------------------------------------------------------------
    # --8<-- [start:minibatch]
    def selections(self, batch_size: int | None, n_epochs: int = 1) -> Iterator[tuple[int, Any]]:
        """(epoch, selection) pairs over the full rollout: shuffled valid rows of size
        ``batch_size`` (flat nets) or shuffled whole env sequences holding about ``batch_size``
        steps (recurrent nets). ``batch_size=None``: the whole rollout in one selection."""
        buf = self.buffer
        T, N = buf.n_steps, buf.n_envs
        if self.policy.recurrent:
            per = N if batch_size is None else max(1, min(N, batch_size // T))
            for epoch in range(n_epochs):
                perm = torch.randperm(N) if batch_size is not None else torch.arange(N)
                for start in range(0, N, per):
                    yield epoch, perm[start : start + per]
            return
        idx = torch.from_numpy(np.flatnonzero(buf.valid.reshape(-1)))
        n = len(idx)
        bs = n if batch_size is None else max(1, min(batch_size, n))
        for epoch in range(n_epochs):
            perm = idx[torch.randperm(n)] if batch_size is not None else idx
            for start in range(0, n, max(bs, 1)):
                yield epoch, perm[start : start + bs]

    def columns(self) -> dict[str, torch.Tensor]:
        """The full rollout as tensors on the agent's device, converted once per rollout (not
        once per minibatch and column): (T * N, ...) rows for flat nets, (T, N, ...) for recurrent
        ones. Storing a step or recomputing the advantages drops them."""
        if self._cols is None:
            buf, dev = self.buffer, self.device
            T, N = buf.n_steps, buf.n_envs

            def t(x: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
                x = torch.as_tensor(x).to(dev, dtype)
                return x if self.policy.recurrent else x.reshape(T * N, *x.shape[2:])

            self._cols = {"obs": t(buf.obs), "actions": t(buf.actions),
                          "log_probs": t(buf.log_probs), "values": t(buf.values),
                          "advantages": t(buf.advantages, torch.float32),
                          "returns": t(buf.returns, torch.float32)}
            if self.policy.recurrent:
                self._cols["episode_start"] = t(buf.episode_start)
                self._cols["valid"] = t(buf.valid, torch.float32)
        return self._cols

    def minibatch(self, sel: torch.Tensor) -> Minibatch:
        """Evaluate the network on the rows (flat) or env sequences (recurrent) ``sel``."""
        cols = self.columns()
        sel = sel.to(cols["obs"].device)

        def col(name: str) -> torch.Tensor:  # (T, B, ...) whole sequences, or (B, ...) rows
            x = cols[name]
            return x[:, sel] if self.policy.recurrent else x[sel]

        obs, acts = col("obs"), col("actions")
        if self.policy.recurrent:
            # Sequences from the state each env's rollout started with; the encoder zeroes the
            # state where an episode starts (docs/networks.md, eq. (3)).
            state = tuple(s[:, sel.to(s.device)] for s in self.buffer.initial_state)
            z_pi, z_v, _ = self.policy.features(obs, state, col("episode_start"))
            weights = col("valid")
        else:
            z_pi, z_v, _ = self.policy.features(obs)
            weights = None
        params = self.policy.dist_params(z_pi)
        logp, ent = self.policy.log_prob_entropy(params, acts)
        return Minibatch(logp, ent, self.policy.value(z_v), col("log_probs"), col("values"),
                         col("advantages"), col("returns"), weights)
    # --8<-- [end:minibatch]

    # --8<-- [start:gradients]
    def gradients(self, spec: OnPolicyLossSpec, sel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Put the gradient of the on-policy loss (docs/algorithms/ppo.md, eq. (1); A2C's eq. (5)
        when ``spec.clip_range`` is None) on the minibatch ``sel`` into the parameters' ``.grad``.

        The plain-MLP network on the CPU takes the closed-form gradients
        (``rlcore/handgrad.py``), every other network and device autograd over the loss
        functions of ``rlcore/losses``; both return the loss terms as 0-d tensors named
        ``policy``, ``value``, ``entropy`` (PPO adds ``approx_kl`` and ``clip_fraction``).
        """
        if self.hand is not None:  # the rollout's rows, gathered from the buffer in NumPy
            buf, rows = self.buffer, sel.numpy()
            n = buf.n_steps * buf.n_envs

            def take(x: np.ndarray) -> np.ndarray:  # float32 rows (advantages are float64)
                x = x.reshape(n, *x.shape[2:]).take(rows, 0)
                return x if x.dtype != np.float64 else x.astype(np.float32)
            return self.hand.on_policy_step(
                spec, take(buf.obs), take(buf.actions), take(buf.log_probs),
                take(buf.advantages), take(buf.returns), take(buf.values))
        mb = self.minibatch(sel)
        w, a = mb.weights, mb.advantages
        if spec.normalize_advantage:
            a = standardise_advantages(a, w)
        if spec.clip_range is None:
            pg_loss, _ = policy_gradient_loss(mb.log_probs, a, w)
            pg_info = {}
        else:
            pg_loss, pg_info = clipped_surrogate(mb.log_probs, mb.old_log_probs, a,
                                                 spec.clip_range, w)
        v_loss, _ = value_loss(mb.values, mb.returns, mb.old_values,
                               spec.clip_range_vf or None, w)
        e_loss, e_info = entropy_loss(mb.entropy, w)
        loss = pg_loss + spec.vf_coef * v_loss + spec.ent_coef * e_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return {"policy": pg_loss.detach(), "value": v_loss.detach(),
                "entropy": e_info["entropy"], **pg_info}
    # --8<-- [end:gradients]

    def _finish_update(self, out: dict[str, float]) -> dict[str, float]:
        """Add the rollout-level metrics, mark the rollout consumed, count the update."""
        buf = self.buffer
        out["losses/explained_variance"] = explained_variance(buf.returns[buf.valid],
                                                              buf.values[buf.valid])
        if not self.policy.discrete:
            out["charts/action_std"] = float(self.policy.pi_head.log_std.detach().exp().mean())
        buf.reset()
        self._cols = None
        self._resize_if_due()
        self.n_updates += 1
        return out

    # -- hyperparameters -----------------------------------------------------------------------
    # --8<-- [start:on-value]
    def _on_value(self, name: str, old: Any, new: Any) -> None:
        if name == "learning_rate":
            for g in self.optimizer.param_groups:
                g["lr"] = new
        elif name in ("gamma", "gae_lambda"):
            if self.buffer.full and not self.buffer.consumed:
                self.buffer.recompute(self.hp["gamma"], self.hp["gae_lambda"])
                self._cols = None
        elif name == "n_steps":
            self._resize_if_due()
    # --8<-- [end:on-value]

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Network, optimiser, hyperparameters and counters."""
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "hparams": self.hp.state_dict(), "n_updates": self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.hp.load_state_dict(state["hparams"])
        self.n_updates = state["n_updates"]
        for g in self.optimizer.param_groups:
            g["lr"] = self.hp["learning_rate"]
        self._resize_if_due()
