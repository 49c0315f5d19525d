"""rlcore.optim: clip_grad_norm against torch's clip_grad_norm_ (the rule it copies); Adam and
RMSprop against torch's optimisers, their flat buffers, deep copies, hooks and the profiler."""

import copy

import numpy as np
import pytest
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


def test_gradients_in_one_flat_buffer_clip_as_one_tensor():
    """Views that tile a GradBuffer take the one-tensor path: the same norm and scaled
    gradients as torch's rule, to float rounding; views that do not tile it take the list
    path."""
    from rlcore.handgrad import GradBuffer

    for scale, max_norm in ((1.0, 0.5), (1e-3, 0.5)):
        a = _net_with_grads(0, scale)
        a[3].bias.grad = torch.randn_like(a[3].bias) * scale
        b = _net_with_grads(0, scale)
        buf = GradBuffer(list(b.parameters()))
        for p, pa in zip(b.parameters(), a.parameters()):
            v = buf.view(p)
            v.copy_(pa.grad)
            p.grad = v
        n_ref = nn.utils.clip_grad_norm_(a.parameters(), max_norm, foreach=True)
        n_ours = clip_grad_norm(list(b.parameters()), max_norm)
        assert torch.allclose(n_ref, n_ours, rtol=1e-6)
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.allclose(pa.grad, pb.grad, rtol=1e-6, atol=1e-9)
            assert pb.grad._base is buf.view(pb)._base  # scaled in place, still the views
    b[3].bias.grad = None  # no longer tiles the buffer: the list path, the same rule
    n = clip_grad_norm(list(b.parameters()), 1e6)
    ref = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in b.parameters()
                                              if p.grad is not None]))
    assert torch.allclose(n, ref, rtol=1e-6)


def test_the_flat_paths_scalar_coefficient_is_torchs_tensor_expression_bit_for_bit():
    """On the CPU the one-tensor path computes min(1, c / (||g|| + 1e-6)) in float32 scalars
    (eq. (1)); over norms on both sides of c, and next to it, it equals torch's tensor
    expression in every bit, and the scaled gradients equal the tensor expression's."""
    from rlcore.handgrad import GradBuffer
    from rlcore.optim import _clip_coef

    rng = np.random.default_rng(0)
    norms = np.concatenate([rng.uniform(0, 30, 20_000), 10 - rng.uniform(0, 1e-5, 10_000),
                            rng.lognormal(0, 5, 10_000)]).astype(np.float32)
    for max_norm in (10.0, 0.7, 1e-3):
        ref = torch.clamp(max_norm / (torch.from_numpy(norms) + 1e-6), max=1.0).numpy()
        ours = np.array([_clip_coef(float(x), max_norm) for x in norms], np.float32)
        np.testing.assert_array_equal(ours, ref)
    for scale, max_norm in ((1.0, 0.5), (1e-3, 0.5), (3.0, 0.7)):
        b = _net_with_grads(1, scale)
        b[3].bias.grad = torch.randn_like(b[3].bias) * scale
        params = list(b.parameters())
        buf = GradBuffer(params)
        for p in params:
            v = buf.view(p)
            v.copy_(p.grad)
            p.grad = v
        flat = params[0].grad._base.clone()
        total = torch.linalg.vector_norm(flat)
        expected = flat * torch.clamp(max_norm / (total + 1e-6), max=1.0)
        assert torch.equal(clip_grad_norm(params, max_norm), total)
        assert torch.equal(params[0].grad._base, expected)


def test_no_gradients_gives_zero_norm():
    net = nn.Linear(2, 2)
    assert float(clip_grad_norm(list(net.parameters()), 1.0)) == 0.0


def _twin_steps(make_ref, make_ours, steps: int = 6, sizes: tuple[int, ...] = (4, 16, 3)):
    """Run torch's optimiser and ours on identical nets and gradients; return both nets."""
    nets = []
    for _ in range(2):
        torch.manual_seed(1)
        nets.append(nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.Tanh(),
                                  *(nn.Linear(i, o) for i, o in zip(sizes[1:], sizes[2:]))))
    ref, ours = make_ref(nets[0].parameters()), make_ours(nets[1].parameters())
    g = torch.Generator().manual_seed(2)
    for k in range(steps):
        grads = [torch.randn(p.shape, generator=g) for p in nets[0].parameters()]
        for net in nets:
            for p, gr in zip(net.parameters(), grads):
                p.grad = gr.clone()
        if k == 3:  # a schedule writes the learning rate into the group
            for opt in (ref, ours):
                opt.param_groups[0]["lr"] = 3e-3
        ref.step()
        ours.step()
    return nets, ref, ours


