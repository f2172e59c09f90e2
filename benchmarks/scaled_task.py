"""A task far from unit scale, for the benchmark of observation normalization and reward scaling
only (ddpgx itself has no such wrapper): a Gymnasium task with its observations and its rewards
multiplied by 100.

    ScaledPendulum-v1   Pendulum-v1: observations (cos, sin, angular velocity) x 100, rewards x 100
    ScaledHopper-v5     Hopper-v5: observations x 100, rewards x 100

Returns are reported in the scaled units (100 times the task's own). A sweep uses this module as its
trainable (`trainable: ../scaled_task.py:train`), which registers the tasks in the trial's process
and then trains as ddpgx's own trainable does.
"""

from __future__ import annotations

import functools
import operator

import gymnasium as gym
import numpy as np

SCALE = 100.0
TASKS = {"ScaledPendulum-v1": ("Pendulum-v1", 200), "ScaledHopper-v5": ("Hopper-v5", 1000)}


def make_scaled(base: str) -> gym.Env:
    env = gym.make(base).unwrapped  # the registered time limit is put back by the scaled task's registration
    space = env.observation_space
    scaled_space = gym.spaces.Box(space.low * SCALE, space.high * SCALE, space.shape, space.dtype)
    # partials of library functions, not lambdas: a checkpoint pickles the environments' state
    env = gym.wrappers.TransformObservation(env, functools.partial(np.multiply, np.asarray(SCALE, space.dtype)),
                                            scaled_space)
    return gym.wrappers.TransformReward(env, functools.partial(operator.mul, SCALE))


def register() -> None:
    for name, (base, limit) in TASKS.items():
        if name not in gym.registry:
            gym.register(name, entry_point=make_scaled, kwargs={"base": base}, max_episode_steps=limit)


def train(config, run_dir, num_seeds, on_evaluation, print_fn=print) -> None:
    """The sweep's trainable interface (`ddpgx.sweeps.ddpgx_trainable`), with the scaled tasks registered."""
    from ddpgx.sweeps import ddpgx_trainable

    register()
    ddpgx_trainable(config, run_dir, num_seeds, on_evaluation, print_fn=print_fn)


if __name__ == "__main__":  # a look at the scales
    register()
    for name in TASKS:
        env = gym.make(name)
        obs, _ = env.reset(seed=0)
        _, reward, *_ = env.step(env.action_space.sample())
        print(name, np.round(obs, 1), round(float(reward), 1))
