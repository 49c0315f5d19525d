"""Network builders: MLP, residual LayerNorm MLP, LSTM encoder, and policy/value heads.

Initialisation is explicit (docs/networks.md): orthogonal weights with gain sqrt(2) for hidden
layers, 0.01 for policy outputs and 1 for value outputs; zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "init_layer", "mlp", "ResidualMLP", "LSTMEncoder", "MLPEncoder", "CategoricalHead",
    "GaussianHead", "ValueHead", "make_encoder", "NET_KINDS",
]

NET_KINDS = ("mlp", "resmlp", "lstm")
_ACTS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


# --8<-- [start:init-layer]
def init_layer(layer: nn.Linear, gain: float = math.sqrt(2.0)) -> nn.Linear:
    """Orthogonal weights with ``gain`` and zero bias; returns the layer."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer
# --8<-- [end:init-layer]


def mlp(in_dim: int, hidden: Sequence[int], activation: str = "tanh",
        out_dim: int | None = None, out_gain: float = 1.0) -> nn.Sequential:
    """A plain MLP: Linear+activation per hidden width, then an optional linear output."""
    if activation not in _ACTS:
        raise ValueError(f"activation {activation!r}: expected one of {sorted(_ACTS)}")
    layers: list[nn.Module] = []
    d = in_dim
    for w in hidden:
        layers += [init_layer(nn.Linear(d, w)), _ACTS[activation]()]
        d = w
    if out_dim is not None:
        layers.append(init_layer(nn.Linear(d, out_dim), out_gain))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Feed-forward encoder: an MLP without output layer (``out_dim`` features)."""

    recurrent = False

    def __init__(self, in_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh"):
        super().__init__()
        self.net = mlp(in_dim, hidden, activation)
        self.out_dim = hidden[-1] if hidden else in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of flat observations."""
        return self.net(x)


# --8<-- [start:resblock]
class _ResBlock(nn.Module):
    """y = LayerNorm(ReLU(W x + b)) + P x, with P the identity or a projection (docs/networks.md, eq. (1))."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.fc = init_layer(nn.Linear(d_in, d_out))
        self.norm = nn.LayerNorm(d_out)
        self.proj = nn.Identity() if d_in == d_out else init_layer(nn.Linear(d_in, d_out), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.fc(x))) + self.proj(x)


class ResidualMLP(nn.Module):
    """Residual MLP with LayerNorm after each ReLU (default widths 128-256-256-128)."""

    recurrent = False

    def __init__(self, in_dim: int, widths: Sequence[int] = (128, 256, 256, 128)):
        super().__init__()
        dims = [in_dim, *widths]
        self.blocks = nn.Sequential(*[_ResBlock(a, b) for a, b in zip(dims, dims[1:])])
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of flat observations."""
        return self.blocks(x)
# --8<-- [end:resblock]


class LSTMEncoder(nn.Module):
    """A single-layer LSTM, LayerNorm on its output, state reset explicitly at episode starts.

    ``forward(x, state, episode_start)`` takes ``x`` of shape (T, B, D), the state ``(h, c)`` each
    (1, B, H) before the first step, and ``episode_start`` (T, B) booleans; before step t the state
    of every environment with ``episode_start[t]`` is zeroed (docs/networks.md, eq. (3)). The
    LayerNorm (eq. (2)) matters: a fresh LSTM's outputs are ~0.01 in size, too small for the heads
    to learn from (docs/networks.md, "Why the LayerNorm").
    """

    recurrent = True

    def __init__(self, in_dim: int, hidden: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden)
        for name, p in self.lstm.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p, 1.0)
            else:
                nn.init.zeros_(p)
        self.norm = nn.LayerNorm(hidden)
        self.hidden = hidden
        self.out_dim = hidden

    def initial_state(self, batch: int, device: torch.device | str = "cpu"):
        """Zero state for ``batch`` sequences."""
        z = torch.zeros(1, batch, self.hidden, device=device)
        return (z, z.clone())

    # --8<-- [start:forward]
    def forward(self, x: torch.Tensor, state, episode_start: torch.Tensor):
        """Run T steps; returns (features (T, B, H), final state).

        The sequence is cut only at the time steps where some environment starts an episode; each
        piece runs as one fused LSTM call from the (partly zeroed) state.
        """
        h, c = state
        T = x.shape[0]
        starts = torch.nonzero(episode_start.any(1)).squeeze(1).tolist()
        bounds = sorted({0, *starts, T})
        outs = []
        for a, b in zip(bounds, bounds[1:]):
            keep = (~episode_start[a]).to(device=x.device, dtype=x.dtype).view(1, -1, 1)
            out, (h, c) = self.lstm(x[a:b], (h * keep, c * keep))
            outs.append(out)
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 0)
        return self.norm(out), (h, c)
    # --8<-- [end:forward]


class CategoricalHead(nn.Module):
    """Logits of a categorical policy over ``n`` actions."""

    def __init__(self, in_dim: int, n: int):
        super().__init__()
        self.fc = init_layer(nn.Linear(in_dim, n), 0.01)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-probabilities (logits)."""
        return self.fc(z)


class GaussianHead(nn.Module):
    """Mean of a diagonal Gaussian policy and a state-independent log standard deviation."""

    def __init__(self, in_dim: int, act_dim: int, log_std_init: float = 0.0):
        super().__init__()
        self.fc = init_layer(nn.Linear(in_dim, act_dim), 0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) broadcast to the batch."""
        mean = self.fc(z)
        return mean, self.log_std.expand_as(mean)


class ValueHead(nn.Module):
    """State value V(s) from features."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.fc = init_layer(nn.Linear(in_dim, 1), 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Values with the last axis squeezed."""
        return self.fc(z).squeeze(-1)


def make_encoder(kind: str, in_dim: int, hidden: Sequence[int] | None = None,
                 activation: str = "tanh", lstm_hidden: int = 256) -> nn.Module:
    """Build the encoder chosen by ``--net mlp|resmlp|lstm``; ``.out_dim`` gives its width."""
    if kind == "mlp":
        return MLPEncoder(in_dim, tuple(hidden) if hidden else (64, 64), activation)
    if kind == "resmlp":
        return ResidualMLP(in_dim, tuple(hidden) if hidden else (128, 256, 256, 128))
    if kind == "lstm":
        return LSTMEncoder(in_dim, lstm_hidden)
    raise ValueError(f"net {kind!r}: expected one of {', '.join(NET_KINDS)}")
