"""Reading an update's statistics back to the host in one transfer.

An update collects its losses and diagnostics as 0-d tensors (one per gradient step and name).
Converting each with ``float()`` waits for the device once per number; on a GPU every wait is a
synchronisation. :func:`mean_scalars` stacks the per-name means and reads them with one
``tolist()``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["mean_scalars"]


def mean_scalars(stats: dict[str, list[torch.Tensor | float]]) -> dict[str, float]:
    """``{name: mean of its 0-d tensors}`` as Python floats, read back in one transfer; a list
    of numbers (the NumPy closed-form path) is averaged on the host."""
    host = {k: float(v[0] if len(v) == 1 else np.mean(v)) for k, v in stats.items()
            if not torch.is_tensor(v[0])}  # one value (SAC's one gradient step): itself
    dev = [k for k in stats if k not in host]
    if dev:
        means = torch.stack([torch.stack([v.detach().float() for v in stats[k]]).mean()
                             for k in dev])
        host.update(zip(dev, means.tolist()))
    return {k: host[k] for k in stats}
