"""Actor-critic network shared by the on-policy algorithms (PPO, A2C).

Feed-forward nets (``mlp``, ``resmlp``) use separate actor and critic encoders; ``lstm`` uses an
actor LSTM and a critic LSTM (state ``(h_pi, c_pi, h_v, c_v)``). Distributions are written out
(docs/networks.md, eqs. (4)-(6)) rather than built as ``torch.distributions`` objects, which
costs less per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcore.agent import ActResult
from rlcore.nets import CategoricalHead, GaussianHead, ValueHead, make_encoder

__all__ = ["ActorCritic", "check_on_policy_spaces", "to_host"]

_LOG_2PI = math.log(2.0 * math.pi)


def check_on_policy_spaces(algo: str, obs_space: gym.Space, action_space: gym.Space) -> None:
    """Raise ValueError unless the spaces are a Box observation and a Discrete or Box action."""
    if not isinstance(obs_space, gym.spaces.Box):
        raise ValueError(f"{algo}: observation space {obs_space} is not a Box; flatten it first")
    if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
        raise ValueError(f"{algo}: action space {action_space} is not supported; "
                         "expected Discrete or Box")


def to_host(actions: torch.Tensor, log_probs: torch.Tensor, values: torch.Tensor,
            one_copy: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(actions, log-probabilities, values) of N environments as numpy arrays.

    On the CPU the arrays are views of the tensors (no copy). On a GPU (``one_copy``) the three
    are packed into one (N, A + 2) float tensor and copied to the host at once: one wait for the
    device per step instead of three. Integer actions come back as int64.
    """
    if not one_copy:
        return actions.numpy(), log_probs.numpy(), values.numpy()
    n = len(log_probs)
    packed = torch.cat([actions.reshape(n, -1).to(log_probs.dtype), log_probs.view(n, 1),
                        values.view(n, 1)], 1).cpu().numpy()
    raw = packed[:, :-2].reshape(tuple(actions.shape))
    if not actions.dtype.is_floating_point:
        raw = raw.astype(np.int64)
    return raw, packed[:, -2], packed[:, -1]


