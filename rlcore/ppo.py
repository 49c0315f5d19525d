"""Proximal Policy Optimization (Schulman et al. 2017) with live-mutable hyperparameters.

Every field marked mutable below can change while a run is going, through
``set_hparam(name, value, source)`` (the control file, schedules, tuning). Changing ``gamma`` or
``gae_lambda`` recomputes the advantages of rollout data not yet trained on and tells any reward
normaliser the new gamma, at once (docs/algorithms/ppo.md, "Changing gamma mid-run").
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
from rlcore.losses import clipped_surrogate, entropy_loss, standardise_advantages, value_loss
from rlcore.returns import explained_variance
from rlcore.rollout import RolloutBuffer

__all__ = ["PPO", "PPOConfig", "PPO_HPARAMS"]


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings. Fields listed in ``PPO_HPARAMS`` are mutable and take schedules."""

    n_steps: int = 128
    """Steps per environment in each rollout (rollout size = n_steps * n_envs)."""
    batch_size: int | str = 256
    """Minibatch size in samples (mutable). Recurrent nets round it to whole sequences."""
    n_epochs: int | str = 10
    """Passes over each rollout (mutable)."""
    learning_rate: float | str = 3e-4
    """Adam step size (mutable; e.g. ``lin:3e-4->0``)."""
    gamma: float | str = 0.99
    """Discount factor (mutable: recomputes unconsumed advantages and the reward normaliser)."""
    gae_lambda: float | str = 0.95
    """GAE lambda (mutable: recomputes unconsumed advantages)."""
    clip_range: float | str = 0.2
    """Policy ratio clip epsilon (mutable)."""
    clip_range_vf: float | str = 0.0
    """Value clip around the rollout's values; 0 turns it off (mutable)."""
    ent_coef: float | str = 0.0
    """Entropy bonus coefficient (mutable)."""
    vf_coef: float | str = 0.5
    """Value loss coefficient (mutable)."""
    max_grad_norm: float | str = 0.5
    """Global gradient-norm clip (mutable)."""
    target_kl: float | str = 0.0
    """Stop the epoch loop when approx. KL exceeds 1.5 * target_kl; 0 turns it off (mutable)."""
    normalize_advantage: bool = True
    """Standardise advantages in each minibatch."""
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


PPO_HPARAMS = [
    HParamSpec("learning_rate", float, 0.0, 1.0, "Adam step size"),
    HParamSpec("gamma", float, 0.0, 1.0, "discount factor"),
    HParamSpec("gae_lambda", float, 0.0, 1.0, "GAE lambda"),
    HParamSpec("clip_range", float, 0.0, 10.0, "policy clip epsilon"),
    HParamSpec("clip_range_vf", float, 0.0, 1e6, "value clip (0: off)"),
    HParamSpec("ent_coef", float, 0.0, 10.0, "entropy coefficient"),
    HParamSpec("vf_coef", float, 0.0, 100.0, "value loss coefficient"),
    HParamSpec("max_grad_norm", float, 0.0, 1e6, "gradient norm clip", low_open=True),
    HParamSpec("target_kl", float, 0.0, 10.0, "KL early stop (0: off)"),
    HParamSpec("n_epochs", int, 1, 1000, "epochs per rollout"),
    HParamSpec("batch_size", int, 1, 1 << 24, "minibatch size"),
]


