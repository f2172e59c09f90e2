"""Speed benchmark: ddpgx against Stable-Baselines3 DDPG in one run, on this machine.

    python benchmarks/speed.py [--reps 3] [--steps 5000] [--out benchmarks/results] [--end-to-end-only]

Every figure comes from this one run (each measurement in a fresh subprocess, one at a time):
  - end-to-end training steps/s after learning_starts, ddpgx, SB3 DDPG and SBX DDPG (SB3's JAX
    port) with identical hyperparameters, Pendulum-v1 and HalfCheetah-v5, median and range over
    repetitions, the libraries interleaved within each repetition;
  - the time of one update alone, its FLOPs (XLA cost analysis) and the rate of a plain
    256x256x256 matrix product, so the update's efficiency is a fraction of what the machine does;
  - environment-only steps/s;
  - peak memory of a 1,000,000-transition HalfCheetah buffer against its raw bytes, and the
    sampling cost of a full buffer against a nearly empty one;
  - aggregate steps/s of 8 seeds in one process against one seed.
Writes speed.json and speed.md to --out, with the CPU's name and the load average. SB3 and SBX come
from the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host import machine

LEARNING_STARTS = 1_000
WARMUP = 1_000  # steps after learning_starts left out of the timing (compilation, first updates)
HYPER = dict(batch_size=256, hidden=(256, 256), lr=3e-4, tau=0.005, gamma=0.99, noise_sigma=0.1,
             buffer_size=1_000_000)


# ----------------------------------------------------------------------------- workers (subprocesses)

def worker_ddpgx(env_id: str, steps: int, num_seeds: int = 1, train_freq: int = 1, changes: dict | None = None) -> dict:
    """Training steps/s after the warm-up; `changes` sets further Config fields (the extensions)."""
    import ddpgx
    from ddpgx.logging import read_csv

    values = dict(
        env_id=env_id, total_steps=LEARNING_STARTS + WARMUP + steps, learning_starts=LEARNING_STARTS,
        batch_size=HYPER["batch_size"], actor_hidden=HYPER["hidden"], critic_hidden=HYPER["hidden"],
        actor_lr=HYPER["lr"], critic_lr=HYPER["lr"], tau=HYPER["tau"], gamma=HYPER["gamma"],
        noise="gaussian", noise_sigma=HYPER["noise_sigma"], buffer_size=HYPER["buffer_size"],
        train_freq=train_freq, gradient_steps=train_freq,
        eval_every=0, eval_episodes=1, checkpoint_every=0, save_buffer=False, tensorboard=False,
        log_every=WARMUP,
    )
    config = ddpgx.Config(**{**values, **(changes or {})})
    with tempfile.TemporaryDirectory() as tmp:
        result = ddpgx.train(config, Path(tmp) / "run", num_seeds=num_seeds, progress=False, print_fn=lambda _: None)
        rows = read_csv(result.run_dirs[0] / "metrics.csv")
    timed = [r for r in rows if int(r["step"]) > LEARNING_STARTS + WARMUP]
    seconds = sum(WARMUP / float(r["steps_per_s"]) for r in timed)
    return {"steps_per_s": len(timed) * WARMUP / seconds * num_seeds}


def sb3_clock():
    """An SB3 callback (SB3's and SBX's) that times the steps after the random start and the warm-up."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == LEARNING_STARTS + WARMUP:
                self.start = time.perf_counter()
            return True

        def _on_training_end(self) -> None:
            self.end = time.perf_counter()

    return Clock()