class ActorCritic(nn.Module):
    """Policy pi(a|s) and value V(s) for a Discrete or Box action space."""

    def __init__(self, obs_dim: int, action_space: gym.Space, net: str = "mlp",
                 hidden: Sequence[int] | None = None, activation: str = "tanh",
                 lstm_hidden: int = 256, log_std_init: float = 0.0):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.recurrent = net == "lstm"
        if self.recurrent:  # separate actor and critic LSTMs (docs/networks.md, "LSTM policies")
            self.encoder = make_encoder("lstm", obs_dim, lstm_hidden=lstm_hidden)
            self.v_lstm = make_encoder("lstm", obs_dim, lstm_hidden=lstm_hidden)
            self.pi_enc = self.v_enc = None
            pi_feat = v_feat = self.encoder.out_dim
        else:
            self.encoder = self.v_lstm = None
            self.pi_enc = make_encoder(net, obs_dim, hidden, activation)
            self.v_enc = make_encoder(net, obs_dim, hidden, activation)
            pi_feat, v_feat = self.pi_enc.out_dim, self.v_enc.out_dim
        if self.discrete:
            self.pi_head = CategoricalHead(pi_feat, int(action_space.n))
        else:
            self.pi_head = GaussianHead(pi_feat, int(np.prod(action_space.shape)), log_std_init)
        self.v_head = ValueHead(v_feat)

    # -- features ------------------------------------------------------------------------------
    def initial_state(self, batch: int):
        """Zero state (h_pi, c_pi, h_v, c_v) for ``batch`` environments (None when feed-forward)."""
        if not self.recurrent:
            return None
        dev = self.v_head.parameters().__next__().device  # the LSTM state lives beside the net
        return (*self.encoder.initial_state(batch, dev), *self.v_lstm.initial_state(batch, dev))

    def features(self, obs: torch.Tensor, state=None, episode_start: torch.Tensor | None = None):
        """(policy features, value features, new state); obs is (B, D) or, recurrent, (T, B, D)."""
        if self.recurrent:
            seq = obs if obs.dim() == 3 else obs.unsqueeze(0)
            if episode_start is None:
                episode_start = torch.zeros(seq.shape[:2], dtype=torch.bool, device=seq.device)
            es = episode_start if episode_start.dim() == 2 else episode_start.unsqueeze(0)
            z_pi, pi_state = self.encoder(seq, state[:2], es)
            z_v, v_state = self.v_lstm(seq, state[2:], es)
            if obs.dim() == 2:
                z_pi, z_v = z_pi.squeeze(0), z_v.squeeze(0)
            return z_pi, z_v, (*pi_state, *v_state)
        return self.pi_enc(obs), self.v_enc(obs), None

    # -- distribution math -------------------------------------------------------------------
    def dist_params(self, z: torch.Tensor):
        """Logits (discrete) or (mean, log_std) (continuous)."""
        return self.pi_head(z)

    # --8<-- [start:log-prob-entropy]
    def log_prob_entropy(self, params, actions: torch.Tensor,
                         entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """log pi(a|s) and entropy H(pi(.|s)) (docs/networks.md, eqs. (4)-(6)); the entropy is
        None with ``entropy=False`` (acting needs only the log-probability)."""
        if self.discrete:
            logp_all = torch.log_softmax(params, -1)
            logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            ent = -(logp_all.exp() * logp_all).sum(-1) if entropy else None
            return logp, ent
        mean, log_std = params
        z = (actions - mean) * torch.exp(-log_std)
        logp = (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)
        ent = (log_std + 0.5 * (1.0 + _LOG_2PI)).sum(-1) if entropy else None
        return logp, ent
    # --8<-- [end:log-prob-entropy]

    def sample(self, params, deterministic: bool) -> torch.Tensor:
        """Draw actions (Gumbel-max for categorical; reparameterised Gaussian) or the mode."""
        if self.discrete:
            if deterministic:
                return params.argmax(-1)
            u = torch.rand_like(params).clamp_(1e-20, 1.0)
            return (params - torch.log(-torch.log(u))).argmax(-1)
        mean, log_std = params
        if deterministic:
            return mean
        return mean + torch.randn_like(mean) * log_std.exp()

    def value(self, z_v: torch.Tensor) -> torch.Tensor:
        """V(s) from value features."""
        return self.v_head(z_v)

    # -- acting on numpy batches (what PPO and A2C hand the runner) ---------------------------
    @torch.no_grad()
    def act_numpy(self, obs: np.ndarray, state=None, episode_start: np.ndarray | None = None,
                  deterministic: bool = False, action_space: gym.Space | None = None
                  ) -> ActResult:
        """Sample (or take the mode of) pi(.|s) for N observations.

        Continuous actions are clipped to ``action_space`` for the environment; the raw samples,
        their log-probabilities and the values go back in ``extras`` for the rollout buffer.
        (The plain MLP on the CPU acts through ``rlcore/handgrad.py`` instead.)
        """
        dev = self.v_head.fc.weight.device
        n = len(obs)
        x = torch.as_tensor(obs, dtype=torch.float32, device=dev).reshape(n, -1)
        es = None
        if self.recurrent:
            es = None if episode_start is None else torch.as_tensor(episode_start,
                                                                    dtype=torch.bool, device=dev)
            if state is None:
                state = self.initial_state(n)
        z_pi, z_v, new_state = self.features(x, state, es)
        params, values = self.dist_params(z_pi), self.value(z_v)
        a = self.sample(params, deterministic)
        logp, _ = self.log_prob_entropy(params, a, entropy=False)
        raw, logp_np, v_np = to_host(a, logp, values, one_copy=dev.type != "cpu")
        env_a = raw
        if not self.discrete and action_space is not None:
            env_a = np.clip(raw, action_space.low, action_space.high)
        return ActResult(env_a, new_state, {"raw_actions": raw, "log_probs": logp_np,
                                            "values": v_np})

    @torch.no_grad()
    def values_numpy(self, obs: np.ndarray, state=None) -> np.ndarray:
        """V(s) for N observations (with the recurrent state that pairs with them)."""
        dev = self.v_head.fc.weight.device
        x = torch.as_tensor(obs, dtype=torch.float32, device=dev).reshape(len(obs), -1)
        _, z_v, _ = self.features(x, state, None)
        return self.value(z_v).cpu().numpy()

