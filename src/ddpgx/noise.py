"""Exploration noise in the agent's [-1, 1] action space, one state per environment.

A noise process is `init(shape) -> state` and `sample(state, key) -> (noise, state)`; `reset`
zeroes the state of the environments whose episode just ended. Gaussian noise is stateless (its
state stays zero); Ornstein-Uhlenbeck noise is the temporally correlated process of Lillicrap et
al. 2016: x <- x + theta * (mu - x) * dt + sigma * sqrt(dt) * N(0, 1), with mu = 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class GaussianNoise(NamedTuple):
    sigma: float

    def init(self, shape: tuple[int, ...]) -> jnp.ndarray:
        return jnp.zeros(shape, jnp.float32)

    def sample(self, state: jnp.ndarray, key: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray]:
        return self.sigma * jax.random.normal(key, state.shape, state.dtype), state


class OrnsteinUhlenbeckNoise(NamedTuple):
    sigma: float
    theta: float = 0.15
    dt: float = 1e-2

    def init(self, shape: tuple[int, ...]) -> jnp.ndarray:
        return jnp.zeros(shape, jnp.float32)

    def sample(self, state: jnp.ndarray, key: jax.Array) -> tuple[jnp.ndarray, jnp.ndarray]:
        shock = jax.random.normal(key, state.shape, state.dtype)
        state = state - self.theta * state * self.dt + self.sigma * jnp.sqrt(self.dt) * shock
        return state, state


Noise = GaussianNoise | OrnsteinUhlenbeckNoise


def reset(state: jnp.ndarray, done: jnp.ndarray) -> jnp.ndarray:
    """Zero the noise state of environments whose episode ended (done has shape (envs,))."""
    return jnp.where(done[:, None], 0.0, state)


def make_noise(kind: str, sigma: float, theta: float = 0.15, dt: float = 1e-2) -> Noise:
    if kind == "gaussian":
        return GaussianNoise(sigma)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(sigma, theta, dt)
    raise ValueError(f"unknown noise {kind!r}: choose 'gaussian' or 'ou'")
