"""The only module that knows Gymnasium: making environments, checking their spaces, rescaling
actions, stepping them into transitions, and saving their state for an exact resume.

The agent acts in [-1, 1]; `ActionScaler` is the one place that maps to the environment's bounds.
A run's environments are one Gymnasium vector env with SAME_STEP autoreset holding every
environment of every seed, seed-major: environment j of seed k is sub-environment k * num_envs + j.
"""

from __future__ import annotations

import difflib
import pickle
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

EnvFactory = Callable[[], gym.Env]


class EnvError(ValueError):
    """An environment cannot be used by ddpgx; the message says why and what to do."""


def env_factory(env_id: str, max_episode_steps: int = 0, **kwargs: Any) -> EnvFactory:
    """A function that makes the environment `env_id`, with ddpgx's errors for the common mistakes.

    `max_episode_steps` > 0 replaces the environment's registered time limit.
    """
    if max_episode_steps:
        kwargs["max_episode_steps"] = max_episode_steps

    def make() -> gym.Env:
        try:
            return gym.make(env_id, **kwargs)
        except (gym.error.DependencyNotInstalled, ImportError) as error:
            spec = gym.registry.get(env_id)
            mujoco = "mujoco" in str(getattr(spec, "entry_point", "")) or "mujoco" in str(error)
            fix = ("install the MuJoCo extra: pip install 'ddpgx[mujoco]'" if mujoco
                   else "install the package the environment needs")
            raise EnvError(f"{env_id} needs a package that is not installed ({error}); {fix}") from None
        except (gym.error.NameNotFound, gym.error.VersionNotFound, gym.error.NamespaceNotFound) as error:
            close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else " See gymnasium.pprint_registry()."
            raise EnvError(f"unknown environment {env_id!r}: {error}{hint}") from None

    return make


def with_time_limit(make_env: EnvFactory, max_episode_steps: int) -> EnvFactory:
    """`make_env` with its episodes truncated after `max_episode_steps` steps (0: unchanged)."""
    if not max_episode_steps:
        return make_env
    return lambda: gym.wrappers.TimeLimit(make_env(), max_episode_steps)


def has_time_limit(env: gym.Env) -> bool:
    """Whether the environment's episodes are truncated by a time limit."""
    return (any(isinstance(layer, gym.wrappers.TimeLimit) for layer in _layers(env))
            or getattr(env.spec, "max_episode_steps", None) is not None)


def check_spaces(observation_space: gym.Space, action_space: gym.Space, name: str) -> None:
    """ddpgx needs a Box observation and a bounded, one-dimensional Box action."""
    supported = "ddpgx supports a Box observation space and a one-dimensional Box action space with finite bounds"
    if not isinstance(observation_space, gym.spaces.Box):
        raise EnvError(
            f"{name} has observation space {observation_space}; {supported}. "
            f"Flatten it first (gymnasium.wrappers.FlattenObservation)."
        )
    if not isinstance(action_space, gym.spaces.Box):
        raise EnvError(f"{name} has action space {action_space}; {supported} (DDPG is for continuous actions).")
    if len(action_space.shape) != 1:
        raise EnvError(f"{name} has action space {action_space} of shape {action_space.shape}; {supported}.")
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise EnvError(
            f"{name} has action space {action_space} with infinite bounds; {supported}: "
            f"wrap the environment with gymnasium.wrappers.ClipAction or RescaleAction to finite bounds."
        )


