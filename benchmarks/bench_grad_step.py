"""One gradient step, closed-form gradients against autograd, in one process (CPU time).

    python benchmarks/bench_grad_step.py                 # every case; JSON path printed last
    python benchmarks/bench_grad_step.py --rounds 5 --steps 100

For each case two agents are built from the same seed, one with ``hand_gradients`` and one
without, and timed in alternating rounds of ``--steps`` gradient steps each (gradients, the
gradient-norm clip and the optimiser step: what one minibatch costs in ``update``); the figure is
the median over rounds of the CPU time per step, and the ratio autograd / hand per round. The
cases are the benchmark's settings (docs/guide/performance.md): PPO at CartPole's sizes (batch
256, 64-64 tanh), PPO with a Gaussian policy at the futures market's batch, A2C's whole
CartPole rollout (8 environments x 5 steps), DQN at rl-zoo3's CartPole sizes (batch 64,
256-256 ReLU, prioritised weights, double DQN), SAC at Pendulum's sizes (batch 256, 256-256
ReLU, critics, actor, temperature and Polyak update). The same alternation then times the smaller
changes against what they replaced (``PARTS``: the optimiser steps of ``rlcore.optim`` against
torch's, acting in NumPy against the module forward, one TensorBoard event against two
``add_scalar`` calls). Each entry: ``ours_us`` (closed form, or the engine's version),
``reference_us`` (autograd, or what it replaced), ``speedup`` = reference / ours. Written to
``--out`` (default ``runs/bench/grad-step-<time>.json``).
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcore.a2c import A2C, A2CConfig  # noqa: E402
from rlcore.dqn import DQN, DQNConfig  # noqa: E402
from rlcore.io import atomic_write_text  # noqa: E402
from rlcore.on_policy import OnPolicyLossSpec  # noqa: E402
from rlcore.optim import Adam, RMSprop, clip_grad_norm  # noqa: E402
from rlcore.ppo import PPO, PPOConfig  # noqa: E402
from rlcore.sac import SAC, SACConfig  # noqa: E402
from rlcore.tblog import TBLogger  # noqa: E402


def _on_policy_case(cls, cfg_cls, obs_dim: int, action_space: gym.Space, n_envs: int,
                    n_steps: int, batch: int, spec: OnPolicyLossSpec, **cfg):
    """(hand step, autograd step) closures over two identical agents with one filled rollout."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    rng = np.random.default_rng(0)
    steps = []
    for hand in (True, False):
        torch.manual_seed(0)
        ag = cls(cfg_cls(n_steps=n_steps, hand_gradients=hand, **cfg), obs_space, action_space,
                 n_envs)
        buf = ag.buffer
        r = np.random.default_rng(0)
        buf.obs[:] = r.standard_normal(buf.obs.shape)
        buf.actions[:] = (r.integers(0, action_space.n, buf.actions.shape)
                          if isinstance(action_space, gym.spaces.Discrete)
                          else r.standard_normal(buf.actions.shape))
        buf.log_probs[:] = r.normal(-0.7, 0.2, buf.log_probs.shape)
        buf.values[:] = r.standard_normal(buf.values.shape)
        buf.advantages[:] = r.standard_normal(buf.advantages.shape)
        buf.returns[:] = r.standard_normal(buf.returns.shape)
        buf.valid[:] = True
        sel = torch.from_numpy(rng.permutation(n_steps * n_envs)[:batch])

        def step(ag=ag, sel=sel):
            ag.gradients(spec, sel)
            clip_grad_norm(ag.params, 0.5)
            ag.optimizer.step()
        steps.append(step)
    return steps


def _dqn_case():
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    g = torch.Generator().manual_seed(0)
    b = 64
    batch = (torch.randn(b, 4, generator=g), torch.randn(b, 4, generator=g),
             torch.randint(0, 2, (b,), generator=g), torch.randn(b, generator=g),
             torch.zeros(b), torch.full((b,), 0.99), torch.rand(b, generator=g))
    steps = []
    for hand in (True, False):
        torch.manual_seed(0)
        ag = DQN(DQNConfig(hidden=(256, 256), batch_size=b, hand_gradients=hand), obs_space,
                 gym.spaces.Discrete(2), 1)
        grads = ag._hand_gradients if hand else ag._autograd_gradients
        args = tuple(t.numpy() for t in batch) if hand else batch  # the hand path is NumPy

        def step(ag=ag, grads=grads, args=args):
            grads(*args)
            clip_grad_norm(ag._online, 10.0)
            ag.optimizer.step()
        steps.append(step)
    return steps


