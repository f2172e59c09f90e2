"""The only module that knows Gymnasium: making environments, checking their spaces, rescaling
actions, stepping them into transitions, and saving their state for an exact resume.

The agent acts in [-1, 1]; `ActionScaler` is the one place that maps to the environment's bounds.
A Dict observation (nested Dicts too) of Boxes is flattened here, into one float32 vector
(`ObsLayout`), so the rest of ddpgx (replay, networks, exports) sees a flat Box; `ObsLayout` fixes
the order, and `Goals` is the one door to a goal environment's `compute_reward`.
A run's environments are one Gymnasium vector env with SAME_STEP autoreset holding every
environment of every seed, seed-major: environment j of seed k is sub-environment k * num_envs + j.
"""

from __future__ import annotations

import difflib
import pickle
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

EnvFactory = Callable[[], gym.Env]


class EnvError(ValueError):
    """An environment cannot be used by ddpgx; the message says why and what to do."""


PLUGINS = (
    ("gymnasium_robotics", "robotics", ("Fetch", "HandManipulate", "HandReach", "AdroitHand", "PointMaze", "AntMaze",
                                        "FrankaKitchen")),
    ("shimmy", "dmc", ("dm_control/",)),
)
"""Packages that register environments with Gymnasium when imported: (module, ddpgx extra that
installs it, the prefixes of its environment ids). gymnasium-robotics registers the Fetch and
Shadow Hand tasks; Shimmy registers the DeepMind Control Suite as dm_control/DOMAIN-TASK-v0."""


def register_plugins(env_id: str) -> None:
    """Import the package that registers `env_id` if its id is one of `PLUGINS`' (registering its
    environments unless that is done); a missing package is an EnvError naming the extra to install."""
    import importlib

    for module, extra, prefixes in PLUGINS:
        if env_id.startswith(prefixes):
            try:
                package = importlib.import_module(module)
            except ImportError as error:
                if env_id in gym.registry:  # registered by the user's own code
                    return
                raise EnvError(f"{env_id} needs the {module} package, which is not installed ({error}); install the "
                               f"extra: pip install 'ddpgx[{extra}]'") from None
            if module == "gymnasium_robotics":
                _joint_helpers_for_mujoco_4()
            if env_id not in gym.registry:
                gym.register_envs(package)


def _joint_helpers_for_mujoco_4() -> None:
    """Let gymnasium-robotics (1.4.2 and earlier) set up its environments under MuJoCo 4.

    Its joint helpers (`gymnasium_robotics.utils.mujoco_utils.set_joint_qpos` and three more) assert
    `model.jnt_type[j] in (mjJNT_HINGE, mjJNT_SLIDE)`. The tuple's members compare themselves with
    the numpy integer, and MuJoCo 4's enums answer False to a numpy integer, so every Fetch task
    fails in its constructor with an AssertionError. Where that comparison fails, the four helpers
    are replaced by ones that compare the joint type as a Python int and otherwise do the same;
    where it works (MuJoCo 3, or a fixed release), nothing is changed.
    """
    import mujoco

    joint = mujoco.mjtJoint
    if joint.mjJNT_SLIDE in (np.int32(int(joint.mjJNT_SLIDE)),) and np.int32(int(joint.mjJNT_SLIDE)) in \
            (joint.mjJNT_HINGE, joint.mjJNT_SLIDE):
        return
    from gymnasium_robotics.utils import mujoco_utils

    sizes = {"qpos": {int(joint.mjJNT_FREE): 7, int(joint.mjJNT_BALL): 4},
             "qvel": {int(joint.mjJNT_FREE): 6, int(joint.mjJNT_BALL): 3}}

    def where(model: Any, name: str, field: str) -> slice:
        joint_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if joint_id == -1:
            raise ValueError(f"joint {name!r} is not part of the model")
        start = int((model.jnt_qposadr if field == "qpos" else model.jnt_dofadr)[joint_id])
        return slice(start, start + sizes[field].get(int(model.jnt_type[joint_id]), 1))

    def setter(field: str) -> Callable:
        def set_joint(model: Any, data: Any, name: str, value: Any) -> None:
            index = where(model, name, field)
            value = np.array(value)
            if index.stop - index.start > 1 and value.shape != (index.stop - index.start,):
                raise ValueError(f"joint {name!r} takes {field} of shape ({index.stop - index.start},), got {value.shape}")
            getattr(data, field)[index] = value
        return set_joint

    def getter(field: str) -> Callable:
        return lambda model, data, name: getattr(data, field)[where(model, name, field)].copy()

    mujoco_utils.set_joint_qpos, mujoco_utils.set_joint_qvel = setter("qpos"), setter("qvel")
    mujoco_utils.get_joint_qpos, mujoco_utils.get_joint_qvel = getter("qpos"), getter("qvel")


