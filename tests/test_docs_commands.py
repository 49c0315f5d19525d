"""Every shell command in README.md and docs/ runs as written.

Each ```bash block is one script. The test runs it with bash (``set -e``: the first failing
command fails the block) in a fresh copy of the repository next to ``../shared``, so a command
finds the shared data, the run folders and the store exactly where the page says. The only
change is a small budget: each command gets flags appended from :data:`BUDGET` (the last
value of a flag wins, for click and argparse alike), so ``--steps 100000`` runs as
``--steps 100000 --steps 1024``. Commands that need what CI does not have are handled as
:data:`SPECIAL` says (parsed but not sent to an exchange, served and stopped, or checked against
``.ci/run``); a command that no rule knows fails the test, so a new kind of command is a
decision, not an accident.

A block that is not ```bash but holds commands fails too: commands go in bash blocks.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[a-z]*)\s*$")
COMMAND_START = re.compile(r"^\s*(?:\$ )?(?:python3?|pip|mkdocs|pytest|lint-imports|ruff)\b")

RUN_BUDGET = "--set eval_episodes=1 --set eval_envs=1 --no-progress"
BUDGET: list[tuple[str, str]] = [
    # (regex on the command, flags appended); the first match wins
    (r"^python cli\.py train .*--resume", "--steps 2048 --no-progress"),  # 1024 more
    (r"^python cli\.py train .*--list-hparams", ""),
    (r"^python cli\.py train\b", f"--steps 1024 {RUN_BUDGET}"),
    (r"^python cli\.py evaluate\b", "--episodes 1"),
    (r"^python cli\.py (control|runs|compare|backtest|data (import|info|clean))\b", ""),
    (r"^python cli\.py data synth\b", "--n-bars 3000"),
    (r"^python cli\.py baseline\b", "--episodes 2"),
    (r"^python cli\.py walkforward\b",
     "--steps 512 --max-folds 1 --workers 1 --set eval_episodes=1 --set sac.steps=256 "
     "--set sac.learning_starts=64"),
    (r"^python cli\.py online .*--source replay:",
     "--max-ticks 1 --speed max --train-bars 600 --holdout-bars 200 --episode-length 64 "
     "--n-envs 2 --set tick_steps=64 --quiet"),
    (r"^python cli\.py( \S+)? --help$", ""),
    (r"^python cli\.py trade .*--replay", "--max-bars 50"),
    (r"^python benchmarks/bench_live\.py\b", "--quick --train-steps 256 --replay-bars 300"),
    (r"^python examples/quickstart\.py\b", "--steps 512"),
    (r"^python benchmarks/train_bench\.py\b", "--steps 512 --seeds 0 --eval-episodes 1"),
    (r"^python benchmarks/bench_recurrent\.py\b", "--steps 512 --seeds 0 --eval-every 512"),
    (r"^python benchmarks/bench_per\.py\b", "--capacity 20000 --seconds 0.3"),
    (r"^python benchmarks/bench_futures_env\.py\b", "--seconds 0.2"),
    (r"^python benchmarks/bench_online\.py\b",
     "--base-bars 2000 --base-steps 512 --replay-bars 1500 --every 1440m --train-bars 600 "
     "--holdout-bars 200 --episode-length 64 --tick-steps 256"),
    (r"^python benchmarks/bench_known_optimum\.py\b",
     "--steps 512 --seeds 0 --eval-episodes 2 --eval-envs 1 --oracle-episodes 2 "
     "--resolution 20"),
    (r"^python benchmarks/bench_mm_agents\.py\b", "--scale 0.005 --replay-scale 0.005 --episodes 4"),
    (r"^python benchmarks/bench_device\.py\b", "--cases ppo"),
    (r"^python benchmarks/bench_data\.py\b", "--rows 20000 --repeats 1"),
    (r"^python cli\.py models deploy\b", "--max-bars 200"),
    (r"^python cli\.py models\b", ""),
    (r"^python benchmarks/bench_ab\.py\b", "--seeds 1 --bars 150"),
    (r"^python benchmarks/bench_sb3\.py\b", "--cases a2c-cartpole --seeds 0 --scale 0.01"),
    (r"^python benchmarks/bench_grad_step\.py\b", "--rounds 1 --steps 2"),
    (r"^python cli\.py tune .*--mode pbt", "--steps 512 --population 2 --pbt-interval 256 "
     "--set n_envs=2 --set n_steps=64 --set batch_size=64 --set eval_episodes=1 "
     "--set eval_envs=1"),
    (r"^python cli\.py tune\b", "--trials 2 --steps 512 --seeds 1 --startup-trials 1 "
     "--set n_envs=2 --set n_steps=64 --set batch_size=64 --set eval_episodes=1 "
     "--set eval_envs=1"),
    (r"^python benchmarks/bench_tune\.py\b",
     "--trials 2 --steps 512 --tune-seeds 1 --eval-seeds 1 --eval-episodes 2 --n-envs 2 "
     "--startup-trials 1 --worker-steps 256 --pbt-steps 512 --pbt-interval 256"),
    (r"^python benchmarks/bench_walkforward\.py\b",
     "--ppo-steps 512 --sac-steps 256 --max-folds 1 --workers 1 --seeds 0"),
    (r"^(python -m )?pytest\b", "--collect-only -q -p no:xdist"),
    (r"^python -c ", ""),
    (r"^python tools/screenshot\.py\b", ""),
    (r"^(mkdocs build|lint-imports|ruff check)\b", ""),
]
"""Budget flags per kind of command. A benchmark's defaults take minutes to hours."""