class ActionScaler(NamedTuple):
    """Maps actions between the agent's [-1, 1] and the environment's [low, high], affinely."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def from_space(cls, space: gym.spaces.Box) -> ActionScaler:
        return cls(np.asarray(space.low, np.float64), np.asarray(space.high, np.float64))

    def to_env(self, action: np.ndarray) -> np.ndarray:
        return self.low + (np.asarray(action, np.float64) + 1.0) * 0.5 * (self.high - self.low)


class Step(NamedTuple):
    """One step of every environment; arrays have shape (seeds, envs, ...).

    `next_obs` is the observation the transition ends in (at an episode end, the episode's final
    observation); `obs` is the one the next action is taken from (after an autoreset, the new
    episode's first observation).
    """

    obs: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


def env_seeds(seed: int, count: int, stream: int) -> list[int]:
    """Independent environment seeds derived from a run seed; stream 0 trains, stream 1 evaluates."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence([seed, stream]).spawn(count)]


class CheckedEnv(gym.Wrapper):
    """Checks every observation and reward against the spaces, so a faulty environment is named at once.

    Without it a wrong shape fails deep inside the vector env's concatenation, a wrong dtype is
    silently cast, and a NaN reaches the networks.
    """

    def __init__(self, env: gym.Env, name: str):
        super().__init__(env)
        self.name, self.steps = name, 0

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.steps = 0
        return self._check(obs, 0.0), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return self._check(obs, reward), reward, terminated, truncated, info

    def _check(self, obs: Any, reward: Any) -> Any:
        space = self.observation_space
        where = f"{self.name} (episode step {self.steps})"
        if not isinstance(obs, np.ndarray) or obs.shape != space.shape or obs.dtype != space.dtype:
            got = f"{type(obs).__name__} of shape {np.shape(obs)}, dtype {getattr(obs, 'dtype', None)}"
            raise EnvError(f"{where} returned an observation ({got}) that does not match its observation space "
                           f"{space} (shape {space.shape}, dtype {space.dtype}): fix the environment or its space")
        if not np.all(np.isfinite(obs)):
            raise FloatingPointError(f"{where} returned a non-finite observation {obs.tolist()}")
        if not np.isscalar(reward) and np.shape(reward) != ():
            raise EnvError(f"{where} returned a reward of shape {np.shape(reward)}; it must be one number")
        if not np.isfinite(reward):
            raise FloatingPointError(f"{where} returned a non-finite reward {reward}")
        return obs


class Envs:
    """The vector env of a run, reshaped to (seeds, envs) and speaking the agent's action space."""

    def __init__(self, make_env: EnvFactory, num_seeds: int, num_envs: int, name: str):
        self.num_seeds, self.num_envs, self.name = num_seeds, num_envs, name
        self.vector = SyncVectorEnv(
            [lambda: CheckedEnv(make_env(), name)] * (num_seeds * num_envs), autoreset_mode=AutoresetMode.SAME_STEP
        )
        check_spaces(self.vector.single_observation_space, self.vector.single_action_space, name)
        self.obs_shape = tuple(self.vector.single_observation_space.shape)
        self.action_dim = int(self.vector.single_action_space.shape[0])
        self.scaler = ActionScaler.from_space(self.vector.single_action_space)
        self.action_dtype = self.vector.single_action_space.dtype
        self.time_limited = has_time_limit(self.vector.envs[0])

    def _split(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x).reshape(self.num_seeds, self.num_envs, *np.shape(x)[1:])

    def reset(self, seeds: list[int], stream: int = 0) -> np.ndarray:
        """Reset every environment; seeds[k] seeds the environments of seed k (see `env_seeds`)."""
        env_seeds_flat = [s for seed in seeds for s in env_seeds(seed, self.num_envs, stream)]
        obs, _ = self.vector.reset(seed=env_seeds_flat)
        return self._as_agent_obs(obs)

    def step(self, action: np.ndarray) -> Step:
        """Step with actions in [-1, 1], shape (seeds, envs, action_dim)."""
        env_action = self.scaler.to_env(action.reshape(-1, self.action_dim)).astype(self.action_dtype)
        obs, reward, terminated, truncated, info = self.vector.step(env_action)
        obs = self._as_agent_obs(obs)
        next_obs = obs.copy()
        if "_final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                next_obs.reshape(-1, *self.obs_shape)[i] = info["final_obs"][i]
        reward = np.asarray(reward, np.float32)
        return Step(obs, next_obs, self._split(reward), self._split(terminated), self._split(truncated))

    def _as_agent_obs(self, obs: np.ndarray) -> np.ndarray:
        """float32 with shape (seeds, envs, *obs_shape); CheckedEnv has checked the values."""
        return self._split(np.asarray(obs, np.float32))

    def get_state(self, seed: int) -> bytes:
        """The state of seed `seed`'s environments (physics, RNGs, wrappers' counters) as bytes."""
        start = seed * self.num_envs
        return pickle.dumps([env_state(env) for env in self.vector.envs[start : start + self.num_envs]])

    def set_state(self, seed: int, state: bytes) -> None:
        start = seed * self.num_envs
        for env, layers in zip(self.vector.envs[start : start + self.num_envs], pickle.loads(state)):
            set_env_state(env, layers)

    def close(self) -> None:
        self.vector.close()


# Attributes that are rebuilt by the environment itself, never saved: the wrapped env, MuJoCo's
# model and renderer (its data is saved through mj_getState).
_SKIP = {"env", "model", "data", "mujoco_renderer", "renderer", "viewer", "_viewers", "spec", "_cached_spec"}


def _layers(env: gym.Env) -> list[Any]:
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def env_state(env: gym.Env) -> list[dict[str, Any]]:
    """Every wrapper's and the base env's attributes, with MuJoCo's physics through mj_getState.

    Gymnasium has no state API, and MuJoCo envs pickle as their constructor arguments only, so
    this walks the wrapper chain. An attribute that cannot be pickled is an error: the resume
    would not be exact.
    """
    states = []
    for layer in _layers(env):
        state = {k: v for k, v in vars(layer).items() if k not in _SKIP}
        physics = _mujoco_state(layer)
        if physics is not None:
            state["__mujoco_state__"] = physics
        for key, value in state.items():
            try:
                pickle.dumps(value)
            except Exception as error:
                raise EnvError(
                    f"cannot save the state of {type(layer).__name__}.{key} ({error}); "
                    f"make it picklable or checkpoint without the environment state"
                ) from None
        states.append(state)
    return states


def set_env_state(env: gym.Env, states: list[dict[str, Any]]) -> None:
    layers = _layers(env)
    if len(layers) != len(states):
        raise EnvError("the saved environment state does not match this environment's wrappers")
    for layer, state in zip(layers, states):
        state = dict(state)
        physics = state.pop("__mujoco_state__", None)
        vars(layer).update(state)
        if physics is not None:
            _set_mujoco_state(layer, physics)


def _mujoco_state(layer: Any) -> np.ndarray | None:
    if not (hasattr(layer, "model") and hasattr(layer, "data") and type(layer.data).__name__ == "MjData"):
        return None
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(layer.model, spec))
    mujoco.mj_getState(layer.model, layer.data, state, spec)
    return state


