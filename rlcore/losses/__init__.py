"""Every loss of the engine, as pure functions returning ``(loss, info)``.

One module per family, re-exported here so that ``from rlcore.losses import sac_critic_loss``
works for all of them:

* ``ppo``: clipped surrogate, value loss (clipped/unclipped), entropy, approximate KL;
* ``a2c``: the policy-gradient loss (A2C shares the value and entropy losses of ``ppo``);
* ``sac``: tanh-Gaussian log-probability, soft-Q critic, actor and temperature losses, and their
  discrete-action variants;
* ``dqn``: double-DQN target and the importance-weighted TD loss.
"""

from rlcore.losses import a2c, dqn, ppo, sac
from rlcore.losses.a2c import *  # noqa: F403
from rlcore.losses.dqn import *  # noqa: F403
from rlcore.losses.ppo import *  # noqa: F403
from rlcore.losses.sac import *  # noqa: F403

__all__ = [*ppo.__all__, *a2c.__all__, *sac.__all__, *dqn.__all__]
