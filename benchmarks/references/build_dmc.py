"""Build dmc.csv, the published state-based DDPG and D4PG returns on the DeepMind Control Suite tasks
that ddpgx's DMC benchmark is read against.

    python benchmarks/references/build_dmc.py --dreamerv3 DREAMERV3_GIT

The argument is a clone of github.com/danijar/dreamerv3 (a bare one will do: the files are read with
`git show COMMIT:PATH` at the commit named below). Its `scores/dmc_proprio-ddpg.json.gz` and
`scores/dmc_proprio-d4pg.json.gz` hold the learning curves of the DDPG and D4PG baselines of the
DreamerV3 paper's "Proprio Control" benchmark (Hafner et al. 2023, "Mastering Diverse Domains through
World Models"): 10 seeds per task, from states, up to 500,000 steps, the x axis the paper's budget in
environment steps. One row per (algorithm, task, step) at 100,000 and 500,000 steps: the mean over
the seeds of each seed's point nearest that step, with the standard deviation, worst and best seed.
What each point averages (training or evaluation episodes) is not written in the files.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import subprocess
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("dmc.csv")
COMMIT = "2411f7d136832378c0291c587cdbf2fca6506873"
TASKS = {"dmc_cartpole_swingup": "dm_control/cartpole-swingup-v0", "dmc_reacher_easy": "dm_control/reacher-easy-v0"}
STEPS = (100_000, 500_000)
FIELDS = ("source", "algorithm", "task", "seeds", "env_steps", "mean", "std", "worst", "best", "url_or_path", "note")


def rows(repo: Path) -> list[dict]:
    out = []
    for algorithm in ("ddpg", "d4pg"):
        path = f"scores/dmc_proprio-{algorithm}.json.gz"
        raw = subprocess.run(["git", "-C", str(repo), "show", f"{COMMIT}:{path}"], capture_output=True, check=True).stdout
        runs = json.loads(gzip.decompress(raw))
        for name, task in TASKS.items():
            curves = [(np.asarray(r["xs"], float), np.asarray(r["ys"], float)) for r in runs if r["task"] == name]
            for step in STEPS:
                values = np.array([ys[np.argmin(np.abs(xs - step))] for xs, ys in curves])
                out.append({
                    "source": "DreamerV3 (Hafner et al. 2023), Proprio Control baselines", "algorithm": algorithm.upper(),
                    "task": task, "seeds": len(values), "env_steps": step, "mean": round(float(values.mean()), 1),
                    "std": round(float(values.std(ddof=1)), 1), "worst": round(float(values.min()), 1),
                    "best": round(float(values.max()), 1), "url_or_path": f"github.com/danijar/dreamerv3@{COMMIT[:8]}:{path}",
                    "note": "each seed's point nearest the step; what a point averages is not in the file",
                })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dreamerv3", type=Path, required=True, help="a clone of github.com/danijar/dreamerv3")
    args = parser.parse_args()
    table = rows(args.dreamerv3)
    with OUT.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(table)
    print(f"{len(table)} rows written to {OUT}")


if __name__ == "__main__":
    main()
