"""Build mujoco_ddpg.csv, the published DDPG (and TD3) returns that ddpgx's MuJoCo budgets are read against.

    python benchmarks/references/build_mujoco_ddpg.py --tianshou TIANSHOU_GIT --td3 TD3_GIT --cleanrl CLEANRL_GIT

It also writes tianshou_ddpg_seeds.csv: each of Tianshou's 10 seeds (the `rew:seed_*` columns of
the same files) at every step it logged (every 5,000 of its steps), for the reproduction of its curve
(benchmarks/repro.py), where the spread between seeds is what a curve is compared within.

Each argument is a clone of the source's repository (a bare one will do: files are read with
`git show COMMIT:PATH`, at the commits named below, so the CSV is the same whatever the clone's HEAD).
One row per (source, task, step); every row says where its value comes from, what statistic it is
and on which step axis. `env_steps` counts every environment step, the random warm-up included, as
ddpgx's curves do; `source_axis_step` is the step as the source labels it; `window_start` is the
first environment step of the evaluations a value averages (its `env_steps` where it is one evaluation).

- Tianshou 0.4.0 DDPG, `test_rew_10seeds.csv` (10 seeds, gym v3): Tianshou's trainer counts its
  steps from 0 after the 25,000 random steps collected before it starts, so its step s is s + 25,000
  environment steps. It logs every 5,000 of its steps and 25,000 is a multiple of 5,000: every row
  falls on a logged point, no interpolation. Rows every 25,000 of its steps, 0 to 1,000,000.
- TD3 (Fujimoto et al. 2018), `learning_curves/` (10 seeds, gym v1): 201 evaluations, the k-th at
  5,000 k steps counted from the first (random) step. Rows every 25,000 steps, 0 to 1,000,000.
- "Our DDPG" of the same paper, Table 2 (row AHE): the mean of the last 10 evaluations
  (955,000-1,000,000 steps) over 10 seeds; its learning curves are not in the repository. (Table 1's
  "Our DDPG" column is a maximum over training and is left out.)
- CleanRL DDPG, `docs/benchmark/ddpg.md` (3 seeds, Gymnasium v4): the mean over seeds of each seed's
  last 100 training episodes (exploration noise on) of a 1,000,000-step run, torch and JAX.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("mujoco_ddpg.csv")
SEEDS_OUT = Path(__file__).with_name("tianshou_ddpg_seeds.csv")
TIANSHOU_SEEDS = 10
SEED_FIELDS = ("task", "env_version", "env_steps", "source_axis_step", *(f"seed_{i}" for i in range(TIANSHOU_SEEDS)))
TASKS = ("HalfCheetah", "Hopper", "Walker2d", "Ant")
FIELDS = ("source", "algorithm", "library", "task", "env_version", "seeds", "env_steps", "source_axis_step",
          "window_start", "value", "statistic", "url_or_path", "note")
EVERY = 25_000
LAST = 1_000_000

TIANSHOU_COMMIT = "39acf2094d96268d92ebb54dcbfc3de76d702567"  # the commit that added the merged 10-seed CSVs
TIANSHOU_WARMUP = 25_000
TD3_COMMIT = "34770ccdcb51df6f6c7d85c1ba7e40d71b940d16"  # learning_curves/ last changed at bc98e62 (2018-06-09)
TD3_FOLDERS = {"HalfCheetah": "HalfCheetah", "Hopper": "Hopper", "Walker2d": "Walker", "Ant": "Ant"}
TD3_WARMUP = {"HalfCheetah": 10_000, "Hopper": 1_000, "Walker2d": 1_000, "Ant": 10_000}
CLEANRL_COMMIT = "35896b1f"  # "Refactor to use tyro (#424)": docs/benchmark/ddpg.md, runs tagged pr-424

# Fujimoto et al. 2018 (arXiv:1802.09477), Table 2, row AHE: "our architecture, hyper-parameters and
# exploration", the paper's re-tuned DDPG ("Our DDPG"); average return over the last 10 evaluations
# over 10 trials of 1 million time steps.
OUR_DDPG_TABLE_2 = {"HalfCheetah": 8401.02, "Hopper": 1061.77, "Walker2d": 2362.13, "Ant": 564.07}

NOISE_FREE = "mean over {n} seeds of noise-free evaluations (10 episodes each)"


def git_show(repo: Path, commit: str, path: str) -> bytes:
    """The file at `path` as of `commit` in the clone `repo` (a work tree or a bare repository)."""
    git_dir = repo / ".git" if (repo / ".git").exists() else repo
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], check=True,
                          capture_output=True).stdout


def row(**values) -> dict:
    """A row of the CSV; a value of one evaluation by default (`window_start` at its `env_steps`)."""
    values = {"window_start": values["env_steps"], **values}
    assert set(values) == set(FIELDS), set(FIELDS) ^ set(values)
    return values


def tianshou_table(repo: Path, task: str) -> tuple[str, list[dict[str, str]]]:
    """The path and the rows of Tianshou's merged 10-seed CSV for `task`: `env_step` (its own axis),
    `rew` (the mean over seeds), `rew:shaded` (their standard deviation), `rew:seed_<i>_...` (each seed)."""
    path = f"examples/mujoco/benchmark/{task}-v3/ddpg/test_rew_10seeds.csv"
    return path, list(csv.DictReader(io.StringIO(git_show(repo, TIANSHOU_COMMIT, path).decode())))


def tianshou_seeds(repo: Path) -> list[dict]:
    """Each seed's evaluation at every step it logged, to its step 1,000,000: a row per task and step,
    a column per seed (`seed_0` ... `seed_9`, Tianshou's seed numbers)."""
    rows = []
    for task in TASKS:
        _, table = tianshou_table(repo, task)
        seeds = {int(re.match(r"rew:seed_(\d+)_", name).group(1)): name for name in table[0]
                 if name.startswith("rew:seed_")}
        assert sorted(seeds) == list(range(len(seeds))), sorted(seeds)
        for line in table:
            step = int(float(line["env_step"]))
            if step <= LAST:  # the range of its rows in mujoco_ddpg.csv
                rows.append(dict(task=task, env_version="v3", env_steps=step + TIANSHOU_WARMUP, source_axis_step=step,
                                 **{f"seed_{i}": float(line[seeds[i]]) for i in sorted(seeds)}))
    return rows


def tianshou(repo: Path) -> list[dict]:
    rows = []
    for task in TASKS:
        path, table = tianshou_table(repo, task)
        seeds = sum(1 for name in table[0] if name.startswith("rew:seed_"))
        for line in table:
            step = int(float(line["env_step"]))
            if step % EVERY or step > LAST:
                continue
            rows.append(row(
                source="Tianshou DDPG", algorithm="DDPG", library="Tianshou 0.4.0", task=task,
                env_version="v3", seeds=seeds, env_steps=step + TIANSHOU_WARMUP, source_axis_step=step,
                value=float(line["rew"]), statistic=NOISE_FREE.format(n=seeds),
                url_or_path=f"github.com/thu-ml/tianshou@{TIANSHOU_COMMIT[:8]}:{path}",
                note=f"its steps start after {TIANSHOU_WARMUP:,} random ones; gym 0.17.3, MuJoCo 2.0"))
    return rows


def td3(repo: Path) -> list[dict]:
    rows = []
    for task in TASKS:
        folder = f"learning_curves/{TD3_FOLDERS[task]}"
        curves = np.stack([np.load(io.BytesIO(git_show(repo, TD3_COMMIT, f"{folder}/TD3_{task}-v1_{seed}.npy")))
                           for seed in range(10)])
        assert curves.shape == (10, 201), curves.shape
        for k in range(0, curves.shape[1], EVERY // 5_000):
            rows.append(row(
                source="TD3 (Fujimoto et al. 2018)", algorithm="TD3", library="sfujim/TD3", task=task,
                env_version="v1", seeds=len(curves), env_steps=5_000 * k, source_axis_step=5_000 * k,
                value=round(float(curves[:, k].mean()), 4), statistic=NOISE_FREE.format(n=len(curves)),
                url_or_path=f"github.com/sfujim/TD3@{TD3_COMMIT[:8]}:{folder}/TD3_{task}-v1_{{0..9}}.npy",
                note=f"steps count its {TD3_WARMUP[task]:,} random ones; evaluated at an episode end"))
    return rows


def our_ddpg() -> list[dict]:
    return [row(source="Our DDPG (Fujimoto et al. 2018, Table 2)", algorithm="DDPG", library="sfujim/TD3 OurDDPG.py",
                task=task, env_version="v1", seeds=10, env_steps=LAST, source_axis_step=LAST,
                window_start=LAST - 45_000, value=value,
                statistic="mean over 10 seeds of the mean of the last 10 noise-free evaluations "
                          "(955,000 to 1,000,000 steps)",
                url_or_path="arxiv.org/abs/1802.09477 Table 2, row AHE",
                note="400-300 networks, Adam 1e-3, batch 100, Gaussian noise 0.1; learning curves not published; "
                     "Table 1's Our DDPG is a maximum over training (not used)")
            for task, value in OUR_DDPG_TABLE_2.items()]


def cleanrl(repo: Path) -> list[dict]:
    path = "docs/benchmark/ddpg.md"
    lines = git_show(repo, CLEANRL_COMMIT, path).decode().splitlines()
    columns = [c.strip() for c in lines[0].strip("|").split("|")]
    scripts = [re.search(r"cleanrl/(\w+)", c).group(1) if "cleanrl/" in c else None for c in columns]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        task = cells[0].removesuffix("-v4")
        if task not in TASKS:
            continue
        for script, cell in zip(scripts[1:], cells[1:]):
            mean, std = (float(x) for x in cell.split("±"))
            rows.append(row(
                source=f"CleanRL {script}.py", algorithm="DDPG", library="CleanRL", task=task, env_version="v4",
                seeds=3, env_steps=LAST, source_axis_step=LAST, value=mean,
                statistic="mean over 3 seeds of each seed's mean return over its last 100 training episodes "
                          "(exploration noise on)",
                url_or_path=f"github.com/vwxyzjn/cleanrl@{CLEANRL_COMMIT}:{path}",
                note=f"std over seeds {std}; steps count the 25,000 random steps; actor and target networks "
                     f"updated every 2nd step; Adam 3e-4"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tianshou", type=Path, required=True, help="a clone of github.com/thu-ml/tianshou")
    parser.add_argument("--td3", type=Path, required=True, help="a clone of github.com/sfujim/TD3")
    parser.add_argument("--cleanrl", type=Path, required=True, help="a clone of github.com/vwxyzjn/cleanrl")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seeds-out", type=Path, default=SEEDS_OUT)
    args = parser.parse_args()
    rows = tianshou(args.tianshou) + td3(args.td3) + our_ddpg() + cleanrl(args.cleanrl)
    write_csv(args.out, FIELDS, rows)
    write_csv(args.seeds_out, SEED_FIELDS, tianshou_seeds(args.tianshou))


def write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
