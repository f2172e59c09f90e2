"""Reading a run's logs back, as a user (CSV) and as TensorBoard (its own event reader) sees them."""

from pathlib import Path

import numpy as np

from ddpgx.logging import COLUMNS, WALL_CLOCK, read_csv


def csv_rows(run_dir: Path, kind: str) -> list[dict[str, str]]:
    """The rows of one log file without its wall-clock columns."""
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK.get(kind, ())} for row in read_csv(run_dir / f"{kind}.csv")]


def tb_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for the run, by tag, as (step, value), after its purges."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
            if tag != "train/steps_per_s"}


def assert_same_logs(run: Path, reference: Path, tensorboard: bool = True) -> None:
    """The logs of `run` equal those of `reference`, apart from wall-clock columns."""
    for kind in COLUMNS:
        got, want = csv_rows(run, kind), csv_rows(reference, kind)
        assert got == want, f"{kind}.csv differs: steps {[r['step'] for r in got]} vs {[r['step'] for r in want]}"
    if tensorboard:
        got, want = tb_scalars(run), tb_scalars(reference)
        assert sorted(got) == sorted(want)
        for tag in want:
            assert [s for s, _ in got[tag]] == [s for s, _ in want[tag]], tag
            np.testing.assert_array_equal([v for _, v in got[tag]], [v for _, v in want[tag]], err_msg=tag)
