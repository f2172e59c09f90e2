"""What each extension costs per training step, and the default path against an earlier commit, in one run.

    python benchmarks/extension_cost.py [--reps 3] [--steps 3000] [--envs HalfCheetah-v5] [--base COMMIT ...]

End to end, every variant runs speed.py's end-to-end worker (batch 256, 256-256 networks, one update per step,
1,000 random steps, 1,000 untimed learning steps, then `--steps` timed ones, one seed), in a fresh
process, the variants alternating within each repetition (each repetition starting one variant
later) so that a change in the machine's speed hits all of them. "default at BASE" runs the same worker on the code of commit BASE (its src/, taken
with git archive into a temporary directory): the default path without the extensions. Writes extension_cost.json and extension_cost.md
to --out.
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
ROOT = HERE.parent
VARIANTS = {
    "default": {},
    "obs_norm": {"obs_norm": True},
    "reward_norm": {"reward_norm": True},
    "n_step=3": {"n_step": 3},
    "prioritized": {"prioritized": True},
    "critic_layer_norm": {"critic_layer_norm": True},
    "actor+critic layer norm": {"actor_layer_norm": True, "critic_layer_norm": True},
    "linear noise schedule": {"noise_schedule": "linear", "noise_sigma_final": 0.01},
    "param noise": {"noise": "param"},
}


def worker(src: Path, env_id: str, steps: int, changes: dict) -> float:
    args = [env_id, steps, 1, 1] + ([changes] if changes else [])
    done = subprocess.run([sys.executable, str(HERE / "speed.py"), "--worker", "ddpgx", json.dumps(args)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["steps_per_s"]


def learn_worker(calls: int = 300) -> dict:
    """CPU and wall time of one call of the loop's jitted `learn` (default path), in microseconds."""
    import inspect
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    import ddpgx
    from ddpgx.learner import stack, step_functions
    from ddpgx.noise import make_noise
    from ddpgx.replay import ReplayBuffer

    obs_dim, action_dim, batch = 17, 6, 256
    agent = ddpgx.build_agent(ddpgx.Config(batch_size=batch), action_dim)
    fns = step_functions(agent, make_noise("gaussian", 0.1), 1, action_dim, (obs_dim,))
    extended = "schedule" in inspect.signature(step_functions).parameters  # its learn takes 10 arguments
    width = ReplayBuffer(1, (obs_dim,), action_dim).data.shape[-1]
    rows = np.random.default_rng(0).normal(size=(1, 1, batch, width)).astype(np.float32)
    rows[..., -1] = 0.0
    obs, noise = np.zeros((1, 1, obs_dim), np.float32), np.zeros((1, 1, action_dim), np.float32)
    done, key = np.zeros((1, 1), bool), jax.random.PRNGKey(1)[None]
    state = jax.device_put(stack([jax.jit(agent.init)(jax.random.PRNGKey(0), jnp.zeros((1, obs_dim)),
                                                      jnp.zeros((1, action_dim)))]))

    def call(state, i):
        args = (state, rows, noise, None, None, obs, done, key, np.uint32(i), False) if extended else \
            (state, rows, noise, obs, done, key, np.uint32(i))
        out = fns.learn(*args)
        np.asarray(out[1].critic_loss), np.asarray(out[2])  # the loop reads both back
        return out[0]

    state = call(state, 0)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        state = call(state, i)
    return {"cpu_us": (time.process_time() - cpu) / calls * 1e6, "wall_us": (time.perf_counter() - wall) / calls * 1e6}


def learn_time(src: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--learn-worker"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(src)})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--envs", nargs="+", default=["HalfCheetah-v5"])
    parser.add_argument("--base", nargs="*", default=[], help="commits whose default path runs beside (e.g. acfea36)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--repo", type=Path, default=ROOT, help="the git repository BASE is taken from")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--learn-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.learn_worker:
        print(json.dumps(learn_worker()))
        return
    results = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(name, ROOT / "src", VARIANTS[name]) for name in args.variants]
        for base in args.base:
            tree = Path(tmp) / base
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(args.repo), "archive", base, "src"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
            runs.insert(1, (f"default at {base}", tree / "src", {}))
        for rep in range(args.reps):
            for env_id in args.envs:
                for name, src, changes in runs[rep % len(runs):] + runs[:rep % len(runs)]:  # each first in turn
                    rate = worker(src, env_id, args.steps, changes)
                    results["runs"].setdefault(env_id, {}).setdefault(name, []).append(rate)
                    print(f"rep {rep} {env_id} {name}: {rate:.1f} steps/s", flush=True)
            defaults = [(name, src) for name, src, changes in runs if not changes]
            for name, src in defaults[rep % len(defaults):] + defaults[:rep % len(defaults)]:
                timing = learn_time(src)
                results.setdefault("learn_call", {}).setdefault(name, []).append(timing)
                print(f"rep {rep} learn call {name}: {timing['cpu_us']:.0f} us CPU", flush=True)
    m = results["machine"]
    lines = [f"Command: `{results['command']}`  ", f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}; "
             f"ddpgx commit {m.get('git')}", "",
             "Medians over the repetitions (min-max); the cost is the extra time per training step against "
             "`default` in the same run.", ""]
    for env_id, row in results["runs"].items():
        base = statistics.median(row["default"])
        lines += [f"### {env_id}", "", "| variant | steps/s | us per step | cost per step against default |",
                  "| --- | --- | --- | --- |"]
        for name, values in row.items():
            rate = statistics.median(values)
            cost = 1e6 / rate - 1e6 / base
            lines.append(f"| {name} | {spread(values)} | {1e6 / rate:.0f} | "
                         f"{cost:+.0f} us ({cost / (1e6 / base):+.1%}) |")
        lines.append("")
    if results.get("learn_call"):
        lines += ["### The default path's learning call alone (HalfCheetah-v5 shapes)", "",
                  "| code | CPU us per call | wall us per call |", "| --- | --- | --- |"]
        for name, timings in results["learn_call"].items():
            cpu, wall = [t["cpu_us"] for t in timings], [t["wall_us"] for t in timings]
            lines.append(f"| {name} | {spread(cpu)} | {spread(wall)} |")
        lines.append("")
    write_results(args.out, "extension_cost", results, lines)


if __name__ == "__main__":
    main()
