"""rlcore.optim.clip_grad_norm against torch's clip_grad_norm_ (the rule it copies)."""

import torch
from torch import nn

from rlcore.optim import clip_grad_norm


def _net_with_grads(seed: int, scale: float) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3), nn.Linear(3, 1))
    for p in net.parameters():
        p.grad = torch.randn_like(p) * scale
    net[3].bias.grad = None  # a parameter without a gradient is skipped, as torch does
    return net


def test_same_norm_and_gradients_as_torch_clipped_and_unclipped():
    for scale, max_norm in ((1.0, 0.5), (1e-3, 0.5), (1.0, 1e6)):
        a, b = _net_with_grads(0, scale), _net_with_grads(0, scale)
        n_ref = nn.utils.clip_grad_norm_(a.parameters(), max_norm, foreach=True)
        n_ours = clip_grad_norm(list(b.parameters()), max_norm)
        assert torch.equal(n_ref, n_ours)
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert (pa.grad is None) == (pb.grad is None)
            if pa.grad is not None:
                assert torch.equal(pa.grad, pb.grad)


def test_no_gradients_gives_zero_norm():
    net = nn.Linear(2, 2)
    assert float(clip_grad_norm(list(net.parameters()), 1.0)) == 0.0
