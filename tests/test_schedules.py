"""Schedules and hyperparameter validation."""

import math

import pytest

from rlcore.hparams import HParamError, HParams, HParamSpec
from rlcore.schedules import ScheduleError, parse_schedule


def test_constant_and_numeric_strings():
    assert parse_schedule(0.2).at(123, 1000) == 0.2
    assert parse_schedule("0.2").at(0, 10) == 0.2
    assert parse_schedule("const:3").at(5, 10) == 3.0


def test_linear_by_hand():
    s = parse_schedule("lin:0.2->0.05")
    assert s.at(0, 100) == pytest.approx(0.2)
    assert s.at(50, 100) == pytest.approx(0.125)
    assert s.at(100, 100) == pytest.approx(0.05)
    assert s.at(1000, 100) == pytest.approx(0.05)  # stays at the end value


def test_linear_with_duration_and_origin():
    s = parse_schedule("lin:1->0@10", origin=100)
    assert s.at(100, 10_000) == 1.0
    assert s.at(105, 10_000) == pytest.approx(0.5)
    assert s.at(200, 10_000) == 0.0
    # set mid-run without a duration: runs from the origin to the end of the run
    m = parse_schedule("lin:1->0", origin=50)
    assert m.at(50, 150) == 1.0 and m.at(100, 150) == pytest.approx(0.5)


def test_exponential_and_cosine_by_hand():
    e = parse_schedule("exp:1e-2->1e-4")
    assert e.at(50, 100) == pytest.approx(1e-3)  # geometric midpoint
    c = parse_schedule("cos:1->0")
    assert c.at(0, 100) == pytest.approx(1.0)
    assert c.at(50, 100) == pytest.approx(0.5)
    assert c.at(25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_piecewise_and_mapping():
    p = parse_schedule("pw:0=1,10=0.5,20=0.5,30=0")
    assert [p.at(x) for x in (0, 5, 15, 25, 40)] == pytest.approx([1, 0.75, 0.5, 0.25, 0])
    m = parse_schedule({"type": "linear", "start": 4, "end": 2, "steps": 4})
    assert m.at(2, 1000) == pytest.approx(3)
    mp = parse_schedule({"type": "piecewise", "points": [[0, 1], [10, 0]]})
    assert mp.at(5) == pytest.approx(0.5)


@pytest.mark.parametrize("bad", ["lin:0.2", "lin:a->b", "foo:1->2", "pw:0=1,0=2", "pw:1",
                                 "lin:1->0@-5", {"type": "lin", "start": 1}, [1, 2], float("nan")])
def test_bad_specs_raise(bad):
    with pytest.raises(ScheduleError):
        parse_schedule(bad)


SPECS = [HParamSpec("lr", float, 0.0, 1.0, low_open=True), HParamSpec("n", int, 1, 100),
         HParamSpec("flag", bool), HParamSpec("k", float, 0, 10, schedulable=False)]


def test_hparams_validation_messages_name_the_field():
    hp = HParams(SPECS, {"lr": 1e-3, "n": 4, "flag": True, "k": 1.0}, total_steps=100)
    for name, value, words in [("lr", 0.0, "out of range"), ("lr", 2.0, "<= 1.0"),
                               ("lr", "abc", "not a number"), ("n", 2.5, "integer"),
                               ("flag", 3, "true or false"), ("k", "lin:1->2", "constant"),
                               ("zzz", 1, "unknown"), ("lr", True, "expected a float")]:
        with pytest.raises(HParamError) as e:
            hp.set(name, value)
        assert name in str(e.value) and words in str(e.value)
    assert hp.values() == {"lr": 1e-3, "n": 4, "flag": True, "k": 1.0}  # nothing changed


def test_hparams_schedule_advance_and_state_roundtrip():
    hp = HParams(SPECS, {"lr": "lin:1e-3->1e-4", "n": 4, "flag": False, "k": 2}, total_steps=100)
    assert hp.advance(50) == {"lr": (1e-3, pytest.approx(5.5e-4))}
    hp.set("n", "lin:10->20")  # origin 50: halfway to the end at 75
    hp.advance(75)
    assert hp["n"] == 15
    hp2 = HParams(SPECS, {"lr": 1.0, "n": 1, "flag": True, "k": 0}, total_steps=1)
    hp2.load_state_dict(hp.state_dict())
    assert hp2.values() == hp.values() and hp2.specs_dict() == hp.specs_dict()
    hp.advance(100)
    hp2.advance(100)
    assert hp2.values() == hp.values()