@dataclass(frozen=True)
class Special:
    how: str
    """``offline``: parse the command line, do not run it (it needs an exchange);
    ``serve``: start it, wait for ``ready`` in its output, stop it;
    ``ci``: an install command; ``.ci/run`` must run the same ones;
    ``cuda``: needs a GPU: run with the budget where torch sees one, else parse it (``cli.py``)
    or start it with ``--help`` appended (a script: its imports and options load);
    ``chromium``: needs Debian's chromium (CI installs it): without it, ``--help`` appended."""
    ready: str = ""


SPECIAL: list[tuple[str, Special]] = [
    (r"--device cuda|--devices .*\bcuda\b", Special("cuda")),
    (r"^python cli\.py (data fetch|online .*--source ccxt:|trade (?!.*--replay))",
     Special("offline")),  # an exchange's data or orders
    (r"^mkdocs serve\b", Special("serve", r"Serving on http")),
    (r"^python tools/screenshot\.py\b", Special("chromium")),
    (r"^python3 -m venv .venv && \. \.venv/bin/activate && pip install", Special("ci")),
]


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: Path) -> tuple[list[Block], list[str]]:
    """The page's ```bash blocks, and complaints about commands in other blocks."""
    out, wrong = [], []
    lines = page.read_text().splitlines()
    rel = str(page.relative_to(ROOT))
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = len(m["indent"]), m["lang"], i + 1
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,{indent}}}```\s*$", lines[i]):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        text = "\n".join(body)
        if lang in ("bash", "sh", "shell", "console"):
            out.append(Block(rel, start, text))
        elif lang not in ("python", "yaml", "json", "toml") and any(
                COMMAND_START.match(ln) for ln in body):
            wrong.append(f"{rel}:{start}: a ```{lang or '(no language)'} block holds commands; "
                         "put them in a ```bash block")
    return out, wrong


def commands(script: str) -> list[str]:
    """Logical command lines: continuation lines joined, comments and blank lines dropped.
    A ``python -c "..."`` spanning lines is one command."""
    out, buf, quote = [], "", False
    for raw in script.splitlines():
        line = raw if quote else raw.strip()
        if not quote and (not line or line.startswith("#")):
            continue
        buf = f"{buf}\n{line}" if quote else f"{buf} {line}".strip() if buf else line
        if buf.count('"') % 2 == 1:
            quote = True
            continue
        quote = False
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        out.append(buf)
        buf = ""
    assert not buf, f"unterminated command: {buf!r}"
    return out


