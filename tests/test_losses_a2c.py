"""The A2C policy-gradient loss: values by hand, autograd against a reference, float64 gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from rlcore.losses.a2c import policy_gradient_loss
from rlcore.losses.ppo import entropy_loss, value_loss


def test_policy_gradient_loss_by_hand():
    # products log_prob * A: -0.5*1 = -0.5, -1*-2 = 2, -2*0.5 = -1; mean 0.5/3; loss = -1/6
    logp = torch.tensor([-0.5, -1.0, -2.0])
    adv = torch.tensor([1.0, -2.0, 0.5])
    loss, info = policy_gradient_loss(logp, adv)
    assert loss.item() == pytest.approx(-1.0 / 6.0)
    assert info["advantage_mean"].item() == pytest.approx((1.0 - 2.0 + 0.5) / 3.0)


def test_policy_gradient_loss_weights_mask_rows():
    # the masked middle row must not count: (-0.5 + -1) / 2 = -0.75 -> loss 0.75
    logp = torch.tensor([-0.5, -1.0, -2.0])
    adv = torch.tensor([1.0, -2.0, 0.5])
    w = torch.tensor([1.0, 0.0, 1.0])
    loss, info = policy_gradient_loss(logp, adv, w)
    assert loss.item() == pytest.approx(0.75)
    assert info["advantage_mean"].item() == pytest.approx(0.75)


def test_full_a2c_objective_by_hand():
    # two samples: log pi = log 0.5, log 0.25; A = 2, -1; V = 1, 0; R = 3, -1; H = 0.7, 0.5
    logp = torch.log(torch.tensor([0.5, 0.25]))
    adv = torch.tensor([2.0, -1.0])
    pg, _ = policy_gradient_loss(logp, adv)
    vl, _ = value_loss(torch.tensor([1.0, 0.0]), torch.tensor([3.0, -1.0]))
    el, info = entropy_loss(torch.tensor([0.7, 0.5]))
    expected_pg = -(2 * math.log(0.5) - math.log(0.25)) / 2  # = -(-1.3863 + 1.3863) / 2 = 0
    assert pg.item() == pytest.approx(expected_pg, abs=1e-7)
    assert vl.item() == pytest.approx(0.5 * (4.0 + 1.0) / 2)  # 1.25
    assert el.item() == pytest.approx(-0.6)
    total = pg + 0.5 * vl + 0.01 * el
    assert total.item() == pytest.approx(0.625 - 0.006)
    assert info["entropy"].item() == pytest.approx(0.6)


def test_gradient_against_analytic_reference():
    # d L / d logp_i = -w_i A_i / sum(w);  d L / d A_i = -w_i logp_i / sum(w)
    g = torch.Generator().manual_seed(0)
    logp = (-torch.rand(7, 3, generator=g, dtype=torch.float64) * 3).requires_grad_()
    adv = torch.randn(7, 3, generator=g, dtype=torch.float64).requires_grad_()
    w = (torch.rand(7, 3, generator=g, dtype=torch.float64) > 0.3).double()
    loss, _ = policy_gradient_loss(logp, adv, w)
    loss.backward()
    torch.testing.assert_close(logp.grad, -w * adv.detach() / w.sum())
    torch.testing.assert_close(adv.grad, -w * logp.detach() / w.sum())


def test_gradient_through_categorical_policy_matches_reference():
    # Reference: log pi = log_softmax(z)[a]; d(-mean A log pi)/dz = -(A/B)(onehot(a) - softmax(z))
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    acts = torch.randint(0, 4, (5,), generator=g)
    adv = torch.randn(5, generator=g, dtype=torch.float64)
    logp = torch.log_softmax(logits, -1).gather(-1, acts[:, None]).squeeze(-1)
    loss, _ = policy_gradient_loss(logp, adv)
    loss.backward()
    probs = torch.softmax(logits.detach(), -1)
    onehot = torch.nn.functional.one_hot(acts, 4).double()
    ref = -(adv[:, None] / 5) * (onehot - probs)
    torch.testing.assert_close(logits.grad, ref)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    logp = (-torch.rand(6, generator=g, dtype=torch.float64)).requires_grad_()
    adv = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: policy_gradient_loss(a, b)[0], (logp, adv))
    assert torch.autograd.gradcheck(lambda a, b: policy_gradient_loss(a, b, w)[0], (logp, adv))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="advantages shape"):
        policy_gradient_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="weights shape"):
        policy_gradient_loss(torch.zeros(3), torch.zeros(3), torch.ones(2))
