"""Learning curves: `eval.csv` of one or several runs drawn to a PNG: the noise-free return, or the
success rate of a goal task (`metric="success"`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddpgx.config import ConfigError
from ddpgx.logging import read_csv
from ddpgx.rundir import seed_dirs


METRICS = {"return": ("mean_return", "noise-free evaluation return"),
           "success": ("success_rate", "noise-free evaluation success rate")}
"""`ddpgx plot --metric`: the eval.csv column drawn, and its axis label."""


def eval_curve(run_dir: Path, metric: str = "return") -> tuple[np.ndarray, np.ndarray]:
    """Steps and the metric (mean noise-free return, or success rate) of one seed's run."""
    path = run_dir / "eval.csv"
    if not path.exists():
        raise ConfigError(f"{run_dir} has no eval.csv: is it a ddpgx run directory?")
    rows = read_csv(path)
    column = METRICS[metric][0]
    if rows and rows[0].get(column, "") == "":
        raise ConfigError(f"{run_dir}'s evaluations have no {column}: its environment reports no info['is_success']"
                          if metric == "success" else f"{run_dir}'s eval.csv has no {column}")
    return np.array([float(r["step"]) for r in rows]), np.array([float(r[column]) for r in rows])


def draw_run(ax, run_dir: Path, label: str, metric: str = "return") -> None:
    """One run on `ax`: a single seed as a line; several (seed_* directories) as the mean over seeds
    and its min-max band."""
    seeds = [d for d in seed_dirs(run_dir).values() if (d / "eval.csv").exists()]
    if seeds:
        curves = [eval_curve(s, metric) for s in seeds]
        length = min(len(steps) for steps, _ in curves)
        if length == 0:
            raise ConfigError(f"{run_dir} has no evaluation yet")
        steps = curves[0][0][:length]
        returns = np.stack([r[:length] for _, r in curves])
        ax.plot(steps, returns.mean(0), label=f"{label} ({len(seeds)} seeds)")
        ax.fill_between(steps, returns.min(0), returns.max(0), alpha=0.2)
    else:
        steps, returns = eval_curve(run_dir, metric)
        if len(steps) == 0:
            raise ConfigError(f"{run_dir} has no evaluation yet")
        ax.plot(steps, returns, marker="o", markersize=3, label=label)


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    return plt, fig, list(axes[0])


def _finish(plt, fig, axes, titles: list[str], out: Path, metric: str = "return") -> Path:
    for ax, title in zip(axes, titles):
        ax.set_xlabel("environment steps")
        ax.set_ylabel(METRICS[metric][1])
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, labels: list[str] | None = None,
              metric: str = "return") -> Path:
    """One line per run, labelled with its directory's name unless `labels` are given (a sweep
    directory: one panel per task, one line per trial). `metric` is "return" or "success"."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    if len(run_dirs) == 1 and (Path(run_dirs[0]) / "spec.json").exists():
        return plot_sweep(Path(run_dirs[0]), out, metric)
    plt, fig, (ax,) = _figure(1)
    for run_dir, label in zip(run_dirs, labels or [Path(d).name for d in run_dirs]):
        draw_run(ax, Path(run_dir), label, metric)
    return _finish(plt, fig, [ax], [title or "ddpgx learning curves"], out, metric)


def plot_sweep(sweep_dir: Path, out: Path, metric: str = "return") -> Path:
    """A sweep's learning curves: one panel per task, one line (mean over seeds) per trial."""
    from ddpgx.sweeps import label, trial_rows, varying_keys

    rows = [r for r in trial_rows(sweep_dir) if r["final_returns"]]
    if not rows:
        raise ConfigError(f"{sweep_dir} has no evaluated trial yet")
    varying = varying_keys(rows)
    tasks = sorted({r["task"] for r in rows})
    plt, fig, axes = _figure(len(tasks))
    for ax, task in zip(axes, tasks):
        for r in rows:
            if r["task"] == task:
                draw_run(ax, r["run_dir"], label(r, varying), metric)
    return _finish(plt, fig, axes, tasks, out, metric)
