"""Proximal Policy Optimization (Schulman et al. 2017) with live-mutable hyperparameters.

Every field marked mutable below can change while a run is going, through
``set_hparam(name, value, source)`` (the control file, schedules, tuning). Changing ``gamma`` or
``gae_lambda`` recomputes the advantages of rollout data not yet trained on and tells any reward
normaliser the new gamma (the runner applies that side), at once (docs/algorithms/ppo.md,
"Changing gamma mid-run"). Acting, the rollout buffer and persistence are the on-policy core's
(``rlcore/on_policy.py``), shared with A2C.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch

from rlcore.hparams import HParamSpec
from rlcore.on_policy import ON_POLICY_HPARAMS, OnPolicyConfig, OnPolicyCore, OnPolicyLossSpec
from rlcore.optim import Adam, clip_grad_norm
from rlcore.scalars import mean_scalars

__all__ = ["PPO", "PPOConfig", "PPO_HPARAMS"]


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    """PPO settings: the on-policy fields (``rlcore/on_policy.py``) with stable-baselines3's PPO
    defaults, plus PPO's own. Fields listed in ``PPO_HPARAMS`` are mutable and take schedules."""

    batch_size: int | str = 256
    """Minibatch size in samples (mutable). Recurrent nets round it to whole sequences."""
    n_epochs: int | str = 10
    """Passes over each rollout (mutable)."""
    clip_range: float | str = 0.2
    """Policy ratio clip epsilon (mutable)."""
    clip_range_vf: float | str = 0.0
    """Value clip around the rollout's values; 0 turns it off (mutable)."""
    target_kl: float | str = 0.0
    """Stop the epoch loop when approx. KL exceeds 1.5 * target_kl; 0 turns it off (mutable)."""


PPO_HPARAMS = ON_POLICY_HPARAMS + [
    HParamSpec("clip_range", float, 0.0, 10.0, "policy clip epsilon"),
    HParamSpec("clip_range_vf", float, 0.0, 1e6, "value clip (0: off)"),
    HParamSpec("target_kl", float, 0.0, 10.0, "KL early stop (0: off)"),
    HParamSpec("n_epochs", int, 1, 1000, "epochs per rollout"),
    HParamSpec("batch_size", int, 1, 1 << 24, "minibatch size"),
]


class PPO(OnPolicyCore):
    """PPO agent over N environments: the on-policy core plus the clipped-surrogate update."""

    name = "ppo"
    HPARAMS = PPO_HPARAMS

    def __init__(self, config: PPOConfig, obs_space: gym.Space, action_space: gym.Space,
                 n_envs: int, total_steps: int = 0, device: str = "cpu"):
        self._build(config, obs_space, action_space, n_envs, total_steps, device,
                    lambda params, lr: Adam(params, lr=lr, eps=config.adam_eps))

    def update(self) -> dict[str, float]:
        """Minibatch epochs of the PPO loss (docs/algorithms/ppo.md, eq. (1)) on the rollout."""
        hp = self.hp
        spec = OnPolicyLossSpec(hp["clip_range"], hp["clip_range_vf"], hp["vf_coef"],
                                hp["ent_coef"], self.config.normalize_advantage)
        target_kl, max_norm = hp["target_kl"], hp["max_grad_norm"]
        stats: dict[str, list[torch.Tensor]] = {}
        stopped = False
        epochs_done = 0
        # --8<-- [start:minibatch-loss]
        for epoch, sel in self.selections(hp["batch_size"], hp["n_epochs"]):
            terms = self.gradients(spec, sel)  # eq. (1) on the minibatch, into .grad
            if target_kl > 0 and terms["approx_kl"].item() > 1.5 * target_kl:
                stopped = True
                break
            terms["grad_norm"] = clip_grad_norm(self.params, max_norm)
            self.optimizer.step()
            epochs_done = epoch + 1
            for k, val in terms.items():
                stats.setdefault(f"losses/{k}", []).append(val)
        # --8<-- [end:minibatch-loss]
        out = mean_scalars(stats)
        out["losses/epochs"] = float(epochs_done)
        out["losses/early_stop"] = float(stopped)
        return self._finish_update(out)
