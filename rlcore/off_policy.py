"""Rules SAC and DQN share as replay-based (off-policy) agents."""

from __future__ import annotations

__all__ = ["check_off_policy_net", "due_off_policy", "gradient_steps_per_update"]


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


# --8<-- [start:gradient-steps]
def gradient_steps_per_update(gradient_steps: int, n_envs: int) -> int:
    """Gradient steps of one update: ``gradient_steps``, or ``n_envs`` when it is -1 (the default).

    An update is due every ``train_freq`` vector steps, that is every ``train_freq * n_envs``
    environment steps. With -1 each update makes one gradient step per environment, so an agent
    learns one gradient step per ``train_freq`` environment steps whatever ``--n-envs`` is: SAC
    (``train_freq=1``) one per environment step, DQN (``train_freq=4``) one per four, as the
    papers and stable-baselines3 with one environment. (SB3's own -1 means ``train_freq *
    n_envs``, one per environment step, for every ``train_freq``.)
    """
    return n_envs if gradient_steps < 0 else gradient_steps
# --8<-- [end:gradient-steps]
