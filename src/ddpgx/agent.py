"""The seed's equations: the critic loss, the actor loss, the update and the target networks.

Everything here is a pure function of explicit state, written for one agent. The training loop
runs several independent agents at once by `jax.vmap` over a leading seed axis of the state.

    critic:  L(phi)   = mean_batch (Q_phi(s, a) - y)^2,
             y        = r + gamma * (1 - terminated) * Q_phi'(s', pi_theta'(s'))
    actor:   J(theta) = -mean_batch Q_phi(s, pi_theta(s))   (the deterministic policy gradient)
    targets: theta'  <- tau * theta + (1 - tau) * theta'   (and the same for phi')

Two options of the replay reach these equations through the batch, and are absent (None) otherwise:
with n-step returns, `r` is the discounted sum of the next rewards and `gamma` is replaced by each
transition's `discount` (gamma^m, m the steps summed); with prioritized replay, each squared error
of the critic loss is multiplied by its transition's importance-sampling `weight`. `update` also
returns the TD errors Q(s, a) - y, from which prioritized replay takes its priorities.

The networks' forward passes in training (`Network.apply_train`) also return their variables with
any new non-trained state (batch statistics); for the default networks these are the variables
unchanged. `networks.py` is the one place that knows about it.
"""

from __future__ import annotations

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
    discount: jnp.ndarray | None = None
    """Per transition, the discount of the bootstrap (gamma^m for an m-step return); None: gamma."""
    weight: jnp.ndarray | None = None
    """Per transition, the importance-sampling weight of its squared error; None: equal weights."""


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
    """Mean Q(s, a) over the batch, from the critic before its step."""


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

    def act(self, actor: Params, obs: jnp.ndarray) -> jnp.ndarray:
        """pi(s) in [-1, 1], without exploration noise."""
        return self.actor.apply(actor, obs)

    def q(self, critic: Params, obs: jnp.ndarray, action: jnp.ndarray) -> tuple[jnp.ndarray, Params]:
        """Q(s, a) in training mode, one value per row, and the critic's variables after the pass."""
        q, critic = self.critic.apply_train(critic, obs, action)
        return q.reshape(obs.shape[0]), critic

    def td_target(self, actor_target: Params, critic_target: Params, batch: Batch) -> jnp.ndarray:
        """y = r + gamma * (1 - terminated) * Q'(s', pi'(s')); only termination stops bootstrapping.
        With n-step returns the batch's `discount` (gamma^m) takes gamma's place."""
        next_action, _ = self.actor.apply_train(actor_target, batch.next_obs)
        next_q, _ = self.q(critic_target, batch.next_obs, next_action)
        not_terminated = 1.0 - batch.terminated.astype(next_q.dtype)
        gamma = self.gamma if batch.discount is None else batch.discount
        return batch.reward + gamma * not_terminated * next_q

    def critic_loss(self, critic: Params, target: jnp.ndarray, batch: Batch) -> tuple[jnp.ndarray, tuple]:
        """Mean squared error between Q(s, a) and the (fixed) target y, each weighted by the batch's
        `weight` if it has one; also returns mean Q, the TD errors Q(s, a) - y and the critic's
        variables after the forward pass."""
        q, critic = self.q(critic, batch.obs, batch.action)
        error = q - target
        squared = error**2 if batch.weight is None else batch.weight * error**2
        return jnp.mean(squared), (jnp.mean(q), error, critic)

    def actor_loss(self, actor: Params, critic: Params, obs: jnp.ndarray) -> tuple[jnp.ndarray, Params]:
        """-mean Q(s, pi(s)); its gradient in `actor` is the deterministic policy gradient. Also
        returns the actor's variables after the forward pass."""
        action, actor = self.actor.apply_train(actor, obs)
        q, _ = self.q(critic, obs, action)
        return -jnp.mean(q), actor

    def update(self, state: AgentState, batch: Batch) -> tuple[AgentState, Metrics, jnp.ndarray]:
        """One gradient step of the critic, then of the actor (on the new critic), then the targets.
        Returns the new state, the metrics and the TD errors Q(s, a) - y of the critic before its step."""
        target = jax.lax.stop_gradient(self.td_target(state.actor_target, state.critic_target, batch))
        (critic_loss, (q, td_error, critic)), critic_grad = jax.value_and_grad(self.critic_loss, has_aux=True)(
            state.critic, target, batch
        )
        critic_step, critic_opt = self.critic_optimizer.update(critic_grad, state.critic_opt, state.critic)
        critic = optax.apply_updates(critic, critic_step)

        (actor_loss, actor), actor_grad = jax.value_and_grad(self.actor_loss, has_aux=True)(
            state.actor, critic, batch.obs
        )
        actor_step, actor_opt = self.actor_optimizer.update(actor_grad, state.actor_opt, state.actor)
        actor = optax.apply_updates(actor, actor_step)

        new_state = AgentState(
            actor=actor,
            critic=critic,
            actor_target=polyak(actor, state.actor_target, self.tau),
            critic_target=polyak(critic, state.critic_target, self.tau),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            updates=state.updates + 1,
        )
        return new_state, Metrics(critic_loss, actor_loss, q), td_error

    def update_many(self, state: AgentState, batches: Batch) -> tuple[AgentState, Metrics, jnp.ndarray]:
        """`update` over a leading axis of batches in one compiled loop; returns the mean metrics and
        every batch's TD errors."""

        def step(state, batch):
            state, metrics, td_error = self.update(state, batch)
            return state, (metrics, td_error)

        state, (metrics, td_errors) = jax.lax.scan(step, state, batches)
        return state, jax.tree.map(jnp.mean, metrics), td_errors


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