class PPO(LiveHParams):
    """PPO agent over N environments; owns its rollout buffer and optimiser."""

    name = "ppo"
    on_policy = True
    action_types = ("continuous", "discrete")

    def __init__(self, config: PPOConfig, obs_space: gym.Space, action_space: gym.Space,
                 n_envs: int, total_steps: int = 0, device: str = "cpu"):
        self.check_spaces(obs_space, action_space)
        self.config = config
        self.n_envs = n_envs
        self.device = torch.device(device)
        self.action_space = action_space
        self.obs_dim = int(np.prod(obs_space.shape))
        self.hp = make_hparams(PPO_HPARAMS, config, total_steps)
        self.policy = ActorCritic(self.obs_dim, action_space, config.net, config.hidden,
                                  config.activation, config.lstm_hidden,
                                  config.log_std_init).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.hp["learning_rate"],
                                          eps=config.adam_eps)
        discrete = self.policy.discrete
        act_shape = () if discrete else tuple(action_space.shape)
        self.buffer = RolloutBuffer(config.n_steps, n_envs, (self.obs_dim,), act_shape,
                                    np.int64 if discrete else np.float32)
        self.gamma_listeners: list[Callable[[float], None]] = []
        self.n_updates = 0

    @classmethod
    def hparam_specs(cls, config) -> list[HParamSpec]:
        """The mutable hyperparameters an agent built from ``config`` has (for validation)."""
        return list(PPO_HPARAMS)

    @classmethod
    def check_spaces(cls, obs_space: gym.Space, action_space: gym.Space) -> None:
        """Raise ValueError naming the mismatch if PPO cannot act in these spaces."""
        check_on_policy_spaces(cls.name, obs_space, action_space)

    # -- acting ------------------------------------------------------------------------------
    def initial_state(self, n_envs: int):
        """LSTM state (h, c) of zeros, or None."""
        return self.policy.initial_state(n_envs)

    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Sample (or take the mode of) pi(.|s); extras carry raw actions, log-probs, values."""
        return self.policy.act_numpy(obs, state, episode_start, deterministic, self.action_space)

    def observe(self, tr: Transition) -> bool:
        """Store a step; when the rollout is full, bootstrap and compute advantages (eq. (7))."""
        e = tr.extras
        self.buffer.add(tr, e["raw_actions"], e["log_probs"], e["values"])
        if not self.buffer.full:
            return False
        last_v = self.policy.values_numpy(tr.next_obs, tr.next_state)
        self.buffer.finish(last_v, self.hp["gamma"], self.hp["gae_lambda"])
        return True

    # -- learning ----------------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        """Minibatch epochs of the PPO loss (docs/algorithms/ppo.md, eq. (1)) on the rollout."""
        buf, hp, cfg = self.buffer, self.hp, self.config
        clip, clip_vf = hp["clip_range"], hp["clip_range_vf"] or None
        ent_coef, vf_coef = hp["ent_coef"], hp["vf_coef"]
        target_kl, max_norm = hp["target_kl"], hp["max_grad_norm"]
        dev = self.device
        T, N = buf.n_steps, buf.n_envs
        obs = torch.as_tensor(buf.obs, device=dev)
        acts = torch.as_tensor(buf.actions, device=dev)
        old_logp = torch.as_tensor(buf.log_probs, device=dev)
        old_v = torch.as_tensor(buf.values, device=dev)
        adv = torch.as_tensor(buf.advantages, dtype=torch.float32, device=dev)
        ret = torch.as_tensor(buf.returns, dtype=torch.float32, device=dev)
        valid = torch.as_tensor(buf.valid, device=dev)
        stats: dict[str, list[float]] = {}
        stopped = False
        epochs_done = 0
        if self.policy.recurrent:
            batches = self._sequence_batches(T, N, hp["batch_size"], hp["n_epochs"])
        else:
            idx_valid = torch.nonzero(valid.reshape(-1)).squeeze(-1)
            obs, acts = obs.reshape(T * N, -1), acts.reshape(T * N, *acts.shape[2:])
            old_logp, old_v = old_logp.reshape(-1), old_v.reshape(-1)
            adv, ret = adv.reshape(-1), ret.reshape(-1)
            batches = self._flat_batches(idx_valid, hp["batch_size"], hp["n_epochs"])
        # --8<-- [start:minibatch-loss]
        for epoch, mb in batches:
            if self.policy.recurrent:
                envs = mb
                es = torch.as_tensor(buf.episode_start[:, envs.numpy()])
                state = tuple(s[:, envs] for s in buf.initial_state)
                z_pi, z_v, _ = self.policy.features(obs[:, envs], state, es)
                params = self.policy.dist_params(z_pi)
                logp, ent = self.policy.log_prob_entropy(params, acts[:, envs])
                v = self.policy.value(z_v)
                w = valid[:, envs].float()
                a, o_lp, o_v, r = adv[:, envs], old_logp[:, envs], old_v[:, envs], ret[:, envs]
            else:
                z_pi, z_v, _ = self.policy.features(obs[mb])
                params = self.policy.dist_params(z_pi)
                logp, ent = self.policy.log_prob_entropy(params, acts[mb])
                v = self.policy.value(z_v)
                w = None
                a, o_lp, o_v, r = adv[mb], old_logp[mb], old_v[mb], ret[mb]
            if cfg.normalize_advantage:
                a = standardise_advantages(a, w)
            pg_loss, pg_info = clipped_surrogate(logp, o_lp, a, clip, w)
            v_loss, _ = value_loss(v, r, o_v, clip_vf, w)
            e_loss, e_info = entropy_loss(ent, w)
            if target_kl > 0 and pg_info["approx_kl"].item() > 1.5 * target_kl:
                stopped = True
                break
            loss = pg_loss + vf_coef * v_loss + ent_coef * e_loss
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(self.policy.parameters(), max_norm)
            self.optimizer.step()
            epochs_done = epoch + 1
            for k, val in (("losses/policy", pg_loss), ("losses/value", v_loss),
                           ("losses/entropy", e_info["entropy"]),
                           ("losses/approx_kl", pg_info["approx_kl"]),
                           ("losses/clip_fraction", pg_info["clip_fraction"]),
                           ("losses/grad_norm", grad_norm)):
                stats.setdefault(k, []).append(val.detach())
        # --8<-- [end:minibatch-loss]
        self.n_updates += 1
        out = {k: float(torch.stack(v).mean()) for k, v in stats.items()}
        out["losses/explained_variance"] = explained_variance(buf.returns[buf.valid],
                                                              buf.values[buf.valid])
        out["losses/epochs"] = float(epochs_done)
        out["losses/early_stop"] = float(stopped)
        if not self.policy.discrete:
            out["charts/action_std"] = float(self.policy.pi_head.log_std.detach().exp().mean())
        buf.reset()
        return out

    def _flat_batches(self, idx: torch.Tensor, batch_size: int, n_epochs: int):
        n = len(idx)
        bs = max(1, min(batch_size, n))
        for epoch in range(n_epochs):
            perm = idx[torch.randperm(n)]
            for start in range(0, n, bs):
                yield epoch, perm[start : start + bs]

    def _sequence_batches(self, T: int, N: int, batch_size: int, n_epochs: int):
        per = max(1, min(N, batch_size // T))
        for epoch in range(n_epochs):
            perm = torch.randperm(N)
            for start in range(0, N, per):
                yield epoch, perm[start : start + per]

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
