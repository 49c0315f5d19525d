"""Advantage Actor-Critic (A2C; Mnih et al. 2016, synchronous) with live-mutable hyperparameters.

Every ``n_steps`` steps of the N environments, A2C computes n-step advantages with
:func:`rlcore.returns.gae` (``gae_lambda = 1`` gives plain n-step returns; docs/algorithms/a2c.md,
eq. (2)) and takes ONE gradient step on the policy-gradient, value and entropy losses (eq. (5)).
It shares the actor-critic network, rollout buffer, advantage estimator and value/entropy losses
with PPO; only the policy-gradient loss (:func:`rlcore.losses.a2c.policy_gradient_loss`) is its own.

Mid-run changes (``set_hparam``): ``gamma``/``gae_lambda`` recompute the advantages of a full
rollout not yet trained on (and tell any reward normaliser the new gamma); ``learning_rate`` is
written into the optimiser; ``n_steps`` takes effect at the next rollout boundary, when the buffer
is empty: the rollout being collected (or waiting for its update) keeps its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcore.actor_critic import ActorCritic, check_on_policy_spaces
from rlcore.agent import ActResult, Transition
from rlcore.hparams import HParamSpec, LiveHParams, make_hparams
from rlcore.losses.a2c import policy_gradient_loss
from rlcore.losses.ppo import entropy_loss, standardise_advantages, value_loss
from rlcore.returns import explained_variance
from rlcore.rollout import RolloutBuffer

__all__ = ["A2C", "A2CConfig", "A2C_HPARAMS", "OPTIMIZERS"]

OPTIMIZERS = ("rmsprop", "adam")


@dataclass(frozen=True)
class A2CConfig:
    """A2C settings (stable-baselines3 defaults). Fields in ``A2C_HPARAMS`` are mutable."""

    n_steps: int | str = 5
    """Steps per environment in each rollout (mutable: applied at the next rollout boundary)."""
    learning_rate: float | str = 7e-4
    """Optimiser step size (mutable; e.g. ``lin:7e-4->0``)."""
    gamma: float | str = 0.99
    """Discount factor (mutable: recomputes unconsumed advantages and the reward normaliser)."""
    gae_lambda: float | str = 1.0
    """GAE lambda; 1.0 gives n-step returns (mutable: recomputes unconsumed advantages)."""
    ent_coef: float | str = 0.0
    """Entropy bonus coefficient (mutable)."""
    vf_coef: float | str = 0.5
    """Value loss coefficient (mutable)."""
    max_grad_norm: float | str = 0.5
    """Global gradient-norm clip (mutable)."""
    normalize_advantage: bool = False
    """Standardise the advantages of each rollout (off in the original A2C)."""
    optimizer: str = "rmsprop"
    """``rmsprop`` (alpha ``rms_alpha``, eps ``rms_eps``, as stable-baselines3) or ``adam``."""
    rms_alpha: float = 0.99
    """RMSprop smoothing constant of the squared-gradient average."""
    rms_eps: float = 1e-5
    """RMSprop epsilon."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
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


A2C_HPARAMS = [
    HParamSpec("learning_rate", float, 0.0, 1.0, "optimiser step size"),
    HParamSpec("gamma", float, 0.0, 1.0, "discount factor"),
    HParamSpec("gae_lambda", float, 0.0, 1.0, "GAE lambda (1: n-step returns)"),
    HParamSpec("ent_coef", float, 0.0, 10.0, "entropy coefficient"),
    HParamSpec("vf_coef", float, 0.0, 100.0, "value loss coefficient"),
    HParamSpec("max_grad_norm", float, 0.0, 1e6, "gradient norm clip", low_open=True),
    HParamSpec("n_steps", int, 1, 1 << 20, "steps per env per rollout (next rollout)"),
]


