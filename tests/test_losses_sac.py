"""SAC losses: values by hand, autograd vs reference losses written here, float64 gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from rlcore.losses.sac import (
    discrete_sac_actor_loss,
    discrete_sac_critic_loss,
    discrete_sac_temperature_loss,
    discrete_soft_value,
    sac_actor_loss,
    sac_critic_loss,
    sac_temperature_loss,
    soft_q_target,
    tanh_gaussian_log_prob,
)

D = torch.float64


def test_tanh_log_prob_equals_change_of_variables() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(64, 3, generator=g, dtype=D)
    log_std = 0.5 * torch.randn(64, 3, generator=g, dtype=D)
    u = mean + log_std.exp() * torch.randn(64, 3, generator=g, dtype=D)
    a = torch.tanh(u)
    # change of variables, written out naively: log N(u) - log |d tanh/du|
    naive = (Normal(mean, log_std.exp()).log_prob(u) - torch.log(1 - a * a)).sum(-1)
    torch.testing.assert_close(tanh_gaussian_log_prob(u, mean, log_std), naive)
    # torch's own transformed distribution (evaluated at a = tanh(u))
    dist = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    torch.testing.assert_close(tanh_gaussian_log_prob(u, mean, log_std),
                               dist.log_prob(a).sum(-1), atol=1e-6, rtol=1e-6)


def test_tanh_log_prob_is_finite_where_the_naive_form_is_not() -> None:
    u = torch.tensor([[20.0]], dtype=torch.float32)
    lp = tanh_gaussian_log_prob(u, torch.zeros(1, 1), torch.zeros(1, 1))
    assert torch.isfinite(lp).all()
    # log(1 - tanh(20)^2) = log(4) - 40 + O(e^-40)
    expect = -0.5 * 400 - 0.5 * math.log(2 * math.pi) - (math.log(4) - 40.0)
    assert lp.item() == pytest.approx(expect, rel=1e-5)


def test_tanh_log_prob_single_value_by_hand() -> None:
    # u = 0, mean = 0, std = 1: log N(0) = -0.5 log(2 pi); correction log(1 - 0) = 0
    lp = tanh_gaussian_log_prob(torch.zeros(1, 1, dtype=D), torch.zeros(1, 1, dtype=D),
                                torch.zeros(1, 1, dtype=D))
    assert lp.item() == pytest.approx(-0.5 * math.log(2 * math.pi))


def test_soft_target_and_critic_loss_by_hand() -> None:
    q = torch.tensor([[1.0, 2.0], [1.5, 0.0]], dtype=D)  # 2 critics x 2 samples
    r = torch.tensor([1.0, -1.0], dtype=D)
    term = torch.tensor([0.0, 1.0], dtype=D)
    next_q = torch.tensor([[3.0, 10.0], [2.0, 20.0]], dtype=D)
    next_lp = torch.tensor([-1.0, 5.0], dtype=D)
    alpha, gamma = 0.5, 0.9
    y = soft_q_target(r, term, gamma, next_q, next_lp, alpha)
    # sample 0: 1 + 0.9 * (min(3, 2) - 0.5 * -1) = 1 + 0.9 * 2.5 = 3.25; sample 1: terminal -> -1
    torch.testing.assert_close(y, torch.tensor([3.25, -1.0], dtype=D))
    loss, info = sac_critic_loss(q, r, term, gamma, next_q, next_lp, alpha)
    # critic 0 errors: (1-3.25, 2+1) -> (5.0625 + 9)/2; critic 1: (1.5-3.25, 0+1) -> (3.0625+1)/2
    expect = 0.5 * ((5.0625 + 9.0) / 2 + (3.0625 + 1.0) / 2)
    assert loss.item() == pytest.approx(expect)
    torch.testing.assert_close(info["td_abs"], torch.tensor([(2.25 + 1.75) / 2, 2.0], dtype=D))


def test_truncation_bootstraps_and_termination_does_not() -> None:
    """Only ``terminated`` enters the loss: a truncated step is a normal, bootstrapped step."""
    r, nq, nlp = torch.ones(1, dtype=D), torch.full((2, 1), 4.0, dtype=D), torch.zeros(1, dtype=D)
    y_trunc = soft_q_target(r, torch.zeros(1, dtype=D), 0.5, nq, nlp, 0.2)
    y_term = soft_q_target(r, torch.ones(1, dtype=D), 0.5, nq, nlp, 0.2)
    assert y_trunc.item() == 3.0 and y_term.item() == 1.0


def _reference_critic(q1, q2, r, term, gamma, nq1, nq2, nlp, alpha, w):
    """Independent reference: F.mse_loss per critic with explicit weights."""
    with torch.no_grad():
        v = torch.minimum(nq1, nq2) - alpha * nlp
        y = r + gamma * (1 - term) * v
    return 0.5 * ((w * (q1 - y) ** 2).mean() + (w * (q2 - y) ** 2).mean())


def test_critic_gradients_match_reference_and_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    B = 7
    q = torch.randn(2, B, generator=g, dtype=D, requires_grad=True)
    r = torch.randn(B, generator=g, dtype=D)
    term = (torch.rand(B, generator=g) < 0.3).to(D)
    nq = torch.randn(2, B, generator=g, dtype=D)
    nlp = torch.randn(B, generator=g, dtype=D)
    w = torch.rand(B, generator=g, dtype=D)
    loss, _ = sac_critic_loss(q, r, term, 0.97, nq, nlp, 0.3, w)
    (gq,) = torch.autograd.grad(loss, q)
    q_ref = q.detach().clone().requires_grad_(True)
    ref = _reference_critic(q_ref[0], q_ref[1], r, term, 0.97, nq[0], nq[1], nlp, 0.3, w)
    (gref,) = torch.autograd.grad(ref, q_ref)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(gq, gref)
    assert gradcheck(lambda q_: sac_critic_loss(q_, r, term, 0.97, nq, nlp, 0.3, w)[0], (q,))


def test_actor_loss_by_hand_reference_and_gradcheck() -> None:
    lp = torch.tensor([-1.0, 0.5], dtype=D, requires_grad=True)
    q = torch.tensor([[2.0, 1.0], [3.0, -1.0]], dtype=D, requires_grad=True)
    loss, info = sac_actor_loss(lp, q, 0.2)
    # mean(0.2 * lp - min(q)) = mean(-0.2 - 2, 0.1 + 1) = (-2.2 + 1.1) / 2
    assert loss.item() == pytest.approx(-0.55)
    assert info["entropy"].item() == pytest.approx(0.25)
    glp, gq = torch.autograd.grad(loss, (lp, q))
    torch.testing.assert_close(glp, torch.full((2,), 0.1, dtype=D))
    # d/dq of -mean(min): -1/2 on the smaller critic of each sample (critic 0 for sample 0,
    # critic 1 for sample 1), 0 on the other
    torch.testing.assert_close(gq, torch.tensor([[-0.5, 0.0], [0.0, -0.5]], dtype=D))
    assert gradcheck(lambda a, b: sac_actor_loss(a, b, 0.2)[0], (lp, q))


def test_temperature_loss_by_hand_and_gradient() -> None:
    log_alpha = torch.tensor(math.log(0.5), dtype=D, requires_grad=True)
    lp = torch.tensor([-0.5, -1.5], dtype=D, requires_grad=True)
    loss, info = sac_temperature_loss(log_alpha, lp, target_entropy=-1.0)
    # -(log 0.5) * mean(lp + H) = -(log 0.5) * mean(-1.5, -2.5) = 2 log 0.5
    assert loss.item() == pytest.approx(2 * math.log(0.5))
    assert info["alpha"].item() == pytest.approx(0.5)
    (g,) = torch.autograd.grad(loss, log_alpha)
    assert g.item() == pytest.approx(2.0)  # -mean(lp + H): entropy too high -> alpha goes down
    assert gradcheck(lambda la: sac_temperature_loss(la, lp.detach(), -1.0)[0], (log_alpha,))
    # log-prob is detached: the temperature loss sends nothing to the policy
    loss, _ = sac_temperature_loss(log_alpha, lp, -1.0)
    assert torch.autograd.grad(loss, lp, allow_unused=True)[0] is None


def _categorical(B: int, A: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, A, generator=g, dtype=D)
    return logits, torch.softmax(logits, -1), torch.log_softmax(logits, -1), g


def test_discrete_soft_value_by_hand() -> None:
    probs = torch.tensor([[0.25, 0.75]], dtype=D)
    logp = probs.log()
    q = torch.tensor([[[1.0, 2.0]], [[0.0, 4.0]]], dtype=D)  # K=2, B=1, A=2 -> min (0, 2)
    v = discrete_soft_value(probs, logp, q, 0.5)
    expect = 0.25 * (0 - 0.5 * math.log(0.25)) + 0.75 * (2 - 0.5 * math.log(0.75))
    assert v.item() == pytest.approx(expect)


def test_discrete_critic_matches_reference_and_gradcheck() -> None:
    B, A = 6, 3
    _, nprobs, nlogp, g = _categorical(B, A, 2)
    q_taken = torch.randn(2, B, generator=g, dtype=D, requires_grad=True)
    r = torch.randn(B, generator=g, dtype=D)
    term = torch.tensor([0, 1, 0, 0, 1, 0], dtype=D)
    nq = torch.randn(2, B, A, generator=g, dtype=D)
    loss, info = discrete_sac_critic_loss(q_taken, r, term, 0.9, nprobs, nlogp, nq, 0.1)
    with torch.no_grad():  # reference: explicit loop over actions
        v = torch.zeros(B, dtype=D)
        for a in range(A):
            v += nprobs[:, a] * (torch.minimum(nq[0, :, a], nq[1, :, a]) - 0.1 * nlogp[:, a])
        y = r + 0.9 * (1 - term) * v
    qr = q_taken.detach().clone().requires_grad_(True)
    ref = 0.5 * (((qr[0] - y) ** 2).mean() + ((qr[1] - y) ** 2).mean())
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(torch.autograd.grad(loss, q_taken)[0],
                               torch.autograd.grad(ref, qr)[0])
    assert gradcheck(lambda x: discrete_sac_critic_loss(x, r, term, 0.9, nprobs, nlogp, nq,
                                                        0.1)[0], (q_taken,))


def test_discrete_actor_matches_reference_and_gradcheck() -> None:
    B, A = 5, 4
    logits, _, _, g = _categorical(B, A, 3)
    logits.requires_grad_(True)
    q = torch.randn(2, B, A, generator=g, dtype=D, requires_grad=True)

    def loss_of(lg):
        return discrete_sac_actor_loss(torch.softmax(lg, -1), torch.log_softmax(lg, -1), q,
                                       0.3)[0]

    loss = loss_of(logits)
    # Q is detached inside: the actor loss sends nothing to the critics
    assert torch.autograd.grad(loss, q, allow_unused=True, retain_graph=True)[0] is None
    (g1,) = torch.autograd.grad(loss, logits)
    # reference: expectation written as a double loop, via torch.distributions
    lr = logits.detach().clone().requires_grad_(True)
    dist = torch.distributions.Categorical(logits=lr)
    qmin = torch.minimum(q[0], q[1]).detach()
    ref = 0.0
    for b in range(B):
        for a in range(A):
            p = dist.probs[b, a]
            ref = ref + p * (0.3 * torch.log(p) - qmin[b, a])
    ref = ref / B
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(g1, torch.autograd.grad(ref, lr)[0])
    assert gradcheck(loss_of, (logits.detach().requires_grad_(True),))


def test_discrete_temperature_loss_by_hand() -> None:
    probs = torch.tensor([[0.5, 0.5]], dtype=D)
    la = torch.tensor(0.0, dtype=D, requires_grad=True)
    loss, _ = discrete_sac_temperature_loss(la, probs, probs.log(), target_entropy=0.5)
    # entropy = log 2; loss = -log_alpha * (-log 2 + 0.5); gradient -( -log 2 + 0.5)
    (g,) = torch.autograd.grad(loss, la)
    assert g.item() == pytest.approx(math.log(2) - 0.5)
    assert gradcheck(lambda x: discrete_sac_temperature_loss(x, probs, probs.log(), 0.5)[0],
                     (la,))
