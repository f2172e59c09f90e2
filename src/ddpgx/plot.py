"""Learning curves: `eval.csv` of one or several runs drawn to a PNG: the noise-free return, or the
success rate of a goal task (`metric="success"`). Knows runs, not sweeps: a sweep's report draws its
trials with these functions (`sweeps.plot_sweep`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddpgx.config import ConfigError
from ddpgx.logging import read_csv
from ddpgx.rundir import seed_dirs


METRICS = {"return": ("mean_return", "noise-free evaluation return"),
           "success": ("success_rate", "noise-free evaluation success rate")}
"""`ddpgx plot --metric`: the eval.csv column drawn, and its axis label."""

LEGEND_INSIDE = 6  # legend entries that fit over the curves; more go below the axis


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
        draw_curves(ax, curves[0][0][:length], np.stack([r[:length] for _, r in curves]), label)
    else:
        steps, returns = eval_curve(run_dir, metric)
        if len(steps) == 0:
            raise ConfigError(f"{run_dir} has no evaluation yet")
        draw_curves(ax, steps, returns, label)


def draw_curves(ax, steps: np.ndarray, returns: np.ndarray, label: str) -> str:
    """Evaluations at `steps` on `ax`: one seed's (returns of shape (evaluations,)) as a line with
    markers; several seeds' (shape (seeds, evaluations)) as the mean over seeds and its min-max band.
    Returns the colour they were drawn in."""
    if returns.ndim == 1:
        return ax.plot(steps, returns, marker="o", markersize=3, label=label)[0].get_color()
    color = ax.plot(steps, returns.mean(0), label=f"{label} ({len(returns)} seeds)")[0].get_color()
    ax.fill_between(steps, returns.min(0), returns.max(0), color=color, alpha=0.2)
    return color


def new_figure(panels: int):
    """A figure of `panels` axes side by side (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    return plt, fig, list(axes[0])


def finish_figure(plt, fig, axes, titles: list[str], out: Path, metric: str = "return") -> Path:
    """Label and title every axis (the y axis after `metric`), write the figure to `out` as a PNG and
    close it. A legend of more than `LEGEND_INSIDE` entries goes below its axis, off the curves."""
    below = []
    for ax, title in zip(axes, titles):
        ax.set_xlabel("environment steps")
        ax.set_ylabel(METRICS[metric][1])
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if len(ax.get_legend_handles_labels()[1]) > LEGEND_INSIDE:
            below.append(ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.17)))
            below[-1].set_in_layout(False)
        else:
            ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight", bbox_extra_artists=below)
    plt.close(fig)
    return out


def plot_curves(curves: list[tuple[str, np.ndarray, np.ndarray]], out: Path, title: str) -> Path:
    """One panel of (label, steps, returns) curves drawn by `draw_curves`."""
    plt, fig, (ax,) = new_figure(1)
    for label, steps, returns in curves:
        draw_curves(ax, steps, returns, label)
    return finish_figure(plt, fig, [ax], [title], out)


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, labels: list[str] | None = None,
              metric: str = "return") -> Path:
    """One line per run, labelled with its directory's name unless `labels` are given; `metric` is
    "return" or "success". (A sweep's curves, one panel per task, are `sweeps.plot_sweep`.)"""
    check_metric(metric)
    plt, fig, (ax,) = new_figure(1)
    for run_dir, label in zip(run_dirs, labels or [Path(d).name for d in run_dirs]):
        draw_run(ax, Path(run_dir), label, metric)
    return finish_figure(plt, fig, [ax], [title or "ddpgx learning curves"], out, metric)
