"""L2/EWC anchor: penalty values by hand, hook gradient equals autograd, Fisher meter."""

from __future__ import annotations

import torch
from torch import nn

from rlcore.continual.anchor import Anchor, GradSquareMeter, agent_params


class TinyAgent:
    """An 'agent' with one module and one optimiser, as the hooks see agents."""

    def __init__(self, lr: float = 0.1):
        self.net = nn.Linear(2, 1, bias=True)
        with torch.no_grad():
            self.net.weight.copy_(torch.tensor([[1.0, -2.0]]))
            self.net.bias.fill_(0.5)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=lr)


def test_penalty_by_hand():
    ag = TinyAgent()
    ref = {"net.weight": torch.tensor([[0.0, 0.0]]), "net.bias": torch.tensor([0.0])}
    p = agent_params(ag)
    assert set(p) == {"net.weight", "net.bias"}
    # L2: lambda/2 * (1 + 4 + 0.25) = 2/2 * 5.25
    assert torch.isclose(Anchor(ref, None, 2.0).penalty(p), torch.tensor(5.25))
    # EWC with F = (1, 3 | 0): mean F = 4/3, weights (0.75, 2.25 | 0); 0.5*(0.75 + 9) = 4.875
    fisher = {"net.weight": torch.tensor([[1.0, 3.0]]), "net.bias": torch.tensor([0.0])}
    assert torch.isclose(Anchor(ref, fisher, 1.0).penalty(p), torch.tensor(4.875))


def test_hook_gradient_equals_autograd_of_penalty():
    torch.manual_seed(0)
    ag = TinyAgent()
    ref = {n: torch.randn_like(q, dtype=torch.float32) for n, q in agent_params(ag).items()}
    fisher = {n: torch.rand_like(q) for n, q in agent_params(ag).items()}
    for f in (None, fisher):
        a = Anchor(ref, f, 0.7)
        params = {n: q.detach().double().requires_grad_() for n, q in agent_params(ag).items()}
        ref64 = Anchor({n: r.double() for n, r in ref.items()},
                       None if f is None else {n: x.double() for n, x in f.items()}, 0.7)
        ref64.penalty(params).backward()
        for n, q in agent_params(ag).items():
            torch.testing.assert_close(a.grad(n, q).double(), params[n].grad, rtol=1e-6,
                                       atol=1e-7)


def test_attached_anchor_changes_the_sgd_step_exactly():
    ag = TinyAgent(lr=0.1)
    ref = {"net.weight": torch.zeros(1, 2), "net.bias": torch.zeros(1)}
    a = Anchor(ref, None, 2.0).attach(ag)
    x = torch.tensor([[1.0, 1.0]])
    loss = ag.net(x).sum()  # d loss / dw = (1, 1), d loss / db = 1
    ag.optimizer.zero_grad()
    loss.backward()
    ag.optimizer.step()
    # w <- w - lr * (g + lambda (w - 0)) = (1, -2) - 0.1 * ((1, 1) + 2 * (1, -2)) = (0.7, -1.7)
    torch.testing.assert_close(ag.net.weight.detach(), torch.tensor([[0.7, -1.7]]))
    # b <- 0.5 - 0.1 * (1 + 2 * 0.5) = 0.3
    torch.testing.assert_close(ag.net.bias.detach(), torch.tensor([0.3]))
    a.detach()
    ag.optimizer.zero_grad()
    ag.net(x).sum().backward()
    ag.optimizer.step()  # without the anchor: plain SGD
    torch.testing.assert_close(ag.net.weight.detach(), torch.tensor([[0.6, -1.8]]))


def test_grad_square_meter_mean_and_drop():
    ag = TinyAgent(lr=0.1)
    m = GradSquareMeter(drop=True).attach(ag)
    w0 = ag.net.weight.detach().clone()
    for x in (torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]])):
        ag.optimizer.zero_grad()
        ag.net(x).sum().backward()
        ag.optimizer.step()
    m.detach()
    f = m.fisher()
    # grads of w are x: mean of squares ((1 + 9) / 2, (4 + 0) / 2); bias grads 1 and 1
    torch.testing.assert_close(f["net.weight"], torch.tensor([[5.0, 2.0]]))
    torch.testing.assert_close(f["net.bias"], torch.tensor([1.0]))
    torch.testing.assert_close(ag.net.weight.detach(), w0)  # drop: the steps changed nothing
    assert m.count == 2
