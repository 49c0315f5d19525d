"""Docs stay honest: code included by line range starts where the page says, and every metric
a page documents is really logged."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r'--8<--\s+"([^"]+)"')
EXPECT = re.compile(r"<!--\s*expect:\s*(.+?)\s*-->")


def _pages():
    return sorted((ROOT / "docs").rglob("*.md"))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_included_ranges_start_at_the_expected_line(page):
    lines = page.read_text().splitlines()
    for i, line in enumerate(lines):
        m = INCLUDE.search(line)
        if not m:
            continue
        target = m.group(1)
        path, *rng = target.split(":")
        src = (ROOT / path).read_text().splitlines()
        back = "\n".join(lines[max(0, i - 4): i])
        exp = EXPECT.findall(back)
        assert exp, f"{page.name}:{i + 1}: include {target} has no '<!-- expect: ... -->' before it"
        if rng:
            start, end = int(rng[0]), int(rng[1])
            assert 1 <= start <= end <= len(src), f"{page.name}: {target} is out of range"
            assert exp[-1] in src[start - 1], (
                f"{page.name}:{i + 1}: {target} starts with {src[start - 1].strip()!r}, "
                f"expected it to contain {exp[-1]!r}")


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
    from rlcore.runner import train

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
