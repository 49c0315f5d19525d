"""Rules SAC and DQN share as replay-based (off-policy) agents."""

from __future__ import annotations

__all__ = ["check_off_policy_net", "due_off_policy"]


def check_off_policy_net(algo: str, net: str) -> None:
    """Refuse recurrent networks for replay-based agents, pointing to frame stacking."""
    if net == "lstm":
        raise ValueError(
            f"{algo}: net='lstm' is not supported for replay-based agents (stored transitions "
            "carry no recurrent state); stack recent observations with --frame-stack 4 instead "
            f"(docs/algorithms/{algo}.md, 'Why no LSTM')")


def due_off_policy(step: int, n_envs: int, learning_starts: int, train_freq: int,
                   replay_size: int, batch_size: int) -> bool:
    """Is an update due after the vector step that brought the runner's clock to ``step``?

    Learning starts at ``learning_starts`` environment steps and then happens every
    ``train_freq`` vector steps (``step / n_envs`` of them so far). After a resume without the
    replay buffer's contents it also waits until the buffer holds
    ``min(learning_starts, batch_size)`` transitions again.
    """
    enough = replay_size >= max(1, min(learning_starts, batch_size))
    return step >= learning_starts and enough and (step // n_envs) % train_freq == 0
