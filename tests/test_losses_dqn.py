"""DQN losses: double-DQN target selection by hand, Huber/MSE values, reference grads, gradcheck."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from rlcore.losses.dqn import dqn_target, dqn_td_closed_form, dqn_td_loss

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


@pytest.mark.parametrize("loss", ["huber", "mse"])
@pytest.mark.parametrize("double,weighted", [(True, True), (False, False)])
def test_numpy_closed_form_equals_the_torch_losses_and_autograd(loss: str, double: bool,
                                                                weighted: bool) -> None:
    """dqn_td_closed_form (the NumPy path) against dqn_target + dqn_td_loss and autograd's
    derivative with respect to every Q value, on TD errors on both sides of the Huber kink."""
    g = torch.Generator().manual_seed(3)
    b, k = 48, 3
    q_all = (torch.randn(b, k, generator=g) * 2).requires_grad_()
    act = torch.randint(0, k, (b,), generator=g)
    rew, term = torch.randn(b, generator=g) * 2, (torch.rand(b, generator=g) < 0.3).float()
    disc = torch.full((b,), 0.97)
    nq_t, nq_o = torch.randn(b, k, generator=g), torch.randn(b, k, generator=g)
    w = torch.rand(b, generator=g) if weighted else None
    target = dqn_target(rew, term, disc, nq_t, nq_o if double else None)
    q_taken = q_all.gather(1, act[:, None]).squeeze(1)
    ref, info = dqn_td_loss(q_taken, target, w, loss)
    ref.backward()
    value, td_abs, q_mean, d_q = dqn_td_closed_form(
        q_all.detach().numpy(), act.numpy(), rew.numpy(), term.numpy(), disc.numpy(),
        nq_t.numpy(), nq_o.numpy() if double else None, None if w is None else w.numpy(), loss)
    assert bool((info["td_abs"] > 1).any()) and bool((info["td_abs"] < 1).any())
    assert value == pytest.approx(float(ref.detach()), rel=1e-6)
    assert q_mean == pytest.approx(float(info["q_mean"]), rel=1e-6, abs=1e-7)
    assert torch.allclose(torch.from_numpy(td_abs), info["td_abs"], atol=1e-6)
    assert torch.allclose(torch.from_numpy(d_q), q_all.grad, atol=1e-7)
    with pytest.raises(ValueError, match="huber"):
        dqn_td_closed_form(q_all.detach().numpy(), act.numpy(), rew.numpy(), term.numpy(), 0.9,
                           nq_t.numpy(), loss="l1")