def _split_comment(cmd: str) -> tuple[str, str]:
    m = re.search(r"\s+#\s.*$", cmd)
    return (cmd[:m.start()], cmd[m.start():]) if m and "\n" not in cmd[m.start():] else (cmd, "")


ENV_PREFIX = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+")
"""``VAR=value`` assignments before a command (they apply to it; the rule is the command's)."""


def rule_for(cmd: str) -> tuple[str, str | Special]:
    """('budget', flags) or ('special', Special) or ('plain', '') for a shell builtin."""
    cmd = ENV_PREFIX.sub("", _split_comment(cmd)[0])
    for pat, sp in SPECIAL:
        if re.search(pat, cmd):
            return "special", sp
    for pat, flags in BUDGET:
        if re.search(pat, cmd):
            return "budget", flags
    if not COMMAND_START.match(cmd):
        return "plain", ""  # cp, ls, cat, a variable ...: runs as written
    raise AssertionError(f"no rule for {cmd!r}: add it to BUDGET or SPECIAL in {__file__}")


def with_budget(cmd: str) -> str:
    """The command as the test runs it."""
    kind, rule = rule_for(cmd)
    body, comment = _split_comment(cmd)
    m = ENV_PREFIX.match(body)
    prefix, body = (m.group(0), body[m.end():]) if m else ("", body)
    if kind == "budget" and rule:
        if re.search(r"^(python -m )?pytest\b", body):
            body = body.replace(" -n 2", "")
        body = f"{body} {rule}"
    if kind == "special":
        if rule.how == "offline":
            body = f"python {shlex.quote(str(ROOT / 'tests' / 'parse_only.py'))} {body}"
        elif rule.how == "serve":  # on a free port: 8000 may be taken on this machine
            body = f"_serve {shlex.quote(rule.ready)} {body} --dev-addr 127.0.0.1:{_free_port()}"
        elif rule.how == "ci":
            body = _after_install(body)
        elif rule.how == "cuda":
            body = _cuda(body)
        elif rule.how == "chromium" and not (shutil.which("chromium")
                                             or shutil.which("chromium-browser")):
            body = f"{body} --help > /dev/null"
    if kind == "budget" and "--sb3" in body and not _has("stable_baselines3"):
        body = body.replace(" --sb3", "")  # the bench extra is not part of CI's install
    if kind == "budget" and body.startswith("python benchmarks/bench_sb3.py") and not _has(
            "stable_baselines3"):
        body = f"{body} --help > /dev/null"  # it compares with SB3: its options load
    return prefix + body + comment


def _cuda(cmd: str) -> str:
    import torch

    if torch.cuda.is_available():
        flags = next(f for pat, f in BUDGET if re.search(pat, cmd))
        return f"{cmd} {flags}"
    if cmd.startswith("python cli.py "):
        return f"python {shlex.quote(str(ROOT / 'tests' / 'parse_only.py'))} {cmd}"
    return f"{cmd} --help > /dev/null"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


INSTALL = re.compile(r"^python3 -m venv \.venv && \. \.venv/bin/activate && "
                     r"((?:pip install [^&]+ && )+)(?P<rest>.*)$")


def _after_install(cmd: str) -> str:
    """The README's set-up lines: what follows the install (which .ci/run does the same way)."""
    m = INSTALL.match(cmd)
    assert m, cmd
    rest = m["rest"]
    return with_budget(rest) if rest else "true"


SERVE = r"""_serve() {  # _serve READY CMD...: start CMD, wait for READY in its output, stop it
  local ready="$1"; shift
  "$@" > _serve.log 2>&1 & local pid=$!
  for _ in $(seq 120); do
    if grep -qE "$ready" _serve.log; then kill "$pid"; wait "$pid" || true; return 0; fi
    kill -0 "$pid" 2>/dev/null || { cat _serve.log; return 1; }
    sleep 0.5
  done
  kill "$pid"; cat _serve.log; return 1
}
"""


