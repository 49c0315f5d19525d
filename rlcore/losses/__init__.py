"""Every loss of the engine, as pure functions returning ``(loss, info)``.

One module per family (``ppo``, and the off-policy families), re-exported here so that
``from rlcore.losses import clipped_surrogate`` works for all of them.
"""

from rlcore.losses.ppo import approx_kl, clipped_surrogate, entropy_loss, value_loss, wmean

__all__ = ["approx_kl", "clipped_surrogate", "entropy_loss", "value_loss", "wmean"]
