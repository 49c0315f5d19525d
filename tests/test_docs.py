"""Docs stay honest: code is included by named sections that exist, and every metric a page
documents is really logged."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r'--8<--\s+"([^"]+)"')
MARKER = re.compile(r"--8<-- \[(start|end):([a-z][-_0-9a-z]*)\]")


def _pages():
    return sorted((ROOT / "docs").rglob("*.md"))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_includes_name_one_section_that_exists(page):
    """Code is included by named section (a moved line never breaks a page), never by line
    number, and each named section opens and closes exactly once in its file."""
    for n, line in enumerate(page.read_text().splitlines(), 1):
        m = INCLUDE.search(line)
        if not m:
            continue
        path, _, section = m.group(1).partition(":")
        assert section and not section[0].isdigit(), (
            f"{page.name}:{n}: include {m.group(1)!r} uses line numbers; name a section instead")
        markers = MARKER.findall((ROOT / path).read_text())
        assert markers.count(("start", section)) == 1 and markers.count(("end", section)) == 1, (
            f"{page.name}:{n}: {path} must have one [start:{section}] and one [end:{section}]")


def _documented_metrics(page: Path) -> set[str]:
    names = set()
    for line in page.read_text().splitlines():
        m = re.match(r"\|\s*`([a-z_]+/[a-z_<>]+)`\s*\|", line)
        if m:
            names.add(m.group(1))
    return names


def _logged_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_ppo_page_metrics_are_logged(tmp_path):
    from rlcore.config import resolve_configs
    from rlcore.ppo import PPO_HPARAMS
    from rlcore.training import train

    run, algo = resolve_configs({"algo": "ppo", "env": "CartPole-v1", "steps": 1024,
                                 "n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2,
                                 "progress": False, "runs_dir": str(tmp_path), "eval_episodes": 1})
    summary, path = train(run, algo)
    tags = _logged_tags(path.parent)
    documented = _documented_metrics(ROOT / "docs/algorithms/ppo.md")
    assert len(documented) >= 10
    for name in documented:
        if name == "hparams/<name>":
            for s in PPO_HPARAMS:
                assert f"hparams/{s.name}" in tags
        else:
            assert name in tags, f"{name} is documented but not logged"