def env_factory(env_id: str, max_episode_steps: int = 0, **kwargs: Any) -> EnvFactory:
    """A function that makes the environment `env_id`, with ddpgx's errors for the common mistakes.

    `max_episode_steps` > 0 replaces the environment's registered time limit. Ids of the packages
    in `PLUGINS` (gymnasium-robotics, Shimmy's DeepMind Control Suite) are registered first.
    """
    if max_episode_steps:
        kwargs["max_episode_steps"] = max_episode_steps

    def make() -> gym.Env:
        register_plugins(env_id)
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


SUPPORTED = ("ddpgx supports a Box observation space (or a Dict, possibly nested, of Boxes) and a one-dimensional "
             "Box action space with finite bounds")
KEY_SEPARATOR = "/"
"""Joins the keys of a nested Dict observation into one name: {"a": {"b": Box}} has the key "a/b"."""


class ObsLayout(NamedTuple):
    """How a Dict observation becomes the flat float32 vector the agent sees.

    The order is fixed by the keys alone, whatever order the space or the environment gives them
    in: keys sorted as strings at every level, a nested Dict taking its place in its parent's order
    and expanding depth first (its keys joined with "/"), each Box flattened in C order. For a Dict
    made from a plain dict this is `gymnasium.spaces.flatten`'s order (Gymnasium sorts such keys).
    Goal environments' keys sort as achieved_goal, desired_goal, observation.
    """

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def from_space(cls, space: gym.spaces.Dict, name: str = "the environment") -> ObsLayout:
        keys, shapes = [], []

        def walk(space: gym.Space, prefix: str) -> None:
            for key in sorted(space.spaces, key=str):
                if not isinstance(key, str) or not key or KEY_SEPARATOR in key:
                    raise EnvError(f"{name} has the observation key {key!r}; ddpgx needs non-empty string keys "
                                   f"without {KEY_SEPARATOR!r} (it joins nested keys with it)")
                sub = space.spaces[key]
                if isinstance(sub, gym.spaces.Dict):
                    walk(sub, prefix + key + KEY_SEPARATOR)
                elif isinstance(sub, gym.spaces.Box):
                    keys.append(prefix + key)
                    shapes.append(tuple(int(d) for d in sub.shape))
                else:
                    raise EnvError(f"{name} has observation space {space} whose key {prefix + key!r} is "
                                   f"{sub}; {SUPPORTED}")

        walk(space, "")
        if not keys:
            raise EnvError(f"{name} has an empty Dict observation space; give it at least one Box")
        return cls(tuple(keys), tuple(shapes))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(shape, dtype=np.int64)) for shape in self.shapes)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def slices(self) -> dict[str, slice]:
        """Where each key lies in the flat vector."""
        ends = np.cumsum((0, *self.sizes))
        return {key: slice(int(a), int(b)) for key, a, b in zip(self.keys, ends[:-1], ends[1:])}

    def flatten(self, obs: Any) -> np.ndarray:
        """A Dict observation (one, or a batch: every value with the same leading axes) as float32
        vectors, shape (..., size)."""
        parts, lead = [], None
        for key, shape in zip(self.keys, self.shapes):
            value = obs
            for part in key.split(KEY_SEPARATOR):
                if not hasattr(value, "keys") or part not in value:
                    raise ValueError(f"the observation has no key {key!r}; it needs the keys "
                                     f"{', '.join(self.keys)}")
                value = value[part]
            value = np.asarray(value)
            this_lead = value.shape[: value.ndim - len(shape)]
            if value.shape[len(this_lead):] != shape or (lead is not None and this_lead != lead):
                raise ValueError(f"the observation's {key!r} has shape {value.shape}; it must be {shape}"
                                 + (f" with the leading axes {lead} of the other keys" if lead is not None else
                                    " (or a batch of them)"))
            lead = this_lead
            parts.append(value.reshape(*lead, -1).astype(np.float32))
        return np.concatenate(parts, axis=-1)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"key": key, "shape": list(shape)} for key, shape in zip(self.keys, self.shapes)]

    @classmethod
    def from_json(cls, values: list[dict[str, Any]]) -> ObsLayout:
        return cls(tuple(v["key"] for v in values), tuple(tuple(int(d) for d in v["shape"]) for v in values))