def sandbox(tmp_path: Path) -> Path:
    """A copy of the repository (tracked and new files) beside ``shared`` -> the real one."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    repo = tmp_path / "repo"
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / f)
    (tmp_path / "shared").symlink_to(SHARED)
    return repo


def _all_blocks():
    out, wrong = [], []
    for page in PAGES:
        b, w = blocks(page)
        out += b
        wrong += w
    return out, wrong


ALL, WRONG = _all_blocks()


def test_commands_are_in_bash_blocks():
    assert not WRONG, "\n".join(WRONG)


def test_every_command_has_a_rule():
    for b in ALL:
        for cmd in commands(b.text):
            rule_for(cmd)


def test_readme_install_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    for b in blocks(ROOT / "README.md")[0]:
        for cmd in commands(b.text):
            m = INSTALL.match(cmd)
            if m:
                for pip in re.findall(r"pip install [^&]+?(?= &&)", m[1] + " "):
                    if pip == "pip install -e .":  # the same package, without the dev extras
                        pip = 'pip install -e ".[dev]"'
                    assert pip.replace("pip install", "pip install -q") in ci, pip


def test_budget_rewrites():
    assert with_budget("python cli.py train --steps 100000  # note") == \
        f"python cli.py train --steps 100000 --steps 1024 {RUN_BUDGET}  # note"
    assert with_budget("python cli.py data fetch --symbol ETH/USDT").startswith("python ")
    assert "parse_only.py" in with_budget("python cli.py data fetch --symbol ETH/USDT")
    assert commands("a \\\n  b\n# c\n\nd") == ["a b", "d"]
    assert with_budget("X_Y=3 python -m pytest -q t.py -s") == \
        "X_Y=3 python -m pytest -q t.py -s --collect-only -q -p no:xdist"
    with pytest.raises(AssertionError, match="no rule"):
        rule_for("python somewhere/new.py")


ALLOWED_IN_ROOT = {"runs", "data_store", "registry", "site", "_serve.log", ".import_linter_cache",
                   ".pytest_cache", ".ruff_cache", ".hypothesis"}
"""What a command may create in the root: run folders, the store, mkdocs' site/, tool caches
(all git-ignored)."""


def _pages_with_blocks():
    return sorted({b.page for b in ALL}, key=lambda p: (p != "README.md", p))


@pytest.mark.parametrize("page", _pages_with_blocks())
def test_page_commands_run_as_written(page, tmp_path):
    """The page's bash blocks in order, in one fresh copy of the repository: a later block may
    use the run folder an earlier one made, as a reader going down the page would."""
    if not (SHARED / "data").is_dir() and not os.environ.get("CI"):
        pytest.skip(f"the commands read {SHARED / 'data'}, which this checkout lacks")
    repo = sandbox(tmp_path)
    before = {p.name for p in repo.iterdir()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "MARKETSIM_STORE"))}
    env.update(PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
               NO_MKDOCS_2_WARNING="1", MPLBACKEND="Agg", COLUMNS="100",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # two test workers on two cores
    for block in (b for b in ALL if b.page == page):
        script = "set -eo pipefail\n" + SERVE + "\n".join(
            f"echo {shlex.quote('>>> ' + c.splitlines()[0][:150])} >&2\n{with_budget(c)}"
            for c in commands(block.text)) + "\n"
        t0 = time.time()
        proc = subprocess.Popen(["bash", "-c", script], cwd=repo, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=1800)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"{block.id}: still running after 1800 s\n{out[-4000:]}")
        assert proc.returncode == 0, \
            f"{block.id} failed ({time.time() - t0:.0f} s):\n{out[-6000:]}"
    # outputs go under runs/ or the store, never into the repository's root
    new = {p.name for p in repo.iterdir()} - before - ALLOWED_IN_ROOT
    assert not new, f"{page} wrote {sorted(new)} into the repository's root"
