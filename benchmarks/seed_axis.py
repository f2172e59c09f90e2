"""The learning step with one seed and with several: `jax.vmap` over the leading seed axis against
`learner.over_seeds`, which runs a single seed's step unmapped.

    python benchmarks/seed_axis.py [--seeds 1 3] [--rounds 5] [--repeats 50] [--out benchmarks/results]

One update (batch 256, 256-256 networks, HalfCheetah-v5 shapes: 17 observations, 6 actions), as the
loop calls it (`DDPG.update_many` over one minibatch), with `default`'s critic and with a
layer-normalized one (`modern`'s). XLA runs on one thread, as in a sweep's trial pinned to a core.
Every variant is timed in each round, in turn, and the best round is kept, so that a change in the
machine's speed during the run hits all of them. Writes seed_axis.json and seed_axis.md to --out.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from host import machine, write_results  # noqa: E402
from profile_update import timed  # noqa: E402

import ddpgx  # noqa: E402
from ddpgx.agent import Batch  # noqa: E402
from ddpgx.learner import over_seeds  # noqa: E402

OBS, ACT, BATCH = 17, 6, 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    batch = Batch(jnp.asarray(rng.normal(size=(BATCH, OBS)), jnp.float32),
                  jnp.asarray(rng.uniform(-1, 1, (BATCH, ACT)), jnp.float32),
                  jnp.asarray(rng.normal(size=BATCH), jnp.float32),
                  jnp.asarray(rng.normal(size=(BATCH, OBS)), jnp.float32), jnp.zeros(BATCH, jnp.float32))
    calls = {}
    for critic, layer_norm in (("default", False), ("layer-normalized", True)):
        agent = ddpgx.build_agent(ddpgx.Config(critic_layer_norm=layer_norm), ACT)
        state = jax.jit(agent.init)(jax.random.PRNGKey(0), jnp.zeros((1, OBS)), jnp.zeros((1, ACT)))
        for seeds in args.seeds:
            states = jax.tree.map(lambda x: jnp.stack([x] * seeds), state)
            batches = jax.tree.map(lambda x: jnp.stack([x[None]] * seeds), batch)  # one minibatch per seed
            for how, wrap in (("jax.vmap", jax.vmap), ("over_seeds", lambda f: over_seeds(f, (0, 0)))):
                calls[(critic, seeds, how)] = (jax.jit(wrap(agent.update_many)), states, batches)
    best = {key: float("inf") for key in calls}
    for _ in range(args.rounds):
        for key, (f, states, batches) in calls.items():
            best[key] = min(best[key], timed(f, states, batches, repeats=args.repeats) / 1e3)

    host = machine()
    results = {"command": " ".join(["python", *sys.argv]), "machine": host,
               "ms": [{"critic": c, "seeds": s, "how": h, "ms": best[(c, s, h)]} for c, s, h in calls]}
    lines = [f"Command: `{results['command']}`  ", f"Machine: {host['cpu']}, {host['cores']} cores, XLA on one "
             f"thread; {host['date']}; ddpgx commit {host.get('git')}", "",
             "| critic | seeds | jax.vmap (ms per update) | over_seeds (ms per update) | vmap / over_seeds |",
             "| --- | --- | --- | --- | --- |"]
    for critic in ("default", "layer-normalized"):
        for seeds in args.seeds:
            mapped, ours = best[(critic, seeds, "jax.vmap")], best[(critic, seeds, "over_seeds")]
            lines.append(f"| {critic} | {seeds} | {mapped:.2f} | {ours:.2f} | {mapped / ours:.2f} |")
    write_results(args.out, "seed_axis", results, lines)


if __name__ == "__main__":
    main()
