"""Probe environments: tiny tasks whose value function or best action is known in closed form.

Each isolates one part of DDPG (Rejax's and Andy Jones's probe environments): a wrong answer
points at the part that is broken.

    OneStepReward        one step, reward 1, terminated              Q(s, a) = 1
    TwoStep              reward 0 then 1, terminated after step 2    Q(s0) = gamma, Q(s1) = 1
    ObsDependentAction   obs +-1, one step, reward -(a - 0.5 obs)^2  pi(s) = 0.5 * obs
    TruncatedOnly        state A, then B forever, reward 1 in B,     Q(B) = 1 / (1 - gamma), Q(A) = gamma Q(B)
                         truncated (never terminated) after 2 steps (bootstrapped from the true final obs)

Observations are float32 Box(-1, 1, (1,)) (TwoStep's and TruncatedOnly's lie in [0, 1]); actions are
Box(-1, 1, (1,)). Pass `factory(Env, **kwargs)` as `make_env` to `ddpgx.train`, or `register()` them with
Gymnasium under the ids in `IDS`.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def _obs(value: float) -> np.ndarray:
    return np.array([value], np.float32)


class OneStepReward(gym.Env):
    """One step with reward 1, then terminated: Q(s, a) = 1 for every action."""

    observation_space = OBS_SPACE
    action_space = ACTION_SPACE

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return _obs(0.0), {}

    def step(self, action):
        return _obs(0.0), 1.0, True, False, {}


class TwoStep(gym.Env):
    """Reward 0 at the first step, 1 at the second, then terminated; obs is 0 then 1 (the step).

    Q(s0, a) = gamma and Q(s1, a) = 1 for every action.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = ACTION_SPACE

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return _obs(0.0), {}

    def step(self, action):
        self.t += 1
        if self.t == 1:
            return _obs(1.0), 0.0, False, False, {}
        return _obs(1.0), 1.0, True, False, {}  # the final obs of a terminated step is never bootstrapped


class ObsDependentAction(gym.Env):
    """obs is +1 or -1 at random; one step with reward -(a - 0.5 * obs)^2: the best action is 0.5 * obs."""

    observation_space = OBS_SPACE
    action_space = ACTION_SPACE

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.sign = float(self.np_random.choice([-1.0, 1.0]))
        return _obs(self.sign), {}

    def step(self, action):
        reward = -float((np.asarray(action, np.float64)[0] - 0.5 * self.sign) ** 2)
        return _obs(self.sign), reward, True, False, {}


class TruncatedOnly(gym.Env):
    """Two states, A (obs 0) and B (obs 1): reset in A, every step leads to B; reward 0 from A, 1 from B.
    Never terminated: a time limit truncates after `limit` steps (2: A -> B, then B -> B truncated).

    The task has no end, so Q(B) = 1 / (1 - gamma) and Q(A) = gamma / (1 - gamma): 10 and 9 for gamma 0.9.
    The truncated transition's next observation is B, the true final one, which differs from the
    reset observation A that the step returns. A learner that bootstraps from the reset observation
    learns Q(B) = 1 + gamma Q(A) = 1 / (1 - gamma^2) = 5.3 (with limit 2); one that masks truncations
    as terminations learns Q(B) = 1.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = ACTION_SPACE

    def __init__(self, limit: int = 2):
        self.limit = limit

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.state = 0, 0.0
        return _obs(self.state), {}

    def step(self, action):
        self.t += 1
        reward, self.state = self.state, 1.0
        return _obs(self.state), reward, False, self.t >= self.limit, {}


PROBES = (OneStepReward, TwoStep, ObsDependentAction, TruncatedOnly)
IDS = {env: f"ddpgx-probes/{env.__name__}-v0" for env in PROBES}


def factory(env: type[gym.Env], **kwargs) -> Callable[[], gym.Env]:
    """A `make_env` for `ddpgx.train`: builds a fresh `env(**kwargs)` on each call."""
    return lambda: env(**kwargs)


def register() -> dict[type[gym.Env], str]:
    """Register the probes with Gymnasium (idempotent); returns their ids."""
    for env, env_id in IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"{__name__}:{env.__name__}")
    return IDS
