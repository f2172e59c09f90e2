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

Goal tasks (a Dict observation {achieved_goal, desired_goal, observation} and a vectorized
compute_reward, as gymnasium-robotics' goal environments):

    GoalChoice           one step: the action is the achieved goal; reward 0 within 0.1   pi(g) = g
                         of the desired goal, -1 otherwise (terminated)
    PointGoal            a point in the plane moves by 0.1 * action for 30 steps          reach g
                         (truncated); reward 0 within 0.1 of the goal, -1 otherwise;
                         info["is_success"] at every step
    GoalTruncated        achieved goal 0, desired 1, reward -1, truncated after 2 steps  Q(g=1) = -1 / (1 - gamma),
                                                                                          Q(g=0) = 0
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


class GoalEnv(gym.Env):
    """What gymnasium-robotics' GoalEnv adds to an environment: the Dict observation and a vectorized
    sparse reward (0 within `tolerance` of the desired goal, -1 otherwise), with is_success."""

    tolerance = 0.1

    def __init__(self, goal_dim: int):
        box = gym.spaces.Box(-1.0, 1.0, (goal_dim,), np.float32)
        self.observation_space = gym.spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (goal_dim,), np.float32)

    def compute_reward(self, achieved_goal, desired_goal, info):
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > self.tolerance).astype(np.float32)

    def _obs(self, position, goal):
        return {"observation": position.astype(np.float32), "achieved_goal": position.astype(np.float32),
                "desired_goal": goal.astype(np.float32)}

    def _reward_info(self, position, goal):
        reward = float(self.compute_reward(position, goal, {}))
        return reward, {"is_success": float(reward == 0.0)}


class GoalChoice(GoalEnv):
    """One step from position 0: the action becomes the achieved goal, the desired goal is uniform in
    [-1, 1]; reward 0 if within 0.1 of it, else -1; terminated. The best policy is pi(g) = g, and
    only relabeled transitions (whose goal is the action taken) show it often."""

    def __init__(self):
        super().__init__(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.goal = self.np_random.uniform(-1.0, 1.0, 1)
        return self._obs(np.zeros(1), self.goal), {}

    def step(self, action):
        position = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        reward, info = self._reward_info(position, self.goal)
        return self._obs(position, self.goal), reward, True, False, info


class PointGoal(GoalEnv):
    """A point in [-1, 1]^2 that moves by 0.1 * action per step, from a random start toward a random
    goal, for `limit` steps (truncated: the task goes on, so the last step bootstraps). Reward 0
    within 0.1 of the goal, -1 otherwise: random actions rarely end near it, and plain DDPG sees
    almost only -1; hindsight relabeling turns every episode into successes for the goals it reached."""

    def __init__(self, limit: int = 30):
        super().__init__(2)
        self.limit = limit

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.position = self.np_random.uniform(-1.0, 1.0, 2)
        self.goal = self.np_random.uniform(-1.0, 1.0, 2)
        return self._obs(self.position, self.goal), {}

    def step(self, action):
        self.t += 1
        self.position = np.clip(self.position + 0.1 * np.clip(np.asarray(action, np.float64), -1.0, 1.0), -1.0, 1.0)
        reward, info = self._reward_info(self.position, self.goal)
        return self._obs(self.position, self.goal), reward, False, self.t >= self.limit, info


class GoalTruncated(GoalEnv):
    """Nothing moves: the achieved goal is always 0, the desired goal 1, so every step's reward is -1;
    truncated after `limit` steps, never terminated. The task has no end: Q(s, g=1) = -1 / (1 - gamma)
    (-10 for gamma 0.9), and for the relabeled goal g = 0 (always achieved) Q(s, g=0) = 0. A learner
    that masked the truncation would learn -1 and -1.9 for the two steps instead of -10."""

    def __init__(self, limit: int = 2):
        super().__init__(1)
        self.limit = limit

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(np.zeros(1), np.ones(1)), {}

    def step(self, action):
        self.t += 1
        reward, info = self._reward_info(np.zeros(1), np.ones(1))
        return self._obs(np.zeros(1), np.ones(1)), reward, False, self.t >= self.limit, info


PROBES = (OneStepReward, TwoStep, ObsDependentAction, TruncatedOnly, GoalChoice, PointGoal, GoalTruncated)
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
