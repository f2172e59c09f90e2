"""Noise-free evaluation: the deterministic policy pi(s), on environments seeded apart from training.

Each of the K episodes runs in its own environment (one vector env of K environments per seed),
reset with seeds drawn from the run seed on a stream of their own (`envs.env_seeds(seed, K,
stream=1)`). Every evaluation of a run therefore starts from the same K initial states, and no
evaluation touches the training environments or their random state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ddpgx.envs import EnvFactory, Envs

EVAL_STREAM = 1
MAX_EPISODE_STEPS = 1_000_000

PolicyFn = Callable[[np.ndarray], np.ndarray]
"""Maps observations (seeds, episodes, *obs_shape) to actions in [-1, 1] (seeds, episodes, action_dim)."""


class Evaluator:
    """Evaluation environments built once and reset with the same seeds at every evaluation."""

    def __init__(self, make_env: EnvFactory, seeds: list[int], episodes: int, name: str = "env"):
        self.seeds, self.episodes, self.name = list(seeds), episodes, name
        self.envs = Envs(make_env, len(self.seeds), episodes, name)

    def __call__(self, policy: PolicyFn) -> np.ndarray:
        """Returns of one noise-free episode per environment, shape (seeds, episodes)."""
        obs = self.envs.reset(self.seeds, stream=EVAL_STREAM)
        returns = np.zeros((len(self.seeds), self.episodes))
        running = np.ones_like(returns, bool)
        for _ in range(MAX_EPISODE_STEPS):
            step = self.envs.step(np.asarray(policy(obs)))
            returns += np.where(running, step.reward, 0.0)
            running &= ~(step.terminated | step.truncated)
            if not running.any():
                return returns
            obs = step.obs
        raise RuntimeError(f"{self.name}: an evaluation episode ran {MAX_EPISODE_STEPS} steps without ending; "
                           f"add a time limit (gymnasium.wrappers.TimeLimit)")

    def close(self) -> None:
        self.envs.close()


def evaluate(policy: PolicyFn, make_env: EnvFactory, seeds: list[int], episodes: int, name: str = "env") -> np.ndarray:
    """One-off evaluation: returns of `episodes` noise-free episodes per seed, shape (seeds, episodes)."""
    evaluator = Evaluator(make_env, seeds, episodes, name)
    try:
        return evaluator(policy)
    finally:
        evaluator.close()
