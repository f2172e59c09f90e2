"""The actor pi(s) and the critic Q(s, a).

Any network with `init(key, *inputs) -> params` and `apply(params, *inputs) -> output` can take the
place of either: a `flax.linen.Module` has both, and a plain `(init, apply)` pair of functions is
wrapped by `as_network`. The actor maps a batch of observations to actions in [-1, 1] (the agent's
action space; `envs.ActionScaler` maps them to the environment's bounds); the critic maps a batch
of (observation, action) pairs to one value each, shape (batch,) or (batch, 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp


class Network(Protocol):
    def init(self, key: Any, *inputs: Any) -> Any: ...

    def apply(self, params: Any, *inputs: Any) -> Any: ...


class FunctionNetwork(NamedTuple):
    """An (init, apply) pair of pure functions, usable wherever a flax module is."""

    init: Callable[..., Any]
    apply: Callable[..., Any]


def as_network(network: Any, role: str) -> Network:
    """Accept a flax module, an object with init/apply, or an (init, apply) pair."""
    if hasattr(network, "init") and hasattr(network, "apply"):
        return network
    if isinstance(network, tuple) and len(network) == 2 and all(callable(f) for f in network):
        return FunctionNetwork(*network)
    raise TypeError(
        f"the {role} must be a flax.linen.Module or an (init, apply) pair of functions, "
        f"got {type(network).__name__}"
    )


def uniform_init(scale: float) -> Callable[..., jnp.ndarray]:
    """Values uniform in [-scale, scale]."""

    def init(key: Any, shape: Sequence[int], dtype: Any = jnp.float32) -> jnp.ndarray:
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def dense(features: int, fan_in: int, hidden_init: str, final_init: float = 0.0) -> nn.Dense:
    """A Dense layer with the config's initialization.

    `final_init` > 0 (the output layers of Lillicrap et al. 2016: 3e-3) draws weights and biases
    uniformly in +-final_init; 'fan_in_uniform' in +-1/sqrt(fan_in) (Lillicrap et al. 2016's other
    layers); 'lecun_normal' keeps flax's defaults (LeCun normal weights, zero biases).
    """
    if final_init > 0:
        return nn.Dense(features, kernel_init=uniform_init(final_init), bias_init=uniform_init(final_init))
    if hidden_init == "fan_in_uniform":
        scale = 1.0 / math.sqrt(fan_in)
        return nn.Dense(features, kernel_init=uniform_init(scale), bias_init=uniform_init(scale))
    return nn.Dense(features)


class Actor(nn.Module):
    """pi(s): Dense-ReLU layers and a tanh output in [-1, 1].

    With `batch_norm`, the state input and every hidden layer are batch-normalized (before the
    ReLU); `train=True` normalizes with the minibatch's statistics and updates the running ones.
    """

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    batch_norm: bool = False
    final_init: float = 0.0
    hidden_init: str = "fan_in_uniform"

    @nn.compact
    def __call__(self, obs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = obs.reshape(obs.shape[0], -1)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train)(x)
        for width in self.hidden:
            x = dense(width, x.shape[-1], self.hidden_init)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train)(x)
            x = nn.relu(x)
        return jnp.tanh(dense(self.action_dim, x.shape[-1], self.hidden_init, self.final_init)(x))


class Critic(nn.Module):
    """Q(s, a): Dense-ReLU layers, one value per (observation, action) pair.

    The action joins the hidden layer `action_layer` (0: concatenated with the observation at the
    input). With `batch_norm`, the state input and the layers before the action are batch-normalized.
    """

    hidden: Sequence[int] = (256, 256)
    action_layer: int = 0
    batch_norm: bool = False
    final_init: float = 0.0
    hidden_init: str = "fan_in_uniform"

    @nn.compact
    def __call__(self, obs: jnp.ndarray, action: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = obs.reshape(obs.shape[0], -1)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train)(x)
        for i, width in enumerate(self.hidden):
            if i == self.action_layer:
                x = jnp.concatenate([x, action], axis=-1)
            x = dense(width, x.shape[-1], self.hidden_init)(x)
            if self.batch_norm and i < self.action_layer:
                x = nn.BatchNorm(use_running_average=not train)(x)
            x = nn.relu(x)
        if not self.hidden:
            x = jnp.concatenate([x, action], axis=-1)
        return dense(1, x.shape[-1], self.hidden_init, self.final_init)(x)[:, 0]


def actor_from_config(config: Any, action_dim: int) -> Actor:
    """The default actor of a Config."""
    return Actor(action_dim, config.actor_hidden, config.batch_norm, config.final_init, config.hidden_init)


def critic_from_config(config: Any) -> Critic:
    """The default critic of a Config."""
    return Critic(config.critic_hidden, config.critic_action_layer, config.batch_norm, config.final_init,
                  config.hidden_init)
