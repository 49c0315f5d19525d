"""Online continual learning: keep a trained agent learning from new market data.

See docs/guide/continual-learning.md. Entry points: :class:`OnlineLoop` (the tick loop),
the sources in :mod:`rlcore.continual.sources`, and ``python cli.py online``.
"""

from rlcore.continual.anchor import Anchor, GradSquareMeter
from rlcore.continual.loop import OnlineConfig, OnlineLoop
from rlcore.continual.memory import WindowReservoir, configure_recency
from rlcore.continual.settings import ONLINE_HPARAMS, OnlineSettings
from rlcore.continual.sources import CcxtSource, ReplaySource, StreamCleaner, parse_source
from rlcore.continual.toy import TOY_ID, TrendToyEnv

__all__ = ["Anchor", "GradSquareMeter", "OnlineConfig", "OnlineLoop", "WindowReservoir",
           "configure_recency", "ONLINE_HPARAMS", "OnlineSettings", "CcxtSource", "ReplaySource",
           "StreamCleaner", "parse_source", "TOY_ID", "TrendToyEnv"]
