"""Exploration noise in the agent's [-1, 1] action space, one state per environment.

A noise process is `init(shape) -> state` and `advance(state, shock) -> (noise, state)`, where
`shock` is standard normal; `sample(state, key)` draws the shock with JAX. The arithmetic works on
numpy arrays as on JAX arrays, so rollout workers, which act with numpy alone, run the same
processes. `reset` zeroes the state of the environments whose episode just ended. Gaussian noise is
stateless (its state stays zero); Ornstein-Uhlenbeck noise is the temporally correlated process of
Lillicrap et al. 2016: x <- x + theta * (mu - x) * dt + sigma * sqrt(dt) * N(0, 1), with mu = 0.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np


class GaussianNoise(NamedTuple):
    sigma: float

    def init(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def advance(self, state: Any, shock: Any) -> tuple[Any, Any]:
        return self.sigma * shock, state

    def sample(self, state: Any, key: Any) -> tuple[Any, Any]:
        return self.advance(state, _normal(key, state))


class OrnsteinUhlenbeckNoise(NamedTuple):
    sigma: float
    theta: float = 0.15
    dt: float = 1e-2

    def init(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def advance(self, state: Any, shock: Any) -> tuple[Any, Any]:
        state = state - self.theta * state * self.dt + self.sigma * math.sqrt(self.dt) * shock
        return state, state

    def sample(self, state: Any, key: Any) -> tuple[Any, Any]:
        return self.advance(state, _normal(key, state))


Noise = GaussianNoise | OrnsteinUhlenbeckNoise


def _normal(key: Any, like: Any) -> Any:
    import jax

    return jax.random.normal(key, like.shape, like.dtype)


def reset(state: Any, done: Any) -> Any:
    """Zero the noise state of environments whose episode ended (done has shape (envs,))."""
    if isinstance(state, np.ndarray) and isinstance(done, np.ndarray):
        return np.where(done[:, None], np.float32(0.0), state)
    import jax.numpy as jnp

    return jnp.where(done[:, None], 0.0, state)


def make_noise(kind: str, sigma: float, theta: float = 0.15, dt: float = 1e-2) -> Noise:
    if kind == "gaussian":
        return GaussianNoise(sigma)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(sigma, theta, dt)
    raise ValueError(f"unknown noise {kind!r}: choose 'gaussian' or 'ou'")
