"""Every seed's final policy on every seed's evaluation states: how much of a seed's final return is
its policy, and how much the initial states its evaluation happened to draw.

    python benchmarks/cross_eval.py RUN_DIR [--episodes 10]

RUN_DIR is a ddpgx run of several seeds with its checkpoints: `seed_<k>/` directories, as
`ddpgx train --num-seeds` writes them and as a trial of `ddpgx sweep` does in SWEEP_DIR/runs/<trial>/
(not an SB3 trial, which keeps no policy). Seed k's evaluation resets episode i with the seed
`ddpgx.envs.env_seeds(k, episodes, stream=1)[i]`, as `ddpgx.evaluate` does; here every policy runs
on every seed's K states. Rows are policies, columns are state sets, and the diagonal is what the
returns benchmark reports. If a column is low for every policy, that seed's low final return comes
from its states, not from its training. Prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import ddpgx
from ddpgx.envs import env_factory
from ddpgx.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()

    seed_dirs = sorted(args.run_dir.glob("seed_*"), key=lambda p: int(p.name.split("_")[1]))
    if not seed_dirs:
        raise SystemExit(f"error: {args.run_dir} has no seed_<k>/ directories")
    seeds = [int(p.name.split("_")[1]) for p in seed_dirs]
    policies = [ddpgx.load_policy(d) for d in seed_dirs]
    env_id = policies[0].config.env_id
    make_env = env_factory(env_id)
    table = np.array([
        [evaluate(lambda obs, p=policy: p.act_unit(obs[0])[None], make_env, [states], args.episodes, env_id)[0].mean()
         for states in seeds]
        for policy in policies
    ])  # (policies, state sets)

    print(f"{env_id}: mean return over {args.episodes} noise-free episodes; rows: the policy of a seed, "
          f"columns: the initial states of a seed's evaluation (diagonal: the seed's own final return)\n")
    print("| policy \\ states | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("| --- |" + " --- |" * len(seeds))
    for seed, row in zip(seeds, table):
        print(f"| seed {seed} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    print("| best policy | " + " | ".join(f"{v:.1f}" for v in table.max(axis=0)) + " |")
    print("| mean over policies | " + " | ".join(f"{v:.1f}" for v in table.mean(axis=0)) + " |")
    own = np.diag(table)
    print(f"\nown states (the benchmark's figure): median {np.median(own):.1f}, worst {own.min():.1f}")
    print(f"spread of a policy over the state sets (mean over policies of max - min): "
          f"{np.mean(table.max(axis=1) - table.min(axis=1)):.1f}")
    print(f"spread of a state set over the policies (mean over state sets of max - min): "
          f"{np.mean(table.max(axis=0) - table.min(axis=0)):.1f}")


if __name__ == "__main__":
    main()