def _set_mujoco_state(layer: Any, state: np.ndarray) -> None:
    import mujoco

    mujoco.mj_setState(layer.model, layer.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(layer.model, layer.data)


def record_video(policy: Callable[[np.ndarray], np.ndarray], env_id: str, folder: Any, episodes: int,
                 seed: int, max_episode_steps: int = 0) -> list[Any]:
    """Record `episodes` noise-free episodes of `policy` (environment units) as MP4 files in `folder`."""
    from pathlib import Path

    try:
        import moviepy  # noqa: F401  (RecordVideo writes through it)
    except ImportError:
        raise EnvError("recording a video needs moviepy: pip install 'ddpgx[video]'") from None
    folder = Path(folder)
    env = gym.wrappers.RecordVideo(
        env_factory(env_id, max_episode_steps, render_mode="rgb_array")(), str(folder), episode_trigger=lambda _: True,
        name_prefix=env_id.replace("/", "_").replace(":", "_"), disable_logger=True,
    )
    try:
        for episode_seed in env_seeds(seed, episodes, stream=1):
            obs, _ = env.reset(seed=episode_seed)
            while True:
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                if terminated or truncated:
                    break
    except gym.error.DependencyNotInstalled as error:
        raise EnvError(f"rendering {env_id} needs a package that is not installed: {error}") from None
    finally:
        env.close()
    return sorted(folder.glob("*.mp4"))
