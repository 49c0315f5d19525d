"""PPO losses: hand-worked numbers, an independent reference's gradients, float64 gradcheck."""

import math

import pytest
import torch

from rlcore.losses import approx_kl, clipped_surrogate, entropy_loss, value_loss


def test_clipped_surrogate_by_hand():
    # ratio 1 with A=1 -> 1; ratio 1.5 with A=2 -> min(3, 1.2*2) = 2.4;
    # ratio 0.5 with A=-1 -> min(-0.5, 0.8*-1) = -0.8.  mean = (1 + 2.4 - 0.8) / 3
    lp = torch.tensor([0.0, math.log(1.5), math.log(0.5)])
    old = torch.zeros(3)
    adv = torch.tensor([1.0, 2.0, -1.0])
    loss, info = clipped_surrogate(lp, old, adv, 0.2)
    assert loss.item() == pytest.approx(-(1 + 2.4 - 0.8) / 3, rel=1e-6)
    assert info["clip_fraction"].item() == pytest.approx(2 / 3)


def test_clip_case_analysis_gradients():
    # Positive advantage above 1+eps and negative advantage below 1-eps: no gradient.
    # Positive advantage below 1-eps (ratio 0.5): gradient flows (min picks the unclipped term).
    for ratio, a, has_grad in [(1.5, 1.0, False), (0.5, -1.0, False), (0.5, 1.0, True),
                               (1.5, -1.0, True), (1.1, 1.0, True)]:
        lp = torch.tensor([math.log(ratio)], requires_grad=True)
        loss, _ = clipped_surrogate(lp, torch.zeros(1), torch.tensor([a]), 0.2)
        loss.backward()
        assert (lp.grad.abs().item() > 0) == has_grad, (ratio, a)
        if has_grad:
            assert lp.grad.item() == pytest.approx(-ratio * a)  # d(-rho A)/d log rho


def test_value_loss_by_hand():
    v = torch.tensor([1.0, 2.0])
    ret = torch.zeros(2)
    old = torch.tensor([1.5, 1.5])
    assert value_loss(v, ret)[0].item() == pytest.approx(0.5 * (1 + 4) / 2)
    # clipped predictions 1.3 and 1.7: max((1)^2, 1.69) = 1.69; max(4, 2.89) = 4
    assert value_loss(v, ret, old, 0.2)[0].item() == pytest.approx(0.5 * (1.69 + 4) / 2)


def test_entropy_and_kl_by_hand():
    ent = torch.tensor([1.0, 3.0])
    assert entropy_loss(ent)[0].item() == pytest.approx(-2.0)
    lp = torch.tensor([math.log(2.0)])
    # (rho - 1) - log rho with rho = 2
    assert approx_kl(lp, torch.zeros(1)).item() == pytest.approx(1 - math.log(2))


def test_weights_are_a_mask():
    lp, old = torch.randn(6), torch.randn(6)
    adv = torch.randn(6)
    w = torch.tensor([1.0, 1, 0, 1, 0, 1])
    keep = w.bool()
    full, _ = clipped_surrogate(lp, old, adv, 0.2, w)
    part, _ = clipped_surrogate(lp[keep], old[keep], adv[keep], 0.2)
    assert full.item() == pytest.approx(part.item(), rel=1e-6)


def reference_ppo_loss(lp, old, adv, v, ret, old_v, ent, eps, eps_v, c_v, c_e):
    """Written independently of rlcore.losses, per sample in plain Python arithmetic."""
    total = 0.0
    n = lp.shape[0]
    for i in range(n):
        rho = torch.exp(lp[i] - old[i])
        surr = torch.minimum(rho * adv[i], torch.clamp(rho, 1 - eps, 1 + eps) * adv[i])
        vc = old_v[i] + torch.clamp(v[i] - old_v[i], -eps_v, eps_v)
        verr = torch.maximum((v[i] - ret[i]) ** 2, (vc - ret[i]) ** 2)
        total = total + (-surr + c_v * 0.5 * verr - c_e * ent[i])
    return total / n


def test_gradients_match_independent_reference():
    g = torch.Generator().manual_seed(0)
    n = 16
    lp = torch.randn(n, generator=g, dtype=torch.float64).mul(0.3).requires_grad_()
    v = torch.randn(n, generator=g, dtype=torch.float64).requires_grad_()
    ent = torch.rand(n, generator=g, dtype=torch.float64).requires_grad_()
    old = torch.randn(n, generator=g, dtype=torch.float64) * 0.3
    adv, ret = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g,
                                                                               dtype=torch.float64)
    old_v = v.detach() + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    ours = (clipped_surrogate(lp, old, adv, 0.2)[0] + 0.5 * value_loss(v, ret, old_v, 0.1)[0]
            + 0.01 * entropy_loss(ent)[0])
    ref = reference_ppo_loss(lp, old, adv, v, ret, old_v, ent, 0.2, 0.1, 0.5, 0.01)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)
    g1 = torch.autograd.grad(ours, (lp, v, ent))
    g2 = torch.autograd.grad(ref, (lp, v, ent))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(1)

    def t(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    n = 8
    # keep ratios away from the clip kinks, where the loss is not differentiable
    lp = (t(n) * 0.05).requires_grad_()
    old = torch.zeros(n, dtype=torch.float64)
    adv = t(n)
    assert torch.autograd.gradcheck(lambda x: clipped_surrogate(x, old, adv, 0.2)[0], (lp,))
    lp_far = torch.tensor([0.5, -0.5, 0.02], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: clipped_surrogate(x, torch.zeros(3, dtype=torch.float64),
                                    torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64), 0.2)[0],
        (lp_far,))
    v, ret = t(n).requires_grad_(), t(n)
    assert torch.autograd.gradcheck(lambda x: value_loss(x, ret)[0], (v,))
    old_v = v.detach() + 0.5 * torch.sign(t(n))  # |v - old_v| = 0.5, far from the 0.2 kink
    assert torch.autograd.gradcheck(lambda x: value_loss(x, ret, old_v, 0.2)[0], (v,))
    ent = t(n).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: entropy_loss(x)[0], (ent,))
    assert torch.autograd.gradcheck(lambda x: approx_kl(x, old), (lp,))
