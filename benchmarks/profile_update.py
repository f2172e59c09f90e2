"""Where the time of one DDPG update goes, part by part, against the machine's matrix-product rate.

    python benchmarks/profile_update.py [--repeats 300]

The update (batch 256, 256-256 networks, HalfCheetah-v5 shapes: 17 observations, 6 actions) is
timed whole and in its parts, each part jitted alone: the TD target, the critic's gradient, the
actor's gradient, one Adam step, one Polyak step. Each part is set beside the number of 256x256x256
matrix products it cannot do without (forward and backward through the 256-wide hidden layer) and
the time of that many products on this machine: the floor that no float32 implementation of the
same arithmetic goes below. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import ddpgx
from ddpgx.agent import Batch, polyak

OBS, ACT, BATCH = 17, 6, 256
# 256x256x256 products each part needs: the hidden 256->256 layer's forward pass, and in a
# gradient its backward pass for the weights and for the input
PRODUCTS = {"TD target": 2, "critic gradient": 3, "actor gradient": 5, "Adam step (critic)": 0,
            "Polyak step (critic)": 0, "whole update": 10}


def timed(f, *args, repeats: int) -> float:
    """Microseconds per call, after one call that compiles."""
    jax.block_until_ready(f(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        out = f(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()

    agent = ddpgx.build_agent(ddpgx.Config(), ACT)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0), jnp.zeros((1, OBS)), jnp.zeros((1, ACT)))
    rng = np.random.default_rng(0)
    batch = Batch(jnp.asarray(rng.normal(size=(BATCH, OBS)), jnp.float32),
                  jnp.asarray(rng.uniform(-1, 1, (BATCH, ACT)), jnp.float32),
                  jnp.asarray(rng.normal(size=BATCH), jnp.float32),
                  jnp.asarray(rng.normal(size=(BATCH, OBS)), jnp.float32), jnp.zeros(BATCH, jnp.float32))
    target = jax.jit(agent.td_target)
    y = target(state.actor_target, state.critic_target, batch)
    critic_grad = jax.jit(jax.grad(lambda c: agent.critic_loss(c, y, batch)[0]))
    actor_grad = jax.jit(jax.grad(lambda a: agent.actor_loss(a, state.critic, batch.obs)[0]))
    adam = jax.jit(agent.critic_optimizer.update)
    soft = jax.jit(lambda online, lagging: polyak(online, lagging, agent.tau))
    x = jnp.ones((256, 256), jnp.float32)
    matmul_us = timed(jax.jit(lambda a, b: a @ b), x, x, repeats=10 * args.repeats)

    parts = {
        "TD target": timed(target, state.actor_target, state.critic_target, batch, repeats=args.repeats),
        "critic gradient": timed(critic_grad, state.critic, repeats=args.repeats),
        "actor gradient": timed(actor_grad, state.actor, repeats=args.repeats),
        "Adam step (critic)": timed(adam, critic_grad(state.critic), state.critic_opt, state.critic,
                                    repeats=args.repeats),
        "Polyak step (critic)": timed(soft, state.critic, state.critic_target, repeats=args.repeats),
        "whole update": timed(jax.jit(agent.update), state, batch, repeats=args.repeats),
    }
    print(f"256x256x256 matrix product: {matmul_us:.0f} us ({2 * 256 ** 3 / matmul_us / 1e3:.0f} GFLOP/s)\n")
    print("| part | time (us) | 256^3 products it needs | their time (us) | part / floor |")
    print("| --- | --- | --- | --- | --- |")
    for name, us in parts.items():
        floor = PRODUCTS[name] * matmul_us
        ratio = f"{us / floor:.2f}" if floor else "-"
        print(f"| {name} | {us:.0f} | {PRODUCTS[name]} | {floor:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