def worker_sb3(env_id: str, steps: int) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import DDPG
    from stable_baselines3.common.noise import NormalActionNoise

    import gymnasium as gym

    env = gym.make(env_id)
    action_dim = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy", env, learning_rate=HYPER["lr"], buffer_size=HYPER["buffer_size"],
        learning_starts=LEARNING_STARTS, batch_size=HYPER["batch_size"], tau=HYPER["tau"], gamma=HYPER["gamma"],
        train_freq=1, gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(action_dim), HYPER["noise_sigma"] * np.ones(action_dim)),
        policy_kwargs=dict(net_arch=list(HYPER["hidden"])), device="cpu", seed=0, verbose=0,
    )
    clock = sb3_clock()
    model.learn(total_timesteps=LEARNING_STARTS + WARMUP + steps, callback=clock)
    return {"steps_per_s": steps / (clock.end - clock.start), "torch_threads": torch.get_num_threads()}


def worker_sbx(env_id: str, steps: int) -> dict:
    """SBX's DDPG (the JAX port of SB3; one critic, no policy delay) with ddpgx's hyperparameters.
    SBX sets the critic's learning rate apart (qf_learning_rate): it is given the same as the actor's."""
    import gymnasium as gym
    import numpy as np
    from sbx import DDPG
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(env_id)
    action_dim = env.action_space.shape[0]
    model = DDPG(
        "MlpPolicy", env, learning_rate=HYPER["lr"], qf_learning_rate=HYPER["lr"], buffer_size=HYPER["buffer_size"],
        learning_starts=LEARNING_STARTS, batch_size=HYPER["batch_size"], tau=HYPER["tau"], gamma=HYPER["gamma"],
        train_freq=1, gradient_steps=1,
        action_noise=NormalActionNoise(np.zeros(action_dim), HYPER["noise_sigma"] * np.ones(action_dim)),
        policy_kwargs=dict(net_arch=list(HYPER["hidden"])), seed=0, verbose=0,
    )
    clock = sb3_clock()
    model.learn(total_timesteps=LEARNING_STARTS + WARMUP + steps, callback=clock)
    return {"steps_per_s": steps / (clock.end - clock.start)}