def obs_layout(space: gym.Space, name: str = "the environment") -> ObsLayout | None:
    """The layout of a Dict observation space; None for a Box, which the agent sees as it is."""
    return ObsLayout.from_space(space, name) if isinstance(space, gym.spaces.Dict) else None


GOAL_KEYS = ("achieved_goal", "desired_goal")
"""The keys of a goal environment's observation that hindsight relabeling reads and rewrites
(gymnasium-robotics' GoalEnv)."""


class Goals(NamedTuple):
    """A goal environment as hindsight experience replay sees it: where the achieved and desired
    goals lie in the flat observation, and its reward function, vectorized."""

    achieved: slice
    desired: slice
    compute_reward: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """(achieved goals, desired goals), each (batch, goal_size), -> rewards (batch,) float32."""



def check_spaces(observation_space: gym.Space, action_space: gym.Space, name: str) -> None:
    """ddpgx needs a Box observation (or a Dict of Boxes) and a bounded, one-dimensional Box action."""
    supported = SUPPORTED
    if isinstance(observation_space, gym.spaces.Dict):
        obs_layout(observation_space, name)
    elif not isinstance(observation_space, gym.spaces.Box):
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
    success: np.ndarray | None = None
    """Where an episode ended, its final step's `info["is_success"]` (0 or 1); NaN elsewhere, and
    where the environment does not report it."""


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
        where = f"{self.name} (episode step {self.steps})"
        self._check_obs(obs, self.observation_space, where, "")
        if not np.isscalar(reward) and np.shape(reward) != ():
            raise EnvError(f"{where} returned a reward of shape {np.shape(reward)}; it must be one number")
        if not np.isfinite(reward):
            raise FloatingPointError(f"{where} returned a non-finite reward {reward}")
        return obs

    def _check_obs(self, obs: Any, space: gym.Space, where: str, key: str) -> None:
        what = f"an observation{f' key {key!r}' if key else ''}"
        if isinstance(space, gym.spaces.Dict):
            if not hasattr(obs, "keys") or set(obs.keys()) != set(space.spaces):
                got = sorted(obs.keys()) if hasattr(obs, "keys") else type(obs).__name__
                raise EnvError(f"{where} returned {what} ({got}) that does not match its observation space's keys "
                               f"{sorted(space.spaces)}: fix the environment or its space")
            for sub_key, sub in space.spaces.items():
                self._check_obs(obs[sub_key], sub, where, f"{key}{KEY_SEPARATOR}{sub_key}" if key else sub_key)
            return
        if not isinstance(obs, np.ndarray) or obs.shape != space.shape or obs.dtype != space.dtype:
            got = f"{type(obs).__name__} of shape {np.shape(obs)}, dtype {getattr(obs, 'dtype', None)}"
            raise EnvError(f"{where} returned {what} ({got}) that does not match its observation space "
                           f"{space} (shape {space.shape}, dtype {space.dtype}): fix the environment or its space")
        if not np.all(np.isfinite(obs)):
            raise FloatingPointError(f"{where} returned a non-finite observation{f' {key!r}' if key else ''} "
                                     f"{obs.tolist()}")



