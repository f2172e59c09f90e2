"""Does choosing the next actions inside the learning call pay? The loop as it is (its `learn`
call updates the agent and returns the next step's actions) against the same loop with a separate
`act` call at every step (benchmarks/separate_act.patch), in one run.

    python benchmarks/next_action.py [--reps 3] [--steps 5000] [--envs Pendulum-v1 HalfCheetah-v5]

A learning step of the loop makes one jitted call; with a separate `act`, two. Both variants run
speed.py's end-to-end worker (one update per step, batch 256, 256-256 networks, 1,000 random steps,
1,000 untimed learning steps, then `--steps` timed ones), alternating variant by variant so that a
change in the machine's speed hits both. The separate variant is built in a temporary git worktree
of this commit with the patch applied. Writes next_action.json and next_action.md to --out.
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

from host import machine, spread, write_results

HERE = Path(__file__).resolve().parent
SEPARATE, FUSED = "separate act call", "act in the learning call (the loop)"
ROOT = HERE.parent


def worker(src: Path, env_id: str, steps: int) -> float:
    done = subprocess.run([sys.executable, str(HERE / "speed.py"), "--worker", "ddpgx", json.dumps([env_id, steps])],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5_000)
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    results = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "separate"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), "HEAD"], check=True,
                       capture_output=True)
        try:
            subprocess.run(["git", "-C", str(tree), "apply", str(HERE / "separate_act.patch")], check=True)
            variants = {SEPARATE: tree / "src", FUSED: ROOT / "src"}
            for rep in range(args.reps):
                for env_id in args.envs:
                    for name, src in variants.items():
                        rate = worker(src, env_id, args.steps)
                        results["runs"].setdefault(env_id, {}).setdefault(name, []).append(rate)
                        print(f"rep {rep} {env_id} {name}: {rate:.1f} steps/s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    lines = [f"Command: `{results['command']}`  ", f"Machine: {results['machine']['cpu']}, "
             f"{results['machine']['cores']} cores; {results['machine']['date']}; ddpgx commit "
             f"{results['machine'].get('git')}", "",
             f"| task | {SEPARATE} steps/s | {FUSED} steps/s | fused / separate |",
             "| --- | --- | --- | --- |"]
    for env_id, row in results["runs"].items():
        separate, fused = row[SEPARATE], row[FUSED]
        ratio = statistics.median(fused) / statistics.median(separate)
        results.setdefault("ratio_fused_over_separate", {})[env_id] = ratio
        lines.append(f"| {env_id} | {spread(separate)} | {spread(fused)} | {ratio:.3f} |")
    lines.append("")
    write_results(args.out, "next_action", results, lines)


if __name__ == "__main__":
    main()
