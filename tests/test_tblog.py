"""TensorBoard scalars: several per event, each readable under its own tag; non-finite skipped."""

from __future__ import annotations

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlcore.tblog import TBLogger


def test_scalars_are_read_back_per_tag_and_step(tmp_path):
    tb = TBLogger(tmp_path)
    tb.scalars({"charts/episode_return": 12.5, "charts/episode_length": 20, "bad": float("nan"),
                "none": None}, 40)
    tb.scalars({"charts/episode_return": -3.0}, 80)
    tb.scalars({"bad": float("inf")}, 90)
    tb.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["charts/episode_length", "charts/episode_return"]
    assert [(e.step, e.value) for e in acc.Scalars("charts/episode_return")] == [(40, 12.5),
                                                                                (80, -3.0)]
    assert [(e.step, e.value) for e in acc.Scalars("charts/episode_length")] == [(40, 20.0)]