class Envs:
    """The vector env of a run, reshaped to (seeds, envs) and speaking the agent's action space."""

    def __init__(self, make_env: EnvFactory, num_seeds: int, num_envs: int, name: str):
        self.num_seeds, self.num_envs, self.name = num_seeds, num_envs, name
        self.vector = SyncVectorEnv(
            [lambda: CheckedEnv(make_env(), name)] * (num_seeds * num_envs), autoreset_mode=AutoresetMode.SAME_STEP
        )
        check_spaces(self.vector.single_observation_space, self.vector.single_action_space, name)
        self.layout = obs_layout(self.vector.single_observation_space, name)
        """How a Dict observation is flattened (None: a Box, seen as it is)."""
        self.obs_shape = (self.layout.size,) if self.layout else tuple(self.vector.single_observation_space.shape)
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
        success = np.full(len(env_action), np.nan)
        if "_final_obs" in info:
            final = info.get("final_info", {})
            for i in np.flatnonzero(info["_final_obs"]):
                final_obs = info["final_obs"][i]
                next_obs.reshape(-1, *self.obs_shape)[i] = self.layout.flatten(final_obs) if self.layout else final_obs
                if "is_success" in final and final.get("_is_success", np.ones(len(success), bool))[i]:
                    success[i] = float(final["is_success"][i])
        reward = np.asarray(reward, np.float32)
        return Step(obs, next_obs, self._split(reward), self._split(terminated), self._split(truncated),
                    self._split(success))

    def _as_agent_obs(self, obs: Any) -> np.ndarray:
        """float32 with shape (seeds, envs, *obs_shape), a Dict observation flattened; CheckedEnv has
        checked the values."""
        return self._split(self.layout.flatten(obs) if self.layout else np.asarray(obs, np.float32))

    def episode_limit(self) -> int | None:
        """The time limit of the environments' episodes, if a TimeLimit wrapper sets one."""
        for layer in _layers(self.vector.envs[0]):
            if isinstance(layer, gym.wrappers.TimeLimit):
                return int(layer._max_episode_steps)
        return None

    def goal_swap(self) -> np.ndarray | None:
        """Indices of the flat observation with the achieved and desired goals exchanged, for an
        observation with both (of one shape); None otherwise. Observation normalization counts each
        observation also swapped, so that both goals are normalized alike (the reward compares them)."""
        slices = self.layout.slices() if self.layout else {}
        if not all(key in slices for key in GOAL_KEYS):
            return None
        achieved, desired = (slices[key] for key in GOAL_KEYS)
        if achieved.stop - achieved.start != desired.stop - desired.start:
            return None
        index = np.arange(self.obs_shape[0])
        index[achieved], index[desired] = index[desired].copy(), index[achieved].copy()
        return index

    def goals(self) -> Goals:
        """The goal environment's `Goals`, for hindsight experience replay; an EnvError says what is missing."""
        need = (f"hindsight experience replay needs a goal environment: a Dict observation with the keys "
                f"{' and '.join(GOAL_KEYS)} (Boxes of one shape) and a vectorized compute_reward(achieved_goal, "
                f"desired_goal, info), as gymnasium-robotics' environments have")
        slices = self.layout.slices() if self.layout else {}
        missing = [key for key in GOAL_KEYS if key not in slices]
        if missing:
            raise EnvError(f"{self.name} has no {' and no '.join(missing)} in its observation; {need}")
        shapes = dict(zip(self.layout.keys, self.layout.shapes))
        if shapes[GOAL_KEYS[0]] != shapes[GOAL_KEYS[1]]:
            raise EnvError(f"{self.name}'s goals have the shapes {shapes[GOAL_KEYS[0]]} and {shapes[GOAL_KEYS[1]]}; "
                           f"{need}")
        env = self.vector.envs[0].unwrapped
        if not callable(getattr(env, "compute_reward", None)):
            raise EnvError(f"{self.name} has no compute_reward method; {need}")

        def compute_reward(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
            reward = env.compute_reward(achieved, desired, [{} for _ in range(len(achieved))])
            return np.asarray(reward, np.float32)

        size = slices[GOAL_KEYS[0]].stop - slices[GOAL_KEYS[0]].start
        probe = np.zeros((2, size), np.float32)
        try:
            shape = np.shape(compute_reward(probe, probe))
        except Exception as error:
            raise EnvError(f"{self.name}'s compute_reward failed on a batch of 2 goals ({type(error).__name__}: "
                           f"{error}); {need}") from None
        if shape != (2,):
            raise EnvError(f"{self.name}'s compute_reward returned shape {shape} for a batch of 2 goals, not (2,); "
                           f"{need}")
        return Goals(slices[GOAL_KEYS[0]], slices[GOAL_KEYS[1]], compute_reward)

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
# model and renderer (its data is saved through mj_getState); modules an environment keeps as
# attributes (gymnasium-robotics' `_utils`) are skipped too.
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
        state = {k: v for k, v in vars(layer).items() if k not in _SKIP and not isinstance(v, types.ModuleType)}
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