def _sac_case():
    """(hand step, autograd step): one SAC gradient step (critics, actor, temperature, Polyak)
    at Pendulum's sizes (3 inputs, 1 action, 256-256 ReLU, batch 256) on a filled replay."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    act_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    r = np.random.default_rng(0)
    rows = (r.standard_normal((5000, 1, 3)).astype(np.float32),
            r.uniform(-1, 1, (5000, 1, 1)).astype(np.float32),
            r.standard_normal((5000, 1)).astype(np.float32))
    steps = []
    for hand in (True, False):
        torch.manual_seed(0)
        ag = SAC(SACConfig(learning_rate=1e-3, hand_gradients=hand), obs_space, act_space, 1)
        no = np.zeros(1, bool)
        for o, a, rew in zip(*rows):
            ag.replay.add(o, a, rew, o, no, no, ~no)
        steps.append(lambda ag=ag: ag._step_continuous(256, 0.99, 0.005))
    return steps


CASES = {
    "ppo-cartpole (batch 256, 64-64 tanh, discrete)": lambda: _on_policy_case(
        PPO, PPOConfig, 4, gym.spaces.Discrete(2), 8, 32, 256,
        OnPolicyLossSpec(0.2, None, 0.5, 0.0, True)),
    "ppo-futures (batch 256, 64-64 tanh, Gaussian)": lambda: _on_policy_case(
        PPO, PPOConfig, 87, gym.spaces.Box(-1, 1, (1,), np.float32), 64, 128, 256,
        OnPolicyLossSpec(0.2, None, 0.5, 0.0, True)),
    "a2c-cartpole (batch 40, 64-64 tanh, discrete)": lambda: _on_policy_case(
        A2C, A2CConfig, 4, gym.spaces.Discrete(2), 8, 5, 40,
        OnPolicyLossSpec(None, None, 1.0, 0.0, False)),
    "dqn-cartpole (batch 64, 256-256 relu, PER, double)": _dqn_case,
    "sac-pendulum (batch 256, 256-256 relu, twin critics)": _sac_case,
}


def _optimiser_case(ours_cls, torch_cls, **kwargs):
    """(our step, torch's step) on the 12 tensors of a 64-64 actor-critic with fixed gradients."""
    steps = []
    for cls in (ours_cls, torch_cls):
        torch.manual_seed(0)
        ag = PPO(PPOConfig(), gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
                 gym.spaces.Discrete(2), 1)
        for p in ag.params:
            p.grad = torch.randn_like(p) * 1e-3
        opt = cls(ag.params, lr=1e-4, **({} if cls is ours_cls else kwargs))
        steps.append(opt.step)
    return steps


def _acting_case(obs_dim: int, action_space: gym.Space, n_envs: int):
    """(the engine's NumPy acting, the module forward in torch) for one vector step of
    ``n_envs`` environments: sample, log-probability and value."""
    torch.manual_seed(0)
    ag = PPO(PPOConfig(), gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
             action_space, n_envs)
    obs = np.random.default_rng(0).standard_normal((n_envs, obs_dim)).astype(np.float32)
    return (lambda: ag.act(obs)), (lambda: ag.policy.act_numpy(obs, None, None, False,
                                                               action_space))


def _tensorboard_case():
    """(one event with two scalars, two ``add_scalar`` calls): an episode's record."""
    from torch.utils.tensorboard import SummaryWriter

    dirs = [tempfile.mkdtemp(prefix="bench-tb-") for _ in range(2)]
    tb, writer = TBLogger(dirs[0]), SummaryWriter(dirs[1])

    def clean() -> None:  # the event files are not kept
        tb.close()
        writer.close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
    atexit.register(clean)
    k = [0]

    def ours():
        k[0] += 1
        tb.scalars({"charts/episode_return": 1.0, "charts/episode_length": 20.0}, k[0])

    def two():
        k[0] += 1
        writer.add_scalar("charts/episode_return", 1.0, k[0])
        writer.add_scalar("charts/episode_length", 20.0, k[0])
    return ours, two


PARTS = {
    "Adam step (rlcore.optim vs torch fused), 64-64 actor-critic": lambda: _optimiser_case(
        Adam, torch.optim.Adam, fused=True),
    "RMSprop step (rlcore.optim vs torch foreach), 64-64 actor-critic": lambda: _optimiser_case(
        RMSprop, torch.optim.RMSprop, foreach=True),
    "acting, 8 envs, CartPole sizes (NumPy vs module forward)": lambda: _acting_case(
        4, gym.spaces.Discrete(2), 8),
    "acting, 8 envs, futures sizes (NumPy vs module forward)": lambda: _acting_case(
        87, gym.spaces.Box(-1, 1, (1,), np.float32), 8),
    "TensorBoard, 2 scalars (one event vs two add_scalar)": _tensorboard_case,
}
"""The smaller changes of docs/guide/performance.md ("What changed"), each against what it
replaced; the second of each pair is the reference."""


def _cpu_us(fn, n: int) -> float:
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n * 1e6


def _compare(name: str, build, rounds: int, steps: int) -> dict[str, Any]:
    """Median CPU time per call of the pair ``build()`` gives (ours, reference) over
    ``rounds`` alternating rounds, and the per-round ratio reference / ours."""
    ours, ref = build()
    for fn in (ours, ref):  # warm-up
        _cpu_us(fn, 20)
    o, r = [], []
    for _ in range(rounds):
        o.append(_cpu_us(ours, steps))
        r.append(_cpu_us(ref, steps))
    ratios = [y / x for x, y in zip(o, r)]
    res = {"ours_us": statistics.median(o), "reference_us": statistics.median(r),
           "speedup": statistics.median(ratios), "speedup_range": [min(ratios), max(ratios)]}
    print(f"{name}: ours {res['ours_us']:.0f} us, reference {res['reference_us']:.0f} us, "
          f"{res['speedup']:.2f}x")
    return res


def main(argv: list[str] | None = None) -> Path:
    """Run every case; write the JSON; return its path."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=11, help="alternating rounds (default 11)")
    p.add_argument("--steps", type=int, default=200, help="gradient steps per round (default 200)")
    p.add_argument("--out", type=Path, default=None, help="JSON path")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = {name: _compare(name, build, args.rounds, args.steps)
               for name, build in {**CASES, **PARTS}.items()}
    out = args.out or Path("runs/bench") / f"grad-step-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps({"torch": torch.__version__, "threads": 1,
                                       "rounds": args.rounds, "steps": args.steps,
                                       "cases": results}, indent=2))
    print(out)
    return out


if __name__ == "__main__":
    main()
