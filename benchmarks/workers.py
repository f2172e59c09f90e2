"""Rollout workers: throughput on a slow simulator, and learning beside the single-process loop.

    python benchmarks/workers.py [--parts throughput parity] [--reps 2] [--steps 4000] [--parity-seeds 5]

Every run is `ddpgx train` in a subprocess inside a loopback-only network namespace (`unshare -n`,
lo up), one at a time, so Ray stays on 127.0.0.1:
  - throughput: SlowPendulum-v1 (Pendulum-v1 sleeping 5 ms per step, benchmarks/slow_env.py), the
    default networks and batch, replay ratio 1, 1,000 random steps, then `--steps` more; steps/s
    after the first 1,000 learning steps, from metrics.csv, for --workers 0, 1, 2, 4, repetitions
    alternating so that a change in the machine's speed hits every row;
  - learning: Pendulum-v1, `--parity-seeds` seeds, 20,000 steps, the default preset, --workers 2
    against --workers 0; final noise-free returns per seed.
Writes workers.json and workers.md to --out; a run of some --parts keeps the other parts' figures
from an earlier workers.json there (each part records its own command and machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from host import machine, spread, write_results

HERE = Path(__file__).resolve().parent
LOOPBACK = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
WARMUP = 1_000


def ddpgx_train(run_dir: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([*LOOPBACK, sys.executable, "-m", "ddpgx.cli", "train", "--run-dir", str(run_dir),
                           "--no-progress", "--no-tensorboard", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"ddpgx train {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def throughput(workers: int, steps: int) -> float:
    from ddpgx.logging import read_csv

    with tempfile.TemporaryDirectory() as tmp:
        ddpgx_train(Path(tmp) / "run", "--env", "slow_env:SlowPendulum-v1", "--workers", str(workers),
                    "--total-steps", str(1_000 + WARMUP + steps), "--learning-starts", "1000", "--log-every", "500",
                    "--eval-every", "0", "--eval-episodes", "1", "--checkpoint-every", "0", "--no-save-buffer")
        rows = [r for r in read_csv(Path(tmp) / "run" / "metrics.csv") if int(r["step"]) > 1_000 + WARMUP]
    return len(rows) * 500 / sum(500 / float(r["steps_per_s"]) for r in rows)


def parity(workers: int, seeds: int) -> list[float]:
    from ddpgx.logging import read_csv

    with tempfile.TemporaryDirectory() as tmp:
        ddpgx_train(Path(tmp) / "run", "--workers", str(workers), "--num-seeds", str(seeds), "--seed", "1",
                    "--eval-every", "5000")
        return [float(read_csv(Path(tmp) / "run" / f"seed_{1 + k}" / "eval.csv")[-1]["mean_return"])
                for k in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--parity-seeds", type=int, default=5)
    parser.add_argument("--parts", nargs="+", choices=("throughput", "parity"), default=["throughput", "parity"])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    saved = args.out / "workers.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    run = {"command": " ".join(["python", *sys.argv]), "machine": machine()}
    if "throughput" in args.parts:
        results["throughput"] = {**run, "workers": args.workers, "steps_per_s": {}}
        for rep in range(args.reps):
            for n in args.workers:
                rate = throughput(n, args.steps)
                results["throughput"]["steps_per_s"].setdefault(str(n), []).append(rate)
                print(f"rep {rep}: --workers {n}: {rate:.1f} steps/s", flush=True)
    if "parity" in args.parts:
        results["parity"] = {**run, "seeds": args.parity_seeds,
                             "final_returns": {str(n): parity(n, args.parity_seeds) for n in (0, 2)}}
        print(f"parity: {results['parity']['final_returns']}", flush=True)
    lines = []
    if "throughput" in results:
        part = results["throughput"]
        rates = part["steps_per_s"]
        base = statistics.median(rates[str(part["workers"][0])])
        lines += [f"Command: `{part['command']}`  ", _machine(part["machine"]), "",
                  "SlowPendulum-v1 (5 ms per step), default networks, replay ratio 1, steps/s after 1,000 random and "
                  "1,000 learning steps (median, min-max):", "",
                  f"| --workers | steps/s | / --workers {part['workers'][0]} |", "| --- | --- | --- |"]
        for n, values in rates.items():
            lines.append(f"| {n} | {spread(values)} | "
                         f"{statistics.median(values) / base:.2f} |")
        lines.append("")
    if "parity" in results:
        part = results["parity"]
        lines += [f"Command: `{part['command']}`  ", _machine(part["machine"]), "",
                  f"Pendulum-v1, default preset, 20,000 steps, seeds 1-{part['seeds']}: final noise-free returns", "",
                  "| --workers | mean | min | max | per seed |", "| --- | --- | --- | --- | --- |"]
        for n, finals in part["final_returns"].items():
            lines.append(f"| {n} | {np.mean(finals):.1f} | {min(finals):.1f} | {max(finals):.1f} | "
                         f"{' / '.join(f'{v:.1f}' for v in finals)} |")
    write_results(args.out, "workers", results, lines)


def _machine(m: dict) -> str:
    return f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}; ddpgx commit {m.get('git')}"


if __name__ == "__main__":
    main()
