"""Noise-free evaluation: the deterministic policy pi(s), on environments seeded apart from training.

Each of the K episodes runs in its own environment (one vector env of K environments per seed),
seeded from the run seed on a stream of its own (`envs.env_seeds(seed, K, stream=1)`), so every
evaluation of a run starts from the same K initial states and no evaluation touches the
training environments or their random state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ddpgx.envs import EnvFactory, Envs

EVAL_STREAM = 1
MAX_EPISODE_STEPS = 1_000_000


def evaluate(policy: Callable[[np.ndarray], np.ndarray], make_env: EnvFactory, seeds: list[int],
             episodes: int, name: str = "env") -> np.ndarray:
    """Returns of `episodes` noise-free episodes per seed, shape (seeds, episodes).

    `policy` maps observations of shape (seeds, episodes, *obs_shape) to actions in [-1, 1] of
    shape (seeds, episodes, action_dim).
    """
    envs = Envs(make_env, len(seeds), episodes, name)
    try:
        obs = envs.reset(seeds, stream=EVAL_STREAM)
        returns = np.zeros((len(seeds), episodes))
        running = np.ones((len(seeds), episodes), bool)
        for _ in range(MAX_EPISODE_STEPS):
            step = envs.step(np.asarray(policy(obs)))
            returns += np.where(running, step.reward, 0.0)
            running &= ~(step.terminated | step.truncated)
            if not running.any():
                return returns
            obs = step.obs
        raise RuntimeError(f"{name}: an evaluation episode ran {MAX_EPISODE_STEPS} steps without ending; add a time limit")
    finally:
        envs.close()
