"""The on-device loop on this CPU, measured three ways, one command each (results in --out):

    python benchmarks/device_cpu.py rejax     # against Rejax on gymnax Pendulum-v1, equal work, 1 and 16 seeds
    python benchmarks/device_cpu.py host      # against ddpgx's host loop, 64-64 and 256-256, 1 and 16 seeds
    python benchmarks/device_cpu.py returns   # returns on gymnax's Pendulum-v1 and Gymnasium's, same preset and seeds

Add --tiny to any of them to check the script in a minute (its figures mean nothing); --steps, --reps
and --seeds (for returns: how many seeds, seeds 0 to N - 1) make a measurement smaller where the
full one would take hours on a small CPU. Each measurement runs in a fresh subprocess, one at a time, the contenders interleaved over --reps
repetitions; steps/s are aggregates over the seeds (all seeds' steps per second), medians with
their range. Needs the bench extra (Rejax, gymnax): pip install -e '.[bench]'.

Rejax: Rejax on PyPI (0.1.x) ships TD3, not DDPG (its DDPG was in 0.0.1, which calls
`jax.tree_map`, gone from JAX since 0.6). Its TD3 is set as close to DDPG as it allows: no policy
delay, no target policy noise, Polyak 0.995 (tau 0.005), no gradient clipping, ReLU, Gaussian
exploration of the same scale in the environment's units; its networks are fixed at 64-64 and it
keeps TD3's two critics (its critic loss unpacks two), so it does more work per update than DDPG:
ddpgx runs 64-64 too. Both train one environment per seed with one update per transition, the
same batch, buffer and random start, and are timed from their second call (the first compiles):
Rejax's whole `train` vmapped over seeds, ddpgx's compiled chunks (`device_loop.Program`).

Host: `ddpgx.train` on gymnax/Pendulum-v1 (the on-device loop) and on Gymnasium's Pendulum-v1 (the
host loop), the steps/s of metrics.csv after the warm-up.

Returns: the default preset on both Pendulums, 20,000 steps, seeds 0-9, the final noise-free
evaluation (10 episodes per seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host import machine, spread, write_results

STEPS, STARTS, BATCH, BUFFER = 20_000, 1_000, 256, 100_000
TINY = dict(steps=1_200, starts=200, batch=32, buffer=2_000, reps=1, seeds=(1, 2), returns_steps=600, returns_seeds=2)
FULL = dict(steps=STEPS, starts=STARTS, batch=BATCH, buffer=BUFFER, reps=3, seeds=(1, 16), returns_steps=20_000,
            returns_seeds=10)


# ----------------------------------------------------------------------------- workers (subprocesses)

def worker_rejax(seeds: int, s: dict) -> dict:
    import jax
    from rejax import TD3

    algo = TD3.create(env="Pendulum-v1", total_timesteps=s["steps"], eval_freq=s["steps"], skip_initial_evaluation=True,
                      num_envs=1, fill_buffer=s["starts"], buffer_size=s["buffer"], batch_size=s["batch"],
                      learning_rate=3e-4, gamma=0.99, polyak=0.995, max_grad_norm=1e12, policy_delay=1,
                      target_noise=0.0, target_noise_clip=0.0, exploration_noise=0.2,  # 0.1 of [-1, 1] = 0.2 of [-2, 2]
                      actor_kwargs={"activation": "relu"}, critic_kwargs={"activation": "relu"})
    algo = algo.replace(eval_callback=lambda algo, ts, rng: ())
    train = jax.jit(jax.vmap(algo.train))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    jax.block_until_ready(train(keys))
    start = time.perf_counter()
    jax.block_until_ready(train(keys))
    return {"steps_per_s": seeds * s["steps"] / (time.perf_counter() - start)}


def worker_device(seeds: int, s: dict, hidden: int = 64) -> dict:
    """ddpgx's compiled chunks over the whole run (random start included, as Rejax's), timed on a second pass."""
    import jax
    import jax.numpy as jnp

    import ddpgx
    from ddpgx import device_loop, jax_envs
    from ddpgx.learner import build_agent, seed_keys

    config = ddpgx.Config(env_id="gymnax/Pendulum-v1", total_steps=s["steps"], learning_starts=s["starts"],
                          batch_size=s["batch"], buffer_size=s["buffer"], actor_hidden=(hidden, hidden),
                          critic_hidden=(hidden, hidden))
    env = jax_envs.make(config.env_id)
    program = device_loop.build(build_agent(config, env.action_dim), env, config)
    keys = [seed_keys(k) + device_loop.device_keys(k) for k in range(seeds)]
    init_key, explore_key, reset_key, env_key, sample_key, _ = (jnp.stack(k) for k in zip(*keys))

    def run() -> float:
        state = program.init(init_key, explore_key, reset_key)
        jax.block_until_ready(state)
        start = time.perf_counter()
        for step in range(0, s["steps"], program.iterations):
            count = min(program.iterations, s["steps"] - step)
            state, record = program.chunk(state, env_key, sample_key, jnp.int32(step), jnp.int32(count))
        jax.block_until_ready(record)
        return time.perf_counter() - start

    run()  # compiles
    return {"steps_per_s": seeds * s["steps"] / run()}


def worker_train(env_id: str, seeds: int, hidden: int, s: dict) -> dict:
    """`ddpgx.train` as a user runs it; steps/s from metrics.csv after a warm-up of two device chunks."""
    import ddpgx
    from ddpgx.device_loop import CHUNK_TRANSITIONS
    from ddpgx.logging import read_csv

    log = max(s["steps"] // 10, 100)
    config = ddpgx.Config(env_id=env_id, total_steps=s["steps"], learning_starts=s["starts"], batch_size=s["batch"],
                          buffer_size=s["buffer"], actor_hidden=(hidden, hidden), critic_hidden=(hidden, hidden),
                          eval_every=0, eval_episodes=1, checkpoint_every=0, save_buffer=False, tensorboard=False,
                          log_every=log)
    with tempfile.TemporaryDirectory() as tmp:
        result = ddpgx.train(config, Path(tmp) / "run", num_seeds=seeds, progress=False, print_fn=lambda _: None)
        rows = read_csv(result.run_dirs[0] / "metrics.csv")
    skip = s["starts"] + min(2 * CHUNK_TRANSITIONS, s["steps"] // 2)
    timed = [float(r["steps_per_s"]) for r in rows if int(r["step"]) > skip] or [float(rows[-1]["steps_per_s"])]
    return {"steps_per_s": seeds * statistics.median(timed)}


def worker_returns(env_id: str, s: dict) -> dict:
    import ddpgx

    config = ddpgx.Config(env_id=env_id, total_steps=s["returns_steps"], eval_every=0, checkpoint_every=0,
                          save_buffer=False, tensorboard=False, learning_starts=min(1_000, s["returns_steps"] // 3))
    with tempfile.TemporaryDirectory() as tmp:
        result = ddpgx.train(config, Path(tmp) / "run", num_seeds=s["returns_seeds"], progress=False,
                             print_fn=lambda _: None)
    return {"returns": result.final_returns.mean(axis=1).tolist()}


WORKERS = {"rejax": worker_rejax, "device": worker_device, "train": worker_train, "returns": worker_returns}


# ----------------------------------------------------------------------------- driver

def run_worker(name: str, *args) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", name, "--args", json.dumps(args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name}{args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(contenders: dict[str, tuple], reps: int) -> dict[str, list[float]]:
    """steps/s of each contender (name: worker and its arguments), run one at a time, interleaved."""
    values: dict[str, list[float]] = {name: [] for name in contenders}
    for rep in range(reps):
        for name, (worker, *args) in contenders.items():
            values[name].append(run_worker(worker, *args)["steps_per_s"])
            print(f"rep {rep} {name}: {values[name][-1]:.0f} steps/s", flush=True)
    return values


def header(results: dict, title: str) -> list[str]:
    m = results["machine"]
    return [f"Command: `{results['command']}`  ", f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}"
            + (f"; ddpgx commit {m['git']}" if m.get("git") else "") + "  ",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "  ",
            f"Load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in results['load_average'])}",
            "", title, ""]


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("rejax", "host", "returns"))
    parser.add_argument("--tiny", action="store_true", help="check the script at tiny settings (figures meaningless)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--steps", type=int, help=f"steps per seed (default {STEPS:,}); the rates are after the warm-up")
    parser.add_argument("--reps", type=int, help="repetitions of each contender (default 3)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="numbers of seeds (default 1 16); for returns, the one number of seeds (default 10)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](*json.loads(args.args))))
        return
    if args.what is None:
        parser.error("choose what to measure: rejax, host or returns")
    s = dict(TINY if args.tiny else FULL)
    for key in ("steps", "reps", "seeds"):  # a smaller measurement where the full one would take hours
        if getattr(args, key) is not None:
            s[key] = tuple(args.seeds) if key == "seeds" else getattr(args, key)
    if args.what == "returns" and args.seeds:  # returns: one number of seeds, trained together
        s["returns_seeds"] = args.seeds[0]
    results: dict = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "settings": s}
    name = f"device_cpu_{args.what}" + ("_tiny" if args.tiny else "")
    if args.what == "rejax":
        lines = ["| seeds | ddpgx on-device loop steps/s | Rejax TD3 (as DDPG) steps/s | ddpgx / Rejax |",
                 "| --- | --- | --- | --- |"]
        for seeds in s["seeds"]:
            v = interleaved({"ddpgx": ("device", seeds, s), "rejax": ("rejax", seeds, s)}, s["reps"])
            results[f"seeds_{seeds}"] = v
            lines.append(f"| {seeds} | {spread(v['ddpgx'])} | {spread(v['rejax'])} | "
                         f"{statistics.median(v['ddpgx']) / statistics.median(v['rejax']):.2f} |")
        title = (f"gymnax Pendulum-v1, {s['steps']:,} steps per seed ({s['starts']:,} random), batch {s['batch']}, "
                 f"64-64, one update per transition, one environment per seed; aggregate steps/s, medians (range) of "
                 f"{s['reps']}; Rejax keeps TD3's two critics.")
    elif args.what == "host":
        lines = ["| networks | seeds | on-device loop (gymnax/Pendulum-v1) steps/s | host loop (Pendulum-v1) steps/s | "
                 "device / host |", "| --- | --- | --- | --- | --- |"]
        for hidden in (64, 256):
            for seeds in s["seeds"]:
                v = interleaved({"device": ("train", "gymnax/Pendulum-v1", seeds, hidden, s),
                                 "host": ("train", "Pendulum-v1", seeds, hidden, s)}, s["reps"])
                results[f"{hidden}_{seeds}"] = v
                lines.append(f"| {hidden}-{hidden} | {seeds} | {spread(v['device'])} | {spread(v['host'])} | "
                             f"{statistics.median(v['device']) / statistics.median(v['host']):.2f} |")
        title = (f"`ddpgx.train`, {s['steps']:,} steps per seed, batch {s['batch']}, one update per transition, one "
                 f"environment per seed; aggregate steps/s after the warm-up, medians (range) of {s['reps']}.")
    else:
        gymnax = run_worker("returns", "gymnax/Pendulum-v1", s)["returns"]
        gymnasium = run_worker("returns", "Pendulum-v1", s)["returns"]
        results.update(gymnax=gymnax, gymnasium=gymnasium)
        lines = ["| simulator | mean | median | min | max | per seed |", "| --- | --- | --- | --- | --- | --- |"]
        for label, r in (("gymnax/Pendulum-v1 (on-device loop)", gymnax), ("Pendulum-v1 (Gymnasium, host loop)",
                                                                            gymnasium)):
            lines.append(f"| {label} | {statistics.mean(r):.1f} | {statistics.median(r):.1f} | {min(r):.1f} | "
                         f"{max(r):.1f} | {' '.join(f'{x:.0f}' for x in r)} |")
        title = (f"The default preset, {s['returns_steps']:,} steps, seeds 0-{s['returns_seeds'] - 1}: the final "
                 f"noise-free evaluation, mean of 10 episodes per seed.")
    results["load_average"] = os.getloadavg()
    write_results(args.out, name, results, header(results, title) + lines + [""])


if __name__ == "__main__":
    main()
