"""What a run writes as it goes: CSV files, TensorBoard event files and the console progress bar.

Files of a run directory:
    metrics.csv   step, critic_loss, actor_loss, q, recent_return, episodes, steps_per_s
    episodes.csv  step, env, return, length           (one row per finished training episode)
    eval.csv      step, mean_return, std_return, episodes, min_return, max_return
    tb/           the same metrics as TensorBoard scalars (if enabled)
On resume, rows past the checkpoint's step are dropped, so the files read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

METRICS = ("step", "critic_loss", "actor_loss", "q", "recent_return", "episodes", "steps_per_s")
EPISODES = ("step", "env", "return", "length")
EVAL = ("step", "mean_return", "std_return", "episodes", "min_return", "max_return")


class CSVLog:
    """Appends rows to a CSV file with a fixed header; `truncate(step)` drops rows past a step."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self.path, self.columns = path, columns
        if not path.exists() or path.stat().st_size == 0:
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(columns)

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([_format(row.get(c, "")) for c in self.columns])

    def truncate(self, step: int) -> None:
        rows = read_csv(self.path)
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            for row in rows:
                if float(row["step"]) <= step:
                    writer.writerow([row.get(c, "") for c in self.columns])


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class RunLogger:
    """All logs of one seed's run directory."""

    def __init__(self, run_dir: Path, tensorboard: bool):
        self.metrics = CSVLog(run_dir / "metrics.csv", METRICS)
        self.episodes = CSVLog(run_dir / "episodes.csv", EPISODES)
        self.eval = CSVLog(run_dir / "eval.csv", EVAL)
        self.tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter  # imported only when used

            self.tb = SummaryWriter(str(run_dir / "tb"))

    def truncate(self, step: int) -> None:
        for log in (self.metrics, self.episodes, self.eval):
            log.truncate(step)

    def log_metrics(self, row: dict[str, Any]) -> None:
        self.metrics.write(row)
        self._scalars("train", row)

    def log_episode(self, step: int, env: int, episode_return: float, length: int) -> None:
        self.episodes.write({"step": step, "env": env, "return": episode_return, "length": length})
        if self.tb is not None:
            self.tb.add_scalar("train/episode_return", episode_return, step)

    def log_eval(self, row: dict[str, Any]) -> None:
        self.eval.write(row)
        self._scalars("eval", row)

    def _scalars(self, prefix: str, row: dict[str, Any]) -> None:
        if self.tb is None:
            return
        for name, value in row.items():
            if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.tb.add_scalar(f"{prefix}/{name}", value, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
