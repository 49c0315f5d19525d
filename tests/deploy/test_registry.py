"""The model registry: content-addressed models, atomic aliases (kill -9 at random moments
leaves a consistent registry), the data hash of the training file, clear errors."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from marketsim.deploy.registry import Registry, RegistryError
from tests.deploy.deploy_helpers import data_file, fake_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(tmp_path):
    data = data_file(tmp_path)
    return tmp_path, data, [fake_run(tmp_path / "runs", f"r{i}", data, weights=bytes([i]) * 64)
                            for i in range(3)]


def test_register_is_content_addressed_and_keeps_what_retraining_needs(runs):
    tmp, data, (r0, r1, _) = runs
    reg = Registry(tmp / "registry")
    a = reg.register(r0)
    assert reg.register(r0).id == a.id  # same content, same id, nothing new written
    b = reg.register(r1, parent=a.id)
    assert a.id != b.id and [m.id for m in reg.list()] == [a.id, b.id]
    m = b.manifest
    assert m["parent"] == a.id and m["run_id"] == "r1" and m["algo"] == "ppo"
    assert {"git_commit", "dirty"} <= set(m["code_version"])
    assert m["metrics"]["train"]["eval_return_mean"] == 0.5
    assert m["metrics"]["out_of_sample"]["calm"]["sharpe"] == 1.5
    assert (b.path / "weights.pt").read_bytes() == bytes([1]) * 64
    hp = (b.path / "hparams.yaml").read_text()
    assert "algo_config:" in hp and "learning_rate" in hp and "env_kwargs" in hp
    assert (b.path / "config.yaml").read_bytes() == (r1 / "config.yaml").read_bytes()
    assert reg.verify() == []


def test_data_hash_is_the_sha256_of_the_training_file(runs):
    tmp, data, (r0, *_) = runs
    rec = Registry(tmp / "registry").register(r0)
    assert rec.manifest["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert rec.manifest["data"]["path"] == str(data)
    data.write_bytes(b"other candles")  # new data, same weights: another model
    assert Registry(tmp / "registry").register(r0).id != rec.id


def test_data_hash_of_a_real_shared_file(tmp_path):
    real = ROOT.parent / "shared" / "data" / "binance-spot_ETHUSDT_5m_20200210_20200331.csv.gz"
    if not real.exists():
        pytest.skip(f"shared data file {real} not found")
    rec = Registry(tmp_path / "reg").register(fake_run(tmp_path, "r", real))
    assert rec.manifest["data"]["sha256"] == hashlib.sha256(real.read_bytes()).hexdigest()


def test_promote_and_rollback_move_aliases_along_their_history(runs):
    tmp, _, (r0, r1, r2) = runs
    reg = Registry(tmp / "registry")
    a, b, c = (reg.register(r).id for r in (r0, r1, r2))
    assert reg.promote(a) == (None, a)
    assert reg.promote(b) == (a, b)
    assert reg.promote(c, "challenger") == (None, c)
    assert reg.get("champion").id == b and reg.get("challenger").id == c
    assert reg.get(c[:6]).id == c
    assert reg.rollback("champion") == (b, a)
    assert reg.rollback("challenger") == (c, None)  # it had none before: removed
    assert reg.aliases.read().aliases == {"champion": a}
    events = [json.loads(x) for x in (tmp / "registry" / "events.jsonl").read_text().splitlines()]
    assert [e["action"] for e in events] == ["set", "set", "set", "rollback", "rollback"]


@pytest.mark.parametrize("args, message", [
    (["show", "nope"], "unknown model or alias 'nope'"),
    (["promote", "nope"], "unknown model or alias 'nope'"),
    (["rollback", "--alias", "nope"], "unknown alias 'nope'"),
    (["register", "{tmp}/missing-run"], "run '{tmp}/missing-run': not a run folder"),
    (["promote", "{id}", "--to", "bad alias!"], "alias 'bad alias!'"),
])
def test_bad_input_is_one_clear_line(runs, args, message):
    tmp, _, (r0, *_) = runs
    rid = Registry(tmp / "registry").register(r0).id
    args = [a.format(tmp=tmp, id=rid) for a in args]
    res = CliRunner().invoke(cli, ["models", *args, "--registry", str(tmp / "registry")])
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert message.format(tmp=tmp) in lines[0]


def test_missing_training_data_is_named(runs):
    tmp, data, (r0, *_) = runs
    data.unlink()
    with pytest.raises(RegistryError, match="training data .*data.csv.* is not found"):
        Registry(tmp / "registry").register(r0)


def test_cli_register_list_show_promote_rollback(runs):
    tmp, _, (r0, r1, _) = runs
    reg = ["--registry", str(tmp / "registry")]
    run = CliRunner().invoke
    a = run(cli, ["models", "register", str(r0), *reg]).output.strip().splitlines()[-1]
    b = run(cli, ["models", "register", str(r1), *reg]).output.strip().splitlines()[-1]
    assert run(cli, ["models", "promote", a, *reg]).output.strip() == f"champion: - -> {a}"
    assert run(cli, ["models", "promote", b, *reg]).output.strip() == f"champion: {a} -> {b}"
    assert f"{b}" in run(cli, ["models", "list", *reg]).output
    assert json.loads(run(cli, ["models", "show", "champion", *reg]).output)["id"] == b
    assert run(cli, ["models", "rollback", *reg]).output.strip() == f"champion: {b} -> {a}"


def test_registry_survives_kill_9_at_random_moments(tmp_path):
    """A process loops over register / promote / rollback; it is killed with SIGKILL at random
    moments; after each kill the registry is consistent (every alias names a whole model, every
    model's files match their hashes, no half-written model is visible) and usable."""
    data = data_file(tmp_path)
    rng = random.Random(0)
    for i in range(6):  # 2 MB checkpoints: a copy takes long enough to be interrupted
        fake_run(tmp_path / "runs", f"r{i}", data, weights=rng.randbytes(2 << 20))
    root = tmp_path / "registry"
    kills = passes = torn = 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "tests.deploy.registry_proc", str(root),
                                 str(tmp_path / "runs")], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout.readline().strip() == "ready"  # imported: the loop starts now
        time.sleep(rng.uniform(0.05, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, out
        passes += out.count("pass ")
        torn += any(root.glob(".tmp-*"))  # killed in the middle of writing a model
        reg = Registry(root)
        assert reg.verify() == [], f"after kill {attempt}"
        state = reg.aliases.read()
        ids = {m.id for m in reg.list()}
        for alias, hist in state.history.items():
            assert all(h is None or h in ids for h in hist), (alias, hist)
        for p in root.glob("models/*"):
            assert (p / "model.json").is_file(), f"half-written model {p} is visible"
    assert kills == 6 and passes > 0
    print(f"{kills} kills, {passes} whole passes, {torn} kills in the middle of a model write")
    reg = Registry(root)
    reg.clean()
    assert not list(root.glob(".tmp-*"))
    assert reg.promote(reg.list()[0].id)[1] == reg.list()[0].id


def test_a_registered_model_can_be_retrained_from_the_registry(tmp_path):
    """Train a tiny run, register it, train again from the registry's config.yaml alone: the
    same seed and data give the same evaluation, and the data hash is the file's."""
    from rlcore.config import configs_from_dict, resolve_configs
    from rlcore.io import read_yaml
    from rlcore.training import train

    data = ROOT.parent / "shared" / "data" / "binance-spot_ETHUSDT_5m_20200210_20200331.csv.gz"
    if not data.exists():
        pytest.skip(f"shared data file {data} not found")
    run, algo = resolve_configs({
        "algo": "ppo", "env": "marketsim/CryptoFutures-v0", "steps": 256, "n_envs": 2,
        "seed": 5, "n_steps": 64, "batch_size": 64, "n_epochs": 1, "progress": False,
        "eval_episodes": 1, "eval_envs": 1, "env_kwargs": {"data": str(data),
                                                           "episode_length": 64}})
    first, _ = train(run, algo, tmp_path / "first")
    reg = Registry(tmp_path / "registry")
    rec = reg.register(tmp_path / "first")
    assert rec.manifest["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    run2, algo2 = configs_from_dict(read_yaml(rec.path / "config.yaml"))
    again, _ = train(run2, algo2, tmp_path / "again")
    assert again["eval_return_mean"] == first["eval_return_mean"]
    assert again["eval_metrics"] == first["eval_metrics"]
    child = reg.register(tmp_path / "again", parent=rec.id[:6])
    assert child.manifest["parent"] == rec.id
