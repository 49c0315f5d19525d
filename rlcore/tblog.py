"""TensorBoard logging through ``torch.utils.tensorboard``, behind a tiny interface."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["TBLogger"]


class TBLogger:
    """Scalars and text written to ``<run>/tb``; non-finite scalars are skipped."""

    def __init__(self, path: str | Path, purge_step: int | None = None):
        """Open ``path``; a resumed run passes ``purge_step`` (its checkpoint's step) so events
        logged after it by the interrupted process are hidden."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(path), flush_secs=10, purge_step=purge_step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Log one scalar (as :meth:`scalars` does)."""
        self.scalars({tag: value}, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Log every scalar of a dict under its own tag, as one event: the same records
        ``add_scalar`` writes (a ``simple_value`` per tag): an episode's two scalars in 89 us
        against 148 (``benchmarks/bench_grad_step.py``; per-episode writes were 7% of an A2C
        CartPole run)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        kept = [Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()
                if v is not None and math.isfinite(v)]
        if kept:
            self.writer._get_file_writer().add_summary(Summary(value=kept), step)

    def text(self, tag: str, text: str, step: int) -> None:
        """Log a line of text."""
        self.writer.add_text(tag, text, step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
