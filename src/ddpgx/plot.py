"""Learning curves: `eval.csv` of one or several runs drawn to a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddpgx.config import ConfigError
from ddpgx.logging import read_csv
from ddpgx.rundir import seed_dirs


def eval_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Steps and mean noise-free returns of one seed's run."""
    path = run_dir / "eval.csv"
    if not path.exists():
        raise ConfigError(f"{run_dir} has no eval.csv: is it a ddpgx run directory?")
    rows = read_csv(path)
    return np.array([float(r["step"]) for r in rows]), np.array([float(r["mean_return"]) for r in rows])


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """One line per run; a directory of seed_* runs is drawn as the mean over seeds and its min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        seeds = [d for d in seed_dirs(run_dir).values() if (d / "eval.csv").exists()]
        if seeds:
            curves = [eval_curve(s) for s in seeds]
            length = min(len(steps) for steps, _ in curves)
            if length == 0:
                raise ConfigError(f"{run_dir} has no evaluation yet")
            steps = curves[0][0][:length]
            returns = np.stack([r[:length] for _, r in curves])
            ax.plot(steps, returns.mean(0), label=f"{run_dir.name} ({len(seeds)} seeds)")
            ax.fill_between(steps, returns.min(0), returns.max(0), alpha=0.25)
        else:
            steps, returns = eval_curve(run_dir)
            if len(steps) == 0:
                raise ConfigError(f"{run_dir} has no evaluation yet")
            ax.plot(steps, returns, marker="o", markersize=3, label=run_dir.name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("noise-free evaluation return")
    ax.set_title(title or "ddpgx learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
