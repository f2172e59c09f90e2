"""Exploration: noise in the agent's [-1, 1] action space, one state per environment; its schedule;
and adaptive parameter-space noise.

A noise process is `init(shape) -> state` and `advance(state, shock, sigma) -> (noise, state)`,
where `shock` is standard normal; `sample(state, key, sigma)` draws the shock with JAX. `sigma`
defaults to the process's own; a schedule passes the step's. The arithmetic works on numpy arrays
as on JAX arrays, so rollout workers, which act with numpy alone, run the same processes. `reset`
zeroes the state of the environments whose episode just ended. Gaussian noise is stateless (its
state stays zero); Ornstein-Uhlenbeck noise is the temporally correlated process of Lillicrap et
al. 2016: x <- x + theta * (mu - x) * dt + sigma * sqrt(dt) * N(0, 1), with mu = 0.

`Schedule` gives sigma at a step: constant, or decaying linearly or exponentially from
`noise_sigma` to a floor over a number of steps.

`ParamNoise` is adaptive parameter-space noise (Plappert et al. 2018, as OpenAI Baselines' DDPG runs
it): each environment acts with its own copy of the actor whose weights carry Gaussian noise of
standard deviation `sigma_p` (`perturb`), drawn at the start of each of its episodes and kept for
the episode. Every few steps the scale adapts: the distance in action space between the actor and
a freshly perturbed copy, d = sqrt(mean((pi(s) - pi~(s))^2)) over a minibatch (`distance`), is
compared with a target delta, and `sigma_p <- sigma_p / 1.01` if d > delta, else `sigma_p * 1.01`
(`adapt`). These functions use JAX, imported when called: the module itself needs numpy alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


class GaussianNoise(NamedTuple):
    sigma: float

    def init(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def advance(self, state: Any, shock: Any, sigma: Any = None) -> tuple[Any, Any]:
        return (self.sigma if sigma is None else sigma) * shock, state

    def sample(self, state: Any, key: Any, sigma: Any = None) -> tuple[Any, Any]:
        return self.advance(state, _normal(key, state), sigma)


class OrnsteinUhlenbeckNoise(NamedTuple):
    sigma: float
    theta: float = 0.15
    dt: float = 1e-2

    def init(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def advance(self, state: Any, shock: Any, sigma: Any = None) -> tuple[Any, Any]:
        sigma = self.sigma if sigma is None else sigma
        state = state - self.theta * state * self.dt + sigma * math.sqrt(self.dt) * shock
        return state, state

    def sample(self, state: Any, key: Any, sigma: Any = None) -> tuple[Any, Any]:
        return self.advance(state, _normal(key, state), sigma)


class ParamNoise(NamedTuple):
    """Adaptive parameter-space noise: `sigma` is the initial standard deviation of the parameter
    noise and the target distance delta in action space (OpenAI Baselines' `adaptive-param_<sigma>`
    sets both); `factor` is the adaptation's step (Baselines' `adoption_coefficient`, 1.01)."""

    sigma: float
    factor: float = 1.01

    def init(self, shape: tuple[int, ...]) -> np.ndarray:
        """The action-noise state, unused (zero): the noise is in the actor's parameters."""
        return np.zeros(shape, np.float32)


Noise = GaussianNoise | OrnsteinUhlenbeckNoise | ParamNoise


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
    if kind == "param":
        return ParamNoise(sigma)
    raise ValueError(f"unknown noise {kind!r}: choose 'gaussian', 'ou' or 'param'")


class Schedule(NamedTuple):
    """sigma at environment step t: `start` throughout ("constant"), or from `start` to `end` over
    `steps` steps, then `end`:
        linear:       start + (end - start) * f
        exponential:  start * (end / start) ** f          f = min(t / steps, 1)
    `t` may be a traced JAX value (the jitted `act` computes sigma from its step)."""

    kind: str
    start: float
    end: float = 0.0
    steps: int = 0

    def __call__(self, step: Any) -> Any:
        if self.kind == "constant":
            return self.start
        import jax.numpy as jnp

        f = 1.0 if self.steps == 0 else jnp.minimum(jnp.asarray(step, jnp.float32) / self.steps, 1.0)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * f
        if self.kind == "exponential":
            return self.start * (self.end / self.start) ** f
        raise ValueError(f"unknown noise schedule {self.kind!r}: choose constant, linear or exponential")


def schedule_from_config(config: Any) -> Schedule:
    return Schedule(config.noise_schedule, config.noise_sigma, config.noise_sigma_final, config.noise_decay_steps)


# ----------------------------------------------------------------------------- parameter-space noise

NORMALIZATION_LAYERS = ("LayerNorm", "BatchNorm")


def perturbable(path: tuple) -> bool:
    """Whether a parameter gets noise: the trainable parameters ("params" of a flax module, every
    leaf of another network), except the scales and offsets of normalization layers and any
    batch statistics (Baselines perturbs every trainable variable but LayerNorm's)."""
    names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
    if names and names[0] == "batch_stats":
        return False
    return not any(layer in name for name in names for layer in NORMALIZATION_LAYERS)


def perturb(params: Any, sigma: Any, key: Any) -> Any:
    """The actor's parameters with N(0, sigma^2) added to every perturbable one, independently."""
    import jax
    import jax.numpy as jnp

    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    out = [leaf + sigma * jax.random.normal(k, jnp.shape(leaf), jnp.result_type(leaf)) if perturbable(path) else leaf
           for (path, leaf), k in zip(leaves, keys)]
    return jax.tree_util.tree_unflatten(treedef, out)


def distance(apply: Callable[[Any, Any], Any], params: Any, perturbed: Any, obs: Any) -> Any:
    """sqrt(mean((pi(s) - pi~(s))^2)) over a batch of observations and the action dimensions."""
    import jax.numpy as jnp

    return jnp.sqrt(jnp.mean((apply(params, obs) - apply(perturbed, obs)) ** 2))


def adapt(sigma: Any, measured: Any, target: Any, factor: float) -> Any:
    """Shrink the parameter noise if the actions moved more than the target, grow it otherwise."""
    import jax.numpy as jnp

    return jnp.where(measured > target, sigma / factor, sigma * factor)
