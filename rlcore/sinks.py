"""Where a runner's records go: the part that differs between a training run, the online loop
and a tuning trial.

The :class:`rlcore.runner.Runner` has no modes. Whoever embeds it passes a :class:`LogSink`:
``python cli.py train`` passes a :class:`RunFolderSink` (TensorBoard, ``changes.jsonl``,
``rejections.jsonl`` and lines on the terminal); the online loop and tests pass a
:class:`MemorySink`; a tuning trial can pass its own (reporting evaluations to the study).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rlcore.hparams import Change
from rlcore.io import append_jsonl, brief, dumps_strict

__all__ = ["LogSink", "RunFolderSink", "MemorySink", "TeeSink"]


@runtime_checkable
class LogSink(Protocol):
    """What the runner records."""

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Named scalars at ``step`` (losses, episode returns, hyperparameter values, sps)."""
        ...

    def change(self, change: Change) -> None:
        """A hyperparameter change that was applied (from the control file, a schedule, code)."""
        ...

    def rejection(self, step: int, field: str, value: Any, reason: str) -> None:
        """A control-file edit that was refused, with the reason."""
        ...

    def evaluation(self, result: dict[str, float], step: int) -> None:
        """The result of a periodic or final deterministic evaluation."""
        ...

    def close(self) -> None:
        """Flush and release files."""
        ...


class MemorySink:
    """Keeps everything in lists (no files): for the online loop, tuning trials and tests."""

    def __init__(self) -> None:
        self.records: list[tuple[int, dict[str, float]]] = []
        self.changes: list[Change] = []
        self.rejections: list[dict[str, Any]] = []
        self.evaluations: list[tuple[int, dict[str, float]]] = []

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Append ``(step, values)``."""
        self.records.append((step, dict(values)))

    def change(self, change: Change) -> None:
        """Append the change."""
        self.changes.append(change)

    def rejection(self, step: int, field: str, value: Any, reason: str) -> None:
        """Append the refusal."""
        self.rejections.append({"step": step, "field": field, "value": value, "reason": reason})

    def evaluation(self, result: dict[str, float], step: int) -> None:
        """Append the evaluation."""
        self.evaluations.append((step, dict(result)))

    def close(self) -> None:
        """Nothing to release."""


class RunFolderSink:
    """A run folder's records: TensorBoard in ``tb/``, ``changes.jsonl``, ``rejections.jsonl``,
    and one terminal line per change or refusal."""

    def __init__(self, tb_dir: str | Path, changes: str | Path, rejections: str | Path,
                 echo: bool = True, purge_step: int | None = None):
        from rlcore.tblog import TBLogger

        self.tb = TBLogger(tb_dir, purge_step)
        self.changes_path, self.rejections_path = Path(changes), Path(rejections)
        self.echo = echo

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Each scalar under its own TensorBoard tag."""
        self.tb.scalars(values, step)

    def change(self, change: Change) -> None:
        """A line in ``changes.jsonl``, TensorBoard text, and a terminal line."""
        append_jsonl(self.changes_path, change.to_dict())
        msg = f"step {change.step}: {change.field} {brief(change.old)} -> {brief(change.new)}"
        self.tb.text("changes", f"{msg} ({change.source})", change.step)
        self._say(f"[{change.source}] {msg}")

    def rejection(self, step: int, field: str, value: Any, reason: str) -> None:
        """A line in ``rejections.jsonl``, TensorBoard text, and a terminal line. Long values and
        reasons are cut to a few hundred characters (a 10 MB edit is not echoed 3 times)."""
        field, reason = brief_text(str(field), 100), brief_text(str(reason), 500)
        append_jsonl(self.rejections_path, {"step": step, "field": field,
                                            "value": loggable(value), "reason": reason})
        self.tb.text("rejections", f"step {step}: {reason}", step)
        self._say(f"[control] step {step}: refused {field}: {reason}")

    def evaluation(self, result: dict[str, float], step: int) -> None:
        """``eval/return_mean``, ``eval/return_std`` and ``eval/<metric>`` for each episode
        metric the environment reports, in TensorBoard."""
        self.tb.scalar("eval/return_mean", result["eval_return_mean"], step)
        self.tb.scalar("eval/return_std", result["eval_return_std"], step)
        self.tb.scalars({f"eval/{k}": v for k, v in result.get("eval_metrics", {}).items()}, step)

    def close(self) -> None:
        """Close the TensorBoard writer."""
        self.tb.close()

    def _say(self, msg: str) -> None:
        if not self.echo:
            return
        from tqdm import tqdm

        tqdm.write(msg)


class TeeSink:
    """Hands every record to each of several sinks (a run folder and Prometheus, say)."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    def scalars(self, values: dict[str, float], step: int) -> None:
        """To every sink."""
        for s in self.sinks:
            s.scalars(values, step)

    def change(self, change: Change) -> None:
        """To every sink."""
        for s in self.sinks:
            s.change(change)

    def rejection(self, step: int, field: str, value: Any, reason: str) -> None:
        """To every sink."""
        for s in self.sinks:
            s.rejection(step, field, value, reason)

    def evaluation(self, result: dict[str, float], step: int) -> None:
        """To every sink."""
        for s in self.sinks:
            s.evaluation(result, step)

    def close(self) -> None:
        """Close every sink."""
        for s in self.sinks:
            s.close()


def brief_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (with the full length)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def loggable(value: Any, limit: int = 200) -> Any:
    """``value`` itself when its JSON is at most ``limit`` characters, else its cut ``repr``."""
    try:
        short = len(dumps_strict(value)) <= limit
    except (TypeError, ValueError, RecursionError):
        short = False
    return value if short else brief(value, limit)
