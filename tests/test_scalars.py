"""rlcore.scalars.mean_scalars: the mean of each metric's values, host numbers or 0-d tensors."""

import numpy as np
import torch

from rlcore.scalars import mean_scalars


def test_means_of_numbers_and_tensors_in_the_given_order():
    out = mean_scalars({"a": [np.float32(0.1)], "b": [1.0, 2.0, 4.5],
                        "c": [torch.tensor(1.0), torch.tensor(2.0)], "d": [np.float32(3.3)] * 3})
    assert list(out) == ["a", "b", "c", "d"]
    assert out["a"] == float(np.float32(0.1))  # one value: itself, float32 bits kept
    assert out["b"] == 2.5
    assert out["c"] == 1.5
    assert out["d"] == float(np.mean([np.float32(3.3)] * 3))
    assert all(type(v) is float for v in out.values())
