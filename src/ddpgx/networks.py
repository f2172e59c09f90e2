"""The actor pi(s) and the critic Q(s, a).

Any network with `init(key, *inputs) -> params` and `apply(params, *inputs) -> output` can take the
place of either: a `flax.linen.Module` has both, and so has a plain `(init, apply)` pair of
functions. `as_network` wraps either into the `Network` the agent uses, which also knows the
training-mode forward pass (the one place that knows about batch statistics). The actor maps a
batch of observations to actions in [-1, 1] (the agent's action space; `envs.ActionScaler` maps
them to the environment's bounds); the critic maps a batch of (observation, action) pairs to one
value each, shape (batch,) or (batch, 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class Network(NamedTuple):
    """A network as the agent uses it.

    `init(key, *inputs) -> variables`; `apply(variables, *inputs) -> output` in inference mode (for
    acting and evaluation); `apply_train(variables, *inputs) -> (output, variables)`, a forward pass
    in training mode, which also returns the variables with their new non-trained state (batch
    statistics; the same variables for a network without such state).
    """

    init: Callable[..., Any]
    apply: Callable[..., Any]
    apply_train: Callable[..., tuple[Any, Any]]
    module: Any = None
    """The flax module or (init, apply) pair this was made from."""


def as_network(network: Any, role: str) -> Network:
    """Accept a flax module, an object with init/apply, or an (init, apply) pair of functions.

    A flax module whose variables hold "batch_stats" (batch normalization) normalizes with the
    minibatch's statistics in training mode and returns its updated running statistics; their
    gradient is exactly zero, so the optimizers leave them as `apply_train` returned them.
    """
    if isinstance(network, Network):
        return network
    if hasattr(network, "init") and hasattr(network, "apply"):
        init, apply = network.init, network.apply
    elif isinstance(network, tuple) and len(network) == 2 and all(callable(f) for f in network):
        init, apply = network
    else:
        raise TypeError(f"the {role} must be a flax.linen.Module or an (init, apply) pair of functions, "
                        f"got {type(network).__name__}")

    def apply_train(variables: Any, *inputs: Any) -> tuple[Any, Any]:
        if isinstance(variables, Mapping) and "batch_stats" in variables:
            out, mutated = apply(variables, *inputs, train=True, mutable=["batch_stats"])
            return out, {**variables, "batch_stats": mutated["batch_stats"]}
        return apply(variables, *inputs), variables

    return Network(init, apply, apply_train, network)


def weight_matrices(variables: Any) -> Any:
    """A mask selecting the weight matrices (arrays of 2 or more dimensions) among the trainable
    parameters, for L2 weight decay: biases, batch-norm scales and statistics are left out."""
    trainable = variables["params"] if isinstance(variables, Mapping) and "params" in variables else variables
    mask = jax.tree.map(lambda x: x.ndim >= 2, trainable)
    if trainable is variables:
        return mask
    return {k: mask if k == "params" else jax.tree.map(lambda _: False, v) for k, v in variables.items()}


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
    With `layer_norm`, every hidden layer is layer-normalized (before the ReLU).
    """

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    batch_norm: bool = False
    final_init: float = 0.0
    hidden_init: str = "fan_in_uniform"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = obs.reshape(obs.shape[0], -1)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train)(x)
        for width in self.hidden:
            x = dense(width, x.shape[-1], self.hidden_init)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return jnp.tanh(dense(self.action_dim, x.shape[-1], self.hidden_init, self.final_init)(x))


class Critic(nn.Module):
    """Q(s, a): Dense-ReLU layers, one value per (observation, action) pair.

    The action joins the hidden layer `action_layer` (0: concatenated with the observation at the
    input). With `batch_norm`, the state input and the layers before the action are batch-normalized.
    With `layer_norm`, every hidden layer is layer-normalized (before the ReLU).
    """

    hidden: Sequence[int] = (256, 256)
    action_layer: int = 0
    batch_norm: bool = False
    final_init: float = 0.0
    hidden_init: str = "fan_in_uniform"
    layer_norm: bool = False

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
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        if not self.hidden:
            x = jnp.concatenate([x, action], axis=-1)
        return dense(1, x.shape[-1], self.hidden_init, self.final_init)(x)[:, 0]


def actor_from_config(config: Any, action_dim: int) -> Actor:
    """The default actor of a Config."""
    return Actor(action_dim, config.actor_hidden, config.batch_norm, config.final_init, config.hidden_init,
                 config.actor_layer_norm)


def critic_from_config(config: Any) -> Critic:
    """The default critic of a Config."""
    return Critic(config.critic_hidden, config.critic_action_layer, config.batch_norm, config.final_init,
                  config.hidden_init, config.critic_layer_norm)
