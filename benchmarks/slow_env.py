"""A slow simulator for the rollout-worker benchmark: Pendulum-v1 that sleeps a fixed time per step.

Importing this module registers SlowPendulum-v1 (5 ms per step, a simulator's cost); ddpgx makes it
from the id "slow_env:SlowPendulum-v1" when benchmarks/ is on the Python path.
"""

from __future__ import annotations

import time

import gymnasium as gym

STEP_SECONDS = 0.005


class Sleep(gym.Wrapper):
    """Sleeps `seconds` at every step, as if the environment computed that long."""

    def __init__(self, env: gym.Env, seconds: float = STEP_SECONDS):
        super().__init__(env)
        self.seconds = seconds

    def step(self, action):
        time.sleep(self.seconds)
        return self.env.step(action)


def make_slow_pendulum(seconds: float = STEP_SECONDS, **kwargs) -> gym.Env:
    return Sleep(gym.make("Pendulum-v1", **kwargs), seconds)


if "SlowPendulum-v1" not in gym.registry:
    gym.register("SlowPendulum-v1", entry_point=make_slow_pendulum)
