"""The online loop's mutable settings: what ``online/control.yaml`` can change between ticks.

They go through the same validation as agent hyperparameters (``rlcore/hparams.py``); changes are
logged to ``online/changes.jsonl`` and refusals to ``online/rejections.jsonl``.
"""

from __future__ import annotations

from typing import Any

from rlcore.hparams import HParams, HParamSpec

__all__ = ["ONLINE_HPARAMS", "OnlineSettings"]

ONLINE_HPARAMS = [
    HParamSpec("learning_rate", float, 0.0, 1.0, "fine-tuning step size (lower than training)",
               schedulable=False, low_open=True),
    HParamSpec("tick_steps", int, 1, 1 << 30, "environment steps of fine-tuning per tick",
               schedulable=False),
    HParamSpec("rehearsal_frac", float, 0.0, 1.0, "share of rollouts on older reservoir windows",
               schedulable=False),
    HParamSpec("recent_frac", float, 0.0, 0.99, "off-policy: share of each batch from fresh "
               "transitions (PER recency)", schedulable=False),
    HParamSpec("anchor_strength", float, 0.0, 1e9, "lambda of the L2/EWC anchor penalty",
               schedulable=False),
    HParamSpec("promote_margin", float, 0.0, 1e12, "promote if candidate >= serving - margin",
               schedulable=False),
    HParamSpec("pause", bool, None, None, "skip fine-tuning (data is still ingested)",
               schedulable=False),
]

DEFAULTS: dict[str, Any] = {"learning_rate": 3e-5, "tick_steps": 4096, "rehearsal_frac": 0.5,
                            "recent_frac": 0.5, "anchor_strength": 1.0, "promote_margin": 0.0,
                            "pause": False}


class OnlineSettings(HParams):
    """Current values of :data:`ONLINE_HPARAMS` (constants only)."""

    def __init__(self, **values: Any):
        unknown = [k for k in values if k not in DEFAULTS]
        if unknown:
            raise ValueError(f"unknown online setting(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(DEFAULTS)}")
        super().__init__(ONLINE_HPARAMS, {**DEFAULTS, **values})
        for name, value in values.items():  # validate the initial values too
            self.validate(name, value)
