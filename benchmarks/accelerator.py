"""The on-device loop on an accelerator: steps/s over a grid of environments x batch size on Brax's
halfcheetah, the time to reach a return of 3,000 there with the fasttd3 preset, and the host loop's
steps/s on Gymnasium's HalfCheetah-v5 for comparison, with the device's name.

    python benchmarks/accelerator.py                  # on a GPU: under 8 minutes
    python benchmarks/accelerator.py --tiny           # anywhere: tiny settings, gymnax Pendulum-v1 (a test runs it)

Needs the jax-envs extra and, on a GPU, JAX's CUDA build of the same version:
pip install -e '.[jax-envs,mujoco]' 'jax[cuda12]==<the installed jax version>'.

Each grid point compiles the loop once (not timed), then times whole calls of the compiled loop
(`device_loop.Program.chunk`) after `learning_starts`, so every timed iteration steps the
environments, inserts into the replay and makes its gradient steps. The time to a return counts
from the first call (compilation included) to the first noise-free evaluation whose mean over its
episodes reaches the target, with a time limit. Writes accelerator.json and accelerator.md to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from host import machine, write_results

FULL = dict(env="brax/halfcheetah", host_env="HalfCheetah-v5", envs=(256, 2048), batches=(2048, 32768), target=3000.0,
            chunks=3, race_seconds=240.0, eval_every=204_800, host_steps=3_000, buffer_size=1_000_000)
"""A GPU's run: the grid, the target return and the race's time limit, fit in about 8 minutes."""
TINY = dict(env="gymnax/Pendulum-v1", host_env="Pendulum-v1", envs=(16,), batches=(32,), target=-1_000.0,
            chunks=1, race_seconds=20.0, eval_every=2_048, host_steps=300, buffer_size=5_000,
            changes=dict(actor_hidden=(16, 16), critic_hidden=(16, 16), num_envs=16, batch_size=32,
                         learning_starts=512))
"""Settings that run in a minute on a CPU: the script is known to work before a GPU is at hand."""


def device_name() -> str:
    import jax

    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def setup(env_id: str, settings: dict, **changes):
    """The fasttd3 preset on `env_id` with the settings' and `changes`, its compiled loop, its initial
    state (one seed) and its keys."""
    import ddpgx
    from ddpgx import device_loop, jax_envs
    from ddpgx.learner import build_agent, seed_keys

    values = {"buffer_size": settings["buffer_size"], **settings.get("changes", {}), **changes}
    config = ddpgx.from_preset("fasttd3", env_id, **values)
    env = jax_envs.make(env_id)
    agent = build_agent(config, env.action_dim)
    program = device_loop.build(agent, env, config)
    init_key, explore_key = (k[None] for k in seed_keys(0))
    reset_key, env_key, sample_key, eval_key = (k[None] for k in device_loop.device_keys(0))
    state = program.init(init_key, explore_key, reset_key)
    return config, program, state, (env_key, sample_key, eval_key)


def grid_point(env_id: str, num_envs: int, batch: int, settings: dict) -> dict:
    """Steps/s of the on-device loop (all environments' steps), learning from the first iteration."""
    import jax
    import jax.numpy as jnp

    config, program, state, (env_key, sample_key, _) = setup(
        env_id, settings, num_envs=num_envs, batch_size=batch, learning_starts=num_envs)
    n, step = program.iterations, num_envs
    start = time.perf_counter()
    state, record = program.chunk(state, env_key, sample_key, jnp.int32(step), jnp.int32(n))
    jax.block_until_ready(record)
    compile_s = time.perf_counter() - start
    step += n * num_envs
    start = time.perf_counter()
    for _ in range(settings["chunks"]):
        state, record = program.chunk(state, env_key, sample_key, jnp.int32(step), jnp.int32(n))
        step += n * num_envs
    jax.block_until_ready(record)
    seconds = time.perf_counter() - start
    steps = settings["chunks"] * n * num_envs
    return {"num_envs": num_envs, "batch_size": batch, "updates_per_iteration": config.updates_per_iteration,
            "steps_per_s": steps / seconds, "updates_per_s": settings["chunks"] * n * config.updates_per_iteration
            / seconds, "first_call_s": compile_s}


def race(env_id: str, settings: dict) -> dict:
    """Wall time from the first call until a noise-free evaluation (10 episodes) reaches the target."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    start = time.perf_counter()
    config, program, state, (env_key, sample_key, eval_key) = setup(env_id, settings, eval_episodes=10)
    step, curve = 0, []
    while not curve or time.perf_counter() - start < settings["race_seconds"]:  # one evaluation at least
        boundary = (step // settings["eval_every"] + 1) * settings["eval_every"]
        count = min(program.iterations, -(-(boundary - step) // config.num_envs))
        state, _ = program.chunk(state, env_key, sample_key, jnp.int32(step), jnp.int32(count))
        step += count * config.num_envs
        if step // settings["eval_every"] > (step - count * config.num_envs) // settings["eval_every"]:
            mean = float(np.mean(jax.device_get(program.evaluate(state.agent.actor, eval_key))))
            curve.append((step, time.perf_counter() - start, mean))
            if mean >= settings["target"]:
                return {"target": settings["target"], "reached": True, "seconds": curve[-1][1], "steps": step,
                        "curve": curve}
    return {"target": settings["target"], "reached": False, "seconds": time.perf_counter() - start, "steps": step,
            "curve": curve}


def host_loop(env_id: str, settings: dict) -> dict:
    """The host loop's steps/s (default preset, one environment) on the Gymnasium task, after its warm-up."""
    code = f"""
import json, tempfile, ddpgx
from ddpgx.logging import read_csv
steps = {settings["host_steps"]}
config = ddpgx.Config(env_id={env_id!r}, total_steps=1000 + 2 * steps, learning_starts=1000, log_every=steps,
                      eval_every=0, eval_episodes=1, checkpoint_every=0, save_buffer=False, tensorboard=False)
with tempfile.TemporaryDirectory() as tmp:
    result = ddpgx.train(config, tmp + "/run", progress=False, print_fn=lambda _: None)
    rows = read_csv(result.run_dirs[0] / "metrics.csv")
print(json.dumps({{"steps_per_s": float(rows[-1]["steps_per_s"])}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the host loop failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny settings on gymnax Pendulum-v1 (runs on a CPU)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    settings = TINY if args.tiny else FULL
    started = time.perf_counter()
    results = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "device": device_name(),
               "settings": {k: v for k, v in settings.items()}, "grid": []}
    print(f"device: {results['device']}", flush=True)
    for num_envs in settings["envs"]:
        for batch in settings["batches"]:
            point = grid_point(settings["env"], num_envs, batch, settings)
            results["grid"].append(point)
            print(f"{settings['env']} envs {num_envs} batch {batch}: {point['steps_per_s']:.0f} steps/s", flush=True)
    results["race"] = race(settings["env"], settings)
    print(f"race to {settings['target']}: {results['race']['reached']} after {results['race']['seconds']:.0f} s",
          flush=True)
    results["host"] = host_loop(settings["host_env"], settings)
    results["seconds"] = time.perf_counter() - started
    write_results(args.out, "accelerator_tiny" if args.tiny else "accelerator", results, report(results))


def report(r: dict) -> list[str]:
    s, race = r["settings"], r["race"]
    lines = [f"Command: `{r['command']}`  ", f"Device: {r['device']}; host CPU: {r['machine']['cpu']}, "
             f"{r['machine']['cores']} cores; {r['machine']['date']}; {r['seconds']:.0f} s in all", "",
             f"On-device loop, {s['env']}, fasttd3 preset (updates per iteration fixed), one seed:", "",
             "| environments | batch | steps/s | updates/s | first call (compilation) |", "| --- | --- | --- | --- | --- |"]
    for p in r["grid"]:
        lines.append(f"| {p['num_envs']} | {p['batch_size']} | {p['steps_per_s']:,.0f} | {p['updates_per_s']:,.0f} | "
                     f"{p['first_call_s']:.1f} s |")
    reached = (f"reached after {race['seconds']:.0f} s ({race['steps']:,} steps)" if race["reached"]
               else f"not reached in {race['seconds']:.0f} s ({race['steps']:,} steps)")
    best = max((c[2] for c in race["curve"]), default=float("nan"))
    lines += ["", f"Time to a noise-free return of {race['target']:,.0f} on {s['env']} (fasttd3 preset): {reached}; "
                  f"best evaluation {best:,.1f}.", "",
              f"Host loop on {s['host_env']} (default preset, one environment, {r['machine']['cpu']}): "
              f"{r['host']['steps_per_s']:,.0f} steps/s.", ""]
    return lines


if __name__ == "__main__":
    main()
