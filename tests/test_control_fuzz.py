"""Random edits thrown at a live run's control file (hypothesis): 0 crashes, 0 invalid values
applied, every refusal logged with a short reason, and the run still trains afterwards.

The edits cover what broke runs before (issue 14): non-finite and huge numbers, schedules with
infinite or NaN steps and durations, malformed piecewise mappings, wrong types, unknown fields and
commands, broken YAML, Latin-1 and binary bytes, YAML alias bombs, deep nesting, a 10 MB value
and a 10 MB file, ``control.yaml`` replaced by a directory, a FIFO or a device, deleted, and
writes in place in two chunks (the runner must not read the first chunk alone). Each edit is
written atomically, in place, or in place in two chunks; the control file's clock is a fake one
that the test moves, so "the file has settled" is decided without sleeping.

``RLCORE_FUZZ_EXAMPLES`` sets the number of edits per algorithm (default 500: the acceptance
figure of issue 14; CI runs the default).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rlcore.config import resolve_configs
from rlcore.control import render
from rlcore.hparams import HParamError, check_value
from rlcore.runs import RunDir
from rlcore.training import TrainingRun

EXAMPLES = int(os.environ.get("RLCORE_FUZZ_EXAMPLES", "500"))
TRAIN_EVERY = 100  # train a little every this many edits: the values in force must work

CASES = {
    "ppo": {"env": "CartPole-v1", "n_steps": 16, "batch_size": 32, "n_epochs": 1,
            "hidden": [16, 16]},
    "sac": {"env": "Pendulum-v1", "learning_starts": 32, "batch_size": 16, "hidden": [16, 16],
            "buffer_size": 2000},
    "dqn": {"env": "CartPole-v1", "learning_starts": 32, "batch_size": 16, "hidden": [16, 16],
            "buffer_size": 2000},
}

# Valid values are drawn from ranges where a few hundred training steps stay cheap (an
# n_epochs of 1000 or a batch of 2^20 are valid, and only slow); invalid ones from everywhere.
CHEAP = {"n_epochs": (1, 3), "batch_size": (4, 64), "n_steps": (4, 32), "train_freq": (1, 4),
         "gradient_steps": (0, 2), "target_update_interval": (1, 500),
         "per_recent_window": (1, 5000), "learning_rate": (0.0, 3e-3), "alpha": (1e-3, 1.0),
         "target_entropy": (-5.0, 5.0), "clip_range_vf": (0.0, 10.0), "ent_coef": (0.0, 0.1),
         "vf_coef": (0.0, 2.0), "max_grad_norm": (0.1, 10.0)}

BAD_NUMBERS = [math.nan, math.inf, -math.inf, 1e300, -1e300, 10**50, 10**400, -1, 2, 1e-320,
               True, False, None]
BAD_SCHEDULES = ["lin:0.001->0.0001@inf", "lin:0.001->0.0001@nan", "lin:0.001->0.0001@1e400",
                 "lin:0.001->0.0001@-5", "lin:0.001->0.0001@0", "lin:0.001->0.0001@2.5",
                 "pw:-inf=0.0003,inf=0.0003", "pw:0=0.0003,nan=0.0001", "pw:0=1,0=2",
                 "pw:5", "pw:", "exp:1->", "cos:nan->1", "lin:1e400->0", "foo:1->2",
                 "lin:0.2->0.1@1e16", "pw:0=0.1,1e300=0.2",
                 {"type": "pw", "points": 5}, {"type": "pw", "points": [1, 2]},
                 {"type": "pw", "points": [[0, 1], [0, 2]]}, {"type": "pw", "points": []},
                 {"type": "lin", "start": 0.1}, {"type": "lin", "start": 0.1, "end": "x"},
                 {"type": "lin", "start": 0.1, "end": 0.2, "steps": math.inf},
                 {"type": "nope"}, {"points": [[0, 1]]}, [1, 2, 3], {"a": {"b": [1]}},
                 "x" * 10_000, "é" * 300, ""]

SPECIAL = ["broken_yaml", "latin1", "binary", "empty", "alias_bomb", "deep", "directory", "fifo",
           "device", "deleted", "big_file", "big_value", "not_mapping", "hparams_list",
           "unknown_key", "bad_command", "nul_bytes"]


def _make(tmp_path: Path, algo: str) -> TrainingRun:
    cfg = {"algo": algo, "n_envs": 2, "steps": 10**7, "seed": 0, "progress": False,
           "eval_episodes": 1, "eval_envs": 1, "log_every": 64, **CASES[algo]}
    run, algo_cfg = resolve_configs(cfg)
    return TrainingRun(run, algo_cfg, RunDir(tmp_path / algo).create())


def _valid_value(draw, spec):
    if spec.kind is bool:
        return draw(st.booleans())
    lo, hi = CHEAP.get(spec.name, (spec.low if spec.low is not None else -10.0,
                                   spec.high if spec.high is not None else 10.0))
    lo, hi = max(lo, spec.low) if spec.low is not None else lo, min(hi, spec.high or hi)
    if spec.kind is int:
        v = draw(st.integers(int(math.ceil(lo)), int(hi)))
        return v if not spec.schedulable or draw(st.booleans()) else f"lin:{v}->{int(lo)}"
    v = draw(st.floats(lo, hi, allow_nan=False))
    if spec.low_open and v <= spec.low:
        v = (lo + hi) / 2 or hi
    if not spec.schedulable:
        return v
    shape = draw(st.sampled_from(["num", "lin", "exp", "cos", "pw", "map"]))
    w = draw(st.floats(lo, hi, allow_nan=False))
    if spec.low_open and w <= spec.low:
        w = v
    if shape == "num":
        return v
    if shape == "pw":
        return f"pw:0={v},{draw(st.integers(1, 10**6))}={w}"
    if shape == "map":
        return {"type": "lin", "start": v, "end": w, "steps": draw(st.integers(1, 10**6))}
    at = draw(st.one_of(st.none(), st.integers(1, 10**7)))
    return f"{shape}:{v}->{w}" + (f"@{at}" if at else "")


@st.composite
def edits(draw, specs):
    """One edit: (what is written, how it is written)."""
    mode = draw(st.sampled_from(["atomic", "in_place", "two_chunks"]))
    kind = draw(st.sampled_from(["valid", "invalid", "mixed", "special"]))
    if kind == "special":
        return {"special": draw(st.sampled_from(SPECIAL)), "mode": mode}
    names = list(specs)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    values = {}
    for i, name in enumerate(chosen):
        bad = kind == "invalid" or (kind == "mixed" and i == 0)
        if bad:
            values[name] = draw(st.sampled_from(BAD_NUMBERS + BAD_SCHEDULES))
        else:
            values[name] = _valid_value(draw, specs[name])
    if draw(st.integers(0, 9)) == 0:
        values[draw(st.sampled_from(["foo", "learning-rate", "GAMMA", "n steps"]))] = 0.1
    return {"values": values, "mode": mode}


class Harness:
    """Writes edits into a live run's control file and checks what the runner did."""

    def __init__(self, tr: TrainingRun):
        self.tr, self.r = tr, tr.runner
        self.path = tr.rd.control
        self.specs = {s.name: s for s in type(self.r.agent).hparam_specs(tr.algo_cfg)}
        self.doc = yaml.safe_load(self.path.read_text())
        self.now = 0.0
        self.r.control.clock = lambda: self.now
        self.t_ns = os.stat(self.path).st_mtime_ns  # the files' own timeline: 10 s per save
        self.n_rejections = self._count(tr.rd.rejections)
        self.stats = {"edits": 0, "applied": 0, "rejected": 0, "partial_reads": 0}

    @staticmethod
    def _count(path: Path) -> int:
        return len(path.read_text().splitlines()) if path.exists() else 0

    def _clear(self) -> None:
        if self.path.is_dir() and not self.path.is_symlink():
            os.rmdir(self.path)
        elif self.path.exists() or self.path.is_symlink():
            os.unlink(self.path)

    def _stamp(self) -> None:
        """Give the file the next time of the timeline (saves made seconds apart, as by hand,
        each with its own modification time) and move the clock 5 s past it: settled."""
        self.t_ns += 10 * 10**9
        os.utime(self.path, ns=(self.t_ns, self.t_ns), follow_symlinks=False)
        self.now = self.t_ns / 1e9 + 5.0

    def _write(self, data: bytes, mode: str) -> None:
        """Write ``data`` as the control file; a two-chunk write is polled in between with the
        clock 0.2 s after the first chunk: the runner must not read it yet."""
        if self.path.is_dir() or (self.path.exists() and not self.path.is_file()):
            self._clear()
        if mode == "atomic":
            tmp = self.path.with_name(".edit.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        elif mode == "in_place" or len(data) < 2:
            with open(self.path, "wb") as f:
                f.write(data)
        else:
            cut = len(data) // 2
            with open(self.path, "wb") as f:
                f.write(data[:cut])
                f.flush()
                self._stamp()
                self.now -= 4.8  # 0.2 s after the first chunk
                before = (self.r.agent.hparam_schedules(), self._count(self.tr.rd.rejections))
                assert self.r.poll_control() == []
                assert (self.r.agent.hparam_schedules(),
                        self._count(self.tr.rd.rejections)) == before, "read a half-written file"
                self.stats["partial_reads"] += 1
                f.write(data[cut:])
        self._stamp()

    def special(self, what: str, mode: str) -> bool:
        """Write a broken file; returns whether a rejection must follow."""
        body = render("fuzz", self.doc["hparams"]).encode()
        if what == "broken_yaml":
            self._write(b"hparams: {gamma: [0.9\ncommand: stop\n", mode)
        elif what == "latin1":
            self._write(body + "# caf\xe9 (Latin-1)\n".encode("latin-1"), mode)
        elif what == "binary":
            self._write(bytes(np.random.default_rng(len(body)).integers(0, 256, 300,
                                                                       dtype=np.uint8)), mode)
        elif what == "empty":
            self._write(b"", "in_place")
        elif what == "alias_bomb":
            lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
            lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 9) + "]" for i in range(1, 9)]
            self._write(("\n".join(lines) + "\nhparams: {gamma: *a8}\n").encode(), mode)
        elif what == "deep":
            self._write(b"hparams: {gamma: " + b"[" * 5000 + b"]" * 5000 + b"}\n", mode)
        elif what == "big_file":
            self._write(body + b"# " + b"x" * (10 * 2**20) + b"\n", "atomic")
        elif what == "big_value":
            self._write(render("fuzz", {**self.doc["hparams"],
                                        "gamma": "9" * (60 * 1024)}).encode(), "atomic")
        elif what == "not_mapping":
            self._write(b"- 1\n- 2\n", mode)
        elif what == "hparams_list":
            self._write(b"hparams: [1, 2]\ncommand: null\n", mode)
        elif what == "unknown_key":
            self._write(body + b"extra: 1\n", mode)
        elif what == "bad_command":
            self._write(body.replace(b"command: null", b"command: explode"), mode)
        elif what == "nul_bytes":
            self._write(body.replace(b"hparams:", b"hparams:\x00"), mode)
        else:  # the path is not a regular file any more
            self._clear()
            if what == "directory":
                self.path.mkdir()
            elif what == "fifo":
                os.mkfifo(self.path)
            elif what == "device":
                os.symlink("/dev/zero", self.path)
            if what != "deleted":
                self._stamp()
            return what != "deleted"
        return True

    def edit(self, e: dict) -> None:
        """Apply one edit, poll, and check every promise."""
        self.stats["edits"] += 1
        before = self.r.agent.hparam_schedules()
        if "special" in e:
            expect_rejection = self.special(e["special"], e["mode"])
            values = {}
        else:
            values = e["values"]
            data = render("fuzz", {**self.doc["hparams"], **values}).encode()
            self._write(data, e["mode"])
            expect_rejection = False
        written = self.path.read_bytes() if self.path.is_file() else None
        applied = self.r.poll_control()  # must never raise
        after = self.r.agent.hparam_schedules()
        n = self._count(self.tr.rd.rejections)
        new_rejections = n - self.n_rejections
        self.n_rejections = n
        # the file is never rewritten
        if written is not None:
            assert self.path.read_bytes() == written
        # every value in force meets its declaration, now and at any later step
        self.check_in_force()
        # each changed field: applied if valid, refused (with a logged reason) if not
        refused = 0
        prev = self.doc["hparams"]
        for name, value in values.items():
            if name in prev and type(prev[name]) is type(value) and prev[name] == value:
                continue  # the same as before in the file: not read again
            if name not in self.specs:
                refused += 1
                continue
            try:
                check_value(self.specs[name], value)
                ok = True
            except HParamError:
                ok = False
            if ok:
                assert after[name] == value or before[name] == value, (name, value)
            else:
                refused += 1
                assert after[name] == before[name], f"invalid {name}={value!r} was applied"
        if "special" not in e:
            self.doc = {"hparams": {k: v for k, v in {**self.doc["hparams"], **values}.items()}}
        assert new_rejections >= refused + (1 if expect_rejection else 0), (e, new_rejections)
        self.stats["applied"] += len(applied)
        self.stats["rejected"] += new_rejections
        if new_rejections:
            lines = self.tr.rd.rejections.read_text().splitlines()[-new_rejections:]
            for line in lines:
                assert len(line) < 2000, f"rejection line of {len(line)} characters"
                rec = json.loads(line)  # strict JSON
                assert rec["reason"] and isinstance(rec["field"], str)
        if "special" in e:  # put a good file back for the next edit
            self._write(render("fuzz", after).encode(), "atomic")
            self.r.poll_control()
            self.doc = {"hparams": dict(after)}
            self.n_rejections = self._count(self.tr.rd.rejections)

    def check_in_force(self) -> None:
        values = self.r.agent.hparam_values()
        for name, spec in self.specs.items():
            check_value(spec, self.r.agent.hparam_schedules()[name])  # raises if invalid
            sched = self.r.agent.hp._sched[name]
            for step in (0, self.r.step, 10**6, 10**12):
                v = self.r.agent.hp._eval(spec, sched, step)
                if spec.kind is not bool:
                    assert math.isfinite(v)
                    assert spec.low is None or v >= spec.low
                    assert spec.low is None or not spec.low_open or v > spec.low
                    assert spec.high is None or v <= spec.high
            assert name in values

    def train(self, steps: int = 256) -> None:
        """A few hundred steps with the values in force: the run still learns."""
        start = self.r.step
        out = self.r.run(start + steps)
        assert out["steps"] >= start + steps and not self.r.stopped
        assert all(math.isfinite(v) for k, v in out["metrics"].items()
                   if k.startswith("losses/") and k != "losses/explained_variance")


