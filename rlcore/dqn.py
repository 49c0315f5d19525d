"""Deep Q-Network (Mnih et al. 2015) with double-DQN targets, prioritised replay and n-step returns.

Double DQN (van Hasselt et al. 2016): the online network picks the next action, the target
network values it. Prioritised replay (Schaul et al. 2016, ``rlcore/per.py``) is on by default
(``per=false`` turns it off); optional dueling head (Wang et al. 2016); hard (tau = 1) or Polyak
target updates every ``target_update_interval`` environment steps; epsilon-greedy exploration
with an epsilon schedule. Equations: docs/algorithms/dqn.md.

Replay contents are not part of :meth:`DQN.state_dict` (see :meth:`DQN.replay_state_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcore.agent import ActResult, Transition
from rlcore.handgrad import GradBuffer, HandMLP, linears
from rlcore.hparams import HParams, HParamSpec, LiveHParams
from rlcore.losses.dqn import dqn_target, dqn_td_closed_form, dqn_td_loss
from rlcore.nets import make_encoder
from rlcore.off_policy import check_off_policy_net, due_off_policy, gradient_steps_per_update
from rlcore.optim import Adam, clip_grad_norm
from rlcore.per import PrioritizedReplayBuffer
from rlcore.replay import ReplayBuffer
from rlcore.scalars import mean_scalars

__all__ = ["DQN", "DQNConfig", "DQN_HPARAMS", "QNetwork"]


@dataclass(frozen=True)
class DQNConfig:
    """DQN settings (defaults: stable-baselines3's, plus PER). Mutable fields take schedules."""

    learning_rate: float | str = 1e-4
    """Adam step size (mutable)."""
    gamma: float | str = 0.99
    """Discount factor (mutable; used at the next sampled batch)."""
    epsilon: float | str | None = None
    """Exploration rate (mutable); None: the linear schedule of the three fields below."""
    exploration_fraction: float = 0.1
    """With epsilon None: share of total steps over which epsilon falls (SB3's name)."""
    exploration_initial_eps: float = 1.0
    """With epsilon None: the starting epsilon."""
    exploration_final_eps: float = 0.05
    """With epsilon None: the final epsilon."""
    batch_size: int | str = 32
    """Transitions per gradient step (mutable)."""
    train_freq: int | str = 4
    """Vector steps between updates (mutable)."""
    gradient_steps: int | str = -1
    """Gradient steps per update (mutable); -1: one per environment, so one gradient step per
    ``train_freq`` environment steps whatever ``--n-envs`` is."""
    target_update_interval: int | str = 10_000
    """Environment steps between target updates (mutable)."""
    tau: float | str = 1.0
    """Target update rate: 1 copies (hard update), < 1 is Polyak averaging (mutable)."""
    max_grad_norm: float | str = 10.0
    """Global gradient-norm clip (mutable)."""
    per: bool = True
    """Prioritised replay (``--set per=false`` samples uniformly)."""
    per_alpha: float | str = 0.6
    """Priority exponent alpha: 0 uniform, 1 fully proportional (mutable)."""
    per_beta: float | str = "lin:0.4->1.0"
    """Importance-weight exponent beta, annealed to 1 over the run (mutable)."""
    per_eps: float | str = 1e-6
    """Priority offset: p = |td| + eps (mutable)."""
    per_recent_frac: float | str = 0.0
    """Share of each batch drawn uniformly from the newest ``per_recent_window`` transitions
    (mutable; the online loop sets it for fresh data)."""
    per_recent_window: int | str = 10_000
    """Size of the recency window in transitions."""
    double: bool = True
    """Double-DQN targets (online net selects, target net evaluates)."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean_a A."""
    init: str = "orthogonal"
    """Weight initialisation of the Q-network: ``orthogonal`` (docs/networks.md, gain sqrt(2)
    on hidden layers) or ``torch`` (``nn.Linear``'s default, as stable-baselines3's DQN)."""
    n_step: int = 1
    """Steps summed in the TD target."""
    loss: str = "huber"
    """TD loss: huber or mse."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions."""
    learning_starts: int = 100
    """Environment steps of uniform random actions before learning starts."""
    net: str = "mlp"
    """Network: mlp or resmlp (lstm is refused: use --frame-stack, see the docs)."""
    hidden: tuple[int, ...] | None = None
    """Hidden widths (default 64-64 for mlp)."""
    activation: str = "relu"
    """Activation of the plain MLP."""
    hand_gradients: bool = True
    """Closed-form gradients (in NumPy) for the plain MLP without dueling head instead of
    autograd, and greedy actions through the same forward (docs/algorithms/hand-gradients.md):
    the same gradients to float rounding, fewer operations. CPU only; other networks and
    devices always use autograd."""


DQN_HPARAMS = [
    HParamSpec("learning_rate", float, 0.0, 1.0, "Adam step size"),
    HParamSpec("gamma", float, 0.0, 1.0, "discount factor"),
    HParamSpec("epsilon", float, 0.0, 1.0, "exploration rate"),
    HParamSpec("batch_size", int, 1, 1 << 20, "batch size"),
    HParamSpec("train_freq", int, 1, 1 << 20, "vector steps between updates"),
    HParamSpec("gradient_steps", int, -1, 1 << 16,
                   "gradient steps per update (-1: one per environment)"),
    HParamSpec("target_update_interval", int, 1, 1 << 40, "env steps between target updates"),
    HParamSpec("tau", float, 0.0, 1.0, "target update rate", low_open=True),
    HParamSpec("max_grad_norm", float, 0.0, 1e6, "gradient norm clip", low_open=True),
    HParamSpec("per_alpha", float, 0.0, 1.0, "PER priority exponent"),
    HParamSpec("per_beta", float, 0.0, 1.0, "PER importance exponent"),
    HParamSpec("per_eps", float, 0.0, 1.0, "PER priority offset", low_open=True),
    HParamSpec("per_recent_frac", float, 0.0, 0.99, "PER: share of a batch from fresh data"),
    HParamSpec("per_recent_window", int, 1, 1 << 40, "PER: newest transitions counted fresh"),
]
PER_FIELDS = ("per_alpha", "per_beta", "per_eps", "per_recent_frac", "per_recent_window")
"""Mutable only with prioritised replay (``per=True``)."""


DQN_INITS = ("orthogonal", "torch")


class QNetwork(nn.Module):
    """Q(s, .) over n actions: encoder plus a linear head, or a dueling V/A head (eq. (12))."""

    def __init__(self, obs_dim: int, n_actions: int, net: str = "mlp",
                 hidden: tuple[int, ...] | None = None, activation: str = "relu",
                 dueling: bool = False, init: str = "orthogonal"):
        super().__init__()
        if init not in DQN_INITS:
            raise ValueError(f"dqn: init {init!r}: expected one of {', '.join(DQN_INITS)}")
        self.encoder = make_encoder(net, obs_dim, hidden, activation)
        self.dueling = dueling
        self.head = nn.Linear(self.encoder.out_dim, n_actions)
        self.value = nn.Linear(self.encoder.out_dim, 1) if dueling else None
        if init == "torch":  # every linear layer back to nn.Linear's own initialisation
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.reset_parameters()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q values (B, n)."""
        z = self.encoder(obs)
        a = self.head(z)
        if not self.dueling:
            return a
        return self.value(z) + a - a.mean(-1, keepdim=True)


class DQN(LiveHParams):
    """DQN agent over N environments; owns its (prioritised) replay buffer."""

    name = "dqn"
    on_policy = False
    action_types = ("discrete",)

    @staticmethod
    def closed_form(config: DQNConfig, device: str | torch.device) -> bool:
        """Whether ``config`` on ``device`` takes the closed-form gradients
        (``rlcore/handgrad.py``): ``hand_gradients`` on, no dueling head, the plain MLP, tanh or
        ReLU, the CPU."""
        return (bool(config.hand_gradients) and not config.dueling
                and HandMLP.supports(config.net, config.activation, device))

    def __init__(self, config: DQNConfig, obs_space: gym.Space, action_space: gym.Space,
                 n_envs: int, total_steps: int = 0, device: str = "cpu"):
        self.check_spaces(obs_space, action_space)
        check_off_policy_net(self.name, config.net)
        if config.loss not in ("huber", "mse"):
            raise ValueError(f"dqn: loss {config.loss!r}: expected huber or mse")
        if config.n_step < 1:
            raise ValueError(f"dqn: n_step {config.n_step}: expected >= 1")
        self.config, self.n_envs, self.device = config, int(n_envs), torch.device(device)
        self.obs_dim = int(np.prod(obs_space.shape))
        self.n_actions = int(action_space.n)
        c = config
        specs = self.hparam_specs(c)
        initial = {s.name: getattr(c, s.name) for s in specs}
        if initial["epsilon"] is None:
            n = max(1, int(c.exploration_fraction * total_steps))
            initial["epsilon"] = (f"lin:{c.exploration_initial_eps}->{c.exploration_final_eps}"
                                  f"@{n}")
        self.hp = HParams(specs, initial, total_steps)
        c = config
        self.q = QNetwork(self.obs_dim, self.n_actions, c.net, c.hidden, c.activation,
                          c.dueling, c.init).to(self.device)
        self.q_target = QNetwork(self.obs_dim, self.n_actions, c.net, c.hidden, c.activation,
                                 c.dueling, c.init).to(self.device)
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self._online, self._target = list(self.q.parameters()), list(self.q_target.parameters())
        hand = self.closed_form(c, self.device)
        self.hand = (HandMLP(linears(self.q), c.activation, GradBuffer(self._online))
                     if hand else None)
        self.hand_target = HandMLP(linears(self.q_target), c.activation) if hand else None
        self.optimizer = Adam(self.q.parameters(), lr=self.hp["learning_rate"])
        # replay sampling and exploration draw from torch's seed (the runner seeds it)
        seed = torch.initial_seed() % (2**32)
        buf = ReplayBuffer(c.buffer_size, self.n_envs, (self.obs_dim,), (), np.int64, seed=seed)
        self.replay = (PrioritizedReplayBuffer(buf, self.hp["per_alpha"], self.hp["per_beta"],
                                               self.hp["per_eps"], self.hp["per_recent_frac"],
                                               self.hp["per_recent_window"])
                       if c.per else buf)
        self.rng = np.random.default_rng(seed + 1)
        self.clock = 0  # the runner's step count at the last observed transition
        self.n_updates = 0

    @classmethod
    def hparam_specs(cls, config) -> list[HParamSpec]:
        """The mutable hyperparameters an agent built from ``config`` has (for validation):
        the PER fields only with prioritised replay."""
        return [s for s in DQN_HPARAMS if config.per or s.name not in PER_FIELDS]

    @classmethod
    def check_spaces(cls, obs_space: gym.Space, action_space: gym.Space) -> None:
        """Raise ValueError naming the mismatch if DQN cannot act in these spaces."""
        if not isinstance(obs_space, gym.spaces.Box):
            raise ValueError(f"dqn: observation space must be a Box, got {obs_space}")
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"dqn: needs a Discrete action space (one Q value per action), got "
                             f"{action_space}; use --algo sac or ppo for continuous actions")

    # -- acting ------------------------------------------------------------------------------
    def initial_state(self, n_envs: int) -> None:
        """Feed-forward: no recurrent state."""
        return None

    def act(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False) -> ActResult:
        """Epsilon-greedy (eq. (13)); random before ``learning_starts``; greedy if deterministic."""
        n = len(obs)
        if deterministic:
            return ActResult(self._greedy(obs))
        eps = 1.0 if self.clock < self.config.learning_starts else self.hp["epsilon"]
        explore = self.rng.random(n) < eps
        random_actions = self.rng.integers(0, self.n_actions, n)
        if explore.all():  # no forward pass when every environment explores (as SB3)
            return ActResult(random_actions)
        return ActResult(np.where(explore, random_actions, self._greedy(obs)))

    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if self.hand is not None:  # the plain MLP on the CPU: NumPy's forward (handgrad.py)
            return self.hand.forward(x)[-1].argmax(-1)
        with torch.no_grad():
            return self.q(torch.from_numpy(x).to(self.device)).argmax(-1).cpu().numpy()

    def observe(self, tr: Transition) -> bool:
        """Store valid rows; update targets on schedule; True when an update is due."""
        self.replay.add(tr.obs, tr.actions, tr.rewards, tr.next_obs, tr.terminated,
                        tr.truncated, tr.valid)
        n, self.clock = len(tr.obs), tr.step
        interval = self.hp["target_update_interval"]
        if tr.step // interval > (tr.step - n) // interval:  # the clock crossed a multiple
            self._update_target(self.hp["tau"])
        return due_off_policy(tr.step, n, self.config.learning_starts, self.hp["train_freq"],
                              self.replay.size, self.hp["batch_size"])

    @torch.no_grad()
    def _update_target(self, tau: float) -> None:
        # docs/algorithms/dqn.md, eq. (14): target <- target + tau (online - target)
        if tau >= 1.0:
            torch._foreach_copy_(self._target, self._online)
        else:
            torch._foreach_lerp_(self._target, self._online, tau)

    # -- learning ----------------------------------------------------------------------------
    # --8<-- [start:update]
    def update(self) -> dict[str, float]:
        """``gradient_steps`` (-1: one per environment) importance-weighted double-DQN steps;
        refresh priorities."""
        hp, cfg, dev = self.hp, self.config, self.device
        stats: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps_per_update(hp["gradient_steps"], self.n_envs)):
            b = self.replay.sample(hp["batch_size"], hp["gamma"], cfg.n_step)
            w = b.weights if cfg.per else None
            if self.hand is not None:  # NumPy arrays all the way (CPU only)
                loss, info = self._hand_gradients(b.obs, b.next_obs, b.actions, b.rewards,
                                                  b.terminated, b.discounts, w)
                td_abs = info["td_abs"]
            else:
                loss, info = self._autograd_gradients(
                    *(torch.from_numpy(a).to(dev) for a in (
                        b.obs, b.next_obs, b.actions, b.rewards, b.terminated, b.discounts)),
                    None if w is None else torch.from_numpy(w).to(dev))
                td_abs = info["td_abs"].cpu().numpy() if cfg.per else info["td_abs"]
            gn = clip_grad_norm(self._online, hp["max_grad_norm"])
            self.optimizer.step()
            if cfg.per:
                self.replay.update_priorities(b.slots, td_abs)
            for k, v in (("losses/td", loss), ("charts/q_mean", info["q_mean"]),
                         ("losses/td_abs", td_abs.mean()),
                         ("losses/grad_norm", float(gn) if self.hand is not None else gn)):
                stats.setdefault(k, []).append(v)
        self.n_updates += 1
        out = mean_scalars(stats)
        out["charts/epsilon"] = float(hp["epsilon"])
        if cfg.per:
            out["charts/per_beta"] = float(hp["per_beta"])
        return out
    # --8<-- [end:update]

    def _autograd_gradients(self, obs, nobs, act, rew, term, disc, w):
        """TD loss (eq. (11)) on one batch and its gradient by autograd, into ``.grad``."""
        q_all = self.q(obs)
        with torch.no_grad():  # a separate forward: one over cat([obs, nobs]) made the
            # backward's weight products run over both halves (19% more per step on CPU)
            next_online = self.q(nobs) if self.config.double else None
            target = dqn_target(rew, term, disc, self.q_target(nobs), next_online)
        q_taken = q_all.gather(1, act.view(-1, 1)).squeeze(1)
        loss, info = dqn_td_loss(q_taken, target, w, self.config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach(), info

    # --8<-- [start:hand-gradients]
    def _hand_gradients(self, obs, nobs, act, rew, term, disc, w):
        """The same as :meth:`_autograd_gradients` in closed form, on NumPy arrays: the
        networks' forward and backward (rlcore/handgrad.py), the target, the loss and its
        derivative (:func:`rlcore.losses.dqn.dqn_td_closed_form`)."""
        next_online = None
        if self.config.double:  # one forward of the online net over [s; s'], the rows apart
            n = len(obs)
            both = self.hand.forward(np.concatenate([obs, nobs]))
            acts, next_online = [a[:n] for a in both], both[-1][n:]
        else:
            acts = self.hand.forward(obs)
        q_next = self.hand_target.forward(nobs)[-1]
        loss, td_abs, q_mean, d_q = dqn_td_closed_form(acts[-1], act, rew, term, disc, q_next,
                                                       next_online, w, self.config.loss)
        self.hand.backward(acts, d_q)
        return loss, {"td_abs": td_abs, "q_mean": q_mean}
    # --8<-- [end:hand-gradients]

    # -- hyperparameters -----------------------------------------------------------------------
    def _on_value(self, name: str, old: Any, new: Any) -> None:
        if name == "learning_rate":
            for g in self.optimizer.param_groups:
                g["lr"] = new
        elif name == "per_alpha":
            self.replay.set_alpha(new)
        elif name == "per_beta":
            self.replay.set_beta(new)
        elif name == "per_eps":
            self.replay.set_eps(new)
        elif name == "per_recent_frac":
            self.replay.recent_frac = float(new)
        elif name == "per_recent_window":
            self.replay.recent_window = int(new)

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser, hyperparameters, counters and random-number generators."""
        return {"q": self.q.state_dict(), "q_target": self.q_target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "hparams": self.hp.state_dict(),
                "counters": {"clock": self.clock, "n_updates": self.n_updates},
                "rng": {"explore": self.rng.bit_generator.state,
                        "replay": self._replay_rng().bit_generator.state}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; optimiser lr and PER settings follow the hparams."""
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.hp.load_state_dict(state["hparams"])
        counters = state["counters"]
        self.clock, self.n_updates = int(counters.get("clock", 0)), int(counters["n_updates"])
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]["explore"]
            self._replay_rng().bit_generator.state = state["rng"]["replay"]
        for name in self.hp.values():
            self._on_value(name, None, self.hp[name])

    def _replay_rng(self) -> np.random.Generator:
        return self.replay.buffer.rng if self.config.per else self.replay.rng

    def replay_state_dict(self) -> dict[str, Any]:
        """The replay buffer's contents, cursors (and priorities with PER)."""
        return self.replay.state_dict()

    def load_replay_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the replay buffer from :meth:`replay_state_dict`."""
        self.replay.load_state_dict(state)
