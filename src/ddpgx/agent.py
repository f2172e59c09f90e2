"""The seed's equations: the critic loss, the actor loss, the update and the target networks.

Everything here is a pure function of explicit state, written for one agent. The training loop
runs several independent agents at once by `jax.vmap` over a leading seed axis of the state.

    critic:  L(phi)   = mean_batch (Q_phi(s, a) - y)^2,
             y        = r + gamma * (1 - terminated) * Q_phi'(s', pi_theta'(s'))
    actor:   J(theta) = -mean_batch Q_phi(s, pi_theta(s))   (the deterministic policy gradient)
    targets: theta'  <- tau * theta + (1 - tau) * theta'   (and the same for phi')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ddpgx.networks import Network

Params = Any


class Batch(NamedTuple):
    """A minibatch of transitions (s, a, r, s', terminated); actions are in [-1, 1]."""

    obs: jnp.ndarray
    action: jnp.ndarray
    reward: jnp.ndarray
    next_obs: jnp.ndarray
    terminated: jnp.ndarray


class AgentState(NamedTuple):
    """Online and target parameters of both networks, their optimizer states, and an update count."""

    actor: Params
    critic: Params
    actor_target: Params
    critic_target: Params
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    updates: jnp.ndarray


class Metrics(NamedTuple):
    critic_loss: jnp.ndarray
    actor_loss: jnp.ndarray
    q: jnp.ndarray
    """Mean Q(s, a) over the batch."""


@dataclass(frozen=True, eq=False)
class DDPG:
    """DDPG's networks, optimizers and constants; its methods are pure functions of AgentState."""

    actor: Network
    critic: Network
    actor_optimizer: optax.GradientTransformation
    critic_optimizer: optax.GradientTransformation
    gamma: float
    tau: float

    def init(self, key: jax.Array, obs: jnp.ndarray, action: jnp.ndarray) -> AgentState:
        """Initial state from example batches of observations and actions (shape checked)."""
        actor_key, critic_key = jax.random.split(key)
        actor = self.actor.init(actor_key, obs)
        critic = self.critic.init(critic_key, obs, action)
        check_shapes(self, actor, critic, obs, action)
        return AgentState(
            actor=actor,
            critic=critic,
            actor_target=actor,
            critic_target=critic,
            actor_opt=self.actor_optimizer.init(actor),
            critic_opt=self.critic_optimizer.init(critic),
            updates=jnp.zeros((), jnp.int32),
        )

    def q(self, critic: Params, obs: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
        """Q(s, a), one value per row."""
        return self.critic.apply(critic, obs, action).reshape(obs.shape[0])

    def q_train(self, critic: Params, obs: jnp.ndarray, action: jnp.ndarray) -> jnp.ndarray:
        """Q(s, a) in training mode (minibatch statistics, which are not kept); `q` without batch norm."""
        return train_apply(self.critic, critic, obs, action)[0].reshape(obs.shape[0])

    def act(self, actor: Params, obs: jnp.ndarray) -> jnp.ndarray:
        """pi(s) in [-1, 1], without exploration noise."""
        return self.actor.apply(actor, obs)

    def td_target(self, actor_target: Params, critic_target: Params, batch: Batch) -> jnp.ndarray:
        """y = r + gamma * (1 - terminated) * Q'(s', pi'(s')); only termination stops bootstrapping.

        With batch normalization the target networks normalize with the statistics of the
        minibatch of next observations, as every network does in training (the running averages
        are for acting and evaluation only); their own running averages are left as they are.
        """
        next_action, _ = train_apply(self.actor, actor_target, batch.next_obs)
        next_q = self.q_train(critic_target, batch.next_obs, next_action)
        not_terminated = 1.0 - batch.terminated.astype(next_q.dtype)
        return batch.reward + self.gamma * not_terminated * next_q

    def critic_loss(self, critic: Params, target: jnp.ndarray, batch: Batch) -> tuple[jnp.ndarray, tuple]:
        """Mean squared error between Q(s, a) and the (fixed) target y; also returns mean Q and
        the critic's new batch statistics (None without batch normalization)."""
        q, stats = train_apply(self.critic, critic, batch.obs, batch.action)
        q = q.reshape(batch.obs.shape[0])
        return jnp.mean((q - target) ** 2), (jnp.mean(q), stats)

    def actor_loss(self, actor: Params, critic: Params, obs: jnp.ndarray) -> tuple[jnp.ndarray, Any]:
        """-mean Q(s, pi(s)); its gradient in `actor` is the deterministic policy gradient.

        Also returns the actor's new batch statistics (None without batch normalization). The
        critic normalizes with the minibatch's statistics too, without keeping them: its running
        averages move only in `critic_loss`.
        """
        action, stats = train_apply(self.actor, actor, obs)
        return -jnp.mean(self.q_train(critic, obs, action)), stats

    def update(self, state: AgentState, batch: Batch) -> tuple[AgentState, Metrics]:
        """One gradient step of the critic, then of the actor (on the new critic), then the targets."""
        target = jax.lax.stop_gradient(self.td_target(state.actor_target, state.critic_target, batch))
        (critic_loss, (q, critic_stats)), critic_grad = jax.value_and_grad(self.critic_loss, has_aux=True)(
            state.critic, target, batch
        )
        critic_step, critic_opt = self.critic_optimizer.update(critic_grad, state.critic_opt, state.critic)
        critic = with_stats(optax.apply_updates(state.critic, critic_step), critic_stats)

        (actor_loss, actor_stats), actor_grad = jax.value_and_grad(self.actor_loss, has_aux=True)(
            state.actor, critic, batch.obs
        )
        actor_step, actor_opt = self.actor_optimizer.update(actor_grad, state.actor_opt, state.actor)
        actor = with_stats(optax.apply_updates(state.actor, actor_step), actor_stats)

        new_state = AgentState(
            actor=actor,
            critic=critic,
            actor_target=polyak(actor, state.actor_target, self.tau),
            critic_target=polyak(critic, state.critic_target, self.tau),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            updates=state.updates + 1,
        )
        return new_state, Metrics(critic_loss, actor_loss, q)

    def update_many(self, state: AgentState, batches: Batch) -> tuple[AgentState, Metrics]:
        """`update` over a leading axis of batches in one compiled loop; returns the mean metrics."""
        state, metrics = jax.lax.scan(self.update, state, batches)
        return state, jax.tree.map(jnp.mean, metrics)


def train_apply(network: Network, variables: Params, *inputs: jnp.ndarray) -> tuple[jnp.ndarray, Any]:
    """A forward pass in training mode.

    Networks with batch normalization (flax variables holding "batch_stats") normalize with the
    minibatch's statistics and return their updated running statistics; others return None.
    The gradient reaching "batch_stats" is exactly zero, so optimizers leave them unchanged.
    """
    if isinstance(variables, Mapping) and "batch_stats" in variables:
        out, mutated = network.apply(variables, *inputs, train=True, mutable=["batch_stats"])
        return out, mutated["batch_stats"]
    return network.apply(variables, *inputs), None


def with_stats(variables: Params, stats: Any) -> Params:
    return variables if stats is None else {**variables, "batch_stats": stats}


def weight_matrices(variables: Params) -> Any:
    """A mask selecting the weight matrices (arrays of 2 or more dimensions) among the trainable
    parameters, for L2 weight decay: biases, batch-norm scales and statistics are left out."""
    trainable = variables["params"] if isinstance(variables, Mapping) and "params" in variables else variables
    mask = jax.tree.map(lambda x: x.ndim >= 2, trainable)
    if trainable is variables:
        return mask
    return {k: mask if k == "params" else jax.tree.map(lambda _: False, v) for k, v in variables.items()}


def polyak(online: Params, target: Params, tau: float) -> Params:
    """theta' <- tau * theta + (1 - tau) * theta'."""
    return optax.incremental_update(online, target, tau)


def check_shapes(agent: DDPG, actor: Params, critic: Params, obs: jnp.ndarray, action: jnp.ndarray) -> None:
    """Fail early, with the shapes, when a (custom) network does not fit the spaces."""
    batch, action_dim = action.shape
    out = jax.eval_shape(agent.actor.apply, actor, obs)
    if getattr(out, "shape", None) != (batch, action_dim):
        raise ValueError(
            f"the actor maps observations of shape {tuple(obs.shape)} to {getattr(out, 'shape', out)}, "
            f"but the action space needs ({batch}, {action_dim}): make its last layer output "
            f"{action_dim} values per observation, squashed into [-1, 1] (for example by tanh)"
        )
    out = jax.eval_shape(agent.critic.apply, critic, obs, action)
    if getattr(out, "shape", None) not in ((batch,), (batch, 1)):
        raise ValueError(
            f"the critic maps {batch} (observation, action) pairs to shape {getattr(out, 'shape', out)}; "
            f"it must give one value per pair, shape ({batch},) or ({batch}, 1)"
        )
