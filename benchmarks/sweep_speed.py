"""What a sweep costs: 8 seeds of Pendulum-v1, 20,000 steps each, three ways, in one run.

    python benchmarks/sweep_speed.py [--steps 20000] [--out benchmarks/results]

  - `ddpgx train --num-seeds 8`: the 8 seeds vmapped in one process, which may use every core;
  - `ddpgx sweep`: two trials of 4 seeds (`first_seed: [1, 5]`), one CPU each, side by side, Ray
    started by the sweep inside a loopback-only network namespace (`unshare -n`, lo up);
  - Stable-Baselines3 DDPG: 8 processes (one per seed, `sb3_trainable.py`), two at a time, each
    pinned to a core of its own with one PyTorch thread.
Each is timed from the start of its first process to the end of its last (start-up, compilation,
Ray and evaluation included), the default preset, the same evaluations (10 episodes every 5,000
steps). The figure is seed-steps per second: 8 x steps / wall time. Writes sweep_speed.json and
sweep_speed.md to --out. SB3 comes from the `bench` extra, Ray from the `ray` extra.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host import machine, write_results

HERE = Path(__file__).resolve().parent
LOOPBACK = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
SEEDS, FIRST_SEED = 8, 1
FIELDS = {"eval_every": 5_000, "eval_episodes": 10, "tensorboard": False}


def run(command: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def finish(process: subprocess.Popen, what: str) -> None:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{out[-4000:]}")


def one_process(steps: int, tmp: Path) -> float:
    start = time.perf_counter()
    finish(run([sys.executable, "-m", "ddpgx.cli", "train", "--env", "Pendulum-v1", "--seed", str(FIRST_SEED),
                "--num-seeds", str(SEEDS), "--total-steps", str(steps), "--eval-every", str(FIELDS["eval_every"]),
                "--eval-episodes", str(FIELDS["eval_episodes"]), "--no-tensorboard", "--no-progress",
                "--run-dir", str(tmp / "train")]), "ddpgx train --num-seeds 8")
    return time.perf_counter() - start


def sweep(steps: int, tmp: Path) -> float:
    import yaml

    spec = {"name": "speed", "tasks": {"Pendulum-v1": {"total_steps": steps}}, "preset": "default",
            "config": FIELDS, "seeds": SEEDS // 2, "first_seed": [FIRST_SEED, FIRST_SEED + SEEDS // 2],
            "cpus_per_trial": 1, "max_concurrent": 2}
    (tmp / "speed.yaml").write_text(yaml.safe_dump(spec))
    start = time.perf_counter()
    finish(run([*LOOPBACK, sys.executable, "-m", "ddpgx.cli", "sweep", str(tmp / "speed.yaml"),
                "--storage-path", str(tmp / "sweeps")]), "ddpgx sweep")
    elapsed = time.perf_counter() - start
    finals = list((tmp / "sweeps" / "speed" / "runs").glob("*/seed_*/eval.csv"))
    if len(finals) != SEEDS:
        raise RuntimeError(f"the sweep left {len(finals)} seeds, not {SEEDS}")
    return elapsed


SB3_SEED = """
import sys
from pathlib import Path
sys.path.insert(0, {here!r})
from ddpgx.presets import from_preset
from sb3_trainable import train
config = from_preset("default", "Pendulum-v1", seed={seed}, total_steps={steps}, **{fields!r})
train(config, Path({run_dir!r}), 1, lambda evaluation: None, print_fn=lambda *a: None)
"""


def sb3(steps: int, tmp: Path) -> float:
    cores = sorted(os.sched_getaffinity(0))[:2]
    waiting = list(range(FIRST_SEED, FIRST_SEED + SEEDS))
    running: dict[int, tuple[int, subprocess.Popen]] = {}  # core -> (seed, process)
    start = time.perf_counter()
    while waiting or running:
        for core in cores:
            if core not in running and waiting:
                seed = waiting.pop(0)
                code = SB3_SEED.format(here=str(HERE), seed=seed, steps=steps, fields=FIELDS,
                                       run_dir=str(tmp / "sb3" / f"seed_{seed}"))
                running[core] = (seed, run(["taskset", "-c", str(core), sys.executable, "-c", code],
                                           env={**os.environ, "OMP_NUM_THREADS": "1"}))
        time.sleep(0.2)
        for core, (seed, process) in list(running.items()):
            if process.poll() is not None:
                finish(process, f"SB3 DDPG seed {seed}")
                del running[core]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "steps": args.steps,
               "seeds": SEEDS, "wall_s": {}}
    ways = {"ddpgx train --num-seeds 8 (one process)": one_process,
            "ddpgx sweep (2 trials of 4 seeds, 1 CPU each)": sweep,
            "SB3 DDPG (8 processes, 2 at a time)": sb3}
    for name, way in ways.items():
        with tempfile.TemporaryDirectory() as tmp:
            wall = way(args.steps, Path(tmp))
        results["wall_s"][name] = wall
        print(f"{name}: {wall:.0f} s, {SEEDS * args.steps / wall:.0f} seed-steps/s", flush=True)
    rate = {name: SEEDS * args.steps / wall for name, wall in results["wall_s"].items()}
    single, swept, baseline = rate.values()
    results["ratios"] = {"sweep / one process": swept / single, "sweep / SB3": swept / baseline}
    m = results["machine"]
    lines = [f"Command: `{results['command']}` (ddpgx commit {m.get('git', '?')}, {m.get('cpu', '?')})", "",
             f"Pendulum-v1, {SEEDS} seeds x {args.steps:,} steps, default preset, 10 evaluation episodes every "
             f"{FIELDS['eval_every']:,} steps; wall time from the first process's start to the last one's end.", "",
             "| way | wall time (s) | seed-steps/s |", "| --- | --- | --- |"]
    lines += [f"| {name} | {results['wall_s'][name]:.0f} | {rate[name]:.0f} |" for name in ways]
    lines += ["", f"The sweep against one process: {swept / single:.2f} x; against SB3: {swept / baseline:.2f} x."]
    write_results(args.out, "sweep_speed", results, lines)


if __name__ == "__main__":
    main()
