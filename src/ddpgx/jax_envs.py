"""Environments written in JAX, for the on-device loop: gymnax's and Brax's tasks behind one pure
interface.

A task is named by its simulator, `gymnax/Pendulum-v1` or `brax/halfcheetah`, so a run says which
simulator stepped it (gymnax's Pendulum-v1 and Gymnasium's are the same equations, not the same
code). Both packages come with the extra: pip install 'ddpgx[jax-envs]'.

`JaxEnv` is a pure pair of functions, vmapped over environments and seeds by the caller:

    reset(key)                 -> EnvState
    step(key, state, action)   -> (EnvState, Transition)

`action` is in the agent's [-1, 1]; `step` rescales it to the simulator's bounds, the one place it
happens for these tasks (as `envs.ActionScaler` is for Gymnasium's). The time limit is kept here,
not by the simulator: an episode that reaches `max_episode_steps` is `truncated` (it bootstraps),
and only the simulator's own end of an episode is `terminated`. Episodes reset themselves in the
same step (Gymnasium's SAME_STEP autoreset): the transition's `next_obs` is the episode's final
observation, the state's `obs` the next episode's first one.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddpgx.config import JAX_SIMULATORS
from ddpgx.envs import EnvError

SIMULATORS = tuple(prefix.rstrip("/") for prefix in JAX_SIMULATORS)
GYMNAX_TASKS = ("Pendulum-v1", "MountainCarContinuous-v0")
"""gymnax's tasks with continuous actions."""
BRAX_TASKS = ("halfcheetah", "hopper", "walker2d", "ant", "humanoid", "inverted_pendulum",
              "inverted_double_pendulum", "reacher", "pusher", "swimmer", "humanoidstandup")
BRAX_EPISODE_STEPS = 1_000
"""Brax's locomotion tasks have no time limit of their own; 1,000 steps is Brax's training default
(`brax.envs.create(episode_length=1000)`) and Gymnasium's for the MuJoCo tasks."""
BRAX_BACKEND = "generalized"
"""Brax's physics pipeline for its tasks: `generalized`, each task's default in Brax 0.14."""


class EnvState(NamedTuple):
    """One environment's state: the simulator's own, the observation the next action is taken from,
    and the steps taken in the episode (for the time limit)."""

    inner: Any
    obs: jax.Array
    time: jax.Array


class Transition(NamedTuple):
    """What one step returns besides the new state (s' is the true final observation at an episode's end)."""

    next_obs: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array


@dataclass(frozen=True, eq=False)
class JaxEnv:
    """A task written in JAX, as pure functions of explicit state."""

    name: str
    obs_shape: tuple[int, ...]
    action_dim: int
    low: np.ndarray
    high: np.ndarray
    max_episode_steps: int
    sim_reset: Callable[[jax.Array], tuple[Any, jax.Array]]
    """key -> (simulator state, first observation)."""
    sim_step: Callable[[jax.Array, Any, jax.Array], tuple[Any, jax.Array, jax.Array, jax.Array]]
    """(key, simulator state, action in the simulator's bounds) -> (state, obs, reward, terminated)."""

    def reset(self, key: jax.Array) -> EnvState:
        inner, obs = self.sim_reset(key)
        return EnvState(inner, obs.astype(jnp.float32), jnp.zeros((), jnp.int32))

    def to_env(self, action: jax.Array) -> jax.Array:
        """[-1, 1] -> [low, high], affinely: the one rescaling of the actions of these tasks."""
        return self.low + (action + 1.0) * 0.5 * (self.high - self.low)

    def step(self, key: jax.Array, state: EnvState, action: jax.Array) -> tuple[EnvState, Transition]:
        """Step with `action` in [-1, 1]; an episode that ends is reset in the same step."""
        step_key, reset_key = jax.random.split(key)
        inner, next_obs, reward, terminated = self.sim_step(step_key, state.inner, self.to_env(action))
        next_obs = next_obs.astype(jnp.float32)
        time = state.time + 1
        terminated = terminated.astype(bool)
        truncated = (time >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        fresh = self.reset(reset_key)
        new = EnvState(inner, next_obs, time)
        new = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, new)
        return new, Transition(next_obs, reward.astype(jnp.float32), terminated, truncated)


