"""What a run writes as it goes: CSV files and TensorBoard event files.

Files of a run directory:
    metrics.csv   step, critic_loss, actor_loss, q, recent_return, episodes, steps_per_s
    episodes.csv  step, env, return, length, success  (one row per finished training episode)
    eval.csv      step, mean_return, std_return, episodes, min_return, max_return, success_rate
    tb/           the same values as TensorBoard scalars (if enabled): train/<metric>,
                  train/episode_return, train/episode_success, eval/<column>
`success` is the episode's final info["is_success"] and `success_rate` the evaluation's mean of
it; both stay empty for an environment that does not report it.

A checkpoint records how many rows each file had when it was written (`RunLogger.rows`). A
resumed run cuts the files back to those rows and tells TensorBoard to drop the events from the
checkpoint's step on (a restart marker at that step), then writes that step's kept rows to TensorBoard
again; so after any interruption the logs read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

COLUMNS = {
    "metrics": ("step", "critic_loss", "actor_loss", "q", "recent_return", "episodes", "steps_per_s"),
    "episodes": ("step", "env", "return", "length", "success"),
    "eval": ("step", "mean_return", "std_return", "episodes", "min_return", "max_return", "success_rate"),
}
WALL_CLOCK = {"metrics": ("steps_per_s",)}
"""Columns that measure time, not learning: they differ between a resumed and an uninterrupted run."""
FLUSH_SECONDS = 10.0
"""While events come, the event file is flushed this often, for a live TensorBoard to read them."""


class CSVLog:
    """Appends rows to a CSV file with a fixed header."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self.path, self.columns = path, columns
        if not path.exists() or path.stat().st_size == 0:
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(columns)

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([_format(row.get(c, "")) for c in self.columns])

    def keep(self, count: int) -> list[dict[str, str]]:
        """Cut the file back to its first `count` rows; returns the rows kept."""
        rows = read_csv(self.path)[:count]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            for row in rows:
                writer.writerow([row.get(c, "") for c in self.columns])
        tmp.replace(self.path)
        return rows


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def _number(value: Any) -> float | None:
    """A finite number from a row value (a number, or the text of a CSV cell); None otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def scalars(kind: str, row: dict[str, Any]) -> list[tuple[str, float]]:
    """The TensorBoard scalars of one row of a log file."""
    if kind == "episodes":
        pairs = [("train/episode_return", row["return"]), ("train/episode_success", row.get("success"))]
    else:
        prefix = "train" if kind == "metrics" else "eval"
        pairs = [(f"{prefix}/{name}", value) for name, value in row.items() if name != "step"]
    return [(tag, number) for tag, value in pairs if (number := _number(value)) is not None]


class EventFile:
    """A TensorBoard event file written in the calling thread, so that what `flush` returns from is on disk.

    (tensorboardX's `SummaryWriter` writes from a thread of its own, and its `flush` does not wait for
    the events still queued, so a kill right after it would lose them.) With `purge_step`, the file
    starts with the restart marker that makes TensorBoard drop the events of earlier files from that
    step on.
    """

    def __init__(self, directory: Path, purge_step: int | None = None):
        from tensorboardX.event_file_writer import EventsWriter  # imported only when used
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.summary import scalar

        self.event, self.summary = Event, scalar
        directory.mkdir(parents=True, exist_ok=True)
        # a file name of its own (tensorboardX names files by the second and opens them for writing), which
        # sorts after the files of earlier writers, as TensorBoard reads them in name order
        self.writer = EventsWriter(str(directory / "events"), f".{time.time_ns()}")
        self.flushed = time.monotonic()
        if purge_step is not None:
            self.writer.write_event(Event(wall_time=time.time(), step=purge_step,
                                          session_log=SessionLog(status=SessionLog.START)))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.write_event(self.event(wall_time=time.time(), step=step, summary=self.summary(tag, value)))
        if time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.writer.flush()
        self.flushed = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class RunLogger:
    """All logs of one seed's run directory.

    `rows`, when resuming, is the row count of each file recorded in the checkpoint of `step`.
    """

    def __init__(self, run_dir: Path, tensorboard: bool, rows: dict[str, int] | None = None, step: int = 0):
        self.files = {kind: CSVLog(run_dir / f"{kind}.csv", columns) for kind, columns in COLUMNS.items()}
        self.rows = {kind: 0 for kind in COLUMNS}
        self.last_step = {kind: -1 for kind in COLUMNS}
        kept: dict[str, list[dict[str, str]]] = {}
        if rows is not None:
            for kind, log in self.files.items():
                kept[kind] = log.keep(rows.get(kind, 0))
                self.rows[kind] = len(kept[kind])
                self.last_step[kind] = int(float(kept[kind][-1]["step"])) if kept[kind] else -1
        self.tb = None
        if tensorboard:
            self.tb = EventFile(run_dir / "tb", purge_step=step if rows is not None else None)
            for kind, rows_of_kind in kept.items():  # the purged step's rows that the checkpoint kept
                for row in rows_of_kind:
                    if int(float(row["step"])) == step:
                        self._tensorboard(kind, row, step)

    def write(self, kind: str, row: dict[str, Any]) -> None:
        self.files[kind].write(row)
        self.rows[kind] += 1
        self.last_step[kind] = row["step"]
        self._tensorboard(kind, row, row["step"])

    def _tensorboard(self, kind: str, row: dict[str, Any], step: int) -> None:
        if self.tb is not None:
            for tag, value in scalars(kind, row):
                self.tb.scalar(tag, value, step)

    def flush(self) -> None:
        """Write buffered TensorBoard events to disk (at each checkpoint, so that a kill loses none it keeps)."""
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
