"""Where a learning curve starts: the noise-free return of untrained actors, over many initializations.

    python benchmarks/untrained.py [--env Hopper-v5] [--preset default] [--inits 40] [--episodes 10]
        [--out benchmarks/results/untrained]

Each initialization i is the actor a run with seed i starts from (the preset's networks and
initialization for the task; the environment's action bounds applied as in training), evaluated as
ddpgx evaluates: noise-free episodes from the evaluation's starting states. A curve's first point
before any update is one draw from this distribution; a point after updates that falls outside it
has moved.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from host import machine, write_results

import ddpgx
from ddpgx.config import ConfigError


def untrained_returns(env_id: str, preset: str, inits: int, episodes: int, run_dir: Path) -> np.ndarray:
    """(inits,) mean returns of `episodes` noise-free episodes of the untrained actors of seeds 0..inits-1:
    the final evaluation of a one-step run of them all (one random step, no update), as training runs it."""
    config = ddpgx.from_preset(preset, env_id, seed=0, total_steps=1, eval_episodes=episodes, eval_every=0,
                               checkpoint_every=0, tensorboard=False)
    result = ddpgx.train(config, run_dir, num_seeds=inits, progress=False, print_fn=lambda _: None)
    return np.asarray(result.final_returns).mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--inits", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "untrained")
    args = parser.parse_args()
    if args.inits < 1 or args.episodes < 1:
        sys.exit("error: --inits and --episodes must be at least 1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            returns = untrained_returns(args.env, args.preset, args.inits, args.episodes, Path(tmp) / "run")
    except ConfigError as error:
        sys.exit(f"error: {error}")
    m = machine()
    lines = [f"Command: `python {' '.join(sys.argv)}`  ", f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}", "",
             f"Untrained actors of the `{args.preset}` preset on {args.env}: seeds 0-{args.inits - 1}, "
             f"{args.episodes} noise-free episodes each.", "",
             "| inits | mean | median | worst | best | 10th percentile | 90th percentile |",
             "| --- | --- | --- | --- | --- | --- | --- |",
             f"| {args.inits} | {returns.mean():.1f} | {np.median(returns):.1f} | {returns.min():.1f} | "
             f"{returns.max():.1f} | {np.percentile(returns, 10):.1f} | {np.percentile(returns, 90):.1f} |", "",
             "Per seed: " + " / ".join(f"{r:.1f}" for r in returns)]
    write_results(args.out, f"untrained_{args.env}_{args.preset}",
                  {"command": " ".join(sys.argv), "machine": m, "env": args.env, "preset": args.preset,
                   "episodes": args.episodes, "returns": returns.tolist()}, lines)


if __name__ == "__main__":
    main()
