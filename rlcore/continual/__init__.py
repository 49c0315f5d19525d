"""Online continual learning: keep a trained agent learning from new data.

See docs/guide/continual-learning.md. Entry points: :class:`OnlineLoop` (the tick loop) over any
:class:`Source` (the candle sources live in :mod:`marketsim.data.sources`), and
``python cli.py online``.
"""

from rlcore.continual.anchor import Anchor, GradSquareMeter
from rlcore.continual.loop import OnlineConfig, OnlineLoop
from rlcore.continual.memory import WindowReservoir, configure_recency
from rlcore.continual.settings import ONLINE_HPARAMS, OnlineSettings
from rlcore.continual.source import Source, SourceEvent, parse_duration, parse_speed

__all__ = ["Anchor", "GradSquareMeter", "OnlineConfig", "OnlineLoop", "WindowReservoir",
           "configure_recency", "ONLINE_HPARAMS", "OnlineSettings", "Source", "SourceEvent",
           "parse_duration", "parse_speed"]