def worker_update() -> dict:
    """The update as the training loop runs it (learner.step_functions: vmapped, state donated, the
    next actions chosen in the same call, the losses read back), alone: no environment, no sampling."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import ddpgx
    from ddpgx.learner import stack, step_functions
    from ddpgx.noise import make_noise
    from ddpgx.replay import ReplayBuffer

    obs_dim, action_dim, batch = 17, 6, HYPER["batch_size"]
    config = ddpgx.Config(batch_size=batch, actor_hidden=HYPER["hidden"], critic_hidden=HYPER["hidden"])
    agent = ddpgx.build_agent(config, action_dim)
    fns = step_functions(agent, make_noise("gaussian", HYPER["noise_sigma"]), 1, action_dim, (obs_dim,))
    width = ReplayBuffer(1, (obs_dim,), action_dim).data.shape[-1]
    rng = np.random.default_rng(0)
    obs = np.zeros((1, 1, obs_dim), np.float32)
    noise, done, key = np.zeros((1, 1, action_dim), np.float32), np.zeros((1, 1), bool), jax.random.PRNGKey(1)[None]
    out = {}
    for count in (1, 8):
        rows = rng.normal(size=(1, count, batch, width)).astype(np.float32)
        rows[..., -1] = 0.0  # terminated
        state = jax.device_put(stack([jax.jit(agent.init)(jax.random.PRNGKey(0), jnp.zeros((1, obs_dim)),
                                                          jnp.zeros((1, action_dim)))]))
        learn = fns.learn
        if count == 1:
            cost = learn.lower(state, rows, noise, None, None, obs, done, key, np.uint32(0), False).compile().cost_analysis()
            cost = cost[0] if isinstance(cost, list) else cost
            out["update_flops"] = float(cost["flops"])
        state, metrics, action, *_ = learn(state, rows, noise, None, None, obs, done, key, np.uint32(0), False)
        np.asarray(action)
        calls = 400 // count
        start = time.perf_counter()
        for i in range(calls):
            state, metrics, action, *_ = learn(state, rows, noise, None, None, obs, done, key, np.uint32(i), False)
            np.asarray(metrics.critic_loss), np.asarray(action)  # the loop reads both back after every call
        out[f"update_us_fused{count}"] = (time.perf_counter() - start) / (calls * count) * 1e6
    for n in (256, 512):
        x = jnp.ones((256, n), jnp.float32)
        y = jnp.ones((n, n), jnp.float32)
        matmul = jax.jit(lambda a, b: a @ b)
        matmul(x, y).block_until_ready()
        calls = 4000
        start = time.perf_counter()
        for _ in range(calls):
            z = matmul(x, y)
        z.block_until_ready()
        out[f"matmul_256x{n}x{n}_gflops"] = 2 * 256 * n * n / ((time.perf_counter() - start) / calls) / 1e9
    out["matmul_gflops"] = out["matmul_256x256x256_gflops"]
    out["update_gflops"] = out["update_flops"] / (out["update_us_fused1"] * 1e-6) / 1e9
    out["update_efficiency"] = out["update_gflops"] / out["matmul_gflops"]
    out["update_floor_us"] = out["update_flops"] / (out["matmul_gflops"] * 1e9) * 1e6
    return out


def worker_env(env_id: str, steps: int) -> dict:
    import gymnasium as gym
    import numpy as np

    from ddpgx.envs import Envs, env_factory

    env = gym.make(env_id)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high,
                                               (steps, *env.action_space.shape)).astype(np.float32)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    raw = steps / (time.perf_counter() - start)
    envs = Envs(env_factory(env_id), 1, 1, env_id)
    envs.reset([0])
    unit = np.random.default_rng(0).uniform(-1, 1, (steps, 1, 1, envs.action_dim))
    start = time.perf_counter()
    for a in unit:
        envs.step(a)
    return {"raw_steps_per_s": raw, "ddpgx_envs_steps_per_s": steps / (time.perf_counter() - start)}


def worker_memory() -> dict:
    import resource

    import numpy as np

    from ddpgx.envs import Envs, env_factory
    from ddpgx.replay import ReplayBuffer

    envs = Envs(env_factory("HalfCheetah-v5"), 1, 1, "HalfCheetah-v5")
    obs_size, action_dim, capacity = int(np.prod(envs.obs_shape)), envs.action_dim, 1_000_000

    def rss_bytes() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    rng = np.random.default_rng(0)
    chunk = 10_000
    obs = rng.normal(size=(1, chunk, obs_size)).astype(np.float32)
    action = rng.uniform(-1, 1, (1, chunk, action_dim)).astype(np.float32)
    reward = rng.normal(size=(1, chunk)).astype(np.float32)
    terminated = np.zeros((1, chunk), bool)
    before = rss_bytes()
    buffer = ReplayBuffer(capacity, envs.obs_shape, action_dim)
    sampler = [np.random.default_rng(1)]

    def sample_us() -> float:
        start = time.perf_counter()
        for _ in range(2000):
            buffer.sample(sampler, HYPER["batch_size"])
        return (time.perf_counter() - start) / 2000 * 1e6

    buffer.add(obs, action, reward, obs, terminated)
    sample_small = sample_us()
    for _ in range(capacity // chunk - 1):
        buffer.add(obs, action, reward, obs, terminated)
    sample_full = sample_us()
    after = rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # the information of a transition: float32 obs, action, reward, next_obs and a 1-byte terminated flag
    raw = capacity * (4 * (2 * obs_size + action_dim + 1) + 1)
    return {"raw_bytes": raw, "layout_bytes": capacity * ReplayBuffer.transition_bytes(obs_size, action_dim), "buffer_rss_bytes": after - before, "peak_rss_bytes": peak,
            "memory_ratio": (after - before) / raw, "sample_us_10k": sample_small, "sample_us_1m": sample_full,
            "sample_ratio_full_over_10k": sample_full / sample_small}


WORKERS = {"ddpgx": worker_ddpgx, "sb3": worker_sb3, "sbx": worker_sbx, "update": worker_update, "env": worker_env,
           "memory": worker_memory}


# ----------------------------------------------------------------------------- driver

def run_worker(name: str, *args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, json.dumps(args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {name}{args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5_000, help="timed steps per run, after learning_starts + warm-up")
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3 and SBX")
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="only the end-to-end steps/s of ddpgx, SB3 and SBX (not the update, memory, seeds)")
    parser.add_argument("--report-only", action="store_true", help="rewrite speed.md from the speed.json in --out")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](*json.loads(args.args))))
        return
    if args.report_only:
        results = json.loads((args.out / "speed.json").read_text())
        (args.out / "speed.md").write_text(markdown(results, results.get("command", "benchmarks/speed.py")))
        print((args.out / "speed.md").read_text())
        return

    results: dict = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "hyperparameters": {**HYPER, "learning_starts": LEARNING_STARTS,
                                                               "warmup_steps_untimed": WARMUP}, "end_to_end": {}}
    for env_id in args.envs:
        row: dict = {}
        for rep in range(args.reps):
            # the libraries interleaved: a change of the machine's load reaches each of them alike
            for name, worker_args in [("ddpgx", (env_id, args.steps)), ("ddpgx_fused8", (env_id, args.steps, 1, 8)),
                                      ("sb3", (env_id, args.steps)), ("sbx", (env_id, args.steps))]:
                if name in ("sb3", "sbx") and args.no_sb3:
                    continue
                value = run_worker(name.split("_")[0], *worker_args)["steps_per_s"]
                row.setdefault(name, []).append(value)
                print(f"{env_id} rep {rep} {name}: {value:.1f} steps/s", flush=True)
        row = {k: summary(v) for k, v in row.items()}
        if "sb3" in row:
            row["ratio_ddpgx_over_sb3"] = row["ddpgx"]["median"] / row["sb3"]["median"]
            row["ratio_fused8_over_sb3"] = row["ddpgx_fused8"]["median"] / row["sb3"]["median"]
            row["ratio_ddpgx_over_sbx"] = row["ddpgx"]["median"] / row["sbx"]["median"]
        row["env_only"] = run_worker("env", env_id, 20_000)
        results["end_to_end"][env_id] = row
    results["load_average"] = os.getloadavg()
    if args.end_to_end_only:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "speed.md").write_text(markdown(results, results["command"]))
        print((args.out / "speed.md").read_text())
        return
    results["update"] = run_worker("update")
    print(f"update: {results['update']}", flush=True)
    results["memory"] = run_worker("memory")
    print(f"memory: {results['memory']}", flush=True)
    single = run_worker("ddpgx", "HalfCheetah-v5", args.steps)["steps_per_s"]
    eight = run_worker("ddpgx", "HalfCheetah-v5", args.steps, 8)["steps_per_s"]
    results["seeds"] = {"single_steps_per_s": single, "eight_seeds_aggregate_steps_per_s": eight,
                        "ratio_aggregate_over_single": eight / single}
    print(f"seeds: {results['seeds']}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "speed.md").write_text(markdown(results, results["command"]))
    print((args.out / "speed.md").read_text())


def markdown(r: dict, command: str) -> str:
    m = r["machine"]
    load = r.get("load_average")
    lines = [f"Command: `{command}`  ", f"Machine: {m['cpu']}, {m['cores']} cores; {m['date']}" + (f"; ddpgx commit {m['git']}" if m.get("git") else "") + "  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "  ",
             (f"Load average at the end (1, 5, 15 min): {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}" if load else ""),
             "", "Medians over the repetitions, with their range; the libraries ran interleaved, one at a time.", "",
             "| task | ddpgx steps/s | ddpgx fused x8 steps/s | SB3 DDPG steps/s | SBX DDPG steps/s | ddpgx / SB3 | "
             "fused / SB3 | ddpgx / SBX | env alone steps/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def cell(row: dict, key: str) -> str:
        if key not in row:
            return "-"
        s = row[key]
        return f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})"

    for env_id, row in r["end_to_end"].items():
        ratio = f"{row['ratio_ddpgx_over_sb3']:.2f}" if "ratio_ddpgx_over_sb3" in row else "-"
        fused = f"{row['ratio_fused8_over_sb3']:.2f}" if "ratio_fused8_over_sb3" in row else "-"
        sbx = f"{row['ratio_ddpgx_over_sbx']:.2f}" if "ratio_ddpgx_over_sbx" in row else "-"
        lines.append(f"| {env_id} | {cell(row, 'ddpgx')} | {cell(row, 'ddpgx_fused8')} | {cell(row, 'sb3')} | "
                     f"{cell(row, 'sbx')} | {ratio} | {fused} | {sbx} | {row['env_only']['raw_steps_per_s']:.0f} |")
    if "update" not in r:
        return "\n".join(lines + [""])
    u, mem, seeds = r["update"], r["memory"], r["seeds"]
    lines += ["", "| where a training step goes (medians) | " + " | ".join(r["end_to_end"]) + " |",
              "| --- |" + " --- |" * len(r["end_to_end"])]
    step_us = {e: 1e6 / row["ddpgx"]["median"] for e, row in r["end_to_end"].items()}
    env_us = {e: 1e6 / row["env_only"]["ddpgx_envs_steps_per_s"] for e, row in r["end_to_end"].items()}
    lines.append("| one training step of ddpgx | " + " | ".join(f"{v:.0f} us" for v in step_us.values()) + " |")
    lines.append("| the environment step (ddpgx's checked, rescaled vector env) | "
                 + " | ".join(f"{env_us[e]:.0f} us ({env_us[e] / step_us[e]:.1%})" for e in step_us) + " |")
    lines.append("| the update alone, HalfCheetah shapes (below) | "
                 + " | ".join(f"{u['update_us_fused1']:.0f} us ({u['update_us_fused1'] / step_us[e]:.0%})"
                              if e == "HalfCheetah-v5" else "-" for e in step_us) + " |")
    lines += ["", "| the update (batch 256, 256-256, HalfCheetah shapes) | value |", "| --- | --- |",
              f"| one update, alone | {u['update_us_fused1']:.0f} us |",
              f"| one update, 8 fused in one call | {u['update_us_fused8']:.0f} us |",
              f"| FLOPs of one update (XLA cost analysis) | {u['update_flops'] / 1e6:.0f} MFLOP |",
              f"| update rate | {u['update_gflops']:.0f} GFLOP/s |",
              f"| 256x256x256 matmul rate | {u['matmul_gflops']:.0f} GFLOP/s |",
              f"| update efficiency (update rate / matmul rate) | {u['update_efficiency']:.0%} |",
              "", "| memory and sampling (HalfCheetah-v5, 1,000,000 transitions) | value |", "| --- | --- |",
              f"| raw bytes of the transitions (float32 fields, 1-byte terminated) | {mem['raw_bytes'] / 2**20:.1f} MiB |",
              f"| ddpgx's packed layout (terminated as float32) | {mem['layout_bytes'] / 2**20:.1f} MiB |",
              f"| resident memory of the filled buffer | {mem['buffer_rss_bytes'] / 2**20:.1f} MiB |",
              f"| ratio | {mem['memory_ratio']:.3f} |",
              f"| peak RSS of the process | {mem['peak_rss_bytes'] / 2**20:.0f} MiB |",
              f"| sampling one batch: 10,000 vs 1,000,000 filled | {mem['sample_us_10k']:.1f} us vs {mem['sample_us_1m']:.1f} us |",
              "", "| seeds in one process (HalfCheetah-v5) | steps/s |", "| --- | --- |",
              f"| 1 seed | {seeds['single_steps_per_s']:.0f} |",
              f"| 8 seeds, aggregate | {seeds['eight_seeds_aggregate_steps_per_s']:.0f} |",
              f"| ratio | {seeds['ratio_aggregate_over_single']:.2f} |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