def test_adam_and_rmsprop_steps_equal_torch():
    """RMSprop bit for bit; Adam to rounding: torch's fused CPU kernel rounds its vectorised
    body and scalar tail differently, and the flat buffer moves elements between the two
    (layers of 13 and 7 units put the tails elsewhere than in the per-tensor calls)."""
    from rlcore.optim import Adam, RMSprop

    for make_ref, make_ours, exact in (
            (lambda p: torch.optim.Adam(p, lr=1e-2, eps=1e-5, fused=True),
             lambda p: Adam(p, lr=1e-2, eps=1e-5), False),
            (lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-5, foreach=True),
             lambda p: RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-5), True)):
        (a, b), ref, ours = _twin_steps(make_ref, make_ours, steps=20, sizes=(5, 13, 7))
        assert ours._lists is not None and ours._flat is not None  # the flat step ran
        for pa, pb in zip(a.parameters(), b.parameters()):
            if exact:
                assert torch.equal(pa, pb)
            else:  # 20 steps of size <= 1e-2 each: rounding, not a different rule
                assert float((pa - pb).detach().abs().max()) <= 1e-6 * 1e-2 * 20
        sa, sb = ref.state_dict(), ours.state_dict()
        for k, v in sa["state"].items():
            for name, t in v.items():
                if exact or name == "step":
                    assert torch.equal(t, sb["state"][k][name]), name
                else:
                    assert torch.allclose(t, sb["state"][k][name], rtol=1e-5, atol=1e-9), name


def test_fast_step_after_load_state_dict_and_missing_gradient():
    from rlcore.optim import Adam

    (a, b), ref, ours = _twin_steps(lambda p: torch.optim.Adam(p, lr=1e-2, fused=True),
                                    lambda p: Adam(p, lr=1e-2))
    ours.load_state_dict(copy.deepcopy(ref.state_dict()))  # as from a file: no shared tensors
    assert ours._lists is None
    for net, opt in ((a, ref), (b, ours)):
        for p in net.parameters():
            p.grad = torch.ones_like(p)
        list(net.parameters())[-1].grad = None  # torch skips it; so does the fallback
        opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=0, atol=1e-7)  # Adam: to rounding


def test_step_pre_hooks_run_once_on_the_fast_and_the_fallback_path():
    from rlcore.optim import Adam

    torch.optim.Adam([nn.Parameter(torch.zeros(1))])  # torch's own Adam.step is now hooked too
    p = nn.Parameter(torch.zeros(3))
    opt = Adam([p], lr=1e-2)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(1))
    for _ in range(3):  # first step: torch's (state is created), then the fast one
        p.grad = torch.ones(3)
        opt.step()
    p.grad = None
    opt.step()  # fallback: a missing gradient
    assert len(calls) == 4


def test_fast_step_keeps_parameters_and_state_in_one_flat_buffer():
    from rlcore.optim import Adam, RMSprop

    for make in (lambda p: Adam(p, lr=1e-2), lambda p: RMSprop(p, lr=1e-2)):
        (_, net), _, opt = _twin_steps(lambda p: torch.optim.Adam(p, lr=1e-2), make, steps=2)
        params = list(net.parameters())
        flat = opt._flat.p
        assert flat.numel() == sum(p.numel() for p in params)
        offsets = [p.data_ptr() - flat.data_ptr() for p in params]
        assert offsets == [4 * k for k in np.cumsum([0] + [p.numel() for p in params[:-1]])]
        for name in opt._FLAT:  # the state dict's entries are views of the flat state
            base = opt._flat.state[opt._FLAT.index(name)]
            assert all(opt.state[p][name].data_ptr() - base.data_ptr() == off
                       for p, off in zip(params, offsets))
        steps = opt._flat.steps  # one count per parameter, each a 0-d view of one buffer
        assert [opt.state[p]["step"].data_ptr() - steps.data_ptr() for p in params] == [
            4 * k for k in range(len(params))]
        assert all(float(opt.state[p]["step"]) == 2.0 for p in params)


def test_gradients_that_tile_one_buffer_are_read_in_place():
    from rlcore.handgrad import GradBuffer
    from rlcore.optim import Adam

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    params = list(net.parameters())
    opt = Adam(params, lr=1e-2)
    for p in params:  # the first step is torch's: it makes the state
        p.grad = torch.ones_like(p)
    opt.step()
    buf = GradBuffer(params)
    grads = [buf.view(p) for p in params]
    for g in grads:
        g.fill_(0.5)
    assert opt._flat_state(opt._cached()).grad(grads) is grads[0]._base  # no copy
    other = [torch.full_like(p, 0.25) for p in params]  # separate tensors: copied, same values
    flat = opt._flat.grad(other)
    assert flat is opt._flat.g and torch.equal(flat, torch.full_like(flat, 0.25))