def is_jax_env(env_id: str) -> bool:
    """Whether `env_id` names a task written in JAX (`gymnax/...`, `brax/...`)."""
    return isinstance(env_id, str) and env_id.startswith(JAX_SIMULATORS)


def make(env_id: str, max_episode_steps: int = 0) -> JaxEnv:
    """The task `env_id` (`gymnax/NAME` or `brax/NAME`); `max_episode_steps` > 0 replaces its time limit."""
    simulator, _, task = env_id.partition("/")
    tasks = GYMNAX_TASKS if simulator == "gymnax" else BRAX_TASKS
    if task not in tasks:
        names = [f"{simulator}/{t}" for t in tasks]
        close = difflib.get_close_matches(env_id, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise EnvError(f"unknown task {env_id!r}: {hint}ddpgx runs these {simulator} tasks: {', '.join(names)}")
    try:
        module = importlib.import_module(simulator)
    except ImportError as error:
        raise EnvError(f"{env_id} needs {simulator}, which is not installed ({error}): "
                       f"pip install 'ddpgx[jax-envs]'") from None
    env = _gymnax(module, task) if simulator == "gymnax" else _brax(task)
    if max_episode_steps:
        env = JaxEnv(**{**env.__dict__, "max_episode_steps": int(max_episode_steps)})
    return env


def _gymnax(gymnax: Any, task: str) -> JaxEnv:
    """A gymnax task without gymnax's own time limit and autoreset (they are JaxEnv's): its
    `max_steps_in_episode` becomes the JaxEnv's limit, and gymnax's `done` is then termination alone."""
    env, params = gymnax.make(task)
    limit = int(params.max_steps_in_episode)
    params = params.replace(max_steps_in_episode=np.iinfo(np.int32).max)
    space = env.action_space(params)
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape).copy()
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape).copy()

    def sim_reset(key):
        obs, state = env.reset_env(key, params)
        return state, obs

    def sim_step(key, state, action):
        # gymnax's Pendulum takes its action as an array of one (it reads action[0] or squeezes)
        obs, state, reward, done, _ = env.step_env(key, state, action, params)
        return state, obs, jnp.asarray(reward), jnp.asarray(done)

    obs_shape = tuple(env.observation_space(params).shape)
    return JaxEnv(f"gymnax/{task}", obs_shape, int(np.prod(space.shape)), low, high, limit, sim_reset, sim_step)


def _brax(task: str) -> JaxEnv:
    """A Brax task: its `done` is termination (Brax's envs have no time limit unwrapped)."""
    import logging
    import warnings

    from brax import envs as brax_envs

    logging.getLogger("absl").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = brax_envs.get_environment(task, backend=BRAX_BACKEND)
    ctrl = getattr(getattr(env.sys, "actuator", None), "ctrl_range", None)
    if ctrl is not None and np.shape(ctrl) == (env.action_size, 2) and np.all(np.isfinite(ctrl)):
        low, high = np.asarray(ctrl[:, 0], np.float32), np.asarray(ctrl[:, 1], np.float32)
    else:
        low, high = -np.ones(env.action_size, np.float32), np.ones(env.action_size, np.float32)

    def sim_reset(key):
        state = env.reset(key)
        return state, state.obs

    def sim_step(key, state, action):
        state = env.step(state, action)
        return state, state.obs, state.reward, state.done > 0

    return JaxEnv(f"brax/{task}", (int(env.observation_size),), int(env.action_size), low, high,
                  BRAX_EPISODE_STEPS, sim_reset, sim_step)
