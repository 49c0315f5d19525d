"""rlcore: a hand-written PyTorch reinforcement-learning engine.

One algorithm per file (``ppo.py``, ``sac.py``, ``dqn.py``, ``a2c.py``), all behind the
:class:`rlcore.agent.Agent` protocol; pure math in ``returns.py`` and ``losses/``; the loop that
steps environments in ``runner.py``.
"""

__version__ = "0.1.0"