def test_deep_copy_steps_on_its_own_buffers_and_matches_torch():
    from rlcore.optim import Adam

    (ref_net, net), ref, opt = _twin_steps(lambda p: torch.optim.Adam(p, lr=1e-2, fused=True),
                                           lambda p: Adam(p, lr=1e-2), steps=3)
    twin_net, twin_opt = copy.deepcopy((net, opt))  # parameters cloned apart, state shared views
    before = [p.detach().clone() for p in net.parameters()]
    for n, o in ((ref_net, ref), (twin_net, twin_opt)):
        for p in n.parameters():
            p.grad = torch.full_like(p, 0.1)
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # original untouched
    for pa, pb in zip(ref_net.parameters(), twin_net.parameters()):
        assert torch.allclose(pa, pb, rtol=0, atol=1e-7)  # Adam: to rounding
    assert twin_opt._flat.p.data_ptr() != opt._flat.p.data_ptr()


def test_profiler_sees_the_step_and_hooks_run_on_the_wrapped_path():
    from torch.profiler import ProfilerActivity, profile

    from rlcore.optim import Adam

    p = nn.Parameter(torch.zeros(3))
    opt = Adam([p], lr=1e-2)
    for _ in range(2):
        p.grad = torch.ones(3)
        opt.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        p.grad = torch.ones(3)
        opt.step()
    assert any(e.name == "Optimizer.step#Adam.step" for e in prof.events())
    assert float(p.detach()[0]) == pytest.approx(-3e-2, rel=1e-3)  # three Adam steps of lr each


def test_list_kernels_off_the_flat_path_equal_torch():
    """Parameters the flat buffer does not take (float64 here; CUDA in use) step tensor by
    tensor, with torch's numbers."""
    from rlcore.optim import Adam, RMSprop

    for make_ref, make_ours in (
            (lambda p: torch.optim.Adam(p, lr=1e-2, fused=True), lambda p: Adam(p, lr=1e-2)),
            (lambda p: torch.optim.RMSprop(p, lr=1e-2, foreach=True),
             lambda p: RMSprop(p, lr=1e-2))):
        nets = []
        for _ in range(2):
            torch.manual_seed(1)
            nets.append(nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)).double())
        ref, ours = make_ref(nets[0].parameters()), make_ours(nets[1].parameters())
        g = torch.Generator().manual_seed(2)
        for _ in range(4):
            grads = [torch.randn(p.shape, generator=g, dtype=torch.float64)
                     for p in nets[0].parameters()]
            for net in nets:
                for p, gr in zip(net.parameters(), grads):
                    p.grad = gr.clone()
            ref.step()
            ours.step()
        assert ours._lists is not None and ours._flat is None
        for pa, pb in zip(nets[0].parameters(), nets[1].parameters()):
            assert torch.equal(pa, pb)


def test_tiled_base_only_for_views_that_cover_one_buffer_in_order():
    from rlcore.optim import flat_views, tiled_base

    like = [torch.zeros(2, 3), torch.zeros(4), torch.zeros(1)]
    flat = torch.zeros(11)
    views = flat_views(flat, like)
    assert tiled_base(views) is flat
    assert tiled_base(views[::-1]) is None  # out of order
    assert tiled_base(views[:2]) is None  # part of the buffer
    assert tiled_base([torch.zeros(2, 3), *views[1:]]) is None  # not all views of it


def test_optimisers_never_import_torch_dynamo():
    """Building, stepping (the first step is torch's own), zeroing, saving and loading Adam and
    RMSprop leave ``torch._dynamo`` unimported: its import was 1.1 s of every training's start
    (docs/guide/performance.md, "Start-up"). In a fresh interpreter, since other tests import it."""
    import subprocess
    import sys

    code = """
import sys, torch
from rlcore.optim import Adam, RMSprop
for cls in (Adam, RMSprop):
    p = [torch.zeros(3, requires_grad=True)]
    o = cls(p, lr=1e-3)
    for _ in range(2):
        p[0].grad = torch.ones(3)
        o.step()
    o.zero_grad()
    o.load_state_dict(o.state_dict())
    p[0].grad = torch.ones(3)
    o.step()
print('torch._dynamo' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_first_step_unwrapped_equals_torchs():
    """The first step runs torch's ``step`` body without its ``_use_grad`` wrapper: the same
    parameters and state as ``torch.optim.Adam`` / ``RMSprop``, grad mode untouched."""
    from rlcore.optim import Adam, RMSprop

    for ours, ref in ((Adam, lambda p, lr: torch.optim.Adam(p, lr=lr, fused=True)),
                      (RMSprop, lambda p, lr: torch.optim.RMSprop(p, lr=lr, foreach=True))):
        a, b = _net_with_grads(0, 1.0), _net_with_grads(0, 1.0)
        oa, ob = ours(a.parameters(), lr=1e-2), ref(b.parameters(), lr=1e-2)
        oa.step()
        ob.step()
        assert torch.is_grad_enabled()
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb) and pa.requires_grad
