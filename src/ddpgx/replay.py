"""Experience replay: a preallocated ring buffer on the host, sampled uniformly.

One buffer holds the transitions of every seed of a run, with a leading seed axis, so that a
minibatch for all seeds is one gather and one copy to the device. Each seed samples with its own
numpy Generator, so seed k of a multi-seed run samples exactly what a single run with seed k does.

A transition costs 4 * (2 * obs_size + action_dim + 1) + 1 bytes: observation and next observation
(float32), action (float32, in [-1, 1]), reward (float32) and terminated (bool). The next
observation is stored, not derived from the following slot, because at a truncation it is the
episode's true final observation, which the environment never returns as an observation of the
next step. Pages are allocated lazily: memory grows as the buffer fills.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddpgx.agent import Batch

FIELDS = ("obs", "action", "reward", "next_obs", "terminated")


class ReplayBuffer:
    def __init__(self, capacity: int, obs_shape: tuple[int, ...], action_dim: int, num_seeds: int = 1):
        self.capacity = int(capacity)
        self.num_seeds = int(num_seeds)
        lead = (self.num_seeds, self.capacity)
        self.obs = np.zeros((*lead, *obs_shape), np.float32)
        self.action = np.zeros((*lead, action_dim), np.float32)
        self.reward = np.zeros(lead, np.float32)
        self.next_obs = np.zeros((*lead, *obs_shape), np.float32)
        self.terminated = np.zeros(lead, np.bool_)
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots

    @staticmethod
    def transition_bytes(obs_size: int, action_dim: int) -> int:
        return 4 * (2 * obs_size + action_dim + 1) + 1

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in FIELDS)

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Store one step of every environment of every seed; arrays have shape (seeds, envs, ...)."""
        num_envs = np.shape(reward)[1]
        slots = (self.pos + np.arange(num_envs)) % self.capacity
        self.obs[:, slots] = obs
        self.action[:, slots] = action
        self.reward[:, slots] = reward
        self.next_obs[:, slots] = next_obs
        self.terminated[:, slots] = terminated
        self.pos = int((self.pos + num_envs) % self.capacity)
        self.size = min(self.size + num_envs, self.capacity)

    def sample(self, rngs: list[np.random.Generator], batch_size: int, count: int = 1) -> Batch:
        """`count` minibatches of `batch_size` per seed, drawn uniformly from the filled slots.

        Returns arrays of shape (seeds, count, batch_size, ...); seed k draws with rngs[k].
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = np.stack([rng.integers(0, self.size, size=(count, batch_size)) for rng in rngs])
        seed = np.arange(self.num_seeds).reshape(-1, 1, 1)
        return Batch(*(getattr(self, name)[seed, index] for name in FIELDS))

    def state_dict(self, seed: int) -> dict[str, np.ndarray]:
        """The filled part of one seed's buffer, in slot order, with the write position."""
        arrays = {name: getattr(self, name)[seed, : self.size] for name in FIELDS}
        return {**arrays, "pos": np.int64(self.pos), "capacity": np.int64(self.capacity)}

    def load_state_dict(self, seed: int, state: dict[str, np.ndarray]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"the saved replay buffer has capacity {int(state['capacity'])}, this run {self.capacity}"
            )
        size = len(state["reward"])
        if self.size not in (0, size) and seed > 0:
            raise ValueError("the saved buffers of the seeds have different sizes")
        for name in FIELDS:
            getattr(self, name)[seed, :size] = state[name]
        self.size, self.pos = size, int(state["pos"])

    def save(self, path: str | Path, seed: int = 0) -> None:
        with open(path, "wb") as f:
            np.savez(f, **self.state_dict(seed))

    def load(self, path: str | Path, seed: int = 0) -> None:
        with np.load(path) as data:
            self.load_state_dict(seed, {name: data[name] for name in data.files})
