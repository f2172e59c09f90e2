"""The actor pi(s) and the critic Q(s, a).

Any network with `init(key, *inputs) -> params` and `apply(params, *inputs) -> output` can take the
place of either: a `flax.linen.Module` has both, and a plain `(init, apply)` pair of functions is
wrapped by `as_network`. The actor maps a batch of observations to actions in [-1, 1] (the agent's
action space; `envs.ActionScaler` maps them to the environment's bounds); the critic maps a batch
of (observation, action) pairs to one value each, shape (batch,) or (batch, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import flax.linen as nn
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


class MLP(nn.Module):
    """Dense layers with ReLU between them; the last layer is linear."""

    features: Sequence[int]

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, width in enumerate(self.features):
            x = nn.Dense(width)(x)
            if i < len(self.features) - 1:
                x = nn.relu(x)
        return x


class Actor(nn.Module):
    """pi(s): an MLP whose tanh output lies in [-1, 1]."""

    action_dim: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs.reshape(obs.shape[0], -1)
        return jnp.tanh(MLP((*self.hidden, self.action_dim))(x))


class Critic(nn.Module):
    """Q(s, a): an MLP over the concatenated observation and action, one value per pair."""

    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
        x = jnp.concatenate([obs.reshape(obs.shape[0], -1), action], axis=-1)
        return MLP((*self.hidden, 1))(x)[:, 0]
