"""Noise-free evaluation: the deterministic policy pi(s), on environments seeded apart from training.

Each of the K episodes runs in its own environment (one vector env of K environments per seed),
reset with seeds drawn from the run seed on a stream of their own (`envs.env_seeds(seed, K,
stream=1)`). Every evaluation of a run therefore starts from the same K initial states, and no
evaluation touches the training environments or their random state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from ddpgx.envs import EnvError, EnvFactory, Envs

EVAL_STREAM = 1
UNLIMITED_EPISODE_STEPS = 10_000
"""Where an evaluation episode of an environment without a time limit is stopped, with an error."""

PolicyFn = Callable[[np.ndarray], np.ndarray]
"""Maps observations (seeds, episodes, *obs_shape) to actions in [-1, 1] (seeds, episodes, action_dim)."""


class Evaluator:
    """Evaluation environments built once and reset with the same seeds at every evaluation."""

    def __init__(self, make_env: EnvFactory, seeds: list[int], episodes: int, name: str = "env"):
        self.seeds, self.episodes, self.name = list(seeds), episodes, name
        self.envs = Envs(make_env, len(self.seeds), episodes, name)
        self.success: np.ndarray | None = None
        """The last call's success per episode (seeds, episodes): its final step's info["is_success"],
        NaN where the environment does not report it."""

    def __call__(self, policy: PolicyFn) -> np.ndarray:
        """Returns of one noise-free episode per environment, shape (seeds, episodes); their success
        is in `success`."""
        obs = self.envs.reset(self.seeds, stream=EVAL_STREAM)
        returns = np.zeros((len(self.seeds), self.episodes))
        self.success = np.full_like(returns, np.nan)
        running = np.ones_like(returns, bool)
        for t in itertools.count(1):
            step = self.envs.step(np.asarray(policy(obs)))
            returns += np.where(running, step.reward, 0.0)
            ended = running & (step.terminated | step.truncated)
            self.success[ended] = step.success[ended]
            running &= ~ended
            if not running.any():
                return returns
            if t == UNLIMITED_EPISODE_STEPS and not self.envs.time_limited:
                raise EnvError(f"{self.name} has no time limit and an evaluation episode ran {t:,} steps without "
                               f"ending: give its episodes a limit with --max-episode-steps (Config.max_episode_steps)")
            obs = step.obs
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.envs.close()


def evaluate(policy: PolicyFn, make_env: EnvFactory, seeds: list[int], episodes: int, name: str = "env") -> np.ndarray:
    """One-off evaluation: returns of `episodes` noise-free episodes per seed, shape (seeds, episodes)."""
    evaluator = Evaluator(make_env, seeds, episodes, name)
    try:
        return evaluator(policy)
    finally:
        evaluator.close()
