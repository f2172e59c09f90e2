"""A second run in one process (a notebook, a test, a resume): `ddpgx.train` after an earlier run
with the same networks and shapes, which left its agent and jitted functions behind
(`learner.py: build_agent`, `step_functions`), against the same run after those caches were
cleared, so that it traces and compiles them again as a first run does.

    python benchmarks/second_run.py [--rounds 5] [--steps 300] [--out benchmarks/results]

A short run of small networks (32-32, batch 32, one seed, Pendulum-v1, learning from step 100), so
that setting up is most of it. Each round runs the cleared case, then the shared one; the report
gives the median wall and CPU time of each, and their ratio. JAX's persistent compilation cache is
off unless JAX_COMPILATION_CACHE_DIR is set (the report says which; the test suite sets it, and
JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 so that every program is kept): with it on, the
cleared case traces and finds the compiled programs on disk instead of compiling them. Writes
second_run.json and second_run.md to --out (second_run_cache.* with the persistent cache on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from host import machine, write_results

import ddpgx
from ddpgx import learner


def timed_run(config: ddpgx.Config, run_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `ddpgx.train`."""
    wall, cpu = time.perf_counter(), time.process_time()
    ddpgx.train(config, run_dir, progress=False, print_fn=lambda _: None)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()

    config = ddpgx.Config(total_steps=args.steps, learning_starts=100, batch_size=32, buffer_size=5_000,
                          actor_hidden=(32, 32), critic_hidden=(32, 32), eval_every=0, eval_episodes=1,
                          checkpoint_every=0, log_every=args.steps, tensorboard=False)
    times: dict[str, list[tuple[float, float]]] = {"cleared": [], "shared": []}
    with tempfile.TemporaryDirectory() as runs:
        timed_run(config, Path(runs) / "warm-up")  # imports, JAX's first computations
        for r in range(args.rounds):
            learner._shared_agent.cache_clear()
            learner._shared_step_functions.cache_clear()
            times["cleared"].append(timed_run(config, Path(runs) / f"cleared-{r}"))
            times["shared"].append(timed_run(config, Path(runs) / f"shared-{r}"))

    median = {case: [statistics.median(t[i] for t in runs) for i in (0, 1)] for case, runs in times.items()}
    host = machine()
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    settings = [f"{name}={os.environ[name]}" for name in ("JAX_COMPILATION_CACHE_DIR",
                                                         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
                if name in os.environ]
    command = " ".join([*settings, "python", *sys.argv])
    results = {"command": command, "machine": host, "persistent_cache": cache,
               "steps": args.steps, "seconds": times, "median": median}
    lines = [f"Command: `{results['command']}`  ",
             f"Machine: {host['cpu']}, {host['cores']} cores; {host['date']}; ddpgx commit {host.get('git')}  ",
             f"JAX's persistent compilation cache: {'on (' + cache + ')' if cache else 'off'}", "",
             f"| a run of {args.steps} steps | wall (s, median of {args.rounds}) | CPU (s) |", "| --- | --- | --- |"]
    for case, label in (("cleared", "functions traced and compiled again"), ("shared", "functions shared")):
        lines.append(f"| {label} | {median[case][0]:.2f} | {median[case][1]:.2f} |")
    lines.append(f"| cleared / shared | {median['cleared'][0] / median['shared'][0]:.2f} | "
                 f"{median['cleared'][1] / median['shared'][1]:.2f} |")
    write_results(args.out, "second_run_cache" if cache else "second_run", results, lines)


if __name__ == "__main__":
    main()
