"""Soft Actor-Critic (Haarnoja et al. 2018) for Box and Discrete action spaces.

Continuous actions: a tanh-squashed Gaussian policy, twin Q critics with Polyak-averaged target
copies, automatic entropy tuning (target entropy -|A|) or a fixed alpha. Discrete actions: soft Q
over a categorical policy, with the expectation over actions written out (Christodoulou 2019).
The twin critics are one fused ensemble (:class:`QEnsemble`): both Q networks run in one batched
matrix product per layer and share one optimiser. Losses live in ``rlcore/losses/sac.py``;
the equations are in docs/algorithms/sac.md.

Replay contents are not part of :meth:`SAC.state_dict` (they can be hundreds of MB); use
:meth:`SAC.replay_state_dict` when a resume must continue with the same buffer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcore.agent import ActResult, Transition
from rlcore.handgrad import HandMLP
from rlcore.hparams import HParams, HParamSpec, LiveHParams
from rlcore.losses.sac import (
    discrete_sac_actor_loss,
    discrete_sac_critic_loss,
    discrete_sac_temperature_loss,
    sac_actor_loss,
    sac_critic_loss,
    sac_temperature_loss,
    sample_tanh_gaussian,
)
from rlcore.nets import make_encoder
from rlcore.off_policy import check_off_policy_net, due_off_policy, gradient_steps_per_update
from rlcore.optim import Adam
from rlcore.replay import ReplayBuffer
from rlcore.sac_hand import HandSAC
from rlcore.scalars import mean_scalars

__all__ = ["SAC", "SACConfig", "QEnsemble", "sac_hparam_specs"]

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    """SAC settings (defaults: stable-baselines3's). Mutable fields take numbers or schedules."""

    learning_rate: float | str = 3e-4
    """Adam step size of actor, critics and temperature (mutable)."""
    gamma: float | str = 0.99
    """Discount factor (mutable; used at the next sampled batch)."""
    tau: float | str = 0.005
    """Polyak rate of the target critics: target <- (1 - tau) target + tau online (mutable)."""
    alpha: float | str = 1.0
    """Entropy temperature: the initial value when autotuned, else fixed (mutable: resets it)."""
    autotune: bool = True
    """Learn alpha so that the policy entropy tracks ``target_entropy``."""
    target_entropy: float | str | None = None
    """Entropy target (mutable); None: -|A| (Box) or 0.89 log|A| (Discrete)."""
    batch_size: int | str = 256
    """Transitions per gradient step (mutable)."""
    train_freq: int | str = 1
    """Vector steps between updates (mutable)."""
    gradient_steps: int | str = -1
    """Gradient steps per update (mutable); -1: one per environment, so one gradient step per
    ``train_freq`` environment steps whatever ``--n-envs`` is."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions."""
    learning_starts: int = 100
    """Environment steps of uniform random actions before learning starts."""
    n_step: int = 1
    """Steps summed in the critic target (1: the usual one-step SAC)."""
    net: str = "mlp"
    """Network: mlp or resmlp (lstm is refused: use --frame-stack, see the docs)."""
    hidden: tuple[int, ...] | None = None
    """Hidden widths of actor and critics (default 256-256 for mlp)."""
    activation: str = "relu"
    """Activation of the plain MLP."""
    hand_gradients: bool = True
    """Closed-form gradients (in NumPy) for continuous actions with the plain MLP (tanh or ReLU)
    instead of autograd, and acting through the same forward (docs/algorithms/hand-gradients.md):
    the same gradients to float rounding, fewer operations. CPU only; discrete actions, other
    networks and devices use autograd."""


def sac_hparam_specs(autotune: bool) -> list[HParamSpec]:
    """The mutable hyperparameters of SAC (alpha takes no schedule while autotuned)."""
    return [
        HParamSpec("learning_rate", float, 0.0, 1.0, "Adam step size"),
        HParamSpec("gamma", float, 0.0, 1.0, "discount factor"),
        HParamSpec("tau", float, 0.0, 1.0, "target Polyak rate", low_open=True),
        HParamSpec("alpha", float, 0.0, 1e6, "entropy temperature", low_open=True,
                   schedulable=not autotune),
        # bounded: the default is -(action dims); 1e300 overflowed alpha's loss and killed runs
        HParamSpec("target_entropy", float, -1e4, 1e4, "entropy target of alpha tuning"),
        HParamSpec("batch_size", int, 1, 1 << 20, "batch size"),
        HParamSpec("train_freq", int, 1, 1 << 20, "vector steps between updates"),
        HParamSpec("gradient_steps", int, -1, 1 << 16,
                   "gradient steps per update (-1: one per environment)"),
    ]


class QEnsemble(nn.Module):
    """K Q-networks in one module; ``forward`` returns (K, B, out).

    ``net='mlp'`` fuses the K networks: each layer is one ``torch.baddbmm`` over stacked weights
    (K, in, out), initialised like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)). ``resmlp`` keeps K
    separate residual encoders. ``detach_params=True`` evaluates with detached weights, so a loss
    through it (the actor loss) sends no gradient to the critics.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 2, net: str = "mlp",
                 hidden: tuple[int, ...] | None = None, activation: str = "relu"):
        super().__init__()
        self.k, self.fused = k, net == "mlp"
        if self.fused:
            dims = [in_dim, *(hidden or (256, 256)), out_dim]
            self.weights = nn.ParameterList()
            self.biases = nn.ParameterList()
            for a, b in zip(dims, dims[1:]):
                bound = 1.0 / math.sqrt(a)
                self.weights.append(nn.Parameter(torch.empty(k, a, b).uniform_(-bound, bound)))
                self.biases.append(nn.Parameter(torch.empty(k, 1, b).uniform_(-bound, bound)))
            acts = {"relu": torch.relu, "tanh": torch.tanh, "elu": nn.functional.elu,
                    "gelu": nn.functional.gelu}
            if activation not in acts:
                raise ValueError(f"activation {activation!r}: expected one of {sorted(acts)}")
            self.act = acts[activation]
        else:
            self.members = nn.ModuleList()
            for _ in range(k):
                enc = make_encoder(net, in_dim, hidden, activation)
                self.members.append(nn.Sequential(enc, nn.Linear(enc.out_dim, out_dim)))

    # --8<-- [start:forward]
    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Q values (K, B, out) of a batch of inputs (B, in)."""
        if not self.fused:
            if detach_params:
                outs = [torch.func.functional_call(
                    m, {n: p.detach() for n, p in m.named_parameters()}, (x,))
                    for m in self.members]
            else:
                outs = [m(x) for m in self.members]
            return torch.stack(outs)
        h = x.unsqueeze(0).expand(self.k, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if detach_params:
                w, b = w.detach(), b.detach()
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.act(h)
        return h
    # --8<-- [end:forward]


class _Actor(nn.Module):
    """Encoder plus heads: (mean, log_std) of a Gaussian, or logits of a categorical."""

    def __init__(self, obs_dim: int, out_dim: int, discrete: bool, net: str,
                 hidden: tuple[int, ...] | None, activation: str):
        super().__init__()
        widths = hidden if hidden or net != "mlp" else (256, 256)
        self.encoder = make_encoder(net, obs_dim, widths, activation)
        self.discrete = discrete
        self.mu = nn.Linear(self.encoder.out_dim, out_dim)
        self.log_std = None if discrete else nn.Linear(self.encoder.out_dim, out_dim)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, clamped log_std) or (logits, None)."""
        z = self.encoder(obs)
        if self.discrete:
            return self.mu(z), None
        return self.mu(z), self.log_std(z).clamp(LOG_STD_MIN, LOG_STD_MAX)


class SAC(LiveHParams):
    """SAC agent over N environments; owns its replay buffer and three optimisers."""

    name = "sac"
    on_policy = False
    action_types = ("continuous", "discrete")

    def __init__(self, config: SACConfig, obs_space: gym.Space, action_space: gym.Space,
                 n_envs: int, total_steps: int = 0, device: str = "cpu"):
        self.check_spaces(obs_space, action_space)
        check_off_policy_net(self.name, config.net)
        self.config, self.n_envs, self.device = config, int(n_envs), torch.device(device)
        self.action_space = action_space
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.obs_dim = int(np.prod(obs_space.shape))
        if self.discrete:
            self.act_dim = int(action_space.n)
            default_h = 0.89 * math.log(self.act_dim)
        else:
            self.act_dim = int(np.prod(action_space.shape))
            default_h = -float(self.act_dim)
            self._low = action_space.low.reshape(-1).astype(np.float32)
            self._scale = (action_space.high - action_space.low).reshape(-1).astype(np.float32)
        initial = {s.name: getattr(config, s.name) for s in sac_hparam_specs(config.autotune)}
        if initial["target_entropy"] is None:
            initial["target_entropy"] = default_h
        self.hp = HParams(sac_hparam_specs(config.autotune), initial, total_steps)
        c, dev = config, self.device
        self.actor = _Actor(self.obs_dim, self.act_dim, self.discrete, c.net, c.hidden,
                            c.activation).to(dev)
        q_in = self.obs_dim if self.discrete else self.obs_dim + self.act_dim
        q_out = self.act_dim if self.discrete else 1
        self.critic = QEnsemble(q_in, q_out, 2, c.net, c.hidden, c.activation).to(dev)
        self.critic_target = QEnsemble(q_in, q_out, 2, c.net, c.hidden, c.activation).to(dev)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self._online = list(self.critic.parameters())
        self._target = list(self.critic_target.parameters())
        lr = self.hp["learning_rate"]
        self.actor_opt = Adam(self.actor.parameters(), lr=lr)
        self.critic_opt = Adam(self.critic.parameters(), lr=lr)
        self.hand = (HandSAC(self.actor, self.critic, self.critic_target, c.activation,
                             (LOG_STD_MIN, LOG_STD_MAX))
                     if self.hand_form(c, dev) and not self.discrete else None)
        self.log_alpha = torch.tensor(math.log(self.hp["alpha"]), device=dev, requires_grad=True)
        self.alpha_opt = Adam([self.log_alpha], lr=lr)
        # replay sampling and exploration draw from torch's seed (the runner seeds it)
        seed = torch.initial_seed() % (2**32)
        act_shape = () if self.discrete else (self.act_dim,)
        self.replay = ReplayBuffer(c.buffer_size, self.n_envs, (self.obs_dim,), act_shape,
                                   np.int64 if self.discrete else np.float32, seed=seed)
        self.rng = np.random.default_rng(seed + 1)
        self.clock = 0  # the runner's step count at the last observed transition
        self.n_updates = 0

    @classmethod
    def hparam_specs(cls, config) -> list[HParamSpec]:
        """The mutable hyperparameters an agent built from ``config`` has (for validation)."""
        return sac_hparam_specs(config.autotune)

    @staticmethod
    def hand_form(config: SACConfig, device: str | torch.device) -> bool:
        """Whether ``config`` on ``device`` takes the closed-form gradients for continuous
        actions (``rlcore/sac_hand.py``): ``hand_gradients`` on, the plain MLP, tanh or ReLU, the
        CPU. Not named ``closed_form``: that rule sets one torch thread (rlcore/config.py), while
        SAC's closed form runs its 256-wide products on the run's ``torch_threads``."""
        return bool(config.hand_gradients) and HandMLP.supports(config.net, config.activation,
                                                                device)

    @classmethod
    def check_spaces(cls, obs_space: gym.Space, action_space: gym.Space) -> None:
        """Raise ValueError naming the mismatch if SAC cannot act in these spaces."""
        if not isinstance(obs_space, gym.spaces.Box):
            raise ValueError(f"sac: observation space must be a Box, got {obs_space}")
        if isinstance(action_space, gym.spaces.Discrete):
            return
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f"sac: action space must be Box or Discrete, got {action_space}")
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(f"sac: Box action space needs finite bounds (the policy is "
                             f"tanh-squashed), got low={action_space.low} high={action_space.high}")

    # -- acting ------------------------------------------------------------------------------
    def initial_state(self, n_envs: int) -> None:
        """Feed-forward: no recurrent state."""
        return None

    @property
    def alpha(self) -> float:
        """Current entropy temperature exp(log alpha)."""
        return float(self.log_alpha.detach().exp())

    @torch.no_grad()
    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Sample pi(.|s) (uniform random before ``learning_starts``); mode if deterministic."""
        n = len(obs)
        if not deterministic and self.clock < self.config.learning_starts:
            if self.discrete:
                return ActResult(self.rng.integers(0, self.act_dim, size=n))
            a = self.rng.uniform(-1.0, 1.0, size=(n, self.act_dim)).astype(np.float32)
        elif self.hand is not None:  # the plain MLP on the CPU: NumPy's forward (sac_hand.py)
            a = self.hand.act(np.ascontiguousarray(obs, dtype=np.float32).reshape(n, -1),
                              deterministic)
        else:
            x = torch.from_numpy(np.asarray(obs, dtype=np.float32).reshape(n, -1)).to(self.device)
            mean, log_std = self.actor(x)
            if self.discrete:
                a_t = mean.argmax(-1) if deterministic else torch.distributions.Categorical(
                    logits=mean).sample()
                return ActResult(a_t.cpu().numpy())
            u = mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)
            a = torch.tanh(u).cpu().numpy()
        env_a = self._low + (a + 1.0) * 0.5 * self._scale
        return ActResult(env_a.reshape(n, *self.action_space.shape))

    def observe(self, tr: Transition) -> bool:
        """Store the valid rows; True when learning has started and ``train_freq`` is hit."""
        acts = tr.actions
        if not self.discrete:
            acts = 2.0 * (np.asarray(acts, dtype=np.float32).reshape(len(acts), -1)
                          - self._low) / self._scale - 1.0
        self.replay.add(tr.obs, acts, tr.rewards, tr.next_obs, tr.terminated, tr.truncated,
                        tr.valid)
        self.clock = tr.step
        return due_off_policy(tr.step, self.n_envs, self.config.learning_starts,
                              self.hp["train_freq"], self.replay.size, self.hp["batch_size"])

    # -- learning ----------------------------------------------------------------------------
    def update(self) -> dict[str, float]:
        """``gradient_steps`` steps (-1: one per environment) on critic, actor and temperature
        (docs eqs. (1)-(11))."""
        hp = self.hp
        stats: dict[str, list[torch.Tensor]] = {}
        step = self._step_discrete if self.discrete else self._step_continuous
        for _ in range(gradient_steps_per_update(hp["gradient_steps"], self.n_envs)):
            for k, v in step(hp["batch_size"], hp["gamma"], hp["tau"]).items():
                stats.setdefault(k, []).append(v)
        self.n_updates += 1
        stats["charts/alpha"] = [self.log_alpha.detach().exp()]
        return mean_scalars(stats)

    def _batch(self, batch_size: int, gamma: float):
        b = self.replay.sample(batch_size, gamma, self.config.n_step)
        dev = self.device
        return (torch.from_numpy(b.obs).to(dev), torch.from_numpy(b.actions).to(dev),
                torch.from_numpy(b.rewards).to(dev), torch.from_numpy(b.next_obs).to(dev),
                torch.from_numpy(b.terminated).to(dev), torch.from_numpy(b.discounts).to(dev))

    @torch.no_grad()
    # --8<-- [start:polyak]
    def _polyak(self, tau: float) -> None:
        # docs/algorithms/sac.md, eq. (12): target <- target + tau (online - target)
        torch._foreach_lerp_(self._target, self._online, tau)
    # --8<-- [end:polyak]

    # --8<-- [start:step-hand]
    def _step_hand(self, batch_size: int, gamma: float, tau: float) -> dict:
        """:meth:`_step_continuous` in closed form on NumPy arrays (``rlcore/sac_hand.py``)."""
        b = self.replay.sample(batch_size, gamma, self.config.n_step)
        alpha = self.alpha
        c_loss, q_mean = self.hand.critic_gradients(b.obs, b.actions, b.rewards, b.terminated,
                                                    b.discounts, b.next_obs, alpha)
        self.critic_opt.step()
        a_loss, logp = self.hand.actor_gradients(b.obs, alpha)
        self.actor_opt.step()
        stats = {"losses/critic": c_loss, "losses/actor": a_loss, "charts/q_mean": q_mean,
                 "charts/entropy": -float(logp.mean())}
        if self.config.autotune:  # eq. (7): dL/d log alpha = -mean(log pi + H_target)
            shifted = float((logp + np.float32(self.hp["target_entropy"])).mean())
            stats["losses/alpha"] = -float(self.log_alpha.detach()) * shifted
            self.log_alpha.grad = torch.tensor(-shifted, dtype=self.log_alpha.dtype)
            self.alpha_opt.step()
        self._polyak(tau)
        return stats
    # --8<-- [end:step-hand]

    # --8<-- [start:step-continuous]
    def _step_continuous(self, batch_size: int, gamma: float, tau: float) -> dict:
        if self.hand is not None:
            return self._step_hand(batch_size, gamma, tau)
        obs, act, rew, nobs, term, disc = self._batch(batch_size, gamma)
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            mean, log_std = self.actor(nobs)
            next_a, next_logp = sample_tanh_gaussian(mean, log_std)
            next_q = self.critic_target(torch.cat([nobs, next_a], -1)).squeeze(-1)
        q = self.critic(torch.cat([obs, act], -1)).squeeze(-1)
        c_loss, c_info = sac_critic_loss(q, rew, term, disc, next_q, next_logp, alpha)
        self.critic_opt.zero_grad(set_to_none=True)
        c_loss.backward()
        self.critic_opt.step()

        mean, log_std = self.actor(obs)
        a_pi, logp = sample_tanh_gaussian(mean, log_std)
        q_pi = self.critic(torch.cat([obs, a_pi], -1), detach_params=True).squeeze(-1)
        a_loss, a_info = sac_actor_loss(logp, q_pi, alpha)
        self.actor_opt.zero_grad(set_to_none=True)
        a_loss.backward()
        self.actor_opt.step()
        out = {"losses/critic": c_loss.detach(), "losses/actor": a_loss.detach(),
               "charts/q_mean": c_info["q_mean"], "charts/entropy": a_info["entropy"]}
        if self.config.autotune:
            t_loss, _ = sac_temperature_loss(self.log_alpha, logp, self.hp["target_entropy"])
            self._alpha_step(t_loss)
            out["losses/alpha"] = t_loss.detach()
        self._polyak(tau)
        return out
    # --8<-- [end:step-continuous]

    def _step_discrete(self, batch_size: int, gamma: float, tau: float) -> dict:
        obs, act, rew, nobs, term, disc = self._batch(batch_size, gamma)
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            logits, _ = self.actor(nobs)
            next_q = self.critic_target(nobs)
            n_logp = torch.log_softmax(logits, -1)
        q_all = self.critic(obs)
        q_taken = q_all.gather(-1, act.view(1, -1, 1).expand(q_all.shape[0], -1, 1)).squeeze(-1)
        c_loss, c_info = discrete_sac_critic_loss(q_taken, rew, term, disc, n_logp.exp(), n_logp,
                                                  next_q, alpha)
        self.critic_opt.zero_grad(set_to_none=True)
        c_loss.backward()
        self.critic_opt.step()

        logits, _ = self.actor(obs)
        logp = torch.log_softmax(logits, -1)
        probs = logp.exp()
        a_loss, a_info = discrete_sac_actor_loss(probs, logp, q_all.detach(), alpha)
        self.actor_opt.zero_grad(set_to_none=True)
        a_loss.backward()
        self.actor_opt.step()
        out = {"losses/critic": c_loss.detach(), "losses/actor": a_loss.detach(),
               "charts/q_mean": c_info["q_mean"], "charts/entropy": a_info["entropy"]}
        if self.config.autotune:
            t_loss, _ = discrete_sac_temperature_loss(self.log_alpha, probs, logp,
                                                      self.hp["target_entropy"])
            self._alpha_step(t_loss)
            out["losses/alpha"] = t_loss.detach()
        self._polyak(tau)
        return out

    def _alpha_step(self, loss: torch.Tensor) -> None:
        self.alpha_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.alpha_opt.step()

    # -- hyperparameters -----------------------------------------------------------------------
    def hparam_values(self) -> dict[str, Any]:
        """Current values; ``alpha`` is the live (possibly tuned) temperature."""
        v = self.hp.values()
        v["alpha"] = self.alpha
        return v

    # --8<-- [start:on-value]
    def _on_value(self, name: str, old: Any, new: Any) -> None:
        if name == "learning_rate":
            for opt in (self.actor_opt, self.critic_opt, self.alpha_opt):
                for g in opt.param_groups:
                    g["lr"] = new
        elif name == "alpha":
            with torch.no_grad():
                self.log_alpha.fill_(math.log(new))
    # --8<-- [end:on-value]

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, target critics, optimisers, log alpha, hyperparameters, counters, RNGs."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(),
                "log_alpha": self.log_alpha.detach().clone(), "hparams": self.hp.state_dict(),
                "counters": {"clock": self.clock, "n_updates": self.n_updates},
                "rng": {"explore": self.rng.bit_generator.state,
                        "replay": self.replay.rng.bit_generator.state}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the replay buffer is left as it is)."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.hp.load_state_dict(state["hparams"])
        counters = state["counters"]
        self.clock, self.n_updates = int(counters.get("clock", 0)), int(counters["n_updates"])
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]["explore"]
            self.replay.rng.bit_generator.state = state["rng"]["replay"]

    def replay_state_dict(self) -> dict[str, np.ndarray]:
        """The replay buffer's contents and cursors (kept out of :meth:`state_dict`)."""
        return self.replay.state_dict()

    def load_replay_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore the replay buffer from :meth:`replay_state_dict`."""
        self.replay.load_state_dict(state)