class A2C(LiveHParams):
    """A2C agent over N environments; owns its rollout buffer and optimiser."""

    name = "a2c"
    on_policy = True
    action_types = ("continuous", "discrete")

    def __init__(self, config: A2CConfig, obs_space: gym.Space, action_space: gym.Space,
                 n_envs: int, total_steps: int = 0, device: str = "cpu"):
        self.check_spaces(obs_space, action_space)
        if config.optimizer not in OPTIMIZERS:
            raise ValueError(f"a2c optimizer {config.optimizer!r}: expected one of "
                             f"{', '.join(OPTIMIZERS)}")
        self.config = config
        self.n_envs = n_envs
        self.device = torch.device(device)
        self.action_space = action_space
        self.obs_dim = int(np.prod(obs_space.shape))
        self.hp = make_hparams(A2C_HPARAMS, config, total_steps)
        self.policy = ActorCritic(self.obs_dim, action_space, config.net, config.hidden,
                                  config.activation, config.lstm_hidden,
                                  config.log_std_init).to(self.device)
        params, lr = self.policy.parameters(), self.hp["learning_rate"]
        if config.optimizer == "rmsprop":
            self.optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
                params, lr=lr, alpha=config.rms_alpha, eps=config.rms_eps)
        else:
            self.optimizer = torch.optim.Adam(params, lr=lr, eps=config.adam_eps)
        self.buffer = self._new_buffer(self.hp["n_steps"])
        self.gamma_listeners: list[Callable[[float], None]] = []
        self.n_updates = 0

    @classmethod
    def hparam_specs(cls, config) -> list[HParamSpec]:
        """The mutable hyperparameters an agent built from ``config`` has (for validation)."""
        return list(A2C_HPARAMS)

    @classmethod
    def check_spaces(cls, obs_space: gym.Space, action_space: gym.Space) -> None:
        """Raise ValueError naming the mismatch if A2C cannot act in these spaces."""
        check_on_policy_spaces(cls.name, obs_space, action_space)

    def _new_buffer(self, n_steps: int) -> RolloutBuffer:
        discrete = self.policy.discrete
        act_shape = () if discrete else tuple(self.action_space.shape)
        return RolloutBuffer(n_steps, self.n_envs, (self.obs_dim,), act_shape,
                             np.int64 if discrete else np.float32)

    def _resize_if_due(self) -> None:
        """Re-allocate the buffer for a new ``n_steps``; only between rollouts (buffer empty)."""
        if self.buffer.pos == 0 and self.buffer.n_steps != self.hp["n_steps"]:
            self.buffer = self._new_buffer(self.hp["n_steps"])

    # -- acting ------------------------------------------------------------------------------
    def initial_state(self, n_envs: int):
        """LSTM state (h, c) of zeros, or None."""
        return self.policy.initial_state(n_envs)

    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Sample (or take the mode of) pi(.|s); extras carry raw actions, log-probs, values."""
        return self.policy.act_numpy(obs, state, episode_start, deterministic, self.action_space)

    # --8<-- [start:observe]
    def observe(self, tr: Transition) -> bool:
        """Store a step; when the rollout is full, bootstrap and compute advantages (eq. (2))."""
        self._resize_if_due()
        e = tr.extras
        self.buffer.add(tr, e["raw_actions"], e["log_probs"], e["values"])
        if not self.buffer.full:
            return False
        last_v = self.policy.values_numpy(tr.next_obs, tr.next_state)
        self.buffer.finish(last_v, self.hp["gamma"], self.hp["gae_lambda"])
        return True


# --8<-- [end:observe]
    # -- learning ----------------------------------------------------------------------------
    # --8<-- [start:update]
    def update(self) -> dict[str, float]:
        """One gradient step on the A2C loss (docs/algorithms/a2c.md, eq. (5)) over the rollout."""
        buf, hp, dev = self.buffer, self.hp, self.device
        T, N = buf.n_steps, buf.n_envs
        obs = torch.as_tensor(buf.obs, device=dev)
        acts = torch.as_tensor(buf.actions, device=dev)
        adv = torch.as_tensor(buf.advantages, dtype=torch.float32, device=dev)
        ret = torch.as_tensor(buf.returns, dtype=torch.float32, device=dev)
        w = torch.as_tensor(buf.valid, device=dev).float()
        if self.policy.recurrent:
            # Whole rollouts as sequences, one per env, from the state the rollout started with;
            # the encoder zeroes the state where an episode starts (docs/networks.md, eq. (3)).
            es = torch.as_tensor(buf.episode_start, device=dev)
            z_pi, z_v, _ = self.policy.features(obs, buf.initial_state, es)
        else:
            z_pi, z_v, _ = self.policy.features(obs.reshape(T * N, -1))
            acts = acts.reshape(T * N, *acts.shape[2:])
            adv, ret, w = adv.reshape(-1), ret.reshape(-1), w.reshape(-1)
        params = self.policy.dist_params(z_pi)
        logp, ent = self.policy.log_prob_entropy(params, acts)
        v = self.policy.value(z_v)
        if self.config.normalize_advantage:
            adv = standardise_advantages(adv, w)
        pg_loss, _ = policy_gradient_loss(logp, adv, w)
        v_loss, _ = value_loss(v, ret, None, None, w)
        e_loss, e_info = entropy_loss(ent, w)
        loss = pg_loss + hp["vf_coef"] * v_loss + hp["ent_coef"] * e_loss  # eq. (5)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.policy.parameters(), hp["max_grad_norm"])
        self.optimizer.step()
        self.n_updates += 1
        out = {"losses/policy": float(pg_loss.detach()), "losses/value": float(v_loss.detach()),
               "losses/entropy": float(e_info["entropy"]), "losses/grad_norm": float(grad_norm),
               "losses/explained_variance": explained_variance(buf.returns[buf.valid],
                                                               buf.values[buf.valid])}
        if not self.policy.discrete:
            out["charts/action_std"] = float(self.policy.pi_head.log_std.detach().exp().mean())
        buf.reset()
        self._resize_if_due()
        return out


# --8<-- [end:update]
    # -- hyperparameters -----------------------------------------------------------------------
    # --8<-- [start:on-value]
    def _on_value(self, name: str, old: Any, new: Any) -> None:
        if name == "learning_rate":
            for g in self.optimizer.param_groups:
                g["lr"] = new
        elif name in ("gamma", "gae_lambda"):
            if name == "gamma":
                for fn in self.gamma_listeners:
                    fn(new)
            if self.buffer.full and not self.buffer.consumed:
                self.buffer.recompute(self.hp["gamma"], self.hp["gae_lambda"])
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
