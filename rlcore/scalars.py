"""Reading an update's statistics back to the host in one transfer.

An update collects its losses and diagnostics as 0-d tensors (one per gradient step and name).
Converting each with ``float()`` waits for the device once per number; on a GPU every wait is a
synchronisation. :func:`mean_scalars` stacks the per-name means and reads them with one
``tolist()``.
"""

from __future__ import annotations

import torch

__all__ = ["mean_scalars"]


def mean_scalars(stats: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """``{name: mean of its 0-d tensors}`` as Python floats, read back in one transfer."""
    if not stats:
        return {}
    means = torch.stack([torch.stack([v.detach().float() for v in vals]).mean()
                         for vals in stats.values()])
    return dict(zip(stats, means.tolist()))
