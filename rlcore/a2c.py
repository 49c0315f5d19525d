"""Advantage Actor-Critic (A2C; Mnih et al. 2016, synchronous) with live-mutable hyperparameters.

Every ``n_steps`` steps of the N environments, A2C computes n-step advantages with
:func:`rlcore.returns.gae` (``gae_lambda = 1`` gives plain n-step returns; docs/algorithms/a2c.md,
eq. (2)) and takes ONE gradient step on the policy-gradient, value and entropy losses (eq. (5)).
Acting, the rollout buffer, advantages, hyperparameter side effects and persistence are the
on-policy core's (``rlcore/on_policy.py``), shared with PPO, and so are the value and entropy
losses; the update rule and its policy-gradient loss
(:func:`rlcore.losses.a2c.policy_gradient_loss`) are A2C's own.

Mid-run changes (``set_hparam``): ``gamma``/``gae_lambda`` recompute the advantages of a full
rollout not yet trained on (the runner tells any reward normaliser the new gamma); ``learning_rate`` is
written into the optimiser; ``n_steps`` takes effect at the next rollout boundary, when the buffer
is empty: the rollout being collected (or waiting for its update) keeps its size.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch

from rlcore.on_policy import ON_POLICY_HPARAMS, OnPolicyConfig, OnPolicyCore, OnPolicyLossSpec
from rlcore.optim import Adam, RMSprop, clip_grad_norm
from rlcore.scalars import mean_scalars

__all__ = ["A2C", "A2CConfig", "A2C_HPARAMS", "OPTIMIZERS"]

OPTIMIZERS = ("rmsprop", "adam")


@dataclass(frozen=True)
class A2CConfig(OnPolicyConfig):
    """A2C settings: the on-policy fields (``rlcore/on_policy.py``) with stable-baselines3's A2C
    defaults, plus A2C's optimiser. Fields in ``A2C_HPARAMS`` are mutable."""

    n_steps: int | str = 5
    """Steps per environment in each rollout (mutable: applied at the next rollout boundary)."""
    learning_rate: float | str = 7e-4
    """Optimiser step size (mutable; e.g. ``lin:7e-4->0``)."""
    gae_lambda: float | str = 1.0
    """GAE lambda; 1.0 gives n-step returns (mutable: recomputes unconsumed advantages)."""
    vf_coef: float | str = 1.0
    """Value loss coefficient (mutable). Our value loss is 0.5 E[(V - R)^2], so 1.0 weighs the
    critic as the reference A2C (OpenAI baselines, stable-baselines3: 0.5 x mean squared error)
    does; 0.5 halves it, and A2C then learns worse on CartPole (docs/algorithms/a2c.md,
    "Results")."""
    normalize_advantage: bool = False
    """Standardise the advantages of each rollout (off in the original A2C)."""
    optimizer: str = "rmsprop"
    """``rmsprop`` (alpha ``rms_alpha``, eps ``rms_eps``, as stable-baselines3) or ``adam``."""
    rms_alpha: float = 0.99
    """RMSprop smoothing constant of the squared-gradient average."""
    rms_eps: float = 1e-5
    """RMSprop epsilon."""


A2C_HPARAMS = list(ON_POLICY_HPARAMS)
"""A2C's mutable fields: the on-policy ones."""


class A2C(OnPolicyCore):
    """A2C agent over N environments: the on-policy core plus one gradient step per rollout."""

    name = "a2c"
    HPARAMS = A2C_HPARAMS

    def __init__(self, config: A2CConfig, obs_space: gym.Space, action_space: gym.Space,
                 n_envs: int, total_steps: int = 0, device: str = "cpu"):
        if config.optimizer not in OPTIMIZERS:
            raise ValueError(f"a2c optimizer {config.optimizer!r}: expected one of "
                             f"{', '.join(OPTIMIZERS)}")

        def make_optimizer(params, lr: float) -> torch.optim.Optimizer:
            if config.optimizer == "rmsprop":
                return RMSprop(params, lr=lr, alpha=config.rms_alpha, eps=config.rms_eps)
            return Adam(params, lr=lr, eps=config.adam_eps)

        self._build(config, obs_space, action_space, n_envs, total_steps, device, make_optimizer)

    # --8<-- [start:update]
    def update(self) -> dict[str, float]:
        """One gradient step on the A2C loss (docs/algorithms/a2c.md, eq. (5)) over the rollout."""
        hp = self.hp
        spec = OnPolicyLossSpec(None, None, hp["vf_coef"], hp["ent_coef"],
                                self.config.normalize_advantage)
        (_, sel), = self.selections(None)  # the whole rollout, one selection
        terms = self.gradients(spec, sel)  # eq. (5) on the rollout, into .grad
        terms["grad_norm"] = clip_grad_norm(self.params, hp["max_grad_norm"])
        self.optimizer.step()
        return self._finish_update(mean_scalars({f"losses/{k}": [v] for k, v in terms.items()}))
    # --8<-- [end:update]
