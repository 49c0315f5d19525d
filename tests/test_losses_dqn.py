"""DQN losses: double-DQN target selection by hand, Huber/MSE values, reference grads, gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from rlcore.losses.dqn import dqn_target, dqn_td_loss

D = torch.float64


def test_double_dqn_online_selects_target_evaluates() -> None:
    r = torch.tensor([1.0, 0.0, 2.0], dtype=D)
    term = torch.tensor([0.0, 0.0, 1.0], dtype=D)
    online = torch.tensor([[5.0, 1.0, 0.0], [0.0, 0.0, 9.0], [1.0, 2.0, 3.0]], dtype=D)
    target = torch.tensor([[1.0, 7.0, 8.0], [4.0, 6.0, -2.0], [10.0, 10.0, 10.0]], dtype=D)
    y = dqn_target(r, term, 0.5, target, online)
    # sample 0: online argmax 0 -> target 1.0; sample 1: online argmax 2 -> target -2.0;
    # sample 2 terminal -> r
    torch.testing.assert_close(y, torch.tensor([1.5, -1.0, 2.0], dtype=D))
    # plain DQN takes the target's own max instead
    y_plain = dqn_target(r, term, 0.5, target)
    torch.testing.assert_close(y_plain, torch.tensor([5.0, 3.0, 2.0], dtype=D))


def test_per_sample_discount_for_nstep() -> None:
    y = dqn_target(torch.tensor([1.0, 1.0], dtype=D), torch.zeros(2, dtype=D),
                   torch.tensor([0.9, 0.81], dtype=D), torch.tensor([[2.0], [2.0]], dtype=D))
    torch.testing.assert_close(y, torch.tensor([2.8, 2.62], dtype=D))


def test_huber_and_mse_values_by_hand() -> None:
    q = torch.tensor([0.0, 0.0, 0.0], dtype=D)
    y = torch.tensor([0.5, -2.0, 3.0], dtype=D)
    loss, info = dqn_td_loss(q, y, loss="huber")
    # huber(0.5) = 0.125, huber(2) = 1.5, huber(3) = 2.5
    assert loss.item() == pytest.approx((0.125 + 1.5 + 2.5) / 3)
    torch.testing.assert_close(info["td_abs"], torch.tensor([0.5, 2.0, 3.0], dtype=D))
    w = torch.tensor([1.0, 0.5, 0.0], dtype=D)
    loss_w, _ = dqn_td_loss(q, y, w, loss="huber")
    assert loss_w.item() == pytest.approx((0.125 + 0.75 + 0.0) / 3)
    loss_m, _ = dqn_td_loss(q, y, w, loss="mse")
    assert loss_m.item() == pytest.approx((0.125 + 0.5 * 0.5 * 4.0) / 3)
    with pytest.raises(ValueError, match="huber"):
        dqn_td_loss(q, y, loss="l1")


def _reference(q, y, w, kind):
    """Written independently: piecewise Huber by torch.where, weighted mean over B."""
    d = q - y.detach()
    if kind == "huber":
        per = torch.where(d.abs() <= 1.0, 0.5 * d * d, d.abs() - 0.5)
    else:
        per = 0.5 * d * d
    return (w * per).sum() / len(q)


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_gradients_match_reference_and_gradcheck(kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    q = (3 * torch.randn(16, generator=g, dtype=D)).requires_grad_(True)
    y = 3 * torch.randn(16, generator=g, dtype=D)
    w = torch.rand(16, generator=g, dtype=D)
    loss, _ = dqn_td_loss(q, y, w, kind)
    q2 = q.detach().clone().requires_grad_(True)
    ref = _reference(q2, y, w, kind)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(torch.autograd.grad(loss, q)[0], torch.autograd.grad(ref, q2)[0])
    assert gradcheck(lambda x: dqn_td_loss(x, y, w, kind)[0], (q,))


def test_target_receives_no_gradient() -> None:
    q = torch.tensor([1.0], dtype=D, requires_grad=True)
    nt = torch.tensor([[2.0, 3.0]], dtype=D, requires_grad=True)
    y = dqn_target(torch.zeros(1, dtype=D), torch.zeros(1, dtype=D), 0.9, nt, nt * 1.0)
    loss, _ = dqn_td_loss(q, y)
    assert not y.requires_grad
    assert torch.autograd.grad(loss, nt, allow_unused=True)[0] is None