@pytest.mark.parametrize("algo", sorted(CASES))
def test_random_edits_never_kill_the_run(algo, tmp_path):
    tr = _make(tmp_path, algo)
    h = Harness(tr)
    h.train(128)
    specs = h.specs

    failures: list[str] = []

    # the run is shared by all edits (it is one live run), so hypothesis must not replay or
    # shrink: it generates, and the first failure is reported with the edit that caused it
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(e=edits(specs))
    def one_edit(e):
        if failures:
            return
        try:
            h.edit(e)
            if h.stats["edits"] % TRAIN_EVERY == 0:
                h.train()
        except BaseException as err:
            tail = (tr.rd.rejections.read_text().splitlines()[-3:]
                    if tr.rd.rejections.exists() else [])
            failures.append(f"edit {h.stats['edits']}: {e!r:.2000}: {type(err).__name__}: {err}"
                            f"\nlast rejections: {tail}")
            raise

    try:
        one_edit()
    except BaseException:
        pytest.fail(failures[0] if failures else "hypothesis failed", pytrace=False)
    h.train(512)  # the run still trains afterwards
    assert h.stats["edits"] >= EXAMPLES
    assert h.stats["applied"] > 0 and h.stats["rejected"] > 0 and h.stats["partial_reads"] > 0
    print(f"{algo}: {h.stats}")
    tr.runner.sink.close()
    tr.runner.envs.close()
